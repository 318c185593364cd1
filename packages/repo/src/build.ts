import type { KeyObject } from 'node:crypto';
import { HexrepoError, type TarballLimits } from '@hexrepo/core';
import { fingerprint, publicKeyPem } from '@hexrepo/registry';
import type { BlobStore } from '@hexrepo/storage';
import { type BuildCache, type CachedOutput, type CachedTarball, emptyCache } from './cache.js';
import { packageNameOf, PACKAGES_PREFIX, PUBLIC_KEY_KEY, tarballFileOf, TARBALLS_PREFIX } from './layout.js';
import { BuildPool, defaultThreads } from './pool.js';
import { type Problem, readTarballs } from './read-tarballs.js';
import { type OutputListing, type PackageMemo, RegistryIndex, type ReleaseRecord, type ReleaseStateLookup } from './registry-index.js';
import { registryStamp, releaseOfFile, type TarballListing, tarballsStamp } from './stamp.js';

/**
 * Below this many tarballs to read, a build runs on one thread: starting the workers (each loads
 * the tarball and registry modules: 0.1–0.5 s on a loaded 2-core machine) costs more than the
 * ~0.1 ms per tarball (validation, its share of a signature) that a second core saves. Measured on
 * 2 cores shared with other work: 2 threads lost at 100–800 tarballs (start-up), were about even at
 * 5,000; a quiet machine breaks even sooner, so the line sits in between.
 */
export const POOL_MIN_TARBALLS = 2000;

export interface BuildOptions {
  /** The public folder (or bucket) holding `tarballs/` and receiving the registry files. */
  store: BlobStore;
  /** Repository name signed into every file; clients must use the same name. */
  repository: string;
  privateKey: KeyObject;
  /** The previous build's cache; an empty one means a full build. */
  cache?: BuildCache;
  /** Tarball size limits. @default DEFAULT_LIMITS of @hexrepo/core */
  limits?: Partial<TarballLimits>;
  /** Leave invalid tarballs out with a warning instead of refusing to build. @default false */
  skipInvalid?: boolean;
  /** Tarballs read at once. @default 32 */
  concurrency?: number;
  /**
   * Threads that validate tarballs and sign registry files; 1 does it all on this thread.
   * @default every core (os.availableParallelism()) when at least POOL_MIN_TARBALLS tarballs are to be read, else 1
   */
  threads?: number;
  /** Retirement and publish times from the repository's state. */
  releaseState?: ReleaseStateLookup;
  onProgress?: (event: { phase: 'read' | 'sign'; done: number; total: number }) => void;
  /** The store's listing, when the caller already took it (scanStore); else the build takes it. */
  scan?: StoreScan;
}

/** What a build lists in the store: the tarballs, and the registry files it may have written. */
export interface StoreScan {
  tarballs: TarballListing;
  outputs: OutputListing;
}

/** List `tarballs/*.tar` and the outputs (`packages/*`, `names`, `versions`) with their sizes and mtimes. */
export async function scanStore(store: BlobStore, onTarball?: (file: string, size: number, mtimeMs: number) => void): Promise<StoreScan> {
  const tarballs: TarballListing = new Map();
  for await (const o of store.list(TARBALLS_PREFIX)) {
    const file = tarballFileOf(o.key);
    if (!file) continue;
    tarballs.set(file, { size: o.size, mtimeMs: o.mtime.getTime() });
    onTarball?.(file, o.size, o.mtime.getTime());
  }
  const outputs: OutputListing = new Map();
  for await (const o of store.list(PACKAGES_PREFIX)) outputs.set(o.key, { size: o.size, mtimeMs: o.mtime.getTime() });
  for (const key of ['names', 'versions']) {
    const h = await store.head(key);
    if (h) outputs.set(key, { size: h.size, mtimeMs: h.mtime.getTime() });
  }
  return { tarballs, outputs };
}

