/**
 * Open the repositories a host serves, each the same way: its store (a folder or a bucket, hot
 * files cached in memory), and with its signing key the publish API's service, its registry
 * brought up to date and its build cache saved.
 */
import { existsSync } from 'node:fs';
import { HexrepoError } from '@hexrepo/core';
import type { HostedRepository, Logger } from '@hexrepo/http';
import { fingerprint } from '@hexrepo/registry';
import { loadCache, RepoService, saveCache } from '@hexrepo/repo';
import { CachedStore, FsStore } from '@hexrepo/storage';
import { defaultCachePath, loadSigningKey } from './project.js';
import type { ServedRepository } from './serve-config.js';
import { loadStoreSigningKey, openStore, storeCachePath } from './stores.js';

export interface OpenedHost {
  repositories: HostedRepository[];
  /** Where each repository lives (folder or store URL), by name, for the start-up lines. */
  where: Map<string, string>;
  /** Wait for pending writes and save every build cache. */
  close(): Promise<void>;
}

/** Open every repository of the host; `visibilityOf` turns "auto" into public or private. */
export async function openHost(specs: readonly ServedRepository[], opts: { logger: Logger; visibilityOf: (access: ServedRepository['access']) => 'public' | 'private' }): Promise<OpenedHost> {
  const repositories: HostedRepository[] = [];
  const where = new Map<string, string>();
  const closers: (() => Promise<void>)[] = [];
  for (const spec of specs) {
    const name = spec.name ?? 'unnamed';
    const log = specs.length > 1 ? opts.logger.child({ repository: name }) : opts.logger;
    const inner = spec.store ? await openStore(spec.store.url, { cwd: spec.store.cwd }) : new FsStore(spec.publicDir!);
    const store = new CachedStore(inner);
    where.set(name, spec.publicDir ?? inner.url);
    // The publish API needs the signing key. The one named by hexrepo.json is optional (a server
    // may only read); one given explicitly must load.
    let service: RepoService | undefined;
    if (spec.privateKey && (spec.keyRequired || existsSync(spec.privateKey))) {
      if (!spec.name) throw new HexrepoError('CONFIG_INVALID', 'the publish API needs the repository name: pass --name or set HEXREPO_NAME (or run where hexrepo.json is)', { setting: 'name' });
      const privateKey = spec.store ? await loadStoreSigningKey(spec.privateKey, inner) : await loadSigningKey(spec.privateKey, spec.publicDir!);
      const cachePath = spec.store ? storeCachePath(spec.store.stateBase, inner) : defaultCachePath(spec.publicDir!);
      const { cache } = await loadCache(cachePath, spec.name, fingerprint(privateKey));
      const opened = await RepoService.open({ store, repository: spec.name, privateKey, cache });
      service = opened.service;
      const { summary } = opened;
      for (const p of summary.skipped) log.warn({ file: `tarballs/${p.file}`, code: p.code }, `left out of the registry: ${p.message}`);
      log.info({ packages: summary.packages, releases: summary.releases, read: summary.read, written: summary.written.length, ms: summary.durationMs }, 'registry up to date; publishing enabled');
      const save = (): Promise<void> => saveCache(cachePath, opened.service.cache);
      await save();
      closers.push(() => opened.service.flushed().then(save));
    } else {
      log.info('publishing disabled: no private key (pass --private-key to enable the publish API)');
    }
    repositories.push({ name, store, visibility: opts.visibilityOf(spec.access), ...(spec.root ? { root: true } : {}), ...(service ? { service } : {}) });
  }
  return {
    repositories,
    where,
    async close() {
      await Promise.all(closers.map((c) => c()));
    },
  };
}
