/** The field codec of the build cache log (cache.ts): fixed-width little-endian numbers, length-prefixed strings. */
import { HexrepoError } from '@hexrepo/core';

/** Appends little-endian fields to a growing buffer. */
export class Writer {
  #buf = Buffer.allocUnsafe(256);
  #pos = 0;

  #room(n: number): void {
    if (this.#pos + n <= this.#buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.#buf.length * 2, this.#pos + n));
    this.#buf.copy(next, 0, 0, this.#pos);
    this.#buf = next;
  }

  u8(v: number): this {
    this.#room(1);
    this.#buf[this.#pos++] = v;
    return this;
  }

  u32(v: number): this {
    this.#room(4);
    this.#pos = this.#buf.writeUInt32LE(v, this.#pos);
    return this;
  }

  f64(v: number): this {
    this.#room(8);
    this.#pos = this.#buf.writeDoubleLE(v, this.#pos);
    return this;
  }

  bytes(b: Uint8Array): this {
    this.#room(b.length);
    this.#buf.set(b, this.#pos);
    this.#pos += b.length;
    return this;
  }

  str(s: string): this {
    const len = Buffer.byteLength(s);
    this.u32(len);
    this.#room(len);
    this.#pos += this.#buf.write(s, this.#pos, 'utf8');
    return this;
  }

  done(): Buffer {
    return Buffer.from(this.#buf.subarray(0, this.#pos));
  }
}

/** Reads the fields a Writer wrote; a field past the end is a STORAGE_IO error (a record shorter than its fields). */
export class Reader {
  pos: number;
  readonly #view: Buffer;
  readonly #end: number;

  /** A reader of `view` from `start` to `end` (a record inside the file's buffer, without copying it). */
  constructor(view: Buffer, start = 0, end = view.length) {
    this.#view = view;
    this.pos = start;
    this.#end = end;
  }

  #need(n: number): void {
    if (this.pos + n > this.#end) throw new HexrepoError('STORAGE_IO', 'a build cache record is shorter than its fields', { hint: 'delete the build cache; the next build reads every tarball' });
  }

  u8(): number {
    this.#need(1);
    return this.#view[this.pos++]!;
  }

  u32(): number {
    this.#need(4);
    const v = this.#view.readUInt32LE(this.pos);
    this.pos += 4;
    return v;
  }

  f64(): number {
    this.#need(8);
    const v = this.#view.readDoubleLE(this.pos);
    this.pos += 8;
    return v;
  }

  take(n: number): Uint8Array {
    this.#need(n);
    // A copy: the decoded checksum must not pin the whole file's buffer.
    const v = Uint8Array.prototype.slice.call(this.#view, this.pos, this.pos + n);
    this.pos += n;
    return v;
  }

  str(): string {
    const len = this.u32();
    this.#need(len);
    const s = this.#view.toString('utf8', this.pos, this.pos + len);
    this.pos += len;
    return s;
  }
}
