/**
 * The repository service for writes: publish, revert, retire, unretire and docs, over any
 * BlobStore. Every write validates fully before storing anything, stores tarballs byte for byte,
 * then updates `packages/NAME`, `versions` and `names` incrementally. Writes to one package are
 * serialised; registry flushes are group-committed, so concurrent publishes share signatures and
 * none is lost.
 */
import type { KeyObject } from 'node:crypto';
import { gunzipSync } from 'node:zlib';
import { compareVersions, DEFAULT_LIMITS, HexrepoError, isHexrepoError, toHex, validateRetirement, type Dependency, type Retirement, type TarballLimits } from '@hexrepo/core';
import { CachedStore, contentEtag, type BatchEntry, type BlobStore, type PutResult } from '@hexrepo/storage';
import { checkContents, parseTarball, readTar, type Metadata } from '@hexrepo/tarball';
import { buildRegistry, type BuildOptions, type BuildSummary } from './build.js';
import { type BuildCache } from './cache.js';
import { docsKey, NAMES_KEY, PACKAGES_PREFIX, tarballFileOf, tarballKey, TARBALLS_PREFIX, VERSIONS_KEY } from './layout.js';
import { factsFromBytes, type Problem } from './read-tarballs.js';
import { loadReleaseStates, stateLookup, updatePackageStateAfter, type ReleaseStates } from './release-state.js';
import type { RegistryIndex, ReleaseState } from './registry-index.js';

export interface RepoServiceOptions {
  store: BlobStore;
  repository: string;
  privateKey: KeyObject;
  /** A build cache to start from (the one `hexrepo build` keeps); updated in place. */
  cache?: BuildCache;
  limits?: Partial<TarballLimits>;
  /** Seconds since the epoch, for publish times. */
  now?: () => number;
  /** Leave invalid tarballs out of the opening build. @default true (a server must start even then) */
  skipInvalid?: boolean;
  /** Progress of the opening build. */
  onProgress?: BuildOptions['onProgress'];
  /** Threads of the opening build (BuildOptions.threads); later flushes run on this thread. */
  threads?: number;
}

export interface PublishResult {
  created: boolean;
  name: string;
  version: string;
  /** Lowercase hex SHA-256 of the tarball as stored. */
  checksum: string;
  publishedAt: number;
  metadata: Metadata;
}

/** What `refresh` did. */
export interface RefreshResult {
  added: { file: string; name: string; version: string }[];
  removed: { file: string; name: string; version: string }[];
  problems: Problem[];
}

/** A release as the API shows it. */
export interface ReleaseView {
  name: string;
  version: string;
  checksum: string;
  innerChecksum: string;
  publishedAt?: number;
  retired?: Retirement;
  dependencies: Dependency[];
}

/** How long a flush keeps catching up with other writers before it fails. */
const FLUSH_RETRY_MS = 30_000;

export class RepoService {
  readonly #locks = new Map<string, Promise<void>>();
  #flushing: Promise<void> | null = null;
  #nextFlush: Promise<void> | null = null;
  readonly #limits: TarballLimits;
  readonly #now: () => number;

  private constructor(
    readonly store: BlobStore,
    readonly repository: string,
    readonly index: RegistryIndex,
    readonly cache: BuildCache,
    readonly states: ReleaseStates,
    opts: RepoServiceOptions,
  ) {
    this.#limits = { ...DEFAULT_LIMITS, ...opts.limits };
    this.#now = opts.now ?? (() => Math.floor(Date.now() / 1000));
  }

  /** Bring the registry up to date with the store (an incremental build) and keep it in memory. */
  static async open(opts: RepoServiceOptions): Promise<{ service: RepoService; summary: BuildSummary }> {
    // A server's read cache may answer a second late. The service reads what other writers (other
    // workers, other servers) just wrote, to merge it: a stale sidecar would drop their retirements.
    const store = opts.store instanceof CachedStore ? opts.store.uncached() : opts.store;
    const states = await loadReleaseStates(store);
    const { summary, cache, index } = await buildRegistry({
      store,
      repository: opts.repository,
      privateKey: opts.privateKey,
      ...(opts.cache ? { cache: opts.cache } : {}),
      ...(opts.limits ? { limits: opts.limits } : {}),
      releaseState: stateLookup(states),
      // A server must start even when someone dropped a bad file into tarballs/: it is left out.
      skipInvalid: opts.skipInvalid ?? true,
      ...(opts.onProgress ? { onProgress: opts.onProgress } : {}),
      ...(opts.threads !== undefined ? { threads: opts.threads } : {}),
    });
    return { service: new RepoService(store, opts.repository, index, cache, states, opts), summary };
  }

