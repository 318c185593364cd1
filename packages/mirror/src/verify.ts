/**
 * Verification of upstream answers before anything is stored or served (WAVE3 contract): registry
 * files by signature, repository name and package name; tarballs by SHA-256 against the outer
 * checksum of a verified `packages/NAME`. The mirror and `hexrepo mirror sync` both use these.
 */
import { createHash, type KeyObject } from 'node:crypto';
import { HexrepoError } from '@hexrepo/core';
import { unpackNames, unpackPackage, unpackVersions, type UnpackedNames, type UnpackedRelease } from '@hexrepo/registry';

/** A verified `versions` (the registry package does not export the type by name). */
export type UnpackedVersions = ReturnType<typeof unpackVersions>;

/** A release of a verified `packages/NAME`, with its outer checksum as lowercase hex (null in registries older than outer checksums). */
export type VerifiedRelease = UnpackedRelease & { checksum: string | null };

/** A verified `packages/NAME`. */
export interface VerifiedPackage {
  repository: string;
  name: string;
  releases: VerifiedRelease[];
}

function upstreamContext(err: unknown, what: string, repository: string): never {
  if (err instanceof HexrepoError) {
    throw err.withContext(`upstream ${what} of repository "${repository}" refused`, {
      hint: 'the upstream answer does not verify against the configured public key and repository name: check the mirror\'s "url", "repository" and "publicKey", or a proxy rewriting answers; nothing was stored',
    });
  }
  throw err;
}

/** Verify `names` (signature with `key`, repository name) and decode it. Throws a HexrepoError on failure. */
export function verifyNames(bytes: Uint8Array, key: KeyObject, repository: string): UnpackedNames {
  try {
    return unpackNames(bytes, { publicKey: key, repository });
  } catch (err) {
    return upstreamContext(err, 'names', repository);
  }
}

/** Verify `versions` (signature with `key`, repository name) and decode it. Throws a HexrepoError on failure. */
export function verifyVersions(bytes: Uint8Array, key: KeyObject, repository: string): UnpackedVersions {
  try {
    return unpackVersions(bytes, { publicKey: key, repository });
  } catch (err) {
    return upstreamContext(err, 'versions', repository);
  }
}

/**
 * Verify `packages/NAME` (signature with `key`, repository name, package name) and decode it; each
 * release carries `checksum`, the outer checksum as lowercase hex. Throws a HexrepoError on failure.
 */
export function verifyPackage(bytes: Uint8Array, key: KeyObject, repository: string, name: string): VerifiedPackage {
  try {
    const pkg = unpackPackage(bytes, { publicKey: key, repository, name });
    return {
      repository: pkg.repository,
      name: pkg.name,
      releases: pkg.releases.map((r) => ({ ...r, checksum: r.outerChecksum ? Buffer.from(r.outerChecksum).toString('hex') : null })),
    };
  } catch (err) {
    return upstreamContext(err, `packages/${name}`, repository);
  }
}

/** Lowercase hex SHA-256 of `bytes`. */
export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/**
 * Check a tarball against the outer checksum of its release in a verified `packages/NAME`.
 * Throws REGISTRY_CHECKSUM_MISMATCH when the SHA-256 differs.
 */
export function verifyTarball(bytes: Uint8Array, expectedSha256Hex: string): void {
  const actual = sha256Hex(bytes);
  if (actual !== expectedSha256Hex.toLowerCase()) {
    throw new HexrepoError('REGISTRY_CHECKSUM_MISMATCH', `upstream tarball has SHA-256 ${actual}, but the verified registry says ${expectedSha256Hex.toLowerCase()}`, {
      hint: 'the upstream (or a proxy in between) served other bytes than it signed; nothing was stored, try again later or report it to the upstream',
      expected: expectedSha256Hex.toLowerCase(),
      actual,
    });
  }
}
