/**
 * A local repository folder: with the signing key, through RepoService over FsStore (opening it is
 * an incremental rebuild, logged); without it, read-only, reading the signed files as a client.
 */
import type { KeyObject } from 'node:crypto';
import { fingerprint, loadPublicKey } from '@hexrepo/registry';
import { openRepository } from '@hexrepo/repo';
import { FsStore } from '@hexrepo/storage';
import { parseTarball } from '@hexrepo/tarball';
import { HexrepoError, type TarballLimits } from '@hexrepo/core';
import { repositoryOfNames, SignedReader } from '@hexrepo/client';
import { byName, summarize, type DataSource, type ReleaseMetadata, type SourceInfo } from './source.js';

export interface LocalOptions {
  publicDir: string;
  repository: string;
  /** The signing key; without it the source is read-only. */
  privateKey?: KeyObject;
  /** Why there is no key (shown in the status bar). */
  readOnlyReason?: string;
  limits?: Partial<TarballLimits>;
  /** The build cache `hexrepo build` keeps (loaded and saved when writable). */
  cachePath?: string;
}

function metadataOf(bytes: Uint8Array, limits: Partial<TarballLimits> | undefined): ReleaseMetadata {
  const m = parseTarball(bytes, { ...(limits ? { limits } : {}) }).metadata;
  return { ...(m.description !== undefined ? { description: m.description } : {}), licenses: m.licenses, links: m.links, buildTools: m.buildTools };
}

/** Open a local folder. `log` receives what opening did (the rebuild). */
export async function openLocalSource(opts: LocalOptions, log: (line: string) => void = () => undefined): Promise<DataSource> {
  const store = new FsStore(opts.publicDir);
  if (!opts.privateKey) return readOnlyLocal(store, opts);
  const fp = fingerprint(opts.privateKey);
  const opened = await openRepository({ store, repository: opts.repository, privateKey: opts.privateKey, ...(opts.cachePath ? { cachePath: opts.cachePath } : {}), ...(opts.limits ? { limits: opts.limits } : {}) });
  const service = opened.service!;
  const summary = opened.summary!;
  log(`rebuilt ${summary.repository}: ${summary.packages} packages, ${summary.releases} releases (${summary.read} read, ${summary.reused} cached, ${summary.written.length} files written) in ${Math.round(summary.durationMs)} ms`);
  for (const p of summary.skipped) log(`error: skipped ${p.file}: ${p.message}`);
  const info: SourceInfo = { kind: 'local', repository: opts.repository, fingerprint: fp, location: opts.publicDir };
  return {
    info,
    listPackages: async () =>
      service
        .packageNames()
        .map((name) => {
          const rs = service.releases(name);
          return summarize(
            name,
            rs.map((r) => r.version),
            new Set(rs.filter((r) => r.retired).map((r) => r.version)),
            new Set(rs.filter((r) => r.advisories).map((r) => r.version)),
          );
        })
        .sort(byName),
    releases: async (name) => service.releases(name).map(({ name: _n, ...r }) => r),
    metadata: async (name, version) => {
      const m = await service.metadata(name, version);
      return { ...(m.description !== undefined ? { description: m.description } : {}), licenses: m.licenses, links: m.links, buildTools: m.buildTools };
    },
    publish: async (bytes) => {
      const r = await service.publish(bytes, { replace: false });
      await opened.close();
      return { created: r.created, name: r.name, version: r.version, checksum: r.checksum };
    },
    retire: async (name, version, retirement) => {
      await service.retire(name, version, retirement);
      await service.flushed();
    },
    unretire: async (name, version) => {
      await service.unretire(name, version);
      await service.flushed();
    },
    close: () => opened.close(),
  };
}

async function readOnlyLocal(store: FsStore, opts: LocalOptions): Promise<DataSource> {
  const keyFile = await store.get('public_key');
  if (!keyFile) throw new HexrepoError('REGISTRY_MISSING', `${opts.publicDir}/public_key is missing`, { hint: 'create the repository with "hexrepo init"' });
  const publicKey = loadPublicKey(keyFile.body);
  const reader = new SignedReader(async (path) => (await store.get(path))?.body ?? null, publicKey, opts.repository);
  const readOnly = (): never => {
    throw new HexrepoError('USAGE', `read-only: ${opts.readOnlyReason ?? 'no signing key'}`, { hint: 'pass --private-key, or open the project folder whose hexrepo.json names the key' });
  };
  return {
    info: { kind: 'local', repository: opts.repository, fingerprint: fingerprint(publicKey), location: opts.publicDir, readOnly: opts.readOnlyReason ?? 'no signing key' },
    listPackages: async () => (await reader.packages()).map((p) => summarize(p.name, p.versions, new Set(p.retired), new Set(p.withAdvisories))).sort(byName),
    releases: (name) => reader.releases(name),
    metadata: async (name, version) => {
      const obj = await store.get(`tarballs/${name}-${version}.tar`);
      if (!obj) throw new HexrepoError('NOT_FOUND', `tarballs/${name}-${version}.tar is missing`);
      return metadataOf(obj.body, opts.limits);
    },
    publish: async () => readOnly(),
    retire: async () => readOnly(),
    unretire: async () => readOnly(),
    close: async () => undefined,
  };
}

/**
 * The repository name of a public folder, read from its signed `names` file (which carries it) and
 * checked against the folder's `public_key`: what `hexrepo tui PUBLIC` uses when neither --name nor
 * a hexrepo.json says it.
 */
export async function repositoryOfFolder(publicDir: string): Promise<string> {
  const store = new FsStore(publicDir);
  const hint = 'pass --name NAME, or build the registry first ("hexrepo build")';
  const keyFile = await store.get('public_key');
  if (!keyFile) throw new HexrepoError('REGISTRY_MISSING', `${publicDir}/public_key is missing, so the repository name in names cannot be checked`, { hint });
  const names = await store.get('names');
  if (!names) throw new HexrepoError('REGISTRY_MISSING', `${publicDir}/names is missing, so it cannot tell the repository name`, { hint });
  return repositoryOfNames(names.body, loadPublicKey(keyFile.body));
}