  /** Validate and store a tarball, then update the registry. `name`: the package named by the URL. */
  async publish(bytes: Uint8Array, opts: { replace?: boolean; name?: string; authorize?: (name: string) => void } = {}): Promise<PublishResult> {
    const parsed = parseTarball(bytes, { limits: this.#limits });
    const { name, version } = parsed.facts;
    if (opts.name !== undefined && opts.name !== name) {
      throw new HexrepoError('TARBALL_NAME_MISMATCH', `the URL names package ${opts.name} but the tarball's metadata says ${name}`, { hint: `publish it to /packages/${name}/releases` });
    }
    opts.authorize?.(name);
    const checksum = toHex(parsed.outerChecksum);
    const { created, publishedAt, undo } = await this.#withPackage(name, async () => {
      const existing = this.index.releasesOf(name).find((r) => r.facts.version === version);
      if (existing && !opts.replace) {
        throw new HexrepoError('ALREADY_EXISTS', `${name} ${version} is already published; publish with --replace to overwrite it, or bump the version`, { field: 'inserted_at' });
      }
      const key = tarballKey(name, version);
      // A replaced tarball is kept in memory until the registry says so: a failed publish puts it back.
      const previousBytes = existing ? ((await this.store.get(key))?.body ?? null) : null;
      const restoreTarball = (): Promise<unknown> => (previousBytes ? this.store.put(key, previousBytes, { contentType: 'application/octet-stream' }) : this.store.delete(key));
      const file = `${name}-${version}.tar`;
      const cachedBefore = this.cache.tarballs.get(file);
      let stateBefore: ReleaseState | undefined;
      let publishedAt: number;
      const now = this.#now();
      // The tarball and its sidecar entry in one durable batch, the tarball first. A new version is
      // created only if no other writer (another server on the store) made it.
      const tarball = { key, body: bytes, opts: { contentType: 'application/octet-stream', ...(opts.replace ? {} : { ifNoneMatch: '*' as const }) } };
      const stored = await this.#updateStateAfter(
        name,
        (r) => {
          stateBefore = r.get(version);
          // A new release starts afresh: what a crashed revert may have left for this version is not its.
          r.set(version, existing ? { ...stateBefore, publishedAt: stateBefore?.publishedAt ?? now } : { publishedAt: now });
        },
        [tarball],
      ).catch(async (err: unknown) => {
        if (isHexrepoError(err, 'STORAGE_CONFLICT') && err.details.key === key) {
          await this.resync();
          throw new HexrepoError('ALREADY_EXISTS', `${name} ${version} was just published by another writer; publish with --replace to overwrite it, or bump the version`, { field: 'inserted_at' });
        }
        // The batch may have stopped after the tarball (at the sidecar): then it is this publish's to undo.
        if ((await this.store.head(key).catch(() => null))?.etag === contentEtag(bytes)) await restoreTarball().catch(() => undefined);
        throw err;
      });
      try {
        publishedAt = stored.releases.get(version)!.publishedAt!;
        const mtime = stored.before[0]?.mtime ?? (await this.store.head(key))?.mtime ?? new Date();
        const record = { file, size: bytes.byteLength, mtimeMs: mtime.getTime(), facts: parsed.facts };
        this.index.put(record);
        this.cache.tarballs.set(record.file, { size: record.size, mtimeMs: record.mtimeMs, facts: record.facts });
      } catch (err) {
        await restoreTarball().catch(() => undefined);
        throw err;
      }
      const undo = async (): Promise<void> => {
        // The tarball first: removing it frees the most space for the writes that follow.
        await restoreTarball();
        if (existing) this.index.put(existing);
        else this.index.remove(name, version);
        if (cachedBefore) this.cache.tarballs.set(file, cachedBefore);
        else this.cache.tarballs.delete(file);
        await this.#updateState(name, (r) => void (stateBefore ? r.set(version, stateBefore) : r.delete(version)));
      };
      return { created: !existing, publishedAt, undo };
    });
    await this.#commitOrUndo(name, undo);
    return { created, name, version, checksum, publishedAt, metadata: parsed.metadata };
  }

  /**
   * Bring the registry in line with tarball files changed in the store by someone else (a file
   * dropped into `tarballs/`, replaced or deleted): each file is read and validated; a valid one is
   * put, a missing one removed, an invalid one reported and left out while the rest of the
   * registry stays as it was. This is the dev server's path: no directory scan, three signatures.
   */
  async refresh(files: readonly string[]): Promise<RefreshResult> {
    const result: RefreshResult = { added: [], removed: [], problems: [] };
    for (const file of [...new Set(files)].sort()) {
      const key = `tarballs/${file}`;
      const obj = await this.store.get(key);
      const known = this.index.releaseOfFile(file);
      if (!obj) {
        if (known) {
          const { name, version } = known.facts;
          await this.#withPackage(name, async () => {
            this.index.remove(name, version);
            this.cache.tarballs.delete(file);
          });
          result.removed.push({ file, name, version });
        }
        continue;
      }
      try {
        const facts = factsFromBytes(file, obj.body, this.#limits);
        const clash = this.index.releasesOf(facts.name).find((r) => r.facts.version === facts.version && r.file !== file);
        if (clash) throw new HexrepoError('DUPLICATE_RELEASE', `${facts.name} ${facts.version} is also in ${clash.file}`);
        await this.#withPackage(facts.name, async () => {
          if (!this.#statesOf(facts.name).get(facts.version)?.publishedAt) {
            const now = this.#now();
            await this.#updateState(facts.name, (r) => {
              const previous = r.get(facts.version);
              if (!previous?.publishedAt) r.set(facts.version, { ...previous, publishedAt: now });
            });
          }
          const record = { file, size: obj.size, mtimeMs: obj.mtime.getTime(), facts };
          this.index.put(record);
          this.cache.tarballs.set(file, { size: record.size, mtimeMs: record.mtimeMs, facts });
        });
        result.added.push({ file, name: facts.name, version: facts.version });
      } catch (err) {
        if (!isHexrepoError(err)) throw err;
        result.problems.push({ file, code: err.code, message: err.message });
      }
    }
    if (result.added.length > 0 || result.removed.length > 0) await this.#commit();
    return result;
  }

  /**
   * Remove a release: its tarball and docs first, then the registry, its retirement and publish
   * time last. The tarballs in the store are what another writer's resync believes, so the tarball
   * must be gone before the registry files that drop it are written (the mirror of publish, which
   * stores the tarball before them): otherwise a writer resyncing in between keeps the release and
   * writes it back. Killed in between, the registry lists a release without a tarball until the next
   * start or build removes it; a reverted release never comes back. When the registry cannot be
   * written (a full disk), the tarball and docs, held in memory, are put back (the space they freed
   * is there for them) and the revert is refused as a whole.
   */
  async revert(name: string, version: string): Promise<void> {
    const file = `${name}-${version}.tar`;
    const undo = await this.#withPackage(name, async () => {
      this.#requireRelease(name, version);
      const record = this.index.releasesOf(name).find((r) => r.facts.version === version)!;
      const cached = this.cache.tarballs.get(file);
      const tarball = await this.store.get(tarballKey(name, version));
      const docs = await this.store.get(docsKey(name, version));
      const restore = async (): Promise<void> => {
        if (docs && !(await this.store.head(docsKey(name, version)))) await this.store.put(docsKey(name, version), docs.body, { contentType: 'application/gzip' });
        if (tarball && !(await this.store.head(tarballKey(name, version)))) await this.store.put(tarballKey(name, version), tarball.body, { contentType: 'application/octet-stream' });
      };
      try {
        await this.store.delete(docsKey(name, version));
        await this.store.delete(tarballKey(name, version));
      } catch (err) {
        await restore();
        throw err;
      }
      this.index.remove(name, version);
      this.cache.tarballs.delete(file);
      return async (): Promise<void> => {
        await restore();
        this.index.put(record);
        if (cached) this.cache.tarballs.set(file, cached);
      };
    });
    await this.#commitOrUndo(name, undo);
    // Best effort: an entry left behind names no tarball, and a new publish of the version replaces it.
    await this.#withPackage(name, () => this.#updateState(name, (r) => void r.delete(version))).catch(() => undefined);
  }

  /** Retire a release. The retirement must meet hex.pm's rule (validateRetirement), whoever calls: RETIREMENT_INVALID otherwise. */
  async retire(name: string, version: string, retirement: Retirement): Promise<void> {
    await this.#setRetirement(name, version, validateRetirement(retirement));
  }

  async unretire(name: string, version: string): Promise<void> {
    await this.#setRetirement(name, version, undefined);
  }

  /** Store docs for an existing release after checking they are a gzip'd tar with safe paths. */
  async putDocs(name: string, version: string, bytes: Uint8Array): Promise<void> {
    this.#requireRelease(name, version);
    if (bytes.byteLength > this.#limits.maxTarballSize) throw new HexrepoError('TAR_TOO_BIG', `the docs are ${bytes.byteLength} bytes, over the limit of ${this.#limits.maxTarballSize}`);
    let tar: Uint8Array;
    try {
      tar = gunzipSync(bytes, { maxOutputLength: this.#limits.maxUncompressedSize });
    } catch (err) {
      throw new HexrepoError('CONTENTS_CORRUPT', `the docs are not a gzip'd tar archive: ${(err as Error).message}`);
    }
    // The same entry rules as a package's contents.tar.gz (no device or FIFO), and no links at all:
    // docs are served unpacked by the web UI, where a link has no meaning and could point anywhere.
    for (const f of checkContents(readTar(tar))) {
      if (f.type === 'symlink' || f.type === 'hardlink')
        throw new HexrepoError('CONTENTS_UNSAFE_LINK', `the docs entry ${f.path.slice(0, 200)} is a ${f.type === 'symlink' ? 'symlink' : 'hard link'}; docs may hold only files and folders: put a copy of its target there`, { path: f.path });
    }
    await this.store.put(docsKey(name, version), bytes, { contentType: 'application/gzip' });
  }

  async deleteDocs(name: string, version: string): Promise<void> {
    if (!(await this.store.head(docsKey(name, version)))) throw new HexrepoError('NOT_FOUND', `no docs for ${name} ${version}`);
    await this.store.delete(docsKey(name, version));
  }

  async hasDocs(name: string, version: string): Promise<boolean> {
    return (await this.store.head(docsKey(name, version))) !== null;
  }

  /** Package names, sorted. */
  packageNames(): string[] {
    return this.index.packageNames();
  }

  /** The releases of a package, ascending by SemVer (empty: no such package). */
  releases(name: string): ReleaseView[] {
    return this.index.registryReleases(name).map((r) => ({
      name,
      version: r.version,
      checksum: toHex(r.outerChecksum),
      innerChecksum: toHex(r.innerChecksum),
      ...(r.publishedAt !== undefined ? { publishedAt: r.publishedAt } : {}),
      ...(r.retired ? { retired: r.retired } : {}),
      dependencies: r.dependencies.map((d) => ({ ...d })),
    }));
  }

  /** The metadata of a release, read from its tarball. */
  async metadata(name: string, version: string): Promise<Metadata> {
    this.#requireRelease(name, version);
    const obj = await this.store.get(tarballKey(name, version));
    if (!obj) throw new HexrepoError('NOT_FOUND', `the tarball of ${name} ${version} is missing from the store`);
    return parseTarball(obj.body, { limits: this.#limits }).metadata;
  }

  /** Resolves once every change made so far is in the registry files. */
  flushed(): Promise<void> {
    return this.#commit();
  }

  async #setRetirement(name: string, version: string, retirement: Retirement | undefined): Promise<void> {
    const undo = await this.#withPackage(name, async () => {
      this.#requireRelease(name, version);
      let stateBefore: ReleaseState | undefined;
      await this.#updateState(name, (r) => {
        stateBefore = r.get(version);
        const { retired: _old, ...rest } = stateBefore ?? {};
        r.set(version, retirement ? { ...rest, retired: retirement } : rest);
      });
      this.index.touch(name);
      return async (): Promise<void> => {
        await this.#updateState(name, (r) => void (stateBefore ? r.set(version, stateBefore) : r.delete(version)));
        this.index.touch(name);
      };
    });
    await this.#commitOrUndo(name, undo);
  }

  /**
   * Flush a change; when the flush fails (disk full, a lock held too long, an I/O error), undo the
   * change (store, sidecar and memory) and flush again, so a failed write leaves no trace: it is not
   * refused as "already done" on retry, nor applied later by someone else's flush. The original
   * error is thrown either way; when even the undo cannot be written, the error says so.
   */
  async #commitOrUndo(name: string, undo: () => Promise<void>): Promise<void> {
    try {
      await this.#commit();
      return;
    } catch (err) {
      try {
        await this.#withPackage(name, undo);
        await this.#commit();
      } catch (undoErr) {
        if (!isHexrepoError(err)) throw err;
        throw new HexrepoError(err.code, `${err.message}; undoing the partial change failed too (${(undoErr as Error).message}): the next successful write or a restart completes it`, err.details, { cause: err });
      }
      throw err;
    }
  }

  #requireRelease(name: string, version: string): void {
    if (!this.index.releasesOf(name).some((r) => r.facts.version === version)) {
      const known = this.index.releasesOf(name).map((r) => r.facts.version);
      throw new HexrepoError('NOT_FOUND', known.length ? `${name} has no release ${version} (it has ${known.sort(compareVersions).join(', ')})` : `no package ${name} in repository ${this.repository}`);
    }
  }

  /** Change a package's sidecar state (merged with other writers'), and keep the result. */
  async #updateState(name: string, change: (releases: Map<string, ReleaseState>) => void): Promise<Map<string, ReleaseState>> {
    return (await this.#updateStateAfter(name, change, [])).releases;
  }

  /** `#updateState`, with `before` stored in the same durable batch just ahead of the sidecar. */
  async #updateStateAfter(name: string, change: (releases: Map<string, ReleaseState>) => void, before: readonly BatchEntry[]): Promise<{ releases: Map<string, ReleaseState>; before: PutResult[] }> {
    const stored = await updatePackageStateAfter(this.store, name, change, before);
    this.states.set(name, stored.releases);
    return stored;
  }

  /**
   * Catch up with changes other writers made to the store (another server publishing into the
   * same folder or bucket): tarballs added, replaced or removed, sidecar states changed, and the
   * current etags of the registry files, so the next conditional flush writes over exactly the
   * version it has merged. The registry files' etags are read before the tarballs are listed: a
   * writer stores its tarball before its registry files, so any registry file newer than what was
   * read belongs to a change the listing may miss, and the conditional write will catch it.
   */
  async resync(): Promise<void> {
    const expected = new Map<string, string | null>();
    for (const key of [NAMES_KEY, VERSIONS_KEY]) expected.set(key, (await this.store.head(key))?.etag ?? null);
    const packageKeys: string[] = [];
    for await (const o of this.store.list(PACKAGES_PREFIX)) packageKeys.push(o.key);
    await Promise.all(packageKeys.map(async (key) => expected.set(key, (await this.store.head(key))?.etag ?? null)));

    const known = new Set(this.cache.tarballs.keys());
    const listing = new Map<string, { size: number; mtimeMs: number }>();
    for await (const o of this.store.list(TARBALLS_PREFIX)) {
      const file = tarballFileOf(o.key);
      if (file) listing.set(file, { size: o.size, mtimeMs: o.mtime.getTime() });
    }
    for (const [file, st] of listing) {
      const cached = this.cache.tarballs.get(file);
      if (cached && cached.size === st.size && cached.mtimeMs === st.mtimeMs) continue;
      const obj = await this.store.get(`${TARBALLS_PREFIX}${file}`);
      if (!obj) continue;
      try {
        const facts = factsFromBytes(file, obj.body, this.#limits);
        this.index.put({ file, size: obj.size, mtimeMs: obj.mtime.getTime(), facts });
        this.cache.tarballs.set(file, { size: obj.size, mtimeMs: obj.mtime.getTime(), facts });
      } catch (err) {
        if (!isHexrepoError(err)) throw err; // an invalid file another tool dropped: left out
      }
    }
    for (const file of known) {
      if (listing.has(file)) continue;
      const record = this.index.releaseOfFile(file);
      if (record) this.index.remove(record.facts.name, record.facts.version);
      this.cache.tarballs.delete(file);
    }

    const states = await loadReleaseStates(this.store);
    for (const name of new Set([...states.keys(), ...this.states.keys()])) {
      const now = JSON.stringify([...(states.get(name) ?? [])]);
      if (now !== JSON.stringify([...(this.states.get(name) ?? [])])) {
        this.states.set(name, states.get(name) ?? new Map());
        this.index.touch(name);
      }
    }

    for (const [key, etag] of expected) {
      const out = this.cache.outputs.get(key);
      if (etag === null) this.cache.outputs.delete(key);
      else if (!out || out.etag !== etag) this.cache.outputs.set(key, { size: 0, mtimeMs: 0, etag, inputs: '' });
    }
    for (const key of [...this.cache.outputs.keys()]) if (key.startsWith(PACKAGES_PREFIX) && !expected.has(key)) this.cache.outputs.delete(key);
  }

  #statesOf(name: string): Map<string, ReleaseState> {
    let states = this.states.get(name);
    if (!states) {
      states = new Map();
      this.states.set(name, states);
    }
    return states;
  }

  /** Run `fn` alone for this package: writes to one package never interleave. */
  async #withPackage<T>(name: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.#locks.get(name) ?? Promise.resolve();
    let release!: () => void;
    const mine = previous.then(() => new Promise<void>((r) => (release = r)));
    this.#locks.set(name, mine);
    await previous;
    try {
      return await fn();
    } finally {
      release();
      if (this.#locks.get(name) === mine) this.#locks.delete(name);
    }
  }

  /**
   * Group commit: a flush that starts after this call covers the caller's change. While one flush
   * runs, every caller waits for the single next one, so N concurrent writes cost about two flushes.
   */
  #commit(): Promise<void> {
    if (!this.#flushing) return this.#startFlush();
    this.#nextFlush ??= this.#flushing.then(
      () => this.#startFlush(),
      () => this.#startFlush(),
    );
    return this.#nextFlush;
  }

  /**
   * Flush with conditional writes; when another writer got there first, catch up and retry, for at
   * most FLUSH_RETRY_MS: a flush that cannot make progress fails with a clear error instead of
   * keeping a publish waiting for minutes. Any other failure (disk full, lock held) fails at once.
   */
  async #flushUntilWritten(): Promise<void> {
    const started = Date.now();
    for (let attempt = 0; ; attempt++) {
      try {
        await this.index.flush(this.store, this.cache.outputs, null, undefined, { conditional: true });
        return;
      } catch (err) {
        if (!isHexrepoError(err, 'STORAGE_CONFLICT')) throw err;
        if (attempt >= 50 || Date.now() - started > FLUSH_RETRY_MS) {
          throw new HexrepoError('STORAGE_CONFLICT', `the registry files kept changing under this server (${attempt + 1} attempts in ${Date.now() - started} ms); the write was not applied`, {
            ...err.details,
            hint: 'another writer is rewriting the same registry files continuously; retry, and check that no other process loops on this folder or bucket',
          });
        }
        await this.resync();
        await new Promise((r) => setTimeout(r, Math.random() * Math.min(100, 5 * (attempt + 1))));
      }
    }
  }

  #startFlush(): Promise<void> {
    this.#nextFlush = null;
    const run = this.#flushUntilWritten();
    this.#flushing = run;
    const clear = (): void => {
      if (this.#flushing === run) this.#flushing = null;
    };
    run.then(clear, clear);
    return run;
  }
}
