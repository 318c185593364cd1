/**
 * The pull-through cache of a mirror over a BlobStore. On a miss: fetch from the upstream, verify,
 * store verbatim, serve. Registry files (`names`, `versions`, `packages/NAME`) and
 * `installs/hex-1.x.csv` are revalidated with If-None-Match once older than `maxAgeMs`; a package
 * whose `updated_at` in a fresher `names` is later than its fetch is revalidated at once. Tarballs
 * are immutable, but refetched when their SHA-256 no longer equals the outer checksum of the
 * stored, verified `packages/NAME` (a release replaced upstream). When the upstream fails, what is
 * cached is served with outcome `stale`; what is not cached fails with the upstream's error.
 *
 * Concurrent requests for one object share one upstream fetch (per process). Several processes
 * may share one store: every object written is the upstream's verified bytes (rewriting it with
 * the same or a newer verified copy is harmless), and meta files are last-writer-wins because any
 * meta a writer leaves describes bytes that writer verified; a meta whose SHA-256 does not match
 * the stored bytes is ignored (the object then counts as stale and is re-verified).
 */
import { HexrepoError } from '@hexrepo/core';
import { contentEtag, putMany, type BlobStore } from '@hexrepo/storage';
import { metaKey, parseMirrorPath, readMeta, writeMeta, type MirrorMeta, type MirrorPath } from './layout.js';
import type { UpstreamClient } from './upstream.js';
import { sha256Hex, verifyNames, verifyPackage, verifyTarball, verifyVersions, type VerifiedPackage } from './verify.js';

/**
 * How an object was served: from the cache while fresh (`hit`), from the cache after the upstream
 * answered 304 (`revalidated`), fetched because absent (`miss`) or changed (`refreshed`), or from
 * the cache because the upstream failed (`stale`).
 */
export type CacheOutcome = 'hit' | 'revalidated' | 'miss' | 'refreshed' | 'stale';

/** An object the mirror serves. */
export interface MirrorObject {
  path: string;
  body: Uint8Array;
  /** Strong validator of `body` for clients. */
  etag: string;
  outcome: CacheOutcome;
  /** Why a stale copy was served. */
  staleReason?: HexrepoError;
}

/** Counters for /metrics. */
export interface MirrorStats {
  hits: number;
  misses: number;
  staleServes: number;
  upstreamErrors: number;
  /** Upstream answers refused by verification (also counted in upstreamErrors). */
  refused: number;
  bytesFromUpstream: number;
}

/** Something worth a log line. */
export type MirrorEvent =
  | { type: 'refused'; path: string; error: HexrepoError }
  | { type: 'upstream-error'; path: string; error: HexrepoError }
  | { type: 'stale'; path: string; error: HexrepoError }
  | { type: 'stored'; path: string; bytes: number }
  | { type: 'store-failed'; path: string; error: unknown };

export interface MirrorCacheOptions {
  store: BlobStore;
  client: UpstreamClient;
  /** Age after which registry files are revalidated with the upstream. @default 60000 */
  maxAgeMs?: number;
  /** @default Date.now */
  now?: () => number;
  onEvent?: (event: MirrorEvent) => void;
}

interface Stored<T> {
  body: Uint8Array;
  sha256: string;
  data: T;
  meta: MirrorMeta | null;
}

interface Memo {
  storeEtag: string;
  sha256: string;
  data: unknown;
}

type Verifier<T> = (body: Uint8Array) => T;

/** The mirror's pull-through cache. */
export class MirrorCache {
  readonly stats: MirrorStats = { hits: 0, misses: 0, staleServes: 0, upstreamErrors: 0, refused: 0, bytesFromUpstream: 0 };
  readonly #store: BlobStore;
  readonly #client: UpstreamClient;
  readonly #maxAgeMs: number;
  readonly #now: () => number;
  readonly #onEvent: (event: MirrorEvent) => void;
  /** Verified stored objects by path, valid while the store's etag is unchanged. */
  readonly #memo = new Map<string, Memo>();
  readonly #inFlight = new Map<string, Promise<unknown>>();
  /** Writes of this process per path (objects and metas), so a caller can tell its read is still current. */
  readonly #writes = new Map<string, number>();
  /**
   * Verified objects this process is storing: served from memory until their write lands, so a
   * request that comes meanwhile neither misses nor fetches the upstream again.
   */
  readonly #pending = new Map<string, { stored: Stored<unknown>; done: Promise<void> }>();
  /** updated_at (seconds) per package, from the latest verified `names` seen by this process. */
  #namesUpdated = new Map<string, number>();

