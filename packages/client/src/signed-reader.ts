/**
 * Read a repository the way a Hex client does: `names`, `versions` and `packages/NAME`, each
 * signature-checked against the repository's public key and checked to name the expected
 * repository (the origin), then decoded. Where the bytes come from is a `Fetcher`: a server over
 * HTTP (`httpFiles`), a local folder, a store.
 */
import type { KeyObject } from 'node:crypto';
import { HexrepoError, toHex, type Advisory, type Dependency, type Retirement } from '@hexrepo/core';
import { loadPublicKey, proto, unpackNames, unpackPackage, unpackVersions, unwrapAndVerify } from '@hexrepo/registry';

/** The bytes at a repository path (`names`, `packages/foo`, `public_key`…), or null when absent. */
export type Fetcher = (path: string) => Promise<Uint8Array | null>;

/** A release as `packages/NAME` holds it, checksums in lowercase hex. */
export interface SignedRelease {
  version: string;
  /** Outer checksum ('' in registries too old to carry one). */
  checksum: string;
  innerChecksum: string;
  publishedAt?: number;
  retired?: Retirement;
  /** Security advisories of this release (Package.advisories via advisory_indexes). */
  advisories?: Advisory[];
  dependencies: Dependency[];
}

/** A package of `names` with its versions and retired versions from `versions`. */
export interface PackageVersions {
  name: string;
  /** Ascending by SemVer, as `versions` lists them. */
  versions: string[];
  retired: string[];
  /** Versions with security advisories (`with_advisories`). */
  withAdvisories: string[];
}

/** The repository name as signed into `names` (checked against `expected` when given). */
export function repositoryOfNames(file: Uint8Array, publicKey: KeyObject, expected?: string): string {
  const payload = unwrapAndVerify(file, publicKey, 'names');
  const repository = proto.names.Names.decode(payload).repository;
  if (expected !== undefined && expected !== repository) {
    throw new HexrepoError('REGISTRY_BAD_REPO_NAME', `names is signed for repository "${repository}", not "${expected}"`, {
      hint: 'check the repository name (--name), or the URL: it may serve another repository',
    });
  }
  return repository;
}

export class SignedReader {
  constructor(
    private readonly get: Fetcher,
    readonly publicKey: KeyObject,
    readonly repository: string,
  ) {}

  /**
   * Open a repository with the key it serves at `public_key` (or `publicKey`, when the caller
   * pinned one): `names` must verify and name `repository` when given; otherwise the name signed
   * into it is taken. `location` (a URL or folder) names the repository in messages.
   */
  static async open(get: Fetcher, opts: { location: string; repository?: string; publicKey?: KeyObject }): Promise<SignedReader> {
    let publicKey = opts.publicKey;
    if (!publicKey) {
      const keyBytes = await get('public_key');
      if (!keyBytes) throw new HexrepoError('REGISTRY_MISSING', `${opts.location}/public_key is missing`, { hint: 'check the URL: a Hex repository serves public_key at its root' });
      publicKey = loadPublicKey(keyBytes);
    }
    const names = await get('names');
    if (!names) throw new HexrepoError('REGISTRY_MISSING', `${opts.location}/names is missing`, { hint: 'build the registry with "hexrepo build"' });
    return new SignedReader(get, publicKey, repositoryOfNames(names, publicKey, opts.repository));
  }

  async #required(path: string): Promise<Uint8Array> {
    const bytes = await this.get(path);
    if (!bytes) throw new HexrepoError('REGISTRY_MISSING', `${path} is missing from the repository`, { hint: 'build the registry with "hexrepo build"' });
    return bytes;
  }

  /** Package names from `names`, in its order. */
  async names(): Promise<string[]> {
    return unpackNames(await this.#required('names'), { publicKey: this.publicKey, repository: this.repository }).packages.map((p) => p.name);
  }

  /** Every package of `names` with its versions and retirements from `versions` (two files, whatever the package count). */
  async packages(): Promise<PackageVersions[]> {
    const opts = { publicKey: this.publicKey, repository: this.repository };
    const names = unpackNames(await this.#required('names'), opts);
    const versions = unpackVersions(await this.#required('versions'), opts);
    const byPkg = new Map(versions.packages.map((p) => [p.name, p]));
    return names.packages.map(({ name }) => {
      const v = byPkg.get(name);
      const list = v?.versions ?? [];
      return { name, versions: list, retired: (v?.retired ?? []).map((i) => list[i]!), withAdvisories: (v?.withAdvisories ?? []).map((i) => list[i]!) };
    });
  }

  /** The releases of one package from `packages/NAME`. */
  async releases(name: string): Promise<SignedRelease[]> {
    const pkg = unpackPackage(await this.#required(`packages/${name}`), { publicKey: this.publicKey, repository: this.repository, name });
    return pkg.releases.map((r) => ({
      version: r.version,
      checksum: r.outerChecksum ? toHex(r.outerChecksum) : '',
      innerChecksum: toHex(r.innerChecksum),
      ...(r.publishedAt !== undefined ? { publishedAt: r.publishedAt } : {}),
      ...(r.retired ? { retired: r.retired } : {}),
      ...(r.advisories ? { advisories: r.advisories } : {}),
      dependencies: r.dependencies.map((d) => ({ ...d })),
    }));
  }
}
