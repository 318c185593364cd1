import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { randomBytes } from 'node:crypto';
import { type Dependency, fromHex, HexrepoError, type ReleaseFacts, toHex } from '@hexrepo/core';
import type { RegistryStamp } from './stamp.js';

/** What the build remembers about one tarball, keyed by its file name. */
export interface CachedTarball {
  size: number;
  mtimeMs: number;
  facts: ReleaseFacts;
}

/** What the build remembers about one file it wrote. */
export interface CachedOutput {
  size: number;
  mtimeMs: number;
  /** Content etag of the bytes written. */
  etag: string;
  /** Fingerprint of the inputs the bytes were made from. */
  inputs: string;
}

/** The per-repository build cache: facts per tarball and what each output was made from. */
export interface BuildCache {
  repository: string;
  keyFingerprint: string;
  tarballs: Map<string, CachedTarball>;
  outputs: Map<string, CachedOutput>;
  /**
   * Digest of every input of the last completed build (tarball names, sizes and mtimes, and the
   * releases' repository-side state), with which `outputs` are known to agree; absent when unknown.
   */
  stamp?: string;
  /**
   * The registry stamp of the last build that took every tarball in, for the stamp file beside the
   * cache (stamp.ts); not part of the cache file.
   */
  registry?: RegistryStamp;
}

// 2: packages/NAME lists dependencies by name; a format-1 cache would keep every packages/NAME it
// wrote in metadata.config's order, as its inputs did not change.
const FORMAT = 2;

interface CacheFile {
  format: number;
  repository: string;
  keyFingerprint: string;
  tarballs: Record<string, { size: number; mtimeMs: number; name: string; version: string; inner: string; outer: string; deps: Dependency[] }>;
  outputs: Record<string, CachedOutput>;
  stamp?: string;
}

/** An empty cache for a repository and key. */
export function emptyCache(repository: string, keyFingerprint: string): BuildCache {
  return { repository, keyFingerprint, tarballs: new Map(), outputs: new Map() };
}

/**
 * Load the cache file. A missing, unreadable or foreign cache (other repository name or key, other
 * format) yields an empty cache: the build then reads everything, which is always correct.
 */
export async function loadCache(path: string, repository: string, keyFingerprint: string): Promise<{ cache: BuildCache; reason: string | null }> {
  let raw: string;
  try {
    raw = await readFile(path, 'utf8');
  } catch {
    return { cache: emptyCache(repository, keyFingerprint), reason: 'no cache yet' };
  }
  try {
    const file = JSON.parse(raw) as CacheFile;
    if (file.format !== FORMAT) return { cache: emptyCache(repository, keyFingerprint), reason: `cache format ${file.format} is not ${FORMAT}` };
    if (file.repository !== repository || file.keyFingerprint !== keyFingerprint) {
      return { cache: emptyCache(repository, keyFingerprint), reason: 'repository name or key changed' };
    }
    const tarballs = new Map<string, CachedTarball>();
    for (const [file_, t] of Object.entries(file.tarballs)) {
      const inner = fromHex(t.inner);
      const outer = fromHex(t.outer);
      if (!inner || !outer) throw new Error(`bad checksum for ${file_}`);
      tarballs.set(file_, { size: t.size, mtimeMs: t.mtimeMs, facts: { name: t.name, version: t.version, innerChecksum: inner, outerChecksum: outer, dependencies: t.deps } });
    }
    const cache: BuildCache = { repository, keyFingerprint, tarballs, outputs: new Map(Object.entries(file.outputs)) };
    if (typeof file.stamp === 'string') cache.stamp = file.stamp;
    return { cache, reason: null };
  } catch (err) {
    return { cache: emptyCache(repository, keyFingerprint), reason: `cache unreadable (${(err as Error).message})` };
  }
}

/** Write the cache atomically (temp + rename). */
export async function saveCache(path: string, cache: BuildCache): Promise<void> {
  const file: CacheFile = { format: FORMAT, repository: cache.repository, keyFingerprint: cache.keyFingerprint, tarballs: {}, outputs: Object.fromEntries(cache.outputs), ...(cache.stamp ? { stamp: cache.stamp } : {}) };
  for (const [name, t] of cache.tarballs) {
    file.tarballs[name] = { size: t.size, mtimeMs: t.mtimeMs, name: t.facts.name, version: t.facts.version, inner: toHex(t.facts.innerChecksum), outer: toHex(t.facts.outerChecksum), deps: t.facts.dependencies };
  }
  try {
    await mkdir(dirname(path), { recursive: true });
    const temp = `${path}.${randomBytes(4).toString('hex')}.tmp`;
    await writeFile(temp, JSON.stringify(file));
    await rename(temp, path);
  } catch (err) {
    throw new HexrepoError('STORAGE_IO', `could not write the build cache ${path}: ${(err as Error).message}`, { path }, { cause: err });
  }
}