export interface BuildSummary {
  repository: string;
  packages: number;
  releases: number;
  /** Tarballs read and validated in this run (new or changed). */
  read: number;
  /** Tarballs whose facts came from the cache. */
  reused: number;
  /** Invalid tarballs left out (only with skipInvalid). */
  skipped: Problem[];
  written: string[];
  removed: string[];
  unchanged: number;
  publicKey: 'created' | 'updated' | 'unchanged';
  /**
   * True when the cache showed the registry already current (same tarballs and state as the last
   * build, every output as it left them): nothing was encoded or signed.
   */
  upToDate: boolean;
  durationMs: number;
}

/**
 * Build the signed registry in `store` from `tarballs/*.tar`: the contract of
 * `mix hex.registry build`, but incremental (only new or changed tarballs are read, only changed
 * packages re-signed, unchanged files not rewritten), validated before anything is written, and
 * with every file replaced atomically. Returns a summary and the updated cache (in `cache`).
 */
export async function buildRegistry(opts: BuildOptions): Promise<{ summary: BuildSummary; cache: BuildCache; index: RegistryIndex }> {
  const early: EarlyPool = { pool: null };
  try {
    return await scanAndBuild(opts, early);
  } finally {
    await early.pool?.close();
  }
}

/** The pool a build starts during its scan, once it knows it will read enough tarballs; closed however the build ends. */
interface EarlyPool {
  pool: BuildPool | null;
}

async function scanAndBuild(opts: BuildOptions, early: EarlyPool): Promise<{ summary: BuildSummary; cache: BuildCache; index: RegistryIndex }> {
  const started = performance.now();
  if (opts.threads !== undefined && (!Number.isInteger(opts.threads) || opts.threads < 1)) {
    throw new HexrepoError('CONFIG_INVALID', `threads must be a whole number of at least 1, not ${opts.threads}`, { setting: 'threads', hint: 'pass 1 to build on this thread only' });
  }
  const keyFp = fingerprint(opts.privateKey);
  const cache = opts.cache && opts.cache.repository === opts.repository && opts.cache.keyFingerprint === keyFp ? opts.cache : emptyCache(opts.repository, keyFp);

  // Scan: what is in tarballs/ and what outputs exist.
  // Threads start as soon as the scan has found that many tarballs to read: they load their modules
  // (0.1–0.3 s each) while this thread lists the rest.
  const poolSize = opts.threads ?? defaultThreads();
  const startPoolAt = opts.threads !== undefined ? 1 : POOL_MIN_TARBALLS;
  let toReadSeen = 0;
  const startPoolEarly = (file: string, size: number, mtimeMs: number): void => {
    const known = cache.tarballs.get(file);
    const stale = !known || known.size !== size || known.mtimeMs !== mtimeMs;
    if (stale && poolSize > 1 && !early.pool && ++toReadSeen >= startPoolAt) {
      early.pool = new BuildPool(poolSize);
      early.pool.start();
    }
  };
  const { tarballs: current, outputs: listing } = opts.scan ?? (await scanStore(opts.store, startPoolEarly));

  const toRead: string[] = [];
  for (const [file, st] of current) {
    const known = cache.tarballs.get(file);
    if (!known || known.size !== st.size || known.mtimeMs !== st.mtimeMs) toRead.push(file);
  }
  toRead.sort();

  // Nothing changed since the last build (same tarballs, same repository-side state, every output
  // as that build left it): the registry is current, and nothing is encoded, hashed or signed.
  if (toRead.length === 0 && cache.stamp !== undefined && current.size === cache.tarballs.size && outputsIntact(cache.outputs, listing)) {
    const records = [...current.keys()].map((file): ReleaseRecord => {
      const t = cache.tarballs.get(file) as CachedTarball;
      return { file, size: t.size, mtimeMs: t.mtimeMs, facts: t.facts };
    });
    if (tarballsStamp(opts.repository, current, opts.releaseState) === cache.stamp) return currentBuild(opts, started, cache, records, listing);
  }

  const threads = opts.threads ?? (toRead.length >= POOL_MIN_TARBALLS ? defaultThreads() : 1);
  const pool = threads > 1 ? (early.pool ?? new BuildPool(threads)) : null;
  try {
    return await buildWith(opts, started, cache, current, listing, toRead, pool);
  } finally {
    await pool?.close();
  }
}

