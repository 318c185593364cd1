/**
 * A minimal ustar reader and writer over bytes, for the archives erl_tar and hex_core make:
 * ustar headers with a `prefix`, GNU long names (`././@LongLink`, types L and K) and pax
 * extended headers (type x: path, linkpath, size).
 */
import { Buffer } from 'node:buffer';
import { HexrepoError } from '@hexrepo/core';
import { decodeText, plainView } from './text.js';

/** What an entry is; `other` covers devices, fifos and anything else (see `typeflag`). */
export type TarEntryType = 'file' | 'dir' | 'symlink' | 'hardlink' | 'other';

/** One entry of a tar archive. `data` is a view into the archive bytes, not a copy. */
export interface TarEntry {
  name: string;
  type: TarEntryType;
  /** The raw header type character ('0', '5', '3', …). */
  typeflag: string;
  /** Permission bits (mode & 0o7777). */
  mode: number;
  size: number;
  linkname: string;
  mtime: number;
  data: Uint8Array;
}

/** One entry to write; files by default. `typeflag` overrides the type character (e.g. '3'). */
export interface TarWriteEntry {
  name: string;
  type?: TarEntryType;
  typeflag?: string;
  data?: Uint8Array;
  /** @default 0o644 for files and links, 0o755 for directories */
  mode?: number;
  linkname?: string;
  /** @default 946684800 (2000-01-01T00:00:00Z, as hex_core writes) */
  mtime?: number;
}

const BLOCK = 512;
/** The timestamp hex_core writes into every header. */
export const TAR_MTIME = 946684800;

const TYPES: Readonly<Record<string, TarEntryType>> = { '0': 'file', '\0': 'file', '7': 'file', '5': 'dir', '2': 'symlink', '1': 'hardlink' };

function corrupt(message: string, details: Record<string, unknown> = {}): never {
  throw new HexrepoError('TAR_CORRUPT', message, details);
}

/** A NUL-terminated string field. */
function field(block: Uint8Array, start: number, length: number): string {
  let end = start;
  const limit = start + length;
  while (end < limit && block[end] !== 0) end++;
  return decodeText(block.subarray(start, end));
}

/** An octal (or GNU base-256) number field; null when malformed. */
function numberField(block: Uint8Array, start: number, length: number): number | null {
  if ((block[start]! & 0x80) !== 0) {
    let value = block[start]! & 0x7f;
    for (let i = start + 1; i < start + length; i++) value = value * 256 + block[i]!;
    return Number.isSafeInteger(value) ? value : null;
  }
  let value = 0;
  let i = start;
  const end = start + length;
  while (i < end && (block[i] === 32 || block[i] === 0)) i++;
  for (; i < end; i++) {
    const c = block[i]!;
    if (c === 0 || c === 32) break;
    if (c < 48 || c > 55) return null;
    value = value * 8 + (c - 48);
  }
  return value;
}

/** The header checksum, with the checksum field counted as spaces; `signed` for old tars' variant. */
function headerChecksum(block: Uint8Array, signed = false): number {
  let sum = 8 * 32;
  for (let i = 0; i < BLOCK; i++) {
    if (i === 148) i = 156;
    const b = block[i]!;
    sum += signed && b > 127 ? b - 256 : b;
  }
  return sum;
}

function isZeroBlock(block: Uint8Array): boolean {
  for (let i = 0; i < BLOCK; i++) if (block[i] !== 0) return false;
  return true;
}

/** pax records: `LEN key=value\n`. */
function parsePax(data: Uint8Array, at: number): Map<string, string> {
  const out = new Map<string, string>();
  let i = 0;
  while (i < data.length) {
    let j = i;
    let len = 0;
    while (j < data.length && data[j]! >= 48 && data[j]! <= 57) len = len * 10 + data[j++]! - 48;
    if (j === i || data[j] !== 32 || len <= j - i + 1 || i + len > data.length || data[i + len - 1] !== 10) {
      corrupt(`the pax header at byte ${at} has a malformed record; the archive is damaged`, { offset: at });
    }
    const record = Buffer.from(data.buffer, data.byteOffset + j + 1, i + len - 1 - (j + 1)).toString('utf8');
    const eq = record.indexOf('=');
    if (eq <= 0) corrupt(`the pax header at byte ${at} has a record without a key; the archive is damaged`, { offset: at });
    out.set(record.slice(0, eq), record.slice(eq + 1));
    i += len;
  }
  return out;
}

