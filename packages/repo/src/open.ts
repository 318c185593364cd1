/**
 * The one way an app opens a repository: load the build cache, bring the registry up to date with
 * the store (an incremental build), keep the service for writes, and save the cache on close.
 * The CLI's build, serve and write commands, the dev server, the TUI and the host all open a
 * repository through here.
 */
import type { KeyObject } from 'node:crypto';
import type { TarballLimits } from '@hexrepo/core';
import { fingerprint } from '@hexrepo/registry';
import { type BlobStore, CachedStore } from '@hexrepo/storage';
import { type BuildOptions, type BuildSummary, scanStore, type StoreScan, writePublicKey } from './build.js';
import { loadCache, saveCache, type BuildCache } from './cache.js';
import { signPolicies } from './policies.js';
import { loadReleaseStates, stateLookup } from './release-state.js';
import { RepoService } from './service.js';
import { loadStampFile, registryStamp, saveStampFile, stampPathOf, tarballsStamp } from './stamp.js';

export interface OpenRepositoryOptions {
  store: BlobStore;
  /** The repository name signed into the registry files. */
  repository: string;
  /** The signing key; without it no service is opened and the repository is only read. */
  privateKey?: KeyObject;
  /**
   * The build cache file: loaded before the opening build, written by `save` and `close`, with
   * the registry stamp beside it (stampPathOf).
   */
  cachePath?: string;
  limits?: Partial<TarballLimits>;
  /** Open no service even with a key (nothing is built or written). @default false */
  readOnly?: boolean;
  /** Start from an empty cache instead of the file's (which `save` still writes). @default false */
  ignoreCache?: boolean;
  /** Leave invalid tarballs out of the opening build instead of failing. @default true */
  skipInvalid?: boolean;
  onProgress?: BuildOptions['onProgress'];
  /** Threads of the opening build. @default BuildOptions.threads' default */
  threads?: number;
  /**
   * Only the opening build's summary is wanted (`hexrepo build`): when the stamp file shows the
   * registry current, the cache is not loaded and no service is opened. @default false
   */
  summaryOnly?: boolean;
  /** RepoServiceOptions.flushThreads. @default 0 */
  flushThreads?: number;
}

export interface OpenRepository {
  name: string;
  store: BlobStore;
  /** The write service; absent when opened without a key, read-only, or `summaryOnly` and up to date. */
  service?: RepoService;
  /** What the opening build did; absent without a service. */
  summary?: BuildSummary;
  /**
   * True when the cache file already says everything the opening build found (it read, wrote and
   * removed nothing): saving it now would rewrite the same content.
   */
  cacheCurrent: boolean;
  /** Wait for pending flushes and save the build cache. */
  close(): Promise<void>;
  /** Save the build cache (when there is a service and a cache path). */
  save(): Promise<void>;
}

/** Open a repository in a store: with a key, through RepoService (an incremental build); without, for reading. */
export async function openRepository(opts: OpenRepositoryOptions): Promise<OpenRepository> {
  const { store, repository, privateKey, cachePath } = opts;
  if (!privateKey || opts.readOnly) {
    return { name: repository, store, cacheCurrent: false, close: async () => undefined, save: async () => undefined };
  }
  const started = performance.now();
  const keyFp = fingerprint(privateKey);
  const stampPath = cachePath ? stampPathOf(cachePath) : undefined;
  const knownStamp = stampPath && !opts.ignoreCache ? await loadStampFile(stampPath, repository, keyFp) : null;
  let scan: StoreScan | undefined;
  if (opts.summaryOnly && knownStamp) {
    // The service reads through a server's read cache the same way (see RepoService.open).
    const source = store instanceof CachedStore ? store.uncached() : store;
    const states = await loadReleaseStates(source);
    scan = await scanStore(source);
    const inputs = tarballsStamp(repository, scan.tarballs, stateLookup(states));
    if (inputs !== null && registryStamp(inputs, keyFp, scan.outputs) === knownStamp.stamp) {
      const publicKey = await writePublicKey(source, privateKey);
      const signed = await signPolicies(source, repository, privateKey);
      const summary: BuildSummary = {
        repository,
        packages: knownStamp.packages,
        releases: knownStamp.releases,
        read: 0,
        reused: scan.tarballs.size,
        skipped: [],
        written: signed.written,
        removed: signed.removed,
        unchanged: scan.outputs.size,
        publicKey,
        upToDate: true,
        durationMs: Math.round(performance.now() - started),
      };
      return { name: repository, store, summary, cacheCurrent: true, close: async () => undefined, save: async () => undefined };
    }
  }
  let cache: BuildCache | undefined;
  let loaded = false;
  if (cachePath && !opts.ignoreCache) {
    const found = await loadCache(cachePath, repository, keyFp);
    cache = found.cache;
    loaded = found.reason === null;
  }
  const cachedTarballs = cache?.tarballs.size;
  const cachedStamp = cache?.stamp;
  const { service, summary } = await RepoService.open({
    store,
    repository,
    privateKey,
    ...(cache ? { cache } : {}),
    ...(opts.limits ? { limits: opts.limits } : {}),
    ...(opts.skipInvalid !== undefined ? { skipInvalid: opts.skipInvalid } : {}),
    ...(opts.onProgress ? { onProgress: opts.onProgress } : {}),
    ...(opts.threads !== undefined ? { threads: opts.threads } : {}),
    ...(scan ? { scan } : {}),
    ...(opts.flushThreads !== undefined ? { flushThreads: opts.flushThreads } : {}),
  });
  const cacheCurrent =
    loaded &&
    service.cache === cache &&
    summary.read === 0 &&
    summary.written.length === 0 &&
    summary.removed.length === 0 &&
    service.cache.tarballs.size === cachedTarballs &&
    service.cache.stamp === cachedStamp &&
    knownStamp?.stamp === service.cache.registry?.stamp;
  const save = async (): Promise<void> => {
    if (!cachePath || !stampPath) return;
    await saveCache(cachePath, service.cache);
    await saveStampFile(stampPath, repository, keyFp, service.cache.registry);
  };
  return {
    name: repository,
    store,
    service,
    summary,
    cacheCurrent,
    save,
    close: async () => {
      await service.flushed();
      await save();
    },
  };
}
