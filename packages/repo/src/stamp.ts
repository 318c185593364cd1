/**
 * The registry stamp: a digest of everything a registry is built from (each tarball's name, size
 * and mtime, each release's repository-side state) and of every output as the build left it (size
 * and mtime of `names`, `versions` and each `packages/NAME`), kept in a small file beside the build
 * cache. A rebuild that lists the store and finds the same digest knows the registry is current
 * without loading the cache at all, which for 20,000 tarballs is most of a no-change `hexrepo build`.
 *
 * The file states a fact that stays true whenever it is read: "when the store looks like this, its
 * registry is current". It is therefore written independently of the cache (a crash between the
 * two leaves each valid), and a stale one only ever fails to match.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { HexrepoError } from '@hexrepo/core';
import type { ReleaseStateLookup } from './registry-index.js';

/** What the stamp file records: the digest, and what an up-to-date summary reports. */
export interface RegistryStamp {
  stamp: string;
  packages: number;
  releases: number;
}

/** The tarballs of `tarballs/` as listed: file name to size and mtime. */
export type TarballListing = Map<string, { size: number; mtimeMs: number }>;

// Bumped whenever the digest's text or the file's fields change: another format never matches.
const FORMAT = 1;

interface StampFile extends RegistryStamp {
  format: number;
  repository: string;
  keyFingerprint: string;
}

/** The stamp file of a build cache: beside it, named after it. */
export function stampPathOf(cachePath: string): string {
  return `${cachePath}.stamp`;
}

/**
 * `NAME` and `VERSION` of a `NAME-VERSION.tar` file name. Package names have no `-` (hex.pm's
 * `^[a-z][a-z0-9_]*$`), so the first one ends the name; null for a name without one.
 */
export function releaseOfFile(file: string): { name: string; version: string } | null {
  const dash = file.indexOf('-');
  if (dash <= 0 || !file.endsWith('.tar')) return null;
  return { name: file.slice(0, dash), version: file.slice(dash + 1, -'.tar'.length) };
}

/**
 * A digest of the inputs of a registry: the repository name, each tarball's file name, size and
 * mtime, and the repository-side state of its release (retirement, publish time, …), looked up by
 * the name and version of the file name (a valid tarball is named `NAME-VERSION.tar` of its
 * metadata). Null when a file name names no release.
 */
export function tarballsStamp(repository: string, tarballs: Iterable<readonly [string, { size: number; mtimeMs: number }]>, releaseState: ReleaseStateLookup | undefined): string | null {
  const lines: string[] = [];
  for (const [file, t] of tarballs) {
    const release = releaseOfFile(file);
    if (!release) return null;
    const state = releaseState?.(release.name, release.version);
    lines.push(state === undefined ? `${file}:${t.size}:${t.mtimeMs}:` : `${file}:${t.size}:${t.mtimeMs}:${JSON.stringify(state)}`);
  }
  // Any fixed order will do: the same inputs always sort to the same text, whatever the listing order.
  lines.sort();
  return createHash('sha256').update(repository).update('\n').update(lines.join('\n')).digest('base64');
}

/**
 * The registry stamp: the inputs' digest (tarballsStamp) with the key's fingerprint and each
 * output's key, size and mtime.
 */
export function registryStamp(inputs: string, keyFingerprint: string, outputs: ReadonlyMap<string, { size: number; mtimeMs: number }>): string {
  const lines: string[] = [];
  for (const [key, o] of outputs) lines.push(`${key}:${o.size}:${o.mtimeMs}`);
  lines.sort();
  return createHash('sha256').update(`${FORMAT}\n${keyFingerprint}\n${inputs}\n`).update(lines.join('\n')).digest('base64');
}

/** The stamp file's content when it is of this format, repository and key; null otherwise (or missing, or unreadable). */
export async function loadStampFile(path: string, repository: string, keyFingerprint: string): Promise<RegistryStamp | null> {
  try {
    const file = JSON.parse(await readFile(path, 'utf8')) as Partial<StampFile>;
    if (file.format !== FORMAT || file.repository !== repository || file.keyFingerprint !== keyFingerprint) return null;
    if (typeof file.stamp !== 'string' || typeof file.packages !== 'number' || typeof file.releases !== 'number') return null;
    return { stamp: file.stamp, packages: file.packages, releases: file.releases };
  } catch {
    return null;
  }
}

/** Write the stamp file atomically (temp + rename), or remove it when there is no stamp to keep. */
export async function saveStampFile(path: string, repository: string, keyFingerprint: string, stamp: RegistryStamp | undefined): Promise<void> {
  try {
    if (!stamp) {
      await rm(path, { force: true });
      return;
    }
    const file: StampFile = { format: FORMAT, repository, keyFingerprint, ...stamp };
    await mkdir(dirname(path), { recursive: true });
    const temp = `${path}.${randomBytes(4).toString('hex')}.tmp`;
    await writeFile(temp, JSON.stringify(file));
    await rename(temp, path);
  } catch (err) {
    throw new HexrepoError('STORAGE_IO', `could not write the build stamp ${path}: ${(err as Error).message}`, { path, hint: 'check that the folder is writable; the stamp only speeds up rebuilds, deleting it is safe' }, { cause: err });
  }
}
