import { Buffer, isUtf8 } from 'node:buffer';

/** A Buffer view over the same memory as `bytes` (no copy). */
export function bufferView(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** A plain Uint8Array view over the same memory (so results compare equal to plain arrays). */
export function plainView(bytes: Uint8Array): Uint8Array {
  return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** True when the bytes are valid UTF-8. */
export function isValidUtf8(bytes: Uint8Array): boolean {
  return isUtf8(bufferView(bytes));
}

/**
 * Text of bytes as hex_core reads them: UTF-8 when valid, otherwise latin-1 (one character per
 * byte). Node's `latin1` is true ISO-8859-1, unlike the WHATWG decoder of that name.
 */
export function decodeText(bytes: Uint8Array): string {
  const buf = bufferView(bytes);
  return isUtf8(buf) ? buf.toString('utf8') : buf.toString('latin1');
}

/** UTF-8 bytes of a string as a plain Uint8Array. */
export function utf8Bytes(text: string): Uint8Array {
  return plainView(Buffer.from(text, 'utf8'));
}

/** One byte per character; the caller guarantees every code point is at most 255. */
export function latin1Bytes(text: string): Uint8Array {
  return plainView(Buffer.from(text, 'latin1'));
}

const LONE_SURROGATE = /\p{Surrogate}/u;

/** True when the string holds a lone UTF-16 surrogate, which has no UTF-8 encoding. */
export function hasLoneSurrogate(text: string): boolean {
  return LONE_SURROGATE.test(text);
}

/** A value shortened for an error message. */
export function preview(text: string, max = 40): string {
  return JSON.stringify(text.length > max ? `${text.slice(0, max)}…` : text);
}
