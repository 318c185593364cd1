/**
 * The repository service for writes: publish, revert, retire, unretire and docs, over any
 * BlobStore. Every write validates fully before storing anything, stores tarballs byte for byte,
 * then updates `packages/NAME`, `versions` and `names` incrementally. Writes to one package are
 * serialised; registry flushes are group-committed, so concurrent publishes share signatures and
 * none is lost.
 */
import type { KeyObject } from 'node:crypto';
import { gunzipSync } from 'node:zlib';
import { compareVersions, DEFAULT_LIMITS, HexrepoError, isHexrepoError, toHex, type Retirement, type TarballLimits } from '@hexrepo/core';
import type { BlobStore } from '@hexrepo/storage';
import { parseTarball, readTar, safeEntryPath, type Metadata } from '@hexrepo/tarball';
import { buildRegistry, type BuildSummary } from './build.js';
import { type BuildCache } from './cache.js';
import { docsKey, tarballKey } from './layout.js';
import { factsFromBytes, type Problem } from './read-tarballs.js';
import { loadReleaseStates, savePackageState, stateLookup, type ReleaseStates } from './release-state.js';
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
  dependencies: { package: string; requirement: string; optional: boolean; app: string; repository?: string }[];
}

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
    const states = await loadReleaseStates(opts.store);
    const { summary, cache, index } = await buildRegistry({
      store: opts.store,
      repository: opts.repository,
      privateKey: opts.privateKey,
      ...(opts.cache ? { cache: opts.cache } : {}),
      ...(opts.limits ? { limits: opts.limits } : {}),
      releaseState: stateLookup(states),
      // A server must start even when someone dropped a bad file into tarballs/: it is left out.
      skipInvalid: true,
    });
    return { service: new RepoService(opts.store, opts.repository, index, cache, states, opts), summary };
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
    const { created, publishedAt } = await this.#withPackage(name, async () => {
      const existing = this.index.releasesOf(name).find((r) => r.facts.version === version);
      if (existing && !opts.replace) {
        throw new HexrepoError('ALREADY_EXISTS', `${name} ${version} is already published; publish with --replace to overwrite it, or bump the version`, { field: 'inserted_at' });
      }
      const key = tarballKey(name, version);
      const put = await this.store.put(key, bytes, { contentType: 'application/octet-stream' });
      const mtime = put.mtime ?? (await this.store.head(key))?.mtime ?? new Date();
      const states = this.#statesOf(name);
      const previous = states.get(version);
      const publishedAt = previous?.publishedAt ?? this.#now();
      states.set(version, { ...previous, publishedAt });
      await savePackageState(this.store, name, states);
      const record = { file: `${name}-${version}.tar`, size: bytes.byteLength, mtimeMs: mtime.getTime(), facts: parsed.facts };
      this.index.put(record);
      this.cache.tarballs.set(record.file, { size: record.size, mtimeMs: record.mtimeMs, facts: record.facts });
      return { created: !existing, publishedAt };
    });
    await this.#commit();
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
          const states = this.#statesOf(facts.name);
          if (!states.get(facts.version)?.publishedAt) {
            states.set(facts.version, { ...states.get(facts.version), publishedAt: this.#now() });
            await savePackageState(this.store, facts.name, states);
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

  /** Remove a release: registry first (clients stop seeing it), then its tarball and docs. */
  async revert(name: string, version: string): Promise<void> {
    await this.#withPackage(name, async () => {
      this.#requireRelease(name, version);
      this.index.remove(name, version);
      this.cache.tarballs.delete(`${name}-${version}.tar`);
      const states = this.#statesOf(name);
      states.delete(version);
      await savePackageState(this.store, name, states);
    });
    await this.#commit();
    await this.store.delete(tarballKey(name, version));
    await this.store.delete(docsKey(name, version));
  }

  async retire(name: string, version: string, retirement: Retirement): Promise<void> {
    await this.#setRetirement(name, version, retirement);
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
    for (const entry of readTar(tar)) safeEntryPath(entry.name);
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
    await this.#withPackage(name, async () => {
      this.#requireRelease(name, version);
      const states = this.#statesOf(name);
      const { retired: _old, ...rest } = states.get(version) ?? {};
      states.set(version, retirement ? { ...rest, retired: retirement } : rest);
      await savePackageState(this.store, name, states);
      this.index.touch(name);
    });
    await this.#commit();
  }

  #requireRelease(name: string, version: string): void {
    if (!this.index.releasesOf(name).some((r) => r.facts.version === version)) {
      const known = this.index.releasesOf(name).map((r) => r.facts.version);
      throw new HexrepoError('NOT_FOUND', known.length ? `${name} has no release ${version} (it has ${known.sort(compareVersions).join(', ')})` : `no package ${name} in repository ${this.repository}`);
    }
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

  #startFlush(): Promise<void> {
    this.#nextFlush = null;
    const run = this.index.flush(this.store, this.cache.outputs, null).then(() => undefined);
    this.#flushing = run;
    const clear = (): void => {
      if (this.#flushing === run) this.#flushing = null;
    };
    run.then(clear, clear);
    return run;
  }
}
