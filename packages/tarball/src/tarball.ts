/** Reading a Hex package tarball (format 3) with full validation. */
import { Buffer } from 'node:buffer';
import { createHash } from 'node:crypto';
import { gunzipSync } from 'node:zlib';
import { bytesEqual, DEFAULT_LIMITS, HexrepoError, isHexrepoError, toHex, type ReleaseFacts, type TarballLimits } from '@hexrepo/core';
import { guessBuildTools, hasField, metadataFromTerms, type Metadata } from './metadata.js';
import { checkContents, type ContentFile } from './paths.js';
import { readTar, type TarEntry } from './tar.js';
import { parseConsult, type Term } from './terms.js';
import { bufferView, plainView, preview } from './text.js';

/** The outer members, in the order hex_core writes them. */
export const TARBALL_MEMBERS = ['VERSION', 'CHECKSUM', 'metadata.config', 'contents.tar.gz'] as const;
type MemberName = (typeof TARBALL_MEMBERS)[number];

/** Options of `parseTarball`. */
export interface ParseTarballOptions {
  /** Limits over `DEFAULT_LIMITS` from @hexrepo/core. */
  limits?: Partial<TarballLimits>;
}

/** A validated package tarball. Byte fields are views into the input, not copies. */
export interface ParsedTarball {
  metadata: Metadata;
  /** The forms of metadata.config as parsed. */
  terms: Term[];
  /** metadata.config exactly as stored. */
  metadataConfig: Uint8Array;
  /** SHA-256 of VERSION ‖ metadata.config ‖ contents.tar.gz (32 bytes). */
  innerChecksum: Uint8Array;
  /** SHA-256 of the whole tarball (32 bytes). */
  outerChecksum: Uint8Array;
  facts: ReleaseFacts;
  /** The entries of contents.tar.gz, in archive order. */
  files: ContentFile[];
}

function sha256(...parts: Uint8Array[]): Uint8Array {
  const hash = createHash('sha256');
  for (const part of parts) hash.update(part);
  return plainView(hash.digest());
}

/** Resolve partial limits over the defaults. */
export function resolveLimits(limits: Partial<TarballLimits> = {}): TarballLimits {
  return { ...DEFAULT_LIMITS, ...limits };
}

/** Exactly the four regular members, each once. */
function pickMembers(entries: readonly TarEntry[]): Record<MemberName, Uint8Array> {
  const found = new Map<string, TarEntry>();
  for (const entry of entries) {
    if (found.has(entry.name)) {
      throw new HexrepoError('TAR_DUPLICATE_MEMBER', `the tarball holds ${preview(entry.name)} twice; Hex clients cannot tell which to use, so rebuild the package`, { member: entry.name });
    }
    found.set(entry.name, entry);
  }
  for (const name of TARBALL_MEMBERS) {
    const entry = found.get(name);
    if (entry === undefined) {
      const present = entries.length === 0 ? 'the archive is empty' : `it holds ${entries.map((e) => preview(e.name)).join(', ')}`;
      throw new HexrepoError('TAR_MISSING_MEMBER', `the tarball has no ${name} member (${present}); a Hex package needs VERSION, CHECKSUM, metadata.config and contents.tar.gz — rebuild it with mix hex.build or rebar3 hex build`, {
        member: name,
      });
    }
    if (entry.type !== 'file') {
      throw new HexrepoError('TAR_MISSING_MEMBER', `the tarball member ${name} is a ${entry.type === 'other' ? `special entry (type ${JSON.stringify(entry.typeflag)})` : entry.type}, not a regular file; rebuild the package`, {
        member: name,
        type: entry.type,
      });
    }
  }
  for (const entry of entries) {
    if (!(TARBALL_MEMBERS as readonly string[]).includes(entry.name)) {
      throw new HexrepoError('TAR_EXTRA_MEMBER', `the tarball holds the extra member ${preview(entry.name)}, which Hex clients reject; keep only VERSION, CHECKSUM, metadata.config and contents.tar.gz`, { member: entry.name });
    }
  }
  const data = (name: MemberName): Uint8Array => found.get(name)!.data;
  return { VERSION: data('VERSION'), CHECKSUM: data('CHECKSUM'), 'metadata.config': data('metadata.config'), 'contents.tar.gz': data('contents.tar.gz') };
}

function decodeChecksum(bytes: Uint8Array): Uint8Array {
  const text = bufferView(bytes).toString('latin1');
  if (!/^[0-9a-fA-F]{64}$/.test(text)) {
    throw new HexrepoError('TAR_BAD_CHECKSUM_FORMAT', `CHECKSUM holds ${preview(text, 70)} (${bytes.byteLength} bytes), not 64 hex characters; the tarball is damaged or was edited — rebuild it`, { length: bytes.byteLength });
  }
  return plainView(Buffer.from(text, 'hex'));
}

