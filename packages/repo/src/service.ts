/**
 * The repository service for writes: publish, revert, retire, unretire and docs, over any
 * BlobStore. Every write validates fully before storing anything, stores tarballs byte for byte,
 * then updates `packages/NAME`, `versions` and `names` incrementally. Writes to one package are
 * serialised; registry flushes are group-committed, so concurrent publishes share signatures and
 * none is lost.
 */
import type { KeyObject } from 'node:crypto';
import { gunzipSync } from 'node:zlib';
import {
  compareVersions,
  DEFAULT_LIMITS,
  HexrepoError,
  isHexrepoError,
  matchesRequirement,
  parseRequirement,
  parseVersion,
  toHex,
  validateAdvisory,
  validateRetirement,
  type Advisory,
  type Dependency,
  type PolicyDefinition,
  type RegistryRelease,
  type Retirement,
  type TarballLimits,
} from '@hexrepo/core';
import { CachedStore, contentEtag, type BatchEntry, type BlobStore, type PutResult } from '@hexrepo/storage';
import { checkContents, parseTarball, readTar, type Metadata } from '@hexrepo/tarball';
import { buildRegistry, type BuildOptions, type BuildSummary } from './build.js';
import { type BuildCache } from './cache.js';
import { docsKey, NAMES_KEY, PACKAGES_PREFIX, tarballFileOf, tarballKey, TARBALLS_PREFIX, VERSIONS_KEY } from './layout.js';
import { FlushSigner } from './flush-signer.js';
import { factsFromBytes, type Problem } from './read-tarballs.js';
import { deletePolicy, getPolicy, listPolicies, putPolicy, signPolicies } from './policies.js';
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
  /** Threads of the opening build (BuildOptions.threads). */
  threads?: number;
  /** The store's listing for the opening build, when the caller already took it (BuildOptions.scan). */
  scan?: BuildOptions['scan'];
  /**
   * Worker threads that sign and gzip the registry files of later flushes (a server's publishes),
   * beside the thread that serves requests. Idle ones do not keep the process alive; `close` stops
   * them. @default 0 (this thread: one-shot commands would only pay the threads' start)
   */
  flushThreads?: number;
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
  /** Who published it, when recorded (publish's `publisher`). */
  publisher?: string;
  advisories?: Advisory[];
  dependencies: Dependency[];
}

function publisherOf(state: ReleaseState | undefined): { publisher?: string } {
  return state?.publisher !== undefined ? { publisher: state.publisher } : {};
}

/** An advisory of a package and the versions it is attached to. */
export interface AdvisoryView {
  package: string;
  advisory: Advisory;
  versions: string[];
}

/** How long a flush keeps catching up with other writers before it fails. */
const FLUSH_RETRY_MS = 30_000;