  constructor(opts: MirrorCacheOptions) {
    this.#store = opts.store;
    this.#client = opts.client;
    this.#maxAgeMs = opts.maxAgeMs ?? 60_000;
    this.#now = opts.now ?? Date.now;
    this.#onEvent = opts.onEvent ?? (() => undefined);
  }

  /** Resolves once every store write started so far has landed or failed (for shutdown and tests). */
  async flushed(): Promise<void> {
    await Promise.all([...this.#pending.values()].map((p) => p.done));
  }

  /** The upstream this cache mirrors. */
  get upstream(): UpstreamClient['upstream'] {
    return this.#client.upstream;
  }

  /**
   * The object at `path` (an upstream path: `names`, `packages/foo`, `tarballs/foo-1.0.0.tar`, …),
   * or null when the upstream has no such object or the path is none the mirror serves. Throws
   * UPSTREAM_UNAVAILABLE / UPSTREAM_TIMEOUT for what is not cached while the upstream fails, and a
   * REGISTRY_* error when the upstream's answer does not verify.
   */
  async get(path: string): Promise<MirrorObject | null> {
    const p = parseMirrorPath(path);
    if (!p) return null;
    switch (p.kind) {
      case 'public_key': {
        const body = new TextEncoder().encode(this.upstream.publicKeyPem);
        this.stats.hits++;
        return { path, body, etag: contentEtag(body), outcome: 'hit' };
      }
      case 'names':
        return (await this.#revalidated(p, (b) => this.#verifyNames(b)))?.obj ?? null;
      case 'versions':
        return (await this.#revalidated(p, (b) => verifyVersions(b, this.upstream.publicKey, this.upstream.repository)))?.obj ?? null;
      case 'package':
        return (await this.#revalidated(p, (b) => verifyPackage(b, this.upstream.publicKey, this.upstream.repository, p.name)))?.obj ?? null;
      case 'installs':
        return (await this.#revalidated(p, () => null))?.obj ?? null;
      case 'tarball':
        return this.#tarball(p);
      case 'docs':
        return this.#immutable(p);
    }
  }

  #verifyNames(body: Uint8Array): Map<string, number> {
    const names = verifyNames(body, this.upstream.publicKey, this.upstream.repository);
    return new Map(names.packages.filter((e) => e.updatedAt).map((e) => [e.name, e.updatedAt!.seconds]));
  }

  /** One upstream operation per path at a time; later callers share the first one's result. */
  #coalesce<T>(key: string, run: () => Promise<T>): Promise<T> {
    const running = this.#inFlight.get(key);
    if (running) return running as Promise<T>;
    const p = run().finally(() => this.#inFlight.delete(key));
    this.#inFlight.set(key, p);
    return p;
  }

  /** The stored object at `path` if it verifies (memoized per store etag), with its meta when the meta matches. */
  async #readStored<T>(path: string, verify: Verifier<T>, withMeta = true): Promise<Stored<T> | null> {
    // Verified when it was fetched; the same path always has the same verifier.
    const pending = this.#pending.get(path);
    if (pending) return pending.stored as Stored<T>;
    // The meta is read alongside the object (one wait, not two); it only counts if it matches.
    const [obj, meta] = await Promise.all([this.#store.get(path), withMeta ? readMeta(this.#store, path) : null]);
    if (!obj) return null;
    let memo = this.#memo.get(path);
    if (!memo || memo.storeEtag !== obj.etag) {
      let data: T;
      try {
        data = verify(obj.body);
      } catch (err) {
        // A stored object that no longer verifies (a changed key, a foreign write) is never served.
        if (err instanceof HexrepoError) this.#onEvent({ type: 'refused', path: `(stored) ${path}`, error: err });
        return null;
      }
      memo = { storeEtag: obj.etag, sha256: sha256Hex(obj.body), data };
      this.#memo.set(path, memo);
    }
    return { body: obj.body, sha256: memo.sha256, data: memo.data as T, meta: meta && meta.sha256 === memo.sha256 ? meta : null };
  }

  #fresh(p: MirrorPath, meta: MirrorMeta | null): boolean {
    if (!meta || this.#now() - meta.fetchedAt >= this.#maxAgeMs) return false;
    if (p.kind === 'package') {
      const updated = this.#namesUpdated.get(p.name);
      if (updated !== undefined && updated * 1000 > meta.fetchedAt) return false;
    }
    return true;
  }

  #served<T>(p: MirrorPath, stored: { body: Uint8Array; sha256: string; data: T }, outcome: CacheOutcome, staleReason?: HexrepoError): { obj: MirrorObject; data: T } {
    if (outcome === 'hit' || outcome === 'revalidated') this.stats.hits++;
    else if (outcome === 'stale') this.stats.staleServes++;
    else this.stats.misses++;
    if (p.kind === 'names' && outcome !== 'stale') this.#namesUpdated = stored.data as Map<string, number>;
    // contentEtag's form (a quoted SHA-256 prefix) from the known digest: no hashing per hit.
    return { obj: { path: p.path, body: stored.body, etag: `"${stored.sha256.slice(0, 40)}"`, outcome, ...(staleReason ? { staleReason } : {}) }, data: stored.data };
  }

  #upstreamFailed(path: string, err: unknown): HexrepoError {
    if (!(err instanceof HexrepoError)) throw err;
    this.stats.upstreamErrors++;
    this.#onEvent({ type: 'upstream-error', path, error: err });
    return err;
  }

  #staleOr<T>(p: MirrorPath, stored: Stored<T> | null, err: HexrepoError): { obj: MirrorObject; data: T } {
    if (!stored) throw err;
    this.#onEvent({ type: 'stale', path: p.path, error: err });
    return this.#served(p, stored, 'stale', err);
  }

  #wrote(path: string): void {
    this.#writes.set(path, (this.#writes.get(path) ?? 0) + 1);
  }

  /**
   * Store verified bytes and their meta as one batch, renamed in that order (an object without meta
   * is merely stale), so a folder store syncs both in one wave. The caller serves the bytes at
   * once: they are verified, and the cache's copy is for the next request, which this process
   * answers from memory until the write lands. A failed write is reported and leaves nothing
   * behind but a miss next time. `sha256` is the digest already computed while verifying, when
   * there is one.
   */
  #keep(path: string, body: Uint8Array, etag: string | null, data: unknown, sha256 = sha256Hex(body)): string {
    const meta: MirrorMeta = { etag, fetchedAt: this.#now(), sha256 };
    const entry = { stored: { body, sha256, data, meta } as Stored<unknown>, done: Promise.resolve() };
    entry.done = putMany(this.#store, [
      { key: path, body },
      { key: metaKey(path), body: new TextEncoder().encode(JSON.stringify(meta)), opts: { contentType: 'application/json' } },
    ])
      .then(
        ([placed]) => {
          this.#memo.set(path, { storeEtag: placed!.etag, sha256, data });
          this.#onEvent({ type: 'stored', path, bytes: body.byteLength });
        },
        (error: unknown) => this.#onEvent({ type: 'store-failed', path, error }),
      )
      .finally(() => {
        if (this.#pending.get(path) === entry) this.#pending.delete(path);
      });
    this.#pending.set(path, entry);
    this.#wrote(path);
    return sha256;
  }

  /**
   * A registry file (or installs CSV): served while fresh, revalidated with If-None-Match after.
   * `absent`: the caller has just read the store and found nothing there (with this process's
   * write count for the path before that read), so it is not read again.
   */
  async #revalidated<T>(p: MirrorPath, verify: Verifier<T>, force = false, absent?: { writes: number | undefined }): Promise<{ obj: MirrorObject; data: T } | null> {
    const writes = absent ? absent.writes : this.#writes.get(p.path);
    const stored = absent ? null : await this.#readStored(p.path, verify);
    if (stored && !force && this.#fresh(p, stored.meta)) return this.#served(p, stored, 'hit');
    return this.#coalesce(`revalidate:${p.path}`, async () => {
      // Another caller of this process may have refreshed it while this one waited on the store
      // (it counted a write); otherwise what was just read is current and the store is not read again.
      const current = this.#writes.get(p.path) === writes ? stored : ((await this.#readStored(p.path, verify)) ?? stored);
      let answer;
      try {
        answer = await this.#client.get(p.path, { etag: current?.meta?.etag ?? null });
      } catch (err) {
        return this.#staleOr(p, current, this.#upstreamFailed(p.path, err));
      }
      if (answer.status === 'not-found') return null;
      if (answer.status === 'not-modified') {
        if (!current?.meta) return this.#staleOr(p, current, this.#upstreamFailed(p.path, new HexrepoError('UPSTREAM_UNAVAILABLE', `the upstream answered 304 for ${p.path} without being asked a conditional request`)));
        await writeMeta(this.#store, p.path, { etag: answer.etag ?? current.meta.etag, fetchedAt: this.#now(), sha256: current.sha256 });
        this.#wrote(p.path);
        return this.#served(p, current, 'revalidated');
      }
      this.stats.bytesFromUpstream += answer.body.byteLength;
      let data: T;
      try {
        data = verify(answer.body);
      } catch (err) {
        const error = this.#upstreamFailed(p.path, err);
        this.stats.refused++;
        this.#onEvent({ type: 'refused', path: p.path, error });
        return this.#staleOr(p, current, error);
      }
      const sha256 = this.#keep(p.path, answer.body, answer.etag, data);
      return this.#served(p, { body: answer.body, sha256, data }, current ? 'refreshed' : 'miss');
    });
  }

  /** The verified packages/NAME the tarballs of `name` are checked against: the stored one, else fetched. */
  async #package(name: string, force: boolean): Promise<VerifiedPackage | null> {
    const p: MirrorPath = { kind: 'package', path: `packages/${name}`, name };
    const verify = (b: Uint8Array): VerifiedPackage => verifyPackage(b, this.upstream.publicKey, this.upstream.repository, name);
    if (force) return (await this.#revalidated(p, verify, true))?.data ?? null;
    // Tarballs never wait on the upstream for a package that is stored: clients fetch
    // packages/NAME (revalidating it) right before its tarballs.
    const writes = this.#writes.get(p.path);
    const stored = await this.#readStored(p.path, verify, false);
    if (stored) return stored.data;
    return (await this.#revalidated(p, verify, false, { writes }))?.data ?? null;
  }

  async #tarball(p: Extract<MirrorPath, { version: string }>): Promise<MirrorObject | null> {
    // Both reads at once: a miss then waits on the store once before the upstream, not twice.
    const [firstPkg, stored] = await Promise.all([this.#package(p.name, false), this.#readStored(p.path, () => null, false)]);
    let pkg = firstPkg;
    let release = pkg?.releases.find((r) => r.version === p.version);
    if (pkg && !release) {
      // Published since the stored packages/NAME was fetched?
      pkg = await this.#package(p.name, true);
      release = pkg?.releases.find((r) => r.version === p.version);
    }
    if (!pkg || !release) return null;
    const checksum = release.checksum;
    if (checksum === null) {
      throw new HexrepoError('REGISTRY_CORRUPT', `packages/${p.name} of the upstream has no outer checksum for ${p.version}, so the mirror cannot verify its tarball`, {
        hint: 'fetch this release from the upstream directly',
      });
    }
    if (stored && stored.sha256 === checksum) return this.#served(p, stored, 'hit').obj;
    // A stored copy with another checksum is of no use (clients would refuse it), so an upstream
    // failure is an error here, never a stale answer.
    return this.#fetchAndKeep(`tarball:${p.path}:${checksum}`, p, stored ? 'refreshed' : 'miss', checksum);
  }

  /** Docs tarballs: kept once fetched. The upstream does not sign them, so they cannot be verified. */
  async #immutable(p: Extract<MirrorPath, { version: string }>): Promise<MirrorObject | null> {
    const stored = await this.#readStored(p.path, () => null, false);
    if (stored) return this.#served(p, stored, 'hit').obj;
    return this.#fetchAndKeep(`fetch:${p.path}`, p, 'miss', null);
  }

  /**
   * Fetch an object that does not change once published, once for every caller asking at once;
   * verify it against `checksum` (the outer checksum of a tarball) when there is one, then keep and
   * serve it. null: the upstream does not have it.
   */
  async #fetchAndKeep(coalesceKey: string, p: MirrorPath, state: 'miss' | 'refreshed', checksum: string | null): Promise<MirrorObject | null> {
    return this.#coalesce(coalesceKey, async () => {
      let answer;
      try {
        answer = await this.#client.get(p.path);
      } catch (err) {
        throw this.#upstreamFailed(p.path, err);
      }
      if (answer.status !== 'ok') return null;
      this.stats.bytesFromUpstream += answer.body.byteLength;
      if (checksum !== null) {
        try {
          verifyTarball(answer.body, checksum);
        } catch (err) {
          const error = this.#upstreamFailed(p.path, err);
          this.stats.refused++;
          this.#onEvent({ type: 'refused', path: p.path, error });
          throw error;
        }
      }
      const sha256 = this.#keep(p.path, answer.body, answer.etag, null, checksum?.toLowerCase());
      return this.#served(p, { body: answer.body, sha256, data: null }, state).obj;
    });
  }
}
