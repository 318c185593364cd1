/**
 * The build cache: what `hexrepo build` knows about each tarball (its facts, keyed by file name,
 * size and mtime) and about each file it wrote, so a rebuild reads and signs only what changed.
 *
 * On disk it is an append-only log (format 3): an 8-byte header (`HXRC`, format), then records,
 * each `u32 length ‖ u32 crc32 ‖ payload`. The first record names the repository and key; later
 * ones set or forget one tarball or output, or record the build's stamp; a later record for a key
 * replaces an earlier one. Why a log: loading is one read and a walk over the records (a
 * tarball's facts stay raw bytes until something asks for them), and saving appends only what
 * changed instead of rewriting every record. Crash safety: a record torn by a kill fails its
 * length or checksum and ends the log there (the tarballs it named are simply read again), and the
 * next save rewrites the file whole (temp + rename) so nothing is appended after garbage. The file
 * is also rewritten whole when it has grown past COMPACT_FACTOR times its live records.
 */
import { mkdir, open, readFile, rename, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { randomBytes } from 'node:crypto';
import { crc32 } from 'node:zlib';
import { type Dependency, fromHex, HexrepoError, type ReleaseFacts } from '@hexrepo/core';
import { encodeFacts, LazyFacts, Reader, Writer } from './cache-codec.js';
import type { PackageMemo } from './registry-index.js';
import type { RegistryStamp } from './stamp.js';

/** What the build remembers about one tarball, keyed by its file name. */
export interface CachedTarball {
  size: number;
  mtimeMs: number;
  facts: ReleaseFacts;
}

/** What the build remembers about one file it wrote. */
export interface CachedOutput {
  size: number;
  mtimeMs: number;
  /** Content etag of the bytes written. */
  etag: string;
  /** Fingerprint of the inputs the bytes were made from. */
  inputs: string;
}

/**
 * The per-repository build cache: facts per tarball and what each output was made from. Entries
 * are replaced, never changed in place (a save compares them with what it last wrote). Facts
 * loaded from the file decode on first use, from getters a spread does not copy.
 */
export interface BuildCache {
  repository: string;
  keyFingerprint: string;
  tarballs: Map<string, CachedTarball>;
  outputs: Map<string, CachedOutput>;
  /**
   * Digest of every input of the last completed build (tarball names, sizes and mtimes, and the
   * releases' repository-side state), with which `outputs` are known to agree; absent when unknown.
   */
  stamp?: string;
  /**
   * Each package's `names`/`versions` entries and inputs digest as the last build computed them,
   * so the next one re-encodes only the packages whose releases or state changed (a memo is taken
   * only when its `made` matches the package as it is now).
   */
  memos?: Map<string, PackageMemo>;
  /**
   * The registry stamp of the last build that took every tarball in, for the stamp file beside the
   * cache (stamp.ts); not part of the cache file.
   */
  registry?: RegistryStamp;
}

// 3: the binary log. 2 was one JSON document (read once and converted, see loadCache); 1 kept
// packages/NAME in metadata.config's dependency order and is discarded.
const FORMAT = 3;
const LEGACY_JSON_FORMAT = 2;
const MAGIC = 0x43525848; // "HXRC" little-endian
const HEADER_BYTES = 8;
const RECORD_HEAD = 8;
/** Rewrite the log when it is larger than this many times its live records (plus COMPACT_SLACK). */
const COMPACT_FACTOR = 2;
const COMPACT_SLACK = 64 * 1024;

const enum Kind {
  Meta = 1,
  Tarball = 2,
  TarballGone = 3,
  Output = 4,
  OutputGone = 5,
  /** The build's stamp; an empty string forgets it. */
  Stamp = 6,
  Memo = 7,
  MemoGone = 8,
}

/** What the file on disk holds, to append only differences and to know when to compact. */
interface Journal {
  path: string;
  ino: number;
  length: number;
  /** False when the log ended in a torn record: the next save rewrites it whole. */
  clean: boolean;
  /** The entries as last loaded or saved (entries are replaced in the cache, never changed in place), and their records' sizes. */
  tarballs: Map<string, CachedTarball>;
  tarballBytes: Map<string, number>;
  outputs: Map<string, CachedOutput & { bytes: number }>;
  memos: Map<string, PackageMemo>;
  memoBytes: Map<string, number>;
  stamp: string | undefined;
  liveBytes: number;
}

const journals = new WeakMap<BuildCache, Journal>();
const stats = new WeakMap<BuildCache, { decoded: number }>();

/** An empty cache for a repository and key. */
export function emptyCache(repository: string, keyFingerprint: string): BuildCache {
  return { repository, keyFingerprint, tarballs: new Map(), outputs: new Map() };
}

/** How many tarballs' facts were decoded from the loaded log so far (the rest stayed raw bytes). */
export function cacheDecodes(cache: BuildCache): number {
  return stats.get(cache)?.decoded ?? 0;
}

/**
 * Load the cache file. A missing, unreadable or foreign cache (other repository name or key, other
 * format) yields an empty cache: the build then reads everything, which is always correct. A log
 * with a torn tail yields what precedes it, with a reason. A format-2 JSON cache is read once and
 * converted: the next save replaces it with the log (the format is told by the first byte, so the
 * file keeps its name).
 */
export async function loadCache(path: string, repository: string, keyFingerprint: string): Promise<{ cache: BuildCache; reason: string | null }> {
  const empty = (reason: string): { cache: BuildCache; reason: string } => ({ cache: emptyCache(repository, keyFingerprint), reason });
  let buf: Buffer;
  let ino: number;
  try {
    buf = await readFile(path);
    ino = (await stat(path)).ino;
  } catch {
    return empty('no cache yet');
  }
  if (buf.length > 0 && buf[0] === 0x7b) return fromLegacyJson(buf, repository, keyFingerprint);
  if (buf.length < HEADER_BYTES || buf.readUInt32LE(0) !== MAGIC) return empty('not a hexrepo build cache');
  const format = buf.readUInt32LE(4);
  if (format !== FORMAT) return empty(`cache format ${format} is not ${FORMAT}`);

  const cache = emptyCache(repository, keyFingerprint);
  const counter = { decoded: 0 };
  stats.set(cache, counter);
  const journal = newJournal(path, ino);
  let pos = HEADER_BYTES;
  let torn: string | null = null;
  let first = true;
  while (pos < buf.length) {
    if (pos + RECORD_HEAD > buf.length) {
      torn = `a torn record at byte ${pos}`;
      break;
    }
    const length = buf.readUInt32LE(pos);
    const end = pos + RECORD_HEAD + length;
    if (length === 0 || end > buf.length) {
      torn = `a torn record at byte ${pos}`;
      break;
    }
    if (crc32(buf.subarray(pos + RECORD_HEAD, end)) !== buf.readUInt32LE(pos + 4)) {
      torn = `a record with a bad checksum at byte ${pos}`;
      break;
    }
    const r = new Reader(buf, pos + RECORD_HEAD, end);
    const kind = r.u8() as Kind;
    const bytes = end - pos;
    if (first) {
      if (kind !== Kind.Meta) return empty('the cache does not start with its repository record');
      if (r.str() !== repository || r.str() !== keyFingerprint) return empty('repository name or key changed');
      journal.liveBytes += bytes;
      first = false;
    } else if (kind === Kind.Tarball) {
      const file = r.str();
      const size = r.f64();
      const mtimeMs = r.f64();
      const facts = LazyFacts.of(file, buf, r.pos, end, counter);
      if (facts) {
        const entry = { size, mtimeMs, facts };
        cache.tarballs.set(file, entry);
        journal.liveBytes += bytes - (journal.tarballBytes.get(file) ?? 0);
        journal.tarballs.set(file, entry);
        journal.tarballBytes.set(file, bytes);
      }
    } else if (kind === Kind.TarballGone) {
      const file = r.str();
      cache.tarballs.delete(file);
      journal.liveBytes -= journal.tarballBytes.get(file) ?? 0;
      journal.tarballs.delete(file);
      journal.tarballBytes.delete(file);
    } else if (kind === Kind.Output) {
      const key = r.str();
      const out = { size: r.f64(), mtimeMs: r.f64(), etag: r.str(), inputs: r.str() };
      cache.outputs.set(key, out);
      journal.liveBytes += bytes - (journal.outputs.get(key)?.bytes ?? 0);
      journal.outputs.set(key, { ...out, bytes });
    } else if (kind === Kind.OutputGone) {
      const key = r.str();
      cache.outputs.delete(key);
      journal.liveBytes -= journal.outputs.get(key)?.bytes ?? 0;
      journal.outputs.delete(key);
    } else if (kind === Kind.Memo) {
      const name = r.str();
      const memo: PackageMemo = { made: r.str(), inputs: r.str(), names: r.take(r.u32()), versions: r.take(r.u32()) };
      (cache.memos ??= new Map()).set(name, memo);
      journal.liveBytes += bytes - (journal.memoBytes.get(name) ?? 0);
      journal.memos.set(name, memo);
      journal.memoBytes.set(name, bytes);
    } else if (kind === Kind.MemoGone) {
      const name = r.str();
      cache.memos?.delete(name);
      journal.liveBytes -= journal.memoBytes.get(name) ?? 0;
      journal.memos.delete(name);
      journal.memoBytes.delete(name);
    } else if (kind === Kind.Stamp) {
      const stamp = r.str();
      if (stamp === '') delete cache.stamp;
      else cache.stamp = stamp;
      journal.stamp = stamp === '' ? undefined : stamp;
    }
    pos = end;
  }
  if (first) return empty('the cache is empty or torn before its repository record');
  journal.length = pos;
  journal.clean = torn === null;
  journals.set(cache, journal);
  // A stamp is only as good as the records it vouches for: after a torn tail, check every output.
  if (torn !== null) delete cache.stamp;
  return { cache, reason: torn === null ? null : `the cache ended in ${torn} (a killed save); the tarballs after it are read again` };
}

/**
 * Save the cache: append what changed since it was loaded or last saved to `path`, or write the
 * whole log (temp + rename) when there is nothing to append to, the log is torn or has grown past
 * COMPACT_FACTOR times its live records.
 */
export async function saveCache(path: string, cache: BuildCache): Promise<void> {
  try {
    const journal = journals.get(cache);
    if (journal && journal.path === path && journal.clean) {
      const appended = diffRecords(journal, cache);
      if (appended.records.length === 0) return;
      const onDisk = await stat(path).catch(() => null);
      const grown = journal.length + appended.bytes;
      // Append only to the file as this process last left it: one another process appended to or
      // replaced since holds records this one never saw, and is replaced whole (last saver wins,
      // as with one document), so a log never mixes two processes' views.
      if (onDisk && onDisk.ino === journal.ino && onDisk.size === journal.length && grown <= COMPACT_FACTOR * appended.liveBytes + COMPACT_SLACK) {
        const fh = await open(path, 'a');
        let after: number;
        try {
          await fh.write(Buffer.concat(appended.records));
          after = (await fh.stat()).size;
        } finally {
          await fh.close();
        }
        if (after === grown) {
          appended.commit();
          journal.length = grown;
          return;
        }
        // Another process appended at the same moment: this view replaces both.
      }
    }
    await rewrite(path, cache);
  } catch (err) {
    throw new HexrepoError('STORAGE_IO', `could not write the build cache ${path}: ${(err as Error).message}`, { path, hint: 'check that the folder is writable; the cache is only an accelerator, deleting it is safe' }, { cause: err });
  }
}

function newJournal(path: string, ino: number): Journal {
  return { path, ino, length: 0, clean: true, tarballs: new Map(), tarballBytes: new Map(), outputs: new Map(), memos: new Map(), memoBytes: new Map(), stamp: undefined, liveBytes: 0 };
}

/** The records that turn what the journal says is on disk into `cache`, and a commit that records them as written. */
function diffRecords(journal: Journal, cache: BuildCache): { records: Buffer[]; bytes: number; liveBytes: number; commit: () => void } {
  const records: Buffer[] = [];
  const updates: (() => void)[] = [];
  let bytes = 0;
  let live = journal.liveBytes;
  const add = (rec: Buffer): void => {
    records.push(rec);
    bytes += rec.length;
  };
  for (const [file, t] of cache.tarballs) {
    const disk = journal.tarballs.get(file);
    if (disk && disk.facts === t.facts && disk.size === t.size && disk.mtimeMs === t.mtimeMs) continue;
    const rec = tarballRecord(file, t);
    add(rec);
    live += rec.length - (journal.tarballBytes.get(file) ?? 0);
    updates.push(() => {
      journal.tarballs.set(file, t);
      journal.tarballBytes.set(file, rec.length);
    });
  }
  for (const file of journal.tarballs.keys()) {
    if (cache.tarballs.has(file)) continue;
    add(record(Kind.TarballGone, (w) => w.str(file)));
    live -= journal.tarballBytes.get(file) ?? 0;
    updates.push(() => {
      journal.tarballs.delete(file);
      journal.tarballBytes.delete(file);
    });
  }
  for (const [key, o] of cache.outputs) {
    const disk = journal.outputs.get(key);
    if (disk && disk.size === o.size && disk.mtimeMs === o.mtimeMs && disk.etag === o.etag && disk.inputs === o.inputs) continue;
    const rec = outputRecord(key, o);
    add(rec);
    live += rec.length - (disk?.bytes ?? 0);
    updates.push(() => journal.outputs.set(key, { ...o, bytes: rec.length }));
  }
  for (const [key, disk] of journal.outputs) {
    if (cache.outputs.has(key)) continue;
    add(record(Kind.OutputGone, (w) => w.str(key)));
    live -= disk.bytes;
    updates.push(() => journal.outputs.delete(key));
  }
  for (const [name, memo] of cache.memos ?? []) {
    if (journal.memos.get(name) === memo) continue;
    const rec = memoRecord(name, memo);
    add(rec);
    live += rec.length - (journal.memoBytes.get(name) ?? 0);
    updates.push(() => {
      journal.memos.set(name, memo);
      journal.memoBytes.set(name, rec.length);
    });
  }
  for (const name of journal.memos.keys()) {
    if (cache.memos?.has(name)) continue;
    add(record(Kind.MemoGone, (w) => w.str(name)));
    live -= journal.memoBytes.get(name) ?? 0;
    updates.push(() => {
      journal.memos.delete(name);
      journal.memoBytes.delete(name);
    });
  }
  const stamp = cache.stamp;
  if (stamp !== journal.stamp) {
    add(stampRecord(stamp ?? ''));
    updates.push(() => (journal.stamp = stamp));
  }
  return {
    records,
    bytes,
    liveBytes: live,
    commit: () => {
      for (const u of updates) u();
      journal.liveBytes = live;
    },
  };
}

async function rewrite(path: string, cache: BuildCache): Promise<void> {
  const journal = newJournal(path, 0);
  const header = Buffer.alloc(HEADER_BYTES);
  header.writeUInt32LE(MAGIC, 0);
  header.writeUInt32LE(FORMAT, 4);
  const parts: Buffer[] = [header, record(Kind.Meta, (w) => w.str(cache.repository).str(cache.keyFingerprint))];
  journal.liveBytes = parts[1]!.length;
  for (const [file, t] of cache.tarballs) {
    const rec = tarballRecord(file, t);
    parts.push(rec);
    journal.tarballs.set(file, t);
    journal.tarballBytes.set(file, rec.length);
    journal.liveBytes += rec.length;
  }
  for (const [key, o] of cache.outputs) {
    const rec = outputRecord(key, o);
    parts.push(rec);
    journal.outputs.set(key, { ...o, bytes: rec.length });
    journal.liveBytes += rec.length;
  }
  for (const [name, memo] of cache.memos ?? []) {
    const rec = memoRecord(name, memo);
    parts.push(rec);
    journal.memos.set(name, memo);
    journal.memoBytes.set(name, rec.length);
    journal.liveBytes += rec.length;
  }
  if (cache.stamp !== undefined) {
    parts.push(stampRecord(cache.stamp));
    journal.stamp = cache.stamp;
  }
  const body = Buffer.concat(parts);
  await mkdir(dirname(path), { recursive: true });
  const temp = `${path}.${randomBytes(4).toString('hex')}.tmp`;
  const fh = await open(temp, 'w');
  try {
    await fh.write(body);
  } finally {
    await fh.close();
  }
  await rename(temp, path);
  journal.length = body.length;
  journal.ino = (await stat(path)).ino;
  journals.set(cache, journal);
}

function tarballRecord(file: string, t: CachedTarball): Buffer {
  const raw = t.facts instanceof LazyFacts ? t.facts.raw() : null;
  return record(Kind.Tarball, (w) => {
    w.str(file).f64(t.size).f64(t.mtimeMs);
    if (raw) w.bytes(raw);
    else encodeFacts(w, t.facts);
  });
}

function outputRecord(key: string, o: CachedOutput): Buffer {
  return record(Kind.Output, (w) => w.str(key).f64(o.size).f64(o.mtimeMs).str(o.etag).str(o.inputs));
}

function memoRecord(name: string, m: PackageMemo): Buffer {
  return record(Kind.Memo, (w) => w.str(name).str(m.made).str(m.inputs).u32(m.names.length).bytes(m.names).u32(m.versions.length).bytes(m.versions));
}

function stampRecord(stamp: string): Buffer {
  return record(Kind.Stamp, (w) => w.str(stamp));
}

function record(kind: Kind, fill: (w: Writer) => void): Buffer {
  const w = new Writer();
  w.u32(0).u32(0).u8(kind);
  fill(w);
  const buf = w.done();
  const payload = buf.subarray(RECORD_HEAD);
  buf.writeUInt32LE(payload.length, 0);
  buf.writeUInt32LE(crc32(payload), 4);
  return buf;
}

interface LegacyFile {
  format: number;
  repository: string;
  keyFingerprint: string;
  tarballs: Record<string, { size: number; mtimeMs: number; name: string; version: string; inner: string; outer: string; deps: Dependency[] }>;
  outputs: Record<string, CachedOutput>;
  stamp?: string;
}

/** Format 2 (one JSON document), converted in full: it is read once, then saved as the log. */
function fromLegacyJson(buf: Buffer, repository: string, keyFingerprint: string): { cache: BuildCache; reason: string | null } {
  const empty = (reason: string): { cache: BuildCache; reason: string } => ({ cache: emptyCache(repository, keyFingerprint), reason });
  try {
    const file = JSON.parse(buf.toString('utf8')) as LegacyFile;
    if (file.format !== LEGACY_JSON_FORMAT) return empty(`cache format ${file.format} is not ${FORMAT}`);
    if (file.repository !== repository || file.keyFingerprint !== keyFingerprint) return empty('repository name or key changed');
    const tarballs = new Map<string, CachedTarball>();
    for (const [name, t] of Object.entries(file.tarballs)) {
      const inner = fromHex(t.inner);
      const outer = fromHex(t.outer);
      if (!inner || !outer) throw new Error(`bad checksum for ${name}`);
      tarballs.set(name, { size: t.size, mtimeMs: t.mtimeMs, facts: { name: t.name, version: t.version, innerChecksum: inner, outerChecksum: outer, dependencies: t.deps } });
    }
    const cache: BuildCache = { repository, keyFingerprint, tarballs, outputs: new Map(Object.entries(file.outputs)) };
    if (typeof file.stamp === 'string') cache.stamp = file.stamp;
    return { cache, reason: null };
  } catch (err) {
    return empty(`cache unreadable (${(err as Error).message})`);
  }
}