export class RepoService {
  readonly #locks = new Map<string, Promise<void>>();
  #flushing: Promise<void> | null = null;
  #nextFlush: Promise<void> | null = null;
  readonly #limits: TarballLimits;
  readonly #now: () => number;
  readonly #privateKey: KeyObject;
  readonly #signer: FlushSigner | undefined;
  /**
   * The etag of each package's sidecar as this service last wrote it (its content is in `states`):
   * the next change writes over that version without reading it again, if it is still the stored one.
   */
  readonly #stateEtags = new Map<string, string>();

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
    this.#privateKey = opts.privateKey;
    this.#signer = opts.flushThreads ? new FlushSigner(opts.privateKey, opts.flushThreads) : undefined;
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
      ...(opts.scan ? { scan: opts.scan } : {}),
    });
    // Policies are signed with the registry: a new key or a repaired crash leaves none stale.
    const signed = await signPolicies(store, opts.repository, opts.privateKey);
    summary.written.push(...signed.written);
    summary.removed.push(...signed.removed);
    return { service: new RepoService(store, opts.repository, index, cache, states, opts), summary };
  }

  /**
   * Validate and store a tarball, then update the registry. `name`: the package named by the URL;
   * `publisher`: who publishes (kept in the sidecar for the API's release map).
   */
  async publish(bytes: Uint8Array, opts: { replace?: boolean; name?: string; authorize?: (name: string) => void; publisher?: string } = {}): Promise<PublishResult> {
    const parsed = parseTarball(bytes, { limits: this.#limits });
    const { name, version } = parsed.facts;
    if (opts.name !== undefined && opts.name !== name) {
      throw new HexrepoError('TARBALL_NAME_MISMATCH', `the URL names package ${opts.name} but the tarball's metadata says ${name}`, { hint: `publish it to /packages/${name}/releases` });
    }
    opts.authorize?.(name);
    const checksum = toHex(parsed.outerChecksum);
    const { created, publishedAt, undo } = await this.#withPackage(name, async () => {
      const existing = this.index.release(name, version);
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
          const publisher = opts.publisher !== undefined ? { publisher: opts.publisher } : {};
          r.set(version, existing ? { ...stateBefore, publishedAt: stateBefore?.publishedAt ?? now, ...publisher } : { publishedAt: now, ...publisher });
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

  /**
   * Retire every release of a package not retired yet (a retired release keeps its own reason), or
   * with no retirement unretire them all: one sidecar change and one registry flush. Returns the
   * versions changed.
   */
  async retireAll(name: string, retirement: Retirement | undefined): Promise<string[]> {
    const checked = retirement ? validateRetirement(retirement) : undefined;
    let changed: string[] = [];
    const undo = await this.#withPackage(name, async () => {
      const versions = this.index.releasesOf(name).map((r) => r.facts.version);
      if (versions.length === 0) throw new HexrepoError('NOT_FOUND', `no package ${name} in repository ${this.repository}`);
      let before = new Map<string, ReleaseState>();
      await this.#updateState(name, (r) => {
        before = new Map(r);
        changed = versions.filter((v) => (checked ? !r.get(v)?.retired : r.get(v)?.retired !== undefined));
        for (const v of changed) {
          const { retired: _old, ...rest } = r.get(v) ?? {};
          r.set(v, checked ? { ...rest, retired: checked } : rest);
        }
      });
      this.index.touch(name);
      return async (): Promise<void> => {
        await this.#updateState(name, (r) => {
          for (const v of changed) {
            const was = before.get(v);
            if (was) r.set(v, was);
            else r.delete(v);
          }
        });
        this.index.touch(name);
      };
    });
    await this.#commitOrUndo(name, undo);
    return changed;
  }

  /**
   * Attach an advisory to the releases `affected` names: each entry an exact version or an Elixir
   * requirement, resolved against the releases published now (a later release is not affected
   * until the advisory is added again). An advisory with the same id is replaced. Returns the
   * versions it is attached to.
   */
  async addAdvisory(name: string, input: Parameters<typeof validateAdvisory>[0], affected: readonly string[]): Promise<string[]> {
    const advisory = validateAdvisory(input);
    const undo = await this.#withPackage(name, async () => {
      const versions = this.#affectedVersions(name, affected);
      let before: Map<string, ReleaseState> | undefined;
      await this.#updateState(name, (r) => {
        before = new Map(r);
        for (const [version, state] of r) {
          const rest = (state.advisories ?? []).filter((a) => a.id !== advisory.id);
          const { advisories: _old, ...other } = state;
          r.set(version, rest.length > 0 ? { ...other, advisories: rest } : other);
        }
        for (const version of versions) {
          const state = r.get(version) ?? {};
          r.set(version, { ...state, advisories: [...(state.advisories ?? []), advisory] });
        }
      });
      this.index.touch(name);
      return { versions, undo: this.#restoreState(name, () => before) };
    });
    await this.#commitOrUndo(name, undo.undo);
    return undo.versions;
  }

  /** Detach an advisory from every release of a package. NOT_FOUND when none carries it. */
  async removeAdvisory(name: string, id: string): Promise<void> {
    const undo = await this.#withPackage(name, async () => {
      if (!this.advisories(name).some((a) => a.advisory.id === id)) {
        throw new HexrepoError('NOT_FOUND', `${name} has no advisory ${id}`, { hint: `list them with "hexrepo advisory list ${name}"` });
      }
      let before: Map<string, ReleaseState> | undefined;
      await this.#updateState(name, (r) => {
        before = new Map(r);
        for (const [version, state] of r) {
          if (!state.advisories?.some((a) => a.id === id)) continue;
          const rest = state.advisories.filter((a) => a.id !== id);
          const { advisories: _old, ...other } = state;
          r.set(version, rest.length > 0 ? { ...other, advisories: rest } : other);
        }
      });
      this.index.touch(name);
      return this.#restoreState(name, () => before);
    });
    await this.#commitOrUndo(name, undo);
  }

  /** The advisories of one package, or of every package, each with the versions it is attached to. */
  advisories(name?: string): AdvisoryView[] {
    const out: AdvisoryView[] = [];
    for (const pkg of name !== undefined ? [name] : this.packageNames()) {
      const byId = new Map<string, AdvisoryView>();
      for (const r of this.releases(pkg)) {
        for (const a of r.advisories ?? []) {
          const view = byId.get(a.id) ?? { package: pkg, advisory: a, versions: [] };
          view.versions.push(r.version);
          byId.set(a.id, view);
        }
      }
      out.push(...[...byId.values()].sort((a, b) => (a.advisory.id < b.advisory.id ? -1 : 1)));
    }
    return out;
  }

  /** Policies of this repository (`_hexrepo/policies/`), signed into `policies/NAME` on every change. */
  listPolicies(): Promise<PolicyDefinition[]> {
    return listPolicies(this.store, this.repository);
  }

  getPolicy(name: string): Promise<PolicyDefinition | null> {
    return getPolicy(this.store, this.repository, name);
  }

  /** Validate (POLICY_INVALID with the reason), store and sign a policy. */
  putPolicy(input: unknown, mode: 'create' | 'edit' | 'upsert'): Promise<PolicyDefinition> {
    return putPolicy(this.store, this.repository, this.#privateKey, input, mode);
  }

  deletePolicy(name: string): Promise<void> {
    return deletePolicy(this.store, this.repository, name);
  }

  #affectedVersions(name: string, affected: readonly string[]): string[] {
    const versions = this.index.releasesOf(name).map((r) => r.facts.version);
    if (versions.length === 0) throw new HexrepoError('NOT_FOUND', `no package ${name} in repository ${this.repository}`);
    if (affected.length === 0) throw new HexrepoError('ADVISORY_INVALID', `say which releases of ${name} the advisory affects`, { field: 'versions', hint: 'give versions (1.2.3) or requirements ("< 1.4.2", "~> 1.3")' });
    const out = new Set<string>();
    for (const spec of affected) {
      const exact = parseVersion(spec.trim()) ? spec.trim() : null;
      const requirement = exact === null ? parseRequirement(spec) : null;
      if (exact === null && !requirement) throw new HexrepoError('ADVISORY_INVALID', `${JSON.stringify(spec)} is neither a version nor an Elixir requirement`, { field: 'versions', hint: 'write 1.2.3, "< 1.4.2" or ">= 1.0.0 and < 1.4.2"' });
      const hits = versions.filter((v) => (exact !== null ? v === exact : matchesRequirement(v, requirement!)));
      if (hits.length === 0) throw new HexrepoError('ADVISORY_INVALID', `${JSON.stringify(spec)} matches no release of ${name} (it has ${versions.join(', ')})`, { field: 'versions' });
      for (const v of hits) out.add(v);
    }
    return [...out].sort(compareVersions);
  }

  /** An undo that puts a package's sidecar state back as it was before a change. */
  #restoreState(name: string, before: () => Map<string, ReleaseState> | undefined): () => Promise<void> {
    return async () => {
      const saved = before();
      if (!saved) return;
      await this.#updateState(name, (r) => {
        r.clear();
        for (const [k, v] of saved) r.set(k, v);
      });
      this.index.touch(name);
    };
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
    return this.index.registryReleases(name).map((r) => this.#view(name, r));
  }

  #view(name: string, r: RegistryRelease): ReleaseView {
    return {
      name,
      version: r.version,
      checksum: toHex(r.outerChecksum),
      innerChecksum: toHex(r.innerChecksum),
      ...(r.publishedAt !== undefined ? { publishedAt: r.publishedAt } : {}),
      ...(r.retired ? { retired: r.retired } : {}),
      ...publisherOf(this.states.get(name)?.get(r.version)),
      ...(r.advisories ? { advisories: r.advisories } : {}),
      dependencies: r.dependencies.map((d) => ({ ...d })),
    };
  }

  /** One release as the API shows it; null when there is no such release. */
  release(name: string, version: string): ReleaseView | null {
    const r = this.index.registryRelease(name, version);
    return r ? this.#view(name, r) : null;
  }

  /** How many releases a package has (0: no such package). */
  releaseCount(name: string): number {
    return this.index.releaseCount(name);
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

  /** Wait for pending flushes and stop the flush threads (a later flush signs on this thread). */
  async close(): Promise<void> {
    await this.flushed();
    await this.#signer?.close();
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
    const etag = this.#stateEtags.get(name);
    const known = etag !== undefined ? this.states.get(name) : undefined;
    this.#stateEtags.delete(name);
    const stored = await updatePackageStateAfter(this.store, name, change, before, known && etag !== undefined ? { etag, releases: known } : undefined);
    this.states.set(name, stored.releases);
    this.#stateEtags.set(name, stored.etag);
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
        this.#stateEtags.delete(name);
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
        await this.index.flush(this.store, this.cache.outputs, null, undefined, { conditional: true, ...(this.#signer ? { signer: this.#signer } : {}) });
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