async function buildWith(
  opts: BuildOptions,
  started: number,
  cache: BuildCache,
  current: Map<string, { size: number; mtimeMs: number }>,
  listing: OutputListing,
  toRead: string[],
  pool: BuildPool | null,
): Promise<{ summary: BuildSummary; cache: BuildCache; index: RegistryIndex }> {
  // Read and validate everything new before writing anything.
  const { facts: fresh, problems } = await readTarballs(opts.store, toRead, {
    ...(opts.limits ? { limits: opts.limits } : {}),
    ...(opts.concurrency ? { concurrency: opts.concurrency } : {}),
    ...(opts.onProgress ? { onProgress: (done: number, total: number) => opts.onProgress?.({ phase: 'read', done, total }) } : {}),
    ...(pool ? { pool } : {}),
    sizes: current,
  });
  const reading = new Set(toRead);
  const records = new Map<string, ReleaseRecord>();
  for (const [file] of current) {
    const f = fresh.get(file) ?? (reading.has(file) ? undefined : cache.tarballs.get(file));
    if (f) records.set(file, { file, size: f.size, mtimeMs: f.mtimeMs, facts: f.facts });
  }
  const seen = new Map<string, string>();
  // Sorted so the same file is reported whichever order the store lists them in; sorting 20,000
  // records by locale costs more than the rest of an add-one build's bookkeeping, and a file is
  // named after its release, so a duplicate is rare: sort only when there is one.
  const ids = new Set<string>();
  for (const r of records.values()) ids.add(`${r.facts.name} ${r.facts.version}`);
  const ordered = ids.size === records.size ? [] : [...records.values()].sort((a, b) => a.file.localeCompare(b.file));
  for (const r of ordered) {
    const id = `${r.facts.name} ${r.facts.version}`;
    const other = seen.get(id);
    if (other) {
      problems.push({ file: r.file, code: 'DUPLICATE_RELEASE', message: `${id} is also in ${other}` });
      records.delete(r.file);
    } else seen.set(id, r.file);
  }
  if (problems.length > 0 && !opts.skipInvalid) {
    const list = problems.map((p) => `  tarballs/${p.file}: [${p.code}] ${p.message}`).join('\n');
    throw new HexrepoError('BUILD_INVALID_INPUT', `${problems.length} invalid tarball${problems.length === 1 ? '' : 's'}; the registry was left as it was:\n${list}`, {
      problems,
      hint: 'fix or remove these files, or pass --skip-invalid to build without them',
    });
  }

  // Apply: the index from every valid tarball, then write what is stale.
  const index = new RegistryIndex(opts.repository, opts.privateKey, opts.releaseState);
  for (const r of records.values()) index.put(r);
  // Entries of unchanged packages as the last build encoded them (each checked against its releases).
  for (const [name, memo] of cache.memos ?? []) index.seedMemo(name, memo);
  for (const key of listing.keys()) {
    const name = packageNameOf(key);
    if (name) index.markRemoved(name);
  }
  for (const key of cache.outputs.keys()) {
    const name = packageNameOf(key);
    if (name) index.markRemoved(name);
  }
  const publicKey = await writePublicKey(opts.store, opts.privateKey);
  const onSign = opts.onProgress ? (done: number, total: number) => opts.onProgress?.({ phase: 'sign', done, total }) : undefined;
  const flushed = await index.flush(opts.store, cache.outputs, listing, onSign, pool ? { signer: pool.signer(opts.privateKey) } : {});

  const memos = new Map<string, PackageMemo>();
  for (const name of index.packageNames()) {
    const memo = index.memoOf(name);
    if (memo) memos.set(name, memo);
  }
  cache.memos = memos;
  // Entries that did not change are kept as they are (a save compares them with what it wrote).
  for (const file of [...cache.tarballs.keys()]) if (!records.has(file)) cache.tarballs.delete(file);
  for (const r of records.values()) {
    const known = cache.tarballs.get(r.file);
    if (known?.facts !== r.facts || known.size !== r.size || known.mtimeMs !== r.mtimeMs) cache.tarballs.set(r.file, { size: r.size, mtimeMs: r.mtimeMs, facts: r.facts });
  }
  // Only a build that took every file in is a stamp to trust: one that skipped invalid tarballs
  // reads them again next time anyway.
  const stamp =
    problems.length === 0
      ? tarballsStamp(
          opts.repository,
          [...records.values()].map((r) => [r.file, r] as const),
          opts.releaseState,
        )
      : null;
  if (stamp !== null) cache.stamp = stamp;
  else delete cache.stamp;
  setRegistryStamp(cache, index, records.values(), cache.outputs);
  return {
    cache,
    index,
    summary: summarize(opts, started, index, { read: toRead.length, reused: current.size - toRead.length, skipped: problems, ...flushed, publicKey, upToDate: false }),
  };
}

