/**
 * Eager sync: fill a mirror store ahead of time from the upstream, so clients keep working with the
 * upstream unplugged. Every object is verified before it is stored (verify.ts), stored verbatim under
 * its upstream path, then its meta is written (layout.ts). A sync killed at any point and run again
 * resumes: a stored object whose bytes verify is not downloaded again (a registry file is at most
 * revalidated with If-None-Match once older than `maxAgeMs`; a tarball is immutable).
 */
import { putMany, type BlobStore } from '@hexrepo/storage';
import { HexrepoError, errorToJson, isHexrepoError, type ErrorCode } from '@hexrepo/core';
import { dependencyClosure, lockfileClosure, type Closure } from './closure.js';
import type { Lockfile } from './lockfile.js';
import { metaKey, packageKey, parseMeta, tarballKey, writeMeta, type MirrorMeta, type Upstream } from './layout.js';
import type { UpstreamAnswer } from './upstream.js';
import { sha256Hex, verifyNames, verifyPackage, verifyTarball, verifyVersions, type VerifiedRelease } from './verify.js';

/** GET an upstream path, conditional on an ETag when given (`UpstreamClient.get`). */
export type UpstreamGet = (path: string, opts?: { etag?: string | null }) => Promise<UpstreamAnswer>;

/** True for a failure worth retrying: a timeout, no connection, a 5xx or a 429. */
export function isRetryable(err: unknown): boolean {
  if (isHexrepoError(err, 'UPSTREAM_TIMEOUT')) return true;
  if (!isHexrepoError(err, 'UPSTREAM_UNAVAILABLE')) return false;
  const status = err.details.status;
  return typeof status !== 'number' || status >= 500 || status === 429;
}

export interface RetryOptions {
  /** Attempts after the first. @default 5 */
  retries?: number;
  /** First backoff in ms, doubled per attempt, capped at `maxDelayMs`, half of it random. @default 200 */
  baseDelayMs?: number;
  /** @default 10000 */
  maxDelayMs?: number;
  /** Called before each retry (for logs and counters). */
  onRetry?: (path: string, attempt: number, err: unknown) => void;
}

/** Wrap an UpstreamGet with retries: exponential backoff with jitter, only for retryable failures. */
export function withRetries(get: UpstreamGet, opts: RetryOptions = {}): UpstreamGet {
  const retries = opts.retries ?? 5;
  const base = opts.baseDelayMs ?? 200;
  const cap = opts.maxDelayMs ?? 10_000;
  return async (path, o) => {
    for (let attempt = 0; ; attempt++) {
      try {
        return await get(path, o);
      } catch (err) {
        if (attempt >= retries || !isRetryable(err)) throw err;
        opts.onRetry?.(path, attempt + 1, err);
        // Half fixed, half random: spreads the retries of many workers hitting one failing upstream.
        const delay = Math.min(cap, base * 2 ** attempt);
        await new Promise((r) => setTimeout(r, delay / 2 + Math.random() * (delay / 2)));
      }
    }
  };
}

/** What to sync. */
export type SyncTarget =
  /** `names`, `versions` and every `packages/NAME`; every tarball too with `tarballs`. */
  | { kind: 'all'; tarballs?: boolean }
  /** Every version of each package plus the dependency closure (see closure.ts), tarballs included. */
  | { kind: 'packages'; names: string[]; includeOptional?: boolean }
  /** Exactly the lockfile's packages and versions, with `packages/NAME` of each. */
  | { kind: 'lock'; lock: Lockfile };

export interface SyncProgress {
  phase: 'registry' | 'tarballs';
  done: number;
  total: number;
}

export interface SyncOptions {
  store: BlobStore;
  upstream: Upstream;
  /** How to GET from the upstream, with retries: `withRetries((p, o) => client.get(p, o))`. */
  get: UpstreamGet;
  /** Requests in flight at once. @default 8 */
  concurrency?: number;
  /**
   * A stored, verified registry file confirmed by the upstream less than this long ago is not asked
   * for again; older ones are revalidated (If-None-Match). @default 600000 (10 minutes)
   */
  maxAgeMs?: number;
  onProgress?: (p: SyncProgress) => void;
  /** @default Date.now */
  now?: () => number;
}

/** One object that could not be synced. */
export interface SyncFailure {
  path: string;
  code: ErrorCode;
  message: string;
}

/** The `--json` summary of a sync. */
export interface SyncSummary {
  /** Objects downloaded, verified and stored. */
  fetched: number;
  /** Objects already stored and verified (including registry files the upstream answered 304 for). */
  skipped: number;
  /** Bytes downloaded and stored. */
  bytes: number;
  packages: number;
  tarballs: number;
  failures: SyncFailure[];
  notes: string[];
}

/** A bounded pool: at most `n` of the given tasks run at once. */
export function limiter(n: number): <T>(task: () => Promise<T>) => Promise<T> {
  let active = 0;
  const queue: (() => void)[] = [];
  return async <T>(task: () => Promise<T>): Promise<T> => {
    if (active >= n) await new Promise<void>((r) => queue.push(r));
    active++;
    try {
      return await task();
    } finally {
      active--;
      queue.shift()?.();
    }
  };
}

