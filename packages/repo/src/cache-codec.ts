/**
 * The codec of the build cache log (cache.ts): fixed-width little-endian numbers, length-prefixed
 * strings, and a tarball's facts, decoded lazily.
 */
import { type Dependency, HexrepoError, type ReleaseFacts } from '@hexrepo/core';

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

const enum DepFlag {
  Optional = 1,
  RenamedApp = 2,
  Repository = 4,
}

/** Write a tarball's checksums and dependencies (its name and version are the file name's). */
export function encodeFacts(w: Writer, facts: ReleaseFacts): void {
  w.bytes(facts.innerChecksum).bytes(facts.outerChecksum).u32(facts.dependencies.length);
  for (const d of facts.dependencies) {
    const flags = (d.optional ? DepFlag.Optional : 0) | (d.app !== d.package ? DepFlag.RenamedApp : 0) | (d.repository !== undefined ? DepFlag.Repository : 0);
    w.str(d.package).str(d.requirement).u8(flags);
    if (flags & DepFlag.RenamedApp) w.str(d.app);
    if (d.repository !== undefined) w.str(d.repository);
  }
}

type DecodedFacts = Pick<ReleaseFacts, 'innerChecksum' | 'outerChecksum' | 'dependencies'>;

/**
 * Facts whose name and version come from the file name (a cached tarball was checked to be named
 * NAME-VERSION.tar of its metadata, and package names have no '-') and whose checksums and
 * dependencies are decoded from the file's bytes on first use. One small object per tarball, all
 * of one shape (the getters are the prototype's): loading 20,000 of them costs little time and
 * garbage. Being the prototype's, the getters are not copied by a spread: copy fields by name.
 */
export class LazyFacts implements ReleaseFacts {
  readonly name: string;
  readonly version: string;
  readonly #buf: Buffer;
  readonly #start: number;
  readonly #end: number;
  readonly #counter: { decoded: number };
  #decoded: DecodedFacts | null = null;

  private constructor(name: string, version: string, buf: Buffer, start: number, end: number, counter: { decoded: number }) {
    this.name = name;
    this.version = version;
    this.#buf = buf;
    this.#start = start;
    this.#end = end;
    this.#counter = counter;
  }

  /** The facts of tarball `file` encoded in `buf` from `start` to `end`; null for a file name that names no release. */
  static of(file: string, buf: Buffer, start: number, end: number, counter: { decoded: number }): LazyFacts | null {
    const dash = file.indexOf('-');
    if (dash <= 0 || !file.endsWith('.tar')) return null;
    return new LazyFacts(file.slice(0, dash), file.slice(dash + 1, -'.tar'.length), buf, start, end, counter);
  }

  get innerChecksum(): Uint8Array {
    return this.#decode().innerChecksum;
  }

  get outerChecksum(): Uint8Array {
    return this.#decode().outerChecksum;
  }

  get dependencies(): Dependency[] {
    return this.#decode().dependencies;
  }

  /** The encoded facts, for a rewrite of the log that copies them undecoded. */
  raw(): Uint8Array {
    return this.#buf.subarray(this.#start, this.#end);
  }

  #decode(): DecodedFacts {
    if (this.#decoded) return this.#decoded;
    this.#counter.decoded++;
    const r = new Reader(this.#buf, this.#start, this.#end);
    const innerChecksum = r.take(32);
    const outerChecksum = r.take(32);
    const dependencies: Dependency[] = [];
    for (let n = r.u32(); n > 0; n--) {
      const pkg = r.str();
      const requirement = r.str();
      const flags = r.u8();
      const app = flags & DepFlag.RenamedApp ? r.str() : pkg;
      dependencies.push({ package: pkg, requirement, optional: (flags & DepFlag.Optional) !== 0, app, ...(flags & DepFlag.Repository ? { repository: r.str() } : {}) });
    }
    this.#decoded = { innerChecksum, outerChecksum, dependencies };
    return this.#decoded;
  }
}
