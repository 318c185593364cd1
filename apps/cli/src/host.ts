/**
 * Open the repositories a host serves, each the same way: its store (a folder or a bucket, hot
 * files cached in memory), and with its signing key the publish API's service, its registry
 * brought up to date and its build cache saved (openRepository).
 */
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { HexrepoError } from '@hexrepo/core';
import { logMirrorEvent, type HostedRepository, type Logger } from '@hexrepo/http';
import { MirrorCache, resolveUpstream, UpstreamClient, type ProxySettings } from '@hexrepo/mirror';
import { openRepository, type OpenRepository } from '@hexrepo/repo';
import { CachedStore, FsStore } from '@hexrepo/storage';
import { defaultCachePath, loadSigningKey, storeCachePath } from './project.js';
import type { ServedRepository } from './serve-config.js';
import { loadStoreSigningKey, openStore } from './stores.js';

/** The proxy settings of the environment (HTTPS_PROXY, HTTP_PROXY, NO_PROXY, or lowercase), for a mirror's upstream. */
export function proxyFromEnv(env: Readonly<Record<string, string | undefined>>): ProxySettings {
  const httpProxy = env.HTTP_PROXY ?? env.http_proxy;
  const httpsProxy = env.HTTPS_PROXY ?? env.https_proxy;
  const noProxy = env.NO_PROXY ?? env.no_proxy;
  return { ...(httpProxy ? { httpProxy } : {}), ...(httpsProxy ? { httpsProxy } : {}), ...(noProxy ? { noProxy } : {}) };
}

export interface OpenedHost {
  repositories: HostedRepository[];
  /** Where each repository lives (folder or store URL), by name, for the start-up lines. */
  where: Map<string, string>;
  /** Resolves once every write made so far is in the registry files of every repository. */
  flushed(): Promise<void>;
  /** Save every build cache. */
  save(): Promise<void>;
  /** Remove the temp files and locks dead processes left in the host's folders (a worker that died). */
  sweep(): Promise<void>;
}

/**
 * Open every repository of the host; `visibilityOf` turns "auto" into public or private.
 * `startUp` (once per server: the primary of a cluster, or the single process) first sweeps what a
 * killed process left in a folder (temp files, locks) and saves each build cache once the registry
 * is up to date; a worker opens from the saved caches and leaves both alone.
 */
export async function openHost(specs: readonly ServedRepository[], opts: { logger: Logger; visibilityOf: (access: ServedRepository['access']) => 'public' | 'private'; startUp: boolean; proxy?: ProxySettings }): Promise<OpenedHost> {
  const repositories: HostedRepository[] = [];
  const where = new Map<string, string>();
  const opened: OpenRepository[] = [];
  const folders: { store: FsStore; log: Logger }[] = [];
  for (const spec of specs) {
    const name = spec.name ?? 'unnamed';
    const log = specs.length > 1 ? opts.logger.child({ repository: name }) : opts.logger;
    const inner = spec.store ? await openStore(spec.store.url, { cwd: spec.store.cwd }) : new FsStore(spec.publicDir!);
    where.set(name, spec.publicDir ?? inner.url);
    // What a killed process left in the folder goes before anything is written.
    if (inner instanceof FsStore) {
      folders.push({ store: inner, log });
      if (opts.startUp) await sweepFolder(inner, log);
    }
    if (spec.mirror) {
      // Read through the memory cache as other repositories are (hits as fast as a local file): what
      // another server writes to a shared store is seen within its revalidation second, and every
      // object there is verified upstream bytes, so a second's delay costs at most one more fetch.
      const m = spec.mirror;
      const cached = new CachedStore(inner);
      const upstream = resolveUpstream({ ...(m.url !== undefined ? { url: m.url } : {}), ...(m.repository !== undefined ? { repository: m.repository } : {}), ...(m.publicKey !== undefined ? { publicKey: m.publicKey } : {}) });
      const client = new UpstreamClient(upstream, { connectTimeoutMs: m.connectTimeout * 1000, firstByteTimeoutMs: m.firstByteTimeout * 1000, ...(opts.proxy ? { proxy: opts.proxy } : {}) });
      const mirror = new MirrorCache({ store: cached, client, maxAgeMs: m.maxAge * 1000, onEvent: logMirrorEvent(log) });
      where.set(name, `${spec.publicDir ?? inner.url}, mirror of ${upstream.url}`);
      log.info({ upstream: upstream.url, repository: upstream.repository, maxAge: m.maxAge }, 'mirror: read-only, fetching from the upstream on demand');
      repositories.push({ name, store: cached, visibility: opts.visibilityOf(spec.access), mirror, ...(spec.root ? { root: true } : {}) });
      continue;
    }
    const store = new CachedStore(inner);
    // The publish API needs the signing key. The one named by hexrepo.json is optional (a server
    // may only read); one given explicitly must load.
    let repo: OpenRepository | undefined;
    if (spec.privateKey && (spec.keyRequired || existsSync(spec.privateKey))) {
      if (!spec.name) throw new HexrepoError('CONFIG_INVALID', 'the publish API needs the repository name: pass --name or set HEXREPO_NAME (or run where hexrepo.json is)', { setting: 'name' });
      const privateKey = spec.store ? await loadStoreSigningKey(spec.privateKey, inner) : await loadSigningKey(spec.privateKey, spec.publicDir!);
      const cachePath = spec.store ? storeCachePath(spec.store.stateBase, inner.url) : defaultCachePath(spec.publicDir!);
      // Publishes sign and gzip their registry files on two threads beside the one serving requests.
      repo = await openRepository({ store, repository: spec.name, privateKey, cachePath, flushThreads: Math.min(2, availableParallelism()) });
      const summary = repo.summary!;
      for (const p of summary.skipped) log.warn({ file: `tarballs/${p.file}`, code: p.code }, `left out of the registry: ${p.message}`);
      log.info({ packages: summary.packages, releases: summary.releases, read: summary.read, written: summary.written.length, ms: summary.durationMs }, 'registry up to date; publishing enabled');
      if (opts.startUp) await repo.save();
      opened.push(repo);
    } else {
      log.info('publishing disabled: no private key (pass --private-key to enable the publish API)');
    }
    repositories.push({ name, store, visibility: opts.visibilityOf(spec.access), ...(spec.root ? { root: true } : {}), ...(repo?.service ? { service: repo.service } : {}) });
  }
  return {
    repositories,
    where,
    async flushed() {
      await Promise.all([...opened.map((r) => r.service?.flushed()), ...repositories.map((r) => r.mirror?.flushed())]);
    },
    async save() {
      await Promise.all(opened.map((r) => r.save()));
    },
    async sweep() {
      for (const { store, log } of folders) await sweepFolder(store, log);
    },
  };
}

async function sweepFolder(store: FsStore, log: Logger): Promise<void> {
  const swept = await store.sweep();
  if (swept.temps.length + swept.locks.length > 0) log.warn({ temps: swept.temps.length, locks: swept.locks.length, files: [...swept.locks, ...swept.temps].slice(0, 20) }, 'removed temp files and locks left by a process that died');
}