/**
 * Read every entry of a tar archive. Header checksums are verified; a truncated archive or a bad
 * header throws TAR_CORRUPT. The archive ends at the first zero block (or at the end of the bytes).
 */
export function readTar(bytes: Uint8Array): TarEntry[] {
  if (bytes.byteLength === 0) corrupt('the file is empty (0 bytes), not a tar archive; upload the .tar file that mix hex.build or rebar3 hex build wrote');
  if (bytes.byteLength < BLOCK) corrupt(`the file is only ${bytes.byteLength} bytes, too short for a tar archive (512-byte headers); it is truncated or not a tar file`, { size: bytes.byteLength });
  const entries: TarEntry[] = [];
  let offset = 0;
  let longName: string | null = null;
  let longLink: string | null = null;
  let pax: Map<string, string> | null = null;
  while (offset + BLOCK <= bytes.byteLength) {
    const block = bytes.subarray(offset, offset + BLOCK);
    if (isZeroBlock(block)) {
      if (longName !== null || longLink !== null || pax !== null) corrupt(`the tar archive ends right after an extended header at byte ${offset}; the archive is damaged`, { offset });
      return entries;
    }
    const stored = numberField(block, 148, 8);
    const actual = headerChecksum(block);
    if (stored !== actual && stored !== headerChecksum(block, true)) {
      corrupt(`the tar header at byte ${offset} has checksum ${stored ?? 'unreadable'} but its bytes sum to ${actual}; the file is damaged or not a tar archive`, { offset });
    }
    const typeflag = String.fromCharCode(block[156]!);
    let size = numberField(block, 124, 12);
    if (size === null) corrupt(`the tar header at byte ${offset} has an unreadable size field; the archive is damaged`, { offset });
    if (pax?.has('size')) {
      const paxSize = Number(pax.get('size'));
      if (!Number.isSafeInteger(paxSize) || paxSize < 0) corrupt(`the pax size before byte ${offset} is not a number; the archive is damaged`, { offset });
      size = paxSize;
    }
    const dataStart = offset + BLOCK;
    const dataEnd = dataStart + size;
    if (dataEnd > bytes.byteLength) {
      corrupt(`the tar entry at byte ${offset} claims ${size} bytes but the file ends after ${bytes.byteLength - dataStart}; the file is truncated`, { offset, size });
    }
    const data = bytes.subarray(dataStart, dataEnd);
    offset = dataStart + Math.ceil(size / BLOCK) * BLOCK;
    if (typeflag === 'L' || typeflag === 'K') {
      const text = field(data, 0, data.length);
      if (typeflag === 'L') longName = text;
      else longLink = text;
      continue;
    }
    if (typeflag === 'x') {
      pax = parsePax(data, dataStart - BLOCK);
      continue;
    }
    if (typeflag === 'g') continue; // global pax defaults: nothing hex_core relies on
    // POSIX ustar ("ustar\0") has a name prefix; GNU's "ustar  " keeps other data there.
    const posix = block[262] === 0 && field(block, 257, 6) === 'ustar';
    const prefix = posix ? field(block, 345, 155) : '';
    const shortName = field(block, 0, 100);
    const name = pax?.get('path') ?? longName ?? (prefix ? `${prefix}/${shortName}` : shortName);
    const linkname = pax?.get('linkpath') ?? longLink ?? field(block, 157, 100);
    entries.push({
      name,
      type: TYPES[typeflag] ?? 'other',
      typeflag,
      mode: (numberField(block, 100, 8) ?? 0) & 0o7777,
      size,
      linkname,
      mtime: numberField(block, 136, 12) ?? 0,
      data,
    });
    longName = null;
    longLink = null;
    pax = null;
  }
  if (offset !== bytes.byteLength || longName !== null || longLink !== null || pax !== null) {
    corrupt(`the tar archive ends in the middle of a block (at byte ${bytes.byteLength}); the file is truncated`, { offset });
  }
  return entries;
}

function writeString(block: Uint8Array, start: number, length: number, bytes: Uint8Array): void {
  block.set(bytes.subarray(0, length), start);
}