/** The one place a sync reads, verifies and writes objects. */
class Syncer {
  readonly summary: SyncSummary = { fetched: 0, skipped: 0, bytes: 0, packages: 0, tarballs: 0, failures: [], notes: [] };
  readonly limit: <T>(task: () => Promise<T>) => Promise<T>;
  readonly now: () => number;
  readonly maxAge: number;

  constructor(readonly opts: SyncOptions) {
    this.limit = limiter(Math.max(1, opts.concurrency ?? 8));
    this.now = opts.now ?? Date.now;
    this.maxAge = opts.maxAgeMs ?? 600_000;
  }

  fail(path: string, err: unknown): void {
    const e = errorToJson(err);
    this.summary.failures.push({ path, code: e.code, message: e.message });
  }

  async store(path: string, body: Uint8Array, etag: string | null): Promise<void> {
    const meta: MirrorMeta = { etag, fetchedAt: this.now(), sha256: sha256Hex(body) };
    // One batch, renamed in order (object, then meta): a folder store syncs both to disk in one wave.
    await putMany(this.opts.store, [
      { key: path, body, opts: { contentType: 'application/octet-stream' } },
      { key: metaKey(path), body: new TextEncoder().encode(JSON.stringify(meta)), opts: { contentType: 'application/json' } },
    ]);
    this.summary.fetched++;
    this.summary.bytes += body.length;
  }

  /**
   * A registry file: the stored copy when it verifies and is fresh (or the upstream says 304), else
   * the upstream's, verified then stored. Returns whatever `decode` made of the bytes in use, or null
   * when the upstream has no such file.
   */
  async registryFile<T>(path: string, decode: (bytes: Uint8Array) => T): Promise<T | null> {
    const { store } = this.opts;
    const [stored, metaObj] = await Promise.all([store.get(path), store.get(metaKey(path))]);
    let meta: MirrorMeta | null = metaObj ? parseMeta(metaObj.body) : null;
    let current: T | null = null;
    if (stored) {
      try {
        current = decode(stored.body);
      } catch {
        // A stored copy that no longer verifies (another key, a damaged disk) is replaced below.
        current = null;
      }
    }
    if (stored && current !== null) {
      const sha = sha256Hex(stored.body);
      if (!meta || meta.sha256 !== sha) {
        // Stored but killed before its meta: only verified bytes are ever stored, so they were verified
        // when the object was written; its mtime is when the upstream last confirmed them.
        meta = { etag: meta?.sha256 === sha ? meta.etag : null, fetchedAt: stored.mtime.getTime(), sha256: sha };
        await writeMeta(store, path, meta);
      }
      if (this.now() - meta.fetchedAt < this.maxAge) {
        this.summary.skipped++;
        return current;
      }
    }
    const answer = await this.limit(() => this.opts.get(path, { etag: stored && current !== null ? (meta?.etag ?? null) : null }));
    if (answer.status === 'not-found') return null;
    if (answer.status === 'not-modified') {
      if (!stored || current === null || !meta) throw new HexrepoError('UPSTREAM_UNAVAILABLE', `the upstream answered 304 for ${path} to an unconditional request`, { path });
      await writeMeta(store, path, { ...meta, fetchedAt: this.now(), etag: answer.etag ?? meta.etag });
      this.summary.skipped++;
      return current;
    }
    const decoded = decode(answer.body);
    await this.store(path, answer.body, answer.etag);
    return decoded;
  }

  /** `packages/NAME`, verified; null when the upstream has no such package or it failed (recorded). */
  async packageReleases(name: string): Promise<VerifiedRelease[] | null> {
    const { upstream } = this.opts;
    const path = packageKey(name);
    try {
      const pkg = await this.registryFile(path, (b) => verifyPackage(b, upstream.publicKey, upstream.repository, name));
      this.summary.packages++;
      return pkg?.releases ?? null;
    } catch (err) {
      this.fail(path, err);
      return null;
    }
  }

  /** A tarball: skipped when stored with a meta whose SHA-256 is the expected outer checksum. */
  async tarball(name: string, version: string, checksum: string | null): Promise<void> {
    const path = tarballKey(name, version);
    const { store } = this.opts;
    try {
      if (!checksum) throw new HexrepoError('REGISTRY_CHECKSUM_MISMATCH', `${name} ${version} has no outer checksum in the verified packages/${name}, so its tarball cannot be verified; not mirrored`, { path });
      const metaObj = await store.get(metaKey(path));
      const meta = metaObj ? parseMeta(metaObj.body) : null;
      if (meta?.sha256 === checksum && (await store.head(path))) {
        this.summary.skipped++;
        return;
      }
      const stored = meta ? null : await store.get(path);
      if (stored && sha256Hex(stored.body) === checksum) {
        // Stored but killed before its meta: the bytes are the verified ones, no download needed.
        await writeMeta(store, path, { etag: null, fetchedAt: stored.mtime.getTime(), sha256: checksum });
        this.summary.skipped++;
        return;
      }
      const answer = await this.limit(() => this.opts.get(path));
      if (answer.status !== 'ok') throw new HexrepoError('NOT_FOUND', `${path} is listed in the verified packages/${name} but the upstream has no such file`, { path });
      verifyTarball(answer.body, checksum);
      await this.store(path, answer.body, answer.etag);
    } catch (err) {
      this.fail(path, err);
    } finally {
      this.summary.tarballs++;
    }
  }
}

