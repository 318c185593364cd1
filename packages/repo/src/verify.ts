import { createHash, type KeyObject } from 'node:crypto';
import { compareVersions, isHexrepoError, toHex } from '@hexrepo/core';
import { loadPublicKey, unpackNames, unpackPackage, unpackPolicy, unpackVersions } from '@hexrepo/registry';
import type { BlobStore } from '@hexrepo/storage';
import { NAMES_KEY, packageKey, packageNameOf, PACKAGES_PREFIX, PUBLIC_KEY_KEY, tarballFileOf, tarballKey, TARBALLS_PREFIX, VERSIONS_KEY } from './layout.js';
import { POLICIES_PREFIX, policyNameOf } from './policies.js';

/** One finding of `verifyRepository`. */
export interface VerifyProblem {
  key: string;
  code: string;
  message: string;
}

export interface VerifyReport {
  repository: string;
  ok: boolean;
  packages: number;
  releases: number;
  tarballsChecked: number;
  problems: VerifyProblem[];
  /** Tarballs in `tarballs/` that no release names (not an error: `build` would add them). */
  unlisted: string[];
}

/**
 * Check a repository as a strict client would: every registry file's signature, repository name
 * and package name; names, versions and packages/* agreeing with each other; and every tarball's
 * SHA-256 against the outer checksum of its release. Reads every tarball once.
 */
export async function verifyRepository(store: BlobStore, opts: { repository: string; publicKey?: KeyObject }): Promise<VerifyReport> {
  const problems: VerifyProblem[] = [];
  const report = (key: string, err: unknown, code = 'REGISTRY_CORRUPT'): void => {
    problems.push({ key, code: isHexrepoError(err) ? err.code : code, message: err instanceof Error ? err.message : String(err) });
  };
  const { repository } = opts;
  let publicKey = opts.publicKey;
  if (!publicKey) {
    const pem = await store.get(PUBLIC_KEY_KEY);
    if (!pem) {
      problems.push({ key: PUBLIC_KEY_KEY, code: 'REGISTRY_MISSING', message: 'no public_key in the repository and none given with --public-key' });
      return { repository, ok: false, packages: 0, releases: 0, tarballsChecked: 0, problems, unlisted: [] };
    }
    try {
      publicKey = loadPublicKey(new TextDecoder().decode(pem.body));
    } catch (err) {
      report(PUBLIC_KEY_KEY, err);
      return { repository, ok: false, packages: 0, releases: 0, tarballsChecked: 0, problems, unlisted: [] };
    }
  }

  const read = async <T>(key: string, unpack: (bytes: Uint8Array) => T): Promise<T | null> => {
    const obj = await store.get(key);
    if (!obj) {
      problems.push({ key, code: 'REGISTRY_MISSING', message: `${key} is missing` });
      return null;
    }
    try {
      return unpack(obj.body);
    } catch (err) {
      report(key, err);
      return null;
    }
  };
  const names = await read(NAMES_KEY, (b) => unpackNames(b, { publicKey: publicKey!, repository }));
  const versions = await read(VERSIONS_KEY, (b) => unpackVersions(b, { publicKey: publicKey!, repository }));

  const packageFiles = new Set<string>();
  for await (const o of store.list(PACKAGES_PREFIX)) {
    const name = packageNameOf(o.key);
    if (name) packageFiles.add(name);
  }
  const listed = new Set(names?.packages.map((p) => p.name) ?? []);
  for (const name of listed) if (!packageFiles.has(name)) problems.push({ key: packageKey(name), code: 'REGISTRY_MISSING', message: `names lists ${name} but packages/${name} is missing` });
  if (names) for (const name of packageFiles) if (!listed.has(name)) problems.push({ key: packageKey(name), code: 'REGISTRY_CORRUPT', message: `packages/${name} exists but names does not list it` });
  const versionsOf = new Map(versions?.packages.map((p) => [p.name, p.versions]) ?? []);
  const advisedOf = new Map(versions?.packages.map((p) => [p.name, (p.withAdvisories ?? []).map((i) => p.versions[i] ?? `#${i}`)]) ?? []);

  const tarballs = new Set<string>();
  for await (const o of store.list(TARBALLS_PREFIX)) {
    const file = tarballFileOf(o.key);
    if (file) tarballs.add(file);
  }
  let releases = 0;
  let tarballsChecked = 0;
  for (const name of [...packageFiles].sort()) {
    const pkg = await read(packageKey(name), (b) => unpackPackage(b, { publicKey: publicKey!, repository, name }));
    if (!pkg) continue;
    const inVersions = versionsOf.get(name);
    const mine = pkg.releases.map((r) => r.version).sort(compareVersions);
    if (versions && (!inVersions || [...inVersions].sort(compareVersions).join(' ') !== mine.join(' '))) {
      problems.push({ key: packageKey(name), code: 'REGISTRY_CORRUPT', message: `versions lists ${inVersions?.join(', ') || 'nothing'} for ${name} but packages/${name} has ${mine.join(', ') || 'nothing'}` });
    }
    const advised = pkg.releases.filter((r) => r.advisories).map((r) => r.version);
    if (versions && inVersions && (advisedOf.get(name) ?? []).join(' ') !== advised.sort(compareVersions).join(' ')) {
      problems.push({ key: packageKey(name), code: 'REGISTRY_CORRUPT', message: `versions marks ${advisedOf.get(name)?.join(', ') || 'no release'} of ${name} with advisories but packages/${name} gives ${advised.join(', ') || 'none'}` });
    }
    for (const release of pkg.releases) {
      releases++;
      const key = tarballKey(name, release.version);
      tarballs.delete(key.slice(TARBALLS_PREFIX.length));
      if (!release.outerChecksum) {
        problems.push({ key: packageKey(name), code: 'REGISTRY_CORRUPT', message: `${name} ${release.version} has no outer_checksum; Mix and rebar3 cannot install it` });
        continue;
      }
      const obj = await store.get(key);
      if (!obj) {
        problems.push({ key, code: 'REGISTRY_MISSING', message: `${key} is missing but packages/${name} lists ${release.version}` });
        continue;
      }
      tarballsChecked++;
      const actual = createHash('sha256').update(obj.body).digest();
      if (!actual.equals(release.outerChecksum)) {
        problems.push({ key, code: 'REGISTRY_CHECKSUM_MISMATCH', message: `${key} has SHA-256 ${actual.toString('hex')} but the registry says ${toHex(release.outerChecksum)}` });
      }
    }
  }
  // Policies (Hex 2.5) get the checks Mix makes: signature, repository and policy name.
  for await (const o of store.list(POLICIES_PREFIX)) {
    const name = policyNameOf(o.key);
    if (name) await read(o.key, (b) => unpackPolicy(b, { publicKey: publicKey!, repository, name }));
  }
  return { repository, ok: problems.length === 0, packages: packageFiles.size, releases, tarballsChecked, problems, unlisted: [...tarballs].sort() };
}
