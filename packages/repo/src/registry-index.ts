import { createHash, type KeyObject } from 'node:crypto';
import { compareVersions, parseVersion, type Advisory, type RegistryRelease, type ReleaseFacts, type Retirement } from '@hexrepo/core';
import { assembleNamesPayload, assembleVersionsPayload, encodeNamesEntry, encodePackagePayload, encodeVersionsEntry, signAndWrap } from '@hexrepo/registry';
import { contentEtag, putMany, type BlobStore, type PutOptions } from '@hexrepo/storage';
import type { CachedOutput } from './cache.js';
import { NAMES_KEY, packageKey, VERSIONS_KEY } from './layout.js';
import type { PoolSigner } from './pool.js';

/** Package files per durable batch (one fsync wave, then the renames, then one folder fsync). */
const BATCH_SIZE = 32;
/** Batches written at once while the next packages are signed. */
const BATCHES_IN_FLIGHT = 4;
/**
 * Batches signed ahead of the writes (those being written included): signing goes on while the
 * writes wait for their fsyncs, so a build pool's threads are not left idle (~1.5 KiB a file).
 */
const BATCHES_AHEAD = 16;

/** Entries of `names`/`versions` kept joined together (see #assembleIndexes). */
const PARTS_PER_BLOCK = 64;

/** A registry file to write: its bytes, the condition it is written under, and what the cache records. */
interface StagedOutput {
  key: string;
  body: Uint8Array;
  etag: string;
  inputs: string;
  opts: PutOptions;
}

/** One tarball the registry is built from. */
export interface ReleaseRecord {
  /** File name inside `tarballs/`. */
  file: string;
  size: number;
  mtimeMs: number;
  facts: ReleaseFacts;
}

/** Repository-side state of a release that is not in its tarball (retirement, publish time, advisories). */
export interface ReleaseState {
  retired?: Retirement;
  publishedAt?: number;
  /** Who published it (a user name or a token's label), for the API; absent for releases published before hexrepo recorded it. */
  publisher?: string;
  advisories?: Advisory[];
}

/** Looks up the repository-side state of a release; absent means neither retired nor timed. */
export type ReleaseStateLookup = (name: string, version: string) => ReleaseState | undefined;

/** The size and mtime a store lists for an existing output, to tell whether it was touched. */
export type OutputListing = Map<string, { size: number; mtimeMs: number }>;

export interface FlushResult {
  written: string[];
  removed: string[];
  unchanged: number;
}

interface PackageEntry {
  releases: Map<string, ReleaseRecord>;
  /** Memoised names/versions entries and input stamp; cleared when the package changes. */
  memo?: PackageMemo;
}

/**
 * A package's `names` and `versions` entries and the digest of its inputs, with `made`: its
 * releases' files, sizes, mtimes and states in file-name order, to tell whether a memo kept from an
 * earlier process (the build cache) still holds without sorting versions or encoding anything.
 */
export interface PackageMemo {
  inputs: string;
  names: Uint8Array;
  versions: Uint8Array;
  made: string;
}

/**
 * The in-memory registry: every release by package, and which outputs are stale. Changes are
 * cheap (`put`, `remove`, `touch`); `flush` re-signs only the packages that changed plus `names`
 * and `versions`, writes packages before the indexes that point at them, and skips files whose
 * inputs and bytes did not change. Used by `hexrepo build` (loaded from the cache) and kept alive
 * by long-running processes so one new tarball costs three signatures.
 */
export class RegistryIndex {
  readonly #packages = new Map<string, PackageEntry>();
  readonly #dirty = new Set<string>();
  readonly #removedPackages = new Set<string>();
  #sortedNames: string[] | null = null;
  /**
   * The `names` and `versions` entries of every package in name order, as last assembled, and the
   * packages whose entries changed since: a flush re-encodes those and concatenates, instead of
   * visiting every package of the repository. Null until the first assembly and whenever the set
   * of packages changes.
   */
  #parts: { names: Uint8Array[]; versions: Uint8Array[]; position: Map<string, number>; blocks: { names: (Uint8Array | null)[]; versions: (Uint8Array | null)[] } } | null = null;
  readonly #staleParts = new Set<string>();
  #indexesDirty = true;
  readonly #listeners = new Set<(name: string) => void>();

  constructor(
    readonly repository: string,
    private readonly privateKey: KeyObject,
    private readonly releaseState: ReleaseStateLookup = () => undefined,
  ) {}