async function runAll<T>(items: readonly T[], work: (item: T) => Promise<void>, onDone: (done: number) => void): Promise<void> {
  let done = 0;
  // The Syncer's limiter bounds the requests; this bounds the pending promises for 150,000 items.
  const pool = limiter(256);
  await Promise.all(
    items.map((item) =>
      pool(async () => {
        await work(item);
        onDone(++done);
      }),
    ),
  );
}

/** Run a sync; never throws for per-object failures (they are in `failures`), only for the registry index. */
export async function syncMirror(target: SyncTarget, opts: SyncOptions): Promise<SyncSummary> {
  const s = new Syncer(opts);
  const { upstream } = opts;
  const progress = (phase: SyncProgress['phase'], total: number) => (done: number) => opts.onProgress?.({ phase, done, total });
  let closure: Closure;
  const versionsOf = new Map<string, VerifiedRelease[]>();
  if (target.kind === 'all') {
    const names = await s.registryFile('names', (b) => verifyNames(b, upstream.publicKey, upstream.repository));
    if (!names) throw new HexrepoError('REGISTRY_MISSING', `the upstream ${upstream.url} has no names file`, { hint: 'check the upstream URL: a Hex repository serves names at its root' });
    await s.registryFile('versions', (b) => verifyVersions(b, upstream.publicKey, upstream.repository));
    const list = names.packages.map((p) => p.name);
    await runAll(
      list,
      async (name) => {
        const releases = await s.packageReleases(name);
        if (releases && target.tarballs) versionsOf.set(name, releases);
      },
      progress('registry', list.length),
    );
    closure = { packages: new Map(target.tarballs ? [...versionsOf].map(([n, rs]) => [n, new Set(rs.map((r) => r.version))]) : []), notes: [] };
  } else {
    const releasesOf = async (name: string): Promise<VerifiedRelease[] | null> => {
      const releases = await s.packageReleases(name);
      if (releases) versionsOf.set(name, releases);
      return releases;
    };
    const missing = (name: string, what: string): void => {
      // A package asked for by name (or pinned by the lockfile) that the upstream lacks is a failure, not a note.
      if (!versionsOf.has(name) && !s.summary.failures.some((f) => f.path === packageKey(name))) {
        s.fail(packageKey(name), new HexrepoError('NOT_FOUND', `${name} (${what}) is not in the upstream ${upstream.url}`, { hint: 'check the package name' }));
      }
    };
    if (target.kind === 'packages') {
      closure = await dependencyClosure(target.names, releasesOf, { repository: upstream.repository, ...(target.includeOptional ? { includeOptional: true } : {}) });
      for (const n of target.names) missing(n, 'named with --package');
    } else {
      closure = lockfileClosure(target.lock, { repository: upstream.repository });
      const names = [...closure.packages.keys()];
      await runAll(names, async (n) => void (await releasesOf(n)), progress('registry', names.length));
      for (const n of names) missing(n, `locked in ${target.lock.format === 'mix' ? 'mix.lock' : 'rebar.lock'}`);
      for (const p of target.lock.packages) {
        const r = versionsOf.get(p.name)?.find((x) => x.version === p.version);
        if (versionsOf.has(p.name) && !r) s.fail(tarballKey(p.name, p.version), new HexrepoError('NOT_FOUND', `${p.name} ${p.version} is locked but not in the verified packages/${p.name}`));
        if (r && p.outerChecksum && r.checksum && r.checksum !== p.outerChecksum) {
          s.fail(
            tarballKey(p.name, p.version),
            new HexrepoError('REGISTRY_CHECKSUM_MISMATCH', `${p.name} ${p.version}: the lockfile pins outer checksum ${p.outerChecksum}, the verified registry says ${r.checksum}`, {
              hint: 'the package was replaced upstream, or the lockfile was edited: run mix deps.get / rebar3 upgrade to refresh it',
            }),
          );
          closure.packages.get(p.name)?.delete(p.version);
        }
      }
    }
  }
  s.summary.notes.push(...closure.notes);
  const tarballs: { name: string; version: string; checksum: string | null }[] = [];
  for (const [name, versions] of closure.packages) {
    const releases = versionsOf.get(name) ?? [];
    for (const v of versions) {
      const r = releases.find((x) => x.version === v);
      if (r) tarballs.push({ name, version: v, checksum: r.checksum });
    }
  }
  await runAll(tarballs, (t) => s.tarball(t.name, t.version, t.checksum), progress('tarballs', tarballs.length));
  return s.summary;
}