/** The summary of a build that found nothing to do, with the index loaded from the cache and marked clean. */
async function currentBuild(opts: BuildOptions, started: number, cache: BuildCache, records: ReleaseRecord[], listing: OutputListing): Promise<{ summary: BuildSummary; cache: BuildCache; index: RegistryIndex }> {
  const index = new RegistryIndex(opts.repository, opts.privateKey, opts.releaseState);
  for (const r of records) index.put(r);
  index.markClean();
  setRegistryStamp(cache, index, records, listing);
  const publicKey = await writePublicKey(opts.store, opts.privateKey);
  return {
    cache,
    index,
    summary: summarize(opts, started, index, { read: 0, reused: records.length, skipped: [], written: [], removed: [], unchanged: cache.outputs.size, publicKey, upToDate: true }),
  };
}

/**
 * Record in `cache` the registry stamp of a build whose inputs' digest is `cache.stamp` (absent
 * when it skipped invalid tarballs) and which left `outputs` as listed. A release whose file name
 * does not spell its name and version gets no stamp: the up-to-date check looks states up by the
 * file name.
 */
function setRegistryStamp(cache: BuildCache, index: RegistryIndex, records: Iterable<ReleaseRecord>, outputs: ReadonlyMap<string, { size: number; mtimeMs: number }>): void {
  delete cache.registry;
  if (cache.stamp === undefined) return;
  for (const r of records) {
    const release = releaseOfFile(r.file);
    if (release?.name !== r.facts.name || release.version !== r.facts.version) return;
  }
  cache.registry = { stamp: registryStamp(cache.stamp, cache.keyFingerprint, outputs), ...index.size };
}

/** A build's summary: what it did, with the repository's size from the index and the time since `started`. */
function summarize(opts: BuildOptions, started: number, index: RegistryIndex, did: Omit<BuildSummary, 'repository' | 'packages' | 'releases' | 'durationMs'>): BuildSummary {
  return { repository: opts.repository, ...index.size, ...did, durationMs: Math.round(performance.now() - started) };
}

/** True when the store lists exactly the outputs the cache recorded, each with the recorded size and mtime. */
function outputsIntact(outputs: ReadonlyMap<string, CachedOutput>, listing: OutputListing): boolean {
  if (outputs.size !== listing.size) return false;
  for (const [key, out] of outputs) {
    const now = listing.get(key);
    if (!now || now.size !== out.size || now.mtimeMs !== out.mtimeMs) return false;
  }
  return true;
}

/** Write `public_key` (PKCS#1 PEM, as mix writes it) unless it already holds exactly that. */
export async function writePublicKey(store: BlobStore, privateKey: KeyObject): Promise<'created' | 'updated' | 'unchanged'> {
  const pem = new TextEncoder().encode(publicKeyPem(privateKey));
  const existing = await store.get(PUBLIC_KEY_KEY);
  if (existing && Buffer.from(existing.body).equals(pem)) return 'unchanged';
  await store.put(PUBLIC_KEY_KEY, pem, { contentType: 'text/plain' });
  return existing ? 'updated' : 'created';
}