  /** Number of packages and releases. */
  get size(): { packages: number; releases: number } {
    let releases = 0;
    for (const p of this.#packages.values()) releases += p.releases.size;
    return { packages: this.#packages.size, releases };
  }

  /** Package names, sorted. */
  packageNames(): string[] {
    // Sorted once per change of the package set, not once per flush (2,000 names: ~1 ms each time).
    this.#sortedNames ??= [...this.#packages.keys()].sort();
    return [...this.#sortedNames];
  }

  /** The releases of a package, ascending by SemVer (empty when unknown). */
  releasesOf(name: string): ReleaseRecord[] {
    // Each version parsed once, not once per comparison: a fresh index sorts every package's
    // releases for `versions` and `names`, and parsing was most of an add-one build's CPU.
    const keyed = [...(this.#packages.get(name)?.releases.values() ?? [])].map((r) => ({ r, v: parseVersion(r.facts.version) ?? r.facts.version }));
    return keyed.sort((a, b) => compareVersions(a.v, b.v)).map((k) => k.r);
  }

  /** One release of a package, if there is one (no sort of the package's releases). */
  release(name: string, version: string): ReleaseRecord | undefined {
    return this.#packages.get(name)?.releases.get(version);
  }

  /** How many releases a package has (0: unknown). */
  releaseCount(name: string): number {
    return this.#packages.get(name)?.releases.size ?? 0;
  }

  /** The release built from tarball file `file`, if any. */
  releaseOfFile(file: string): ReleaseRecord | undefined {
    // Files are named NAME-VERSION.tar (checked when read), so the package is known from the name.
    const name = file.slice(0, file.indexOf('-'));
    for (const r of this.#packages.get(name)?.releases.values() ?? []) if (r.file === file) return r;
    return undefined;
  }

  /** Adds or replaces a release. */
  put(record: ReleaseRecord): void {
    const { name, version } = record.facts;
    let entry = this.#packages.get(name);
    if (!entry) {
      entry = { releases: new Map() };
      this.#packages.set(name, entry);
      this.#sortedNames = null;
      this.#parts = null;
      this.#removedPackages.delete(name);
    }
    entry.releases.set(version, record);
    this.touch(name);
  }

  /** Removes a release; the package goes when its last release goes. */
  remove(name: string, version: string): void {
    const entry = this.#packages.get(name);
    if (!entry?.releases.delete(version)) return;
    if (entry.releases.size === 0) {
      this.#packages.delete(name);
      this.#sortedNames = null;
      this.#parts = null;
      this.#dirty.delete(name);
      this.#removedPackages.add(name);
      this.#indexesDirty = true;
      for (const fn of this.#listeners) fn(name);
    } else this.touch(name);
  }

  /**
   * Call `fn` with a package's name whenever it changes (a release put or removed, its state
   * touched): what keeps derived views, such as the search index, current. Returns the unsubscribe.
   */
  onChange(fn: (name: string) => void): () => void {
    this.#listeners.add(fn);
    return () => void this.#listeners.delete(fn);
  }

  /** Marks a package stale, e.g. after its retirement state changed. */
  touch(name: string): void {
    const entry = this.#packages.get(name);
    if (entry) delete entry.memo;
    this.#staleParts.add(name);
    this.#dirty.add(name);
    this.#indexesDirty = true;
    for (const fn of this.#listeners) fn(name);
  }

  /** The `RegistryRelease`s of a package, with repository-side state merged in. */
  registryReleases(name: string): RegistryRelease[] {
    return this.releasesOf(name).map((r) => this.#withState(r));
  }

  /** One `RegistryRelease` of a package, with its repository-side state; undefined when there is none. */
  registryRelease(name: string, version: string): RegistryRelease | undefined {
    const record = this.release(name, version);
    return record ? this.#withState(record) : undefined;
  }

  #withState(r: ReleaseRecord): RegistryRelease {
    const state = this.releaseState(r.facts.name, r.facts.version);
    // Field by field: facts loaded from the build cache decode lazily, from getters a spread skips.
    const f = r.facts;
    return {
      name: f.name,
      version: f.version,
      innerChecksum: f.innerChecksum,
      outerChecksum: f.outerChecksum,
      dependencies: f.dependencies,
      ...(state?.retired ? { retired: state.retired } : {}),
      ...(state?.publishedAt !== undefined ? { publishedAt: state.publishedAt } : {}),
      ...(state?.advisories && state.advisories.length > 0 ? { advisories: state.advisories } : {}),
    };
  }

  /**
   * Write what is stale. `outputs` is the output cache (updated in place); `listing` holds what the
   * store has now, so a file edited or deleted behind hexrepo's back is rewritten.
   */
  /**
   * With `conditional`, every registry file is written only if the store still holds the version
   * this index last wrote or saw (If-Match its etag, or If-None-Match for a new file): another
   * writer's change makes the flush fail with STORAGE_CONFLICT instead of being overwritten.
   * With `signer` (a build pool's), files are signed and gzipped on its worker threads.
   */
  async flush(store: BlobStore, outputs: Map<string, CachedOutput>, listing: OutputListing | null, onProgress?: (done: number, total: number) => void, opts: { conditional?: boolean; signer?: PoolSigner } = {}): Promise<FlushResult> {
    const result: FlushResult = { written: [], removed: [], unchanged: 0 };
    // What to write for one output, or null when it holds these bytes already. The payload is
    // encoded synchronously, before the first await (the signature may come from a worker thread).
    const stage = async (key: string, inputs: string, make: () => Uint8Array | Promise<Uint8Array>): Promise<StagedOutput | null> => {
      const cached = outputs.get(key);
      const onStore = listing ? listing.get(key) : undefined;
      const intact = cached && (listing === null || (onStore && onStore.size === cached.size && onStore.mtimeMs === cached.mtimeMs));
      if (cached && cached.inputs === inputs && intact) {
        result.unchanged++;
        return null;
      }
      const body = await make();
      const etag = contentEtag(body);
      if (cached && intact && cached.etag === etag) {
        outputs.set(key, { ...cached, inputs });
        result.unchanged++;
        return null;
      }
      // Not known to hold these bytes (no cache, or the file changed behind its back): a file that
      // already holds exactly them is counted unchanged and left alone, not rewritten.
      if (!intact && (listing === null || onStore)) {
        const current = await store.head(key);
        if (current?.etag === etag) {
          outputs.set(key, { size: current.size, mtimeMs: current.mtime.getTime(), etag, inputs });
          result.unchanged++;
          return null;
        }
      }
      const condition = !opts.conditional ? {} : cached ? { ifMatch: cached.etag } : { ifNoneMatch: '*' as const };
      return { key, body, etag, inputs, opts: { contentType: 'application/octet-stream', ...condition } };
    };
    // One durable batch, renamed in the order given.
    const write = async (staged: readonly (StagedOutput | null)[]): Promise<void> => {
      const batch = staged.filter((e): e is StagedOutput => e !== null);
      if (batch.length === 0) return;
      let puts;
      try {
        puts = await putMany(
          store,
          batch.map((e) => ({ key: e.key, body: e.body, opts: e.opts })),
        );
      } catch (err) {
        // The entries placed before the failure are recorded, so the next flush's conditions expect them.
        await Promise.all(
          batch.map(async (e) => {
            const now = await store.head(e.key).catch(() => null);
            if (now?.etag === e.etag) outputs.set(e.key, { size: now.size, mtimeMs: now.mtime.getTime(), etag: e.etag, inputs: e.inputs });
          }),
        );
        throw err;
      }
      await Promise.all(
        batch.map(async (e, i) => {
          const mtime = puts[i]?.mtime ?? (await store.head(e.key))?.mtime;
          outputs.set(e.key, { size: e.body.byteLength, mtimeMs: mtime ? mtime.getTime() : 0, etag: e.etag, inputs: e.inputs });
        }),
      );
      for (const e of batch) result.written.push(e.key);
    };

    // What this flush covers is taken now, synchronously: changes made while it awaits its writes
    // (a long-running server keeps accepting them) stay marked for the next flush. The indexes are
    // assembled from this same moment, so they never name a release whose package file is older.
    const dirty = [...this.#dirty].filter((n) => this.#packages.has(n)).sort();
    this.#dirty.clear();
    const indexes = this.#indexesDirty ? this.#assembleIndexes() : null;
    this.#indexesDirty = false;
    const removed = [...this.#removedPackages].sort();
    this.#removedPackages.clear();
    try {
      await this.#writeAll(stage, write, dirty, indexes, removed, outputs, listing, result, store, onProgress, opts.signer);
    } catch (err) {
      // Nothing is lost: whatever this flush was to write stays stale for the next one.
      for (const name of dirty) if (this.#packages.has(name)) this.touch(name);
      if (indexes) this.#indexesDirty = true;
      for (const name of removed) if (!this.#packages.has(name)) this.#removedPackages.add(name);
      throw err;
    }
    return result;
  }

  #assembleIndexes(): { versions: Uint8Array; names: Uint8Array } {
    if (!this.#parts) {
      const names = this.packageNames();
      const memos = names.map((n) => this.#memo(n));
      const blocks = Math.ceil(names.length / PARTS_PER_BLOCK);
      this.#parts = {
        names: memos.map((m) => m.names),
        versions: memos.map((m) => m.versions),
        position: new Map(names.map((n, i) => [n, i])),
        blocks: { names: new Array<Uint8Array | null>(blocks).fill(null), versions: new Array<Uint8Array | null>(blocks).fill(null) },
      };
    } else {
      for (const name of this.#staleParts) {
        const i = this.#parts.position.get(name);
        if (i === undefined) continue;
        const memo = this.#memo(name);
        this.#parts.names[i] = memo.names;
        this.#parts.versions[i] = memo.versions;
        this.#parts.blocks.names[Math.floor(i / PARTS_PER_BLOCK)] = null;
        this.#parts.blocks.versions[Math.floor(i / PARTS_PER_BLOCK)] = null;
      }
    }
    this.#staleParts.clear();
    const parts = this.#parts;
    // Blocks of consecutive entries, each joined once until one of its packages changes: a flush
    // copies a few dozen blocks instead of one entry per package.
    const blocksOf = (all: Uint8Array[], blocks: (Uint8Array | null)[]): Uint8Array[] => blocks.map((b, k) => (blocks[k] = b ?? Buffer.concat(all.slice(k * PARTS_PER_BLOCK, (k + 1) * PARTS_PER_BLOCK))));
    return {
      versions: assembleVersionsPayload(blocksOf(parts.versions, parts.blocks.versions), this.repository),
      names: assembleNamesPayload(blocksOf(parts.names, parts.blocks.names), this.repository),
    };
  }

  async #writeAll(
    stage: (key: string, inputs: string, make: () => Uint8Array | Promise<Uint8Array>) => Promise<StagedOutput | null>,
    write: (staged: readonly (StagedOutput | null)[]) => Promise<void>,
    dirty: string[],
    indexes: { versions: Uint8Array; names: Uint8Array } | null,
    removed: string[],
    outputs: Map<string, CachedOutput>,
    listing: OutputListing | null,
    result: FlushResult,
    store: BlobStore,
    onProgress?: (done: number, total: number) => void,
    signer?: PoolSigner,
  ): Promise<void> {
    // The payload is encoded here, synchronously, from this flush's moment; only the signature and
    // gzip (the costly part) go to a worker when there is a signer.
    const wrap = (payload: Uint8Array): Uint8Array | Promise<Uint8Array> => (signer ? signer.signAndWrap(payload) : signAndWrap(payload, this.privateKey));
    // 1. packages/NAME for every stale package, before any index names them, in durable batches.
    //    Signing is CPU work on this thread (or the signer's workers); up to BATCHES_IN_FLIGHT
    //    batches are written meanwhile, and up to BATCHES_AHEAD signed or being signed.
    const pending = new Set<Promise<void>>();
    let failure: unknown = null;
    let done = 0;
    let batch: Promise<StagedOutput | null>[] = [];
    let writing = 0;
    const waitingToWrite: (() => void)[] = [];
    const writeInTurn = async (staged: readonly (StagedOutput | null)[]): Promise<void> => {
      while (writing >= BATCHES_IN_FLIGHT) await new Promise<void>((resolve) => waitingToWrite.push(resolve));
      writing++;
      try {
        await write(staged);
      } finally {
        writing--;
        waitingToWrite.shift()?.();
      }
    };
    const send = (staged: Promise<StagedOutput | null>[]): void => {
      const p = Promise.all(staged)
        .then(writeInTurn)
        .then(
          () => onProgress?.((done += staged.length), dirty.length),
          (err: unknown) => {
            failure ??= err;
          },
        );
      pending.add(p);
      void p.finally(() => pending.delete(p));
    };
    for (const name of dirty) {
      if (failure) break;
      // Removed while an earlier write was awaited: its removal is the next flush's work.
      if (!this.#packages.has(name)) continue;
      const inputs = this.#memo(name).inputs;
      const staged = stage(packageKey(name), inputs, () => wrap(encodePackagePayload({ repository: this.repository, name, releases: this.registryReleases(name) })));
      // A failed head is reported when its batch is written.
      staged.catch(() => undefined);
      batch.push(staged);
      if (batch.length < BATCH_SIZE) continue;
      send(batch);
      batch = [];
      if (pending.size >= BATCHES_AHEAD) await Promise.race(pending);
    }
    await Promise.all(pending);
    if (failure) throw failure;

    // 2. The last packages, then versions, then names, in one batch renamed in that order, only once
    //    every package file of the earlier batches is in place: each index names only package files
    //    already there. (Mix and rebar3 read neither index; mirrors read both.) A single publish is
    //    this one batch: one fsync wave for packages/NAME, versions and names.
    const last = [...batch];
    if (indexes) {
      last.push(
        stage(VERSIONS_KEY, digest(indexes.versions), () => wrap(indexes.versions)),
        stage(NAMES_KEY, digest(indexes.names), () => wrap(indexes.names)),
      );
    }
    await write(await Promise.all(last));
    if (batch.length > 0) onProgress?.((done += batch.length), dirty.length);

    // 3. packages whose last tarball is gone: only now that the indexes no longer list them (and
    //    not if the package came back meanwhile).
    for (const name of removed) {
      const key = packageKey(name);
      if (this.#packages.has(name)) continue;
      if (outputs.has(key) || listing?.has(key)) {
        await store.delete(key);
        outputs.delete(key);
        result.removed.push(key);
      }
    }
  }

  /**
   * Declare every output current: the store holds exactly what a flush of this index would write
   * (the build checked it against its stamp). Nothing is signed until something changes.
   */
  markClean(): void {
    this.#dirty.clear();
    this.#removedPackages.clear();
    this.#indexesDirty = false;
  }

  /** Forget outputs of packages no longer present, e.g. stale `packages/X` found on the store. */
  markRemoved(name: string): void {
    if (!this.#packages.has(name)) {
      this.#removedPackages.add(name);
      this.#indexesDirty = true;
    }
  }

  /** The package's memo, once a flush computed it (for the build cache to keep). */
  memoOf(name: string): PackageMemo | undefined {
    return this.#packages.get(name)?.memo;
  }

  /**
   * Take a memo kept from an earlier process when it was made from exactly this package's current
   * releases and states; true when taken. The package stays marked for the next flush, which then
   * only compares its inputs with the cached output's.
   */
  seedMemo(name: string, memo: PackageMemo): boolean {
    const entry = this.#packages.get(name);
    if (!entry || entry.memo || memo.made !== this.#made(name, entry)) return false;
    entry.memo = memo;
    return true;
  }

  #made(name: string, entry: PackageEntry): string {
    const lines: string[] = [];
    for (const r of entry.releases.values()) lines.push(`${r.file}:${r.size}:${r.mtimeMs}:${JSON.stringify(this.releaseState(name, r.facts.version) ?? null)}`);
    return lines.sort().join('\n');
  }

  #memo(name: string): PackageMemo {
    const entry = this.#packages.get(name);
    if (!entry) throw new Error(`unknown package ${name}`);
    if (entry.memo) return entry.memo;
    const releases = this.releasesOf(name);
    const states = releases.map((r) => this.releaseState(name, r.facts.version));
    const stamp = createHash('sha256');
    stamp.update(this.repository);
    releases.forEach((r, i) => stamp.update(`\n${r.file}:${r.size}:${r.mtimeMs}:${JSON.stringify(states[i] ?? null)}`));
    const newestMs = Math.max(...releases.map((r) => r.mtimeMs));
    const retired = states.flatMap((s, i) => (s?.retired ? [i] : []));
    const withAdvisories = states.flatMap((s, i) => (s?.advisories && s.advisories.length > 0 ? [i] : []));
    entry.memo = {
      made: this.#made(name, entry),
      inputs: stamp.digest('base64'),
      names: encodeNamesEntry({ name, updatedAt: { seconds: Math.floor(newestMs / 1000), nanos: 0 } }),
      versions: encodeVersionsEntry({ name, versions: releases.map((r) => r.facts.version), retired, withAdvisories }),
    };
    return entry.memo;
  }
}

function digest(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('base64');
}