function gunzipContents(gz: Uint8Array, limit: number): Uint8Array {
  if (gz.byteLength < 2 || gz[0] !== 0x1f || gz[1] !== 0x8b) {
    throw new HexrepoError('CONTENTS_CORRUPT', 'contents.tar.gz is not gzip data (no gzip header); rebuild the package');
  }
  try {
    return plainView(gunzipSync(gz, { maxOutputLength: limit }));
  } catch (err) {
    if ((err as { code?: unknown }).code === 'ERR_BUFFER_TOO_LARGE') {
      throw new HexrepoError('TAR_UNCOMPRESSED_TOO_BIG', `contents.tar.gz unpacks to more than the limit of ${limit} bytes; make the package smaller or raise maxUncompressedSize`, { limit });
    }
    throw new HexrepoError('CONTENTS_CORRUPT', `contents.tar.gz cannot be decompressed (${(err as Error).message}); rebuild the package`, {}, { cause: err });
  }
}

/** Throws TAR_TOO_BIG when a tarball of `size` bytes exceeds the limit: parseTarball's first check, for a size known before reading. */
export function checkTarballSize(size: number, limits?: Partial<TarballLimits>): void {
  const max = resolveLimits(limits).maxTarballSize;
  if (size > max) {
    throw new HexrepoError('TAR_TOO_BIG', `the tarball is ${size} bytes, more than the limit of ${max} bytes; make the package smaller or raise maxTarballSize (clients older than Hex 2.1 / rebar3 3.24 refuse packages over 8 MiB)`, {
      size,
      limit: max,
    });
  }
}

/**
 * Parse and fully validate a package tarball, in this order: total size (TAR_TOO_BIG), outer tar
 * (TAR_CORRUPT), the four members (TAR_MISSING/EXTRA/DUPLICATE_MEMBER), VERSION "3"
 * (TAR_BAD_VERSION), CHECKSUM format (TAR_BAD_CHECKSUM_FORMAT), metadata size (TAR_MEMBER_TOO_BIG),
 * inner checksum (TAR_CHECKSUM_MISMATCH), metadata (TERM_* / METADATA_*), contents
 * (CONTENTS_CORRUPT, TAR_UNCOMPRESSED_TOO_BIG, CONTENTS_UNSAFE_*).
 */
export function parseTarball(bytes: Uint8Array, opts: ParseTarballOptions = {}): ParsedTarball {
  const limits = resolveLimits(opts.limits);
  checkTarballSize(bytes.byteLength, limits);
  const members = pickMembers(readTar(bytes));
  const version = members.VERSION;
  if (version.byteLength !== 1 || version[0] !== 0x33) {
    const text = bufferView(version).toString('latin1');
    throw new HexrepoError('TAR_BAD_VERSION', `VERSION is ${preview(text)}, but only tarball format "3" (one byte, no newline) is supported; rebuild with a current mix or rebar3`, { version: text.slice(0, 40) });
  }
  const expected = decodeChecksum(members.CHECKSUM);
  const metadataConfig = members['metadata.config'];
  if (metadataConfig.byteLength > limits.maxMetadataSize) {
    throw new HexrepoError('TAR_MEMBER_TOO_BIG', `metadata.config is ${metadataConfig.byteLength} bytes, more than the limit of ${limits.maxMetadataSize} bytes; shorten the metadata or raise maxMetadataSize`, {
      member: 'metadata.config',
      size: metadataConfig.byteLength,
      limit: limits.maxMetadataSize,
    });
  }
  const contentsGz = members['contents.tar.gz'];
  const innerChecksum = sha256(version, metadataConfig, contentsGz);
  if (!bytesEqual(innerChecksum, expected)) {
    throw new HexrepoError(
      'TAR_CHECKSUM_MISMATCH',
      `the inner checksum does not match: CHECKSUM says ${toHex(expected)} but VERSION, metadata.config and contents.tar.gz hash to ${toHex(innerChecksum)}; the tarball was damaged or edited — rebuild it`,
      { expected: toHex(expected), actual: toHex(innerChecksum) },
    );
  }
  let terms: Term[];
  try {
    terms = parseConsult(metadataConfig, limits);
  } catch (err) {
    throw isHexrepoError(err) ? err.withContext('metadata.config') : err;
  }
  const metadata = metadataFromTerms(terms);
  let entries: TarEntry[];
  const contents = gunzipContents(contentsGz, limits.maxUncompressedSize);
  try {
    entries = readTar(contents);
  } catch (err) {
    if (!isHexrepoError(err, 'TAR_CORRUPT')) throw err;
    throw new HexrepoError('CONTENTS_CORRUPT', `contents.tar.gz holds no valid tar archive: ${err.message}`, err.details, { cause: err });
  }
  const files = checkContents(entries);
  // hex_core guesses build tools from the files actually in the package.
  if (!hasField(terms, 'build_tools')) metadata.buildTools = guessBuildTools(files.map((f) => f.path));
  const outerChecksum = sha256(bytes);
  return {
    metadata,
    terms,
    metadataConfig,
    innerChecksum,
    outerChecksum,
    files,
    facts: { name: metadata.name, version: metadata.version, innerChecksum, outerChecksum, dependencies: metadata.requirements },
  };
}
