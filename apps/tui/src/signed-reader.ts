/**
 * Read a repository the way a client does: `names`, `versions` and `packages/NAME`, each
 * signature-checked against the repository's public key. Used for a remote server and for a local
 * folder opened without the signing key (read-only).
 */
import type { KeyObject } from 'node:crypto';
import { HexrepoError, toHex } from '@hexrepo/core';
import { proto, unpackNames, unpackPackage, unpackVersions, unwrapAndVerify } from '@hexrepo/registry';
import { byName, summarize, type PackageSummary, type Release } from './source.js';

export type Fetcher = (path: string) => Promise<Uint8Array | null>;

/** The repository name as signed into `names` (checked against `expected` when given). */
export function repositoryOfNames(file: Uint8Array, publicKey: KeyObject, expected?: string): string {
  const payload = unwrapAndVerify(file, publicKey, 'names');
  const repository = proto.names.Names.decode(payload).repository;
  if (expected !== undefined && expected !== repository) {
    throw new HexrepoError('REGISTRY_BAD_REPO_NAME', `names is signed for repository "${repository}", not "${expected}"`);
  }
  return repository;
}

export class SignedReader {
  constructor(
    private readonly get: Fetcher,
    private readonly publicKey: KeyObject,
    readonly repository: string,
  ) {}

  async #required(path: string): Promise<Uint8Array> {
    const bytes = await this.get(path);
    if (!bytes) throw new HexrepoError('REGISTRY_MISSING', `${path} is missing from the repository`, { hint: 'build the registry with "hexrepo build"' });
    return bytes;
  }

  /** Names from `names`, versions and retirements from `versions` (one file each, whatever the package count). */
  async listPackages(): Promise<PackageSummary[]> {
    const opts = { publicKey: this.publicKey, repository: this.repository };
    const names = unpackNames(await this.#required('names'), opts);
    const versions = unpackVersions(await this.#required('versions'), opts);
    const byPkg = new Map(versions.packages.map((p) => [p.name, p]));
    return names.packages
      .map(({ name }) => {
        const v = byPkg.get(name);
        const list = v?.versions ?? [];
        return summarize(name, list, new Set((v?.retired ?? []).map((i) => list[i]!)));
      })
      .sort(byName);
  }

  async releases(name: string): Promise<Release[]> {
    const pkg = unpackPackage(await this.#required(`packages/${name}`), { publicKey: this.publicKey, repository: this.repository, name });
    return pkg.releases.map((r) => ({
      version: r.version,
      checksum: r.outerChecksum ? toHex(r.outerChecksum) : '',
      innerChecksum: toHex(r.innerChecksum),
      ...(r.publishedAt !== undefined ? { publishedAt: r.publishedAt } : {}),
      ...(r.retired ? { retired: r.retired } : {}),
      dependencies: r.dependencies.map((d) => ({ ...d })),
    }));
  }
}
