/** Lowercase hex of bytes. */
export function toHex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

/** Bytes of a hex string (either case); null when it is not even-length hex. */
export function fromHex(text: string): Uint8Array | null {
  if (text.length % 2 !== 0) return null;
  // Buffer stops at the first character that is not hex: a short result means bad input. (No
  // regular expression: build caches decode 40,000 checksums at start.)
  const bytes = Buffer.from(text, 'hex');
  return bytes.byteLength * 2 === text.length ? new Uint8Array(bytes) : null;
}

/** Byte equality. */
export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false;
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false;
  return true;
}
