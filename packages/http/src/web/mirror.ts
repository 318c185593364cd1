/**
 * What the web UI shows of a mirror repository: only what its cache holds. Pages read the mirror's
 * store directly — `packages/NAME` verified with the upstream's key and repository name, as the
 * mirror verifies it before serving — and never go through the MirrorCache, so a page view never
 * makes an upstream request (a person browsing must not fill, or wait on, the cache).
 */
import { packageKey, tarballKey, verifyPackage, type VerifiedPackage } from '@hexrepo/mirror';
import type { HostedRepository } from '../host.js';

const NAME_RE = /^[a-z][a-z0-9_]*$/;

/** The names whose `packages/NAME` is cached, sorted. */
export async function cachedPackageNames(repo: HostedRepository): Promise<string[]> {
  const names: string[] = [];
  for await (const info of repo.store.list('packages/')) {
    const name = info.key.slice('packages/'.length);
    if (NAME_RE.test(name)) names.push(name);
  }
  return names.sort();
}

/** The cached, verified `packages/NAME` of a mirror; null when it is not cached. Throws when the stored copy does not verify. */
export async function cachedPackage(repo: HostedRepository, name: string): Promise<VerifiedPackage | null> {
  const mirror = repo.mirror!;
  const obj = await repo.store.get(packageKey(name));
  if (!obj) return null;
  return verifyPackage(obj.body, mirror.upstream.publicKey, mirror.upstream.repository, name);
}

/** Which of these releases' tarballs are cached (a download link to any other would fetch it upstream). */
export async function cachedTarballs(repo: HostedRepository, name: string, versions: readonly string[]): Promise<Set<string>> {
  const heads = await Promise.all(versions.map(async (v) => ((await repo.store.head(tarballKey(name, v))) ? v : null)));
  return new Set(heads.filter((v): v is string => v !== null));
}
