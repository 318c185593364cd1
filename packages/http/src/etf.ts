/**
 * Erlang external term format, the subset the Hex API speaks (HEX_SPEC.md §6.3): maps with binary
 * keys, binaries, integers, floats, lists, and the atoms true, false and nil. Decoding is bounded
 * and never creates anything but plain data; compressed terms are refused, as hex.pm refuses them.
 */
import { HexrepoError } from '@hexrepo/core';

export type Etf = null | boolean | number | bigint | string | Uint8Array | Etf[] | { [key: string]: Etf } | { tuple: Etf[] };

export const ETF_CONTENT_TYPE = 'application/vnd.hex+erlang';

const VERSION = 131;

class Writer {
  #chunks: Buffer[] = [];
  byte(b: number): void {
    this.#chunks.push(Buffer.of(b));
  }
  u32(n: number): void {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(n);
    this.#chunks.push(b);
  }
  bytes(b: Uint8Array): void {
    this.#chunks.push(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
  }
  finish(): Buffer {
    return Buffer.concat(this.#chunks);
  }
}

function atom(w: Writer, name: string): void {
  const b = Buffer.from(name, 'utf8');
  w.byte(119); // SMALL_ATOM_UTF8_EXT
  w.byte(b.length);
  w.bytes(b);
}

function encodeInto(w: Writer, v: Etf): void {
  if (v === null) return atom(w, 'nil');
  if (v === true || v === false) return atom(w, String(v));
  if (typeof v === 'string') {
    const b = Buffer.from(v, 'utf8');
    w.byte(109);
    w.u32(b.length);
    w.bytes(b);
    return;
  }
  if (v instanceof Uint8Array) {
    w.byte(109);
    w.u32(v.byteLength);
    w.bytes(v);
    return;
  }
  if (typeof v === 'number' && !Number.isInteger(v)) {
    const b = Buffer.alloc(8);
    b.writeDoubleBE(v);
    w.byte(70);
    w.bytes(b);
    return;
  }
  if (typeof v === 'number' || typeof v === 'bigint') {
    const n = BigInt(v);
    if (n >= 0n && n < 256n) {
      w.byte(97);
      w.byte(Number(n));
    } else if (n >= -(2n ** 31n) && n < 2n ** 31n) {
      const b = Buffer.alloc(4);
      b.writeInt32BE(Number(n));
      w.byte(98);
      w.bytes(b);
    } else {
      let mag = n < 0n ? -n : n;
      const digits: number[] = [];
      while (mag > 0n) {
        digits.push(Number(mag & 255n));
        mag >>= 8n;
      }
      w.byte(110);
      w.byte(digits.length);
      w.byte(n < 0n ? 1 : 0);
      w.bytes(Uint8Array.from(digits));
    }
    return;
  }
  if (Array.isArray(v)) {
    if (v.length === 0) return w.byte(106);
    w.byte(108);
    w.u32(v.length);
    for (const e of v) encodeInto(w, e);
    w.byte(106);
    return;
  }
  if ('tuple' in v && Array.isArray(v.tuple) && Object.keys(v).length === 1) {
    const t = v.tuple as Etf[];
    if (t.length < 256) {
      w.byte(104);
      w.byte(t.length);
    } else {
      w.byte(105);
      w.u32(t.length);
    }
    for (const e of t) encodeInto(w, e);
    return;
  }
  const entries = Object.entries(v as Record<string, Etf>);
  w.byte(116);
  w.u32(entries.length);
  for (const [k, val] of entries) {
    encodeInto(w, k);
    encodeInto(w, val);
  }
}

/** Encode a value as ETF: object keys become binaries, null becomes the atom nil. */
export function encodeEtf(value: Etf): Buffer {
  const w = new Writer();
  w.byte(VERSION);
  encodeInto(w, value);
  return w.finish();
}

export interface EtfLimits {
  maxDepth: number;
  maxBytes: number;
}

const DEFAULT_LIMITS: EtfLimits = { maxDepth: 32, maxBytes: 1024 * 1024 };

/**
 * Decode ETF. Binaries decode to UTF-8 strings when valid UTF-8 (else bytes); map keys must be
 * binaries or atoms; atoms other than true, false, nil decode to their name (never created).
 */
export function decodeEtf(input: Uint8Array, limits: Partial<EtfLimits> = {}): Etf {
  const { maxDepth, maxBytes } = { ...DEFAULT_LIMITS, ...limits };
  const buf = Buffer.from(input.buffer, input.byteOffset, input.byteLength);
  const bad = (why: string): never => {
    throw new HexrepoError('USAGE', `the request body is not a valid Erlang term: ${why}`, { hint: 'send application/vnd.hex+erlang as Hex does, or application/json' });
  };
  if (buf.length > maxBytes) bad(`larger than ${maxBytes} bytes`);
  let at = 0;
  const need = (n: number): void => {
    if (at + n > buf.length) bad('truncated');
  };
  const u8 = (): number => {
    need(1);
    return buf[at++]!;
  };
  const u16 = (): number => {
    need(2);
    const v = buf.readUInt16BE(at);
    at += 2;
    return v;
  };
  const u32 = (): number => {
    need(4);
    const v = buf.readUInt32BE(at);
    at += 4;
    return v;
  };
  const take = (n: number): Buffer => {
    need(n);
    const b = buf.subarray(at, at + n);
    at += n;
    return b;
  };
  const text = (b: Buffer): string | Uint8Array => {
    const s = b.toString('utf8');
    return Buffer.from(s, 'utf8').equals(b) ? s : new Uint8Array(b);
  };
  const atomValue = (name: string): Etf => (name === 'true' ? true : name === 'false' ? false : name === 'nil' || name === 'undefined' ? null : name);
  const value = (depth: number): Etf => {
    if (depth > maxDepth) bad(`nested deeper than ${maxDepth}`);
    const tag = u8();
    switch (tag) {
      case 97:
        return u8();
      case 98: {
        need(4);
        const v = buf.readInt32BE(at);
        at += 4;
        return v;
      }
      case 70: {
        need(8);
        const v = buf.readDoubleBE(at);
        at += 8;
        return v;
      }
      case 110:
      case 111: {
        const n = tag === 110 ? u8() : u32();
        if (n > 64) bad('integer too large');
        const sign = u8();
        const digits = take(n);
        let v = 0n;
        for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(digits[i]!);
        if (sign) v = -v;
        return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
      }
      case 109:
        return text(take(u32()));
      case 119:
        return atomValue(take(u8()).toString('utf8'));
      case 118:
        return atomValue(take(u16()).toString('utf8'));
      case 100:
        return atomValue(take(u16()).toString('latin1'));
      case 115:
        return atomValue(take(u8()).toString('latin1'));
      case 106:
        return [];
      case 107:
        return text(take(u16()));
      case 108: {
        const n = u32();
        if (n > buf.length) bad('list longer than the body');
        const list: Etf[] = [];
        for (let i = 0; i < n; i++) list.push(value(depth + 1));
        const tail = value(depth + 1);
        if (!(Array.isArray(tail) && tail.length === 0)) bad('improper list');
        return list;
      }
      case 104:
      case 105: {
        const n = tag === 104 ? u8() : u32();
        if (n > buf.length) bad('tuple larger than the body');
        const items: Etf[] = [];
        for (let i = 0; i < n; i++) items.push(value(depth + 1));
        return { tuple: items };
      }
      case 116: {
        const n = u32();
        if (n > buf.length) bad('map larger than the body');
        const map: Record<string, Etf> = Object.create(null) as Record<string, Etf>;
        for (let i = 0; i < n; i++) {
          const k = value(depth + 1);
          if (typeof k !== 'string') bad('map keys must be binaries or atoms');
          map[k as string] = value(depth + 1);
        }
        return map;
      }
      case 80:
        return bad('compressed terms are not accepted');
      default:
        return bad(`unsupported term tag ${tag}`);
    }
  };
  if (u8() !== VERSION) bad('wrong version byte');
  const result = value(0);
  if (at !== buf.length) bad('trailing bytes');
  return result;
}