function writeOctal(block: Uint8Array, start: number, length: number, value: number): void {
  const text = value.toString(8).padStart(length - 1, '0');
  if (text.length > length - 1) throw new HexrepoError('INTERNAL', `the value ${value} does not fit a ${length}-byte tar field`);
  writeString(block, start, length, Buffer.from(`${text}\0`, 'latin1'));
}

function header(name: Uint8Array, prefix: Uint8Array, typeflag: string, mode: number, size: number, mtime: number, linkname: Uint8Array): Uint8Array {
  const block = new Uint8Array(BLOCK);
  writeString(block, 0, 100, name);
  writeOctal(block, 100, 8, mode);
  writeOctal(block, 108, 8, 0);
  writeOctal(block, 116, 8, 0);
  writeOctal(block, 124, 12, size);
  writeOctal(block, 136, 12, mtime);
  block[156] = typeflag.charCodeAt(0);
  writeString(block, 157, 100, linkname);
  writeString(block, 257, 8, Buffer.from('ustar\u000000', 'latin1'));
  writeOctal(block, 329, 8, 0);
  writeOctal(block, 337, 8, 0);
  writeString(block, 345, 155, prefix);
  const sum = headerChecksum(block);
  writeString(block, 148, 8, Buffer.from(`${sum.toString(8).padStart(6, '0')}\0 `, 'latin1'));
  return block;
}

/** Split a long UTF-8 path into ustar prefix and name at a '/', or null when impossible. */
function splitName(path: Uint8Array): [Uint8Array, Uint8Array] | null {
  for (let i = Math.min(path.length - 1, 155); i > 0; i--) {
    if (path[i] === 47 && path.length - i - 1 <= 100 && path.length - i - 1 > 0) return [path.subarray(0, i), path.subarray(i + 1)];
  }
  return null;
}

function paxRecord(key: string, value: string): string {
  const body = ` ${key}=${value}\n`;
  let len = Buffer.byteLength(body) + 1;
  while (String(len).length + Buffer.byteLength(body) !== len) len = String(len).length + Buffer.byteLength(body);
  return `${len}${body}`;
}

/**
 * Write a ustar archive: uid/gid 0, mtime 946684800 unless given, two zero blocks at the end and no
 * padding to 10240 bytes (as hex_core). Paths over 100 bytes use the ustar prefix, else a pax header.
 */
export function writeTar(entries: readonly TarWriteEntry[]): Uint8Array {
  const parts: Uint8Array[] = [];
  for (const entry of entries) {
    const type = entry.type ?? 'file';
    const typeflag = entry.typeflag ?? { file: '0', dir: '5', symlink: '2', hardlink: '1', other: '0' }[type];
    const data = entry.data ?? new Uint8Array(0);
    const mode = entry.mode ?? (type === 'dir' ? 0o755 : 0o644);
    const mtime = entry.mtime ?? TAR_MTIME;
    const pathBytes = plainView(Buffer.from(entry.name, 'utf8'));
    const linkBytes = plainView(Buffer.from(entry.linkname ?? '', 'utf8'));
    let name = pathBytes;
    let prefix: Uint8Array = new Uint8Array(0);
    let pax = '';
    if (pathBytes.length > 100) {
      const split = splitName(pathBytes);
      if (split) [prefix, name] = split;
      else {
        pax += paxRecord('path', entry.name);
        name = pathBytes.subarray(0, 100);
      }
    }
    if (linkBytes.length > 100) pax += paxRecord('linkpath', entry.linkname ?? '');
    if (pax) {
      const paxData = plainView(Buffer.from(pax, 'utf8'));
      parts.push(header(plainView(Buffer.from('././@PaxHeader', 'latin1')), new Uint8Array(0), 'x', 0o644, paxData.length, mtime, new Uint8Array(0)));
      parts.push(paxData, new Uint8Array((BLOCK - (paxData.length % BLOCK)) % BLOCK));
    }
    parts.push(header(name, prefix, typeflag, mode & 0o7777, data.length, mtime, linkBytes.subarray(0, 100)));
    parts.push(data, new Uint8Array((BLOCK - (data.length % BLOCK)) % BLOCK));
  }
  parts.push(new Uint8Array(BLOCK * 2));
  return plainView(Buffer.concat(parts));
}
