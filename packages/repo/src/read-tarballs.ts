import { HexrepoError, isHexrepoError, type ReleaseFacts, type TarballLimits } from '@hexrepo/core';
import type { BlobStore } from '@hexrepo/storage';
import { parseTarball } from '@hexrepo/tarball';
import { TARBALLS_PREFIX } from './layout.js';
import type { BuildPool } from './pool.js';

/** A tarball that cannot go into the registry, with the reason. */
export interface Problem {
  file: string;
  code: HexrepoError['code'];
  message: string;
}

/**
 * Read and fully validate one tarball's bytes as the file `file` of `tarballs/`: the tarball itself
 * (limits, members, checksums, metadata, contents paths) and that the file name is exactly
 * `NAME-VERSION.tar` of its metadata (mix's builder takes the name from the file and the version
 * from the metadata and never cross-checks, which publishes releases clients then cannot download).
 */
export function factsFromBytes(file: string, bytes: Uint8Array, limits?: Partial<TarballLimits>): ReleaseFacts {
  const { facts } = parseTarball(bytes, limits ? { limits } : {});
  const expected = `${facts.name}-${facts.version}.tar`;
  if (file !== expected) {
    throw new HexrepoError('TARBALL_NAME_MISMATCH', `the file is named ${file} but its metadata says ${facts.name} ${facts.version}; rename it to ${expected}`, { file, expected });
  }
  return facts;
}

/**
 * Read several tarballs from the store with bounded concurrency; problems are returned, not thrown.
 * With `pool`, validation runs on its worker threads while this thread reads the next files.
 */
export async function readTarballs(
  store: BlobStore,
  files: string[],
  opts: { limits?: Partial<TarballLimits>; concurrency?: number; onProgress?: (done: number, total: number) => void; pool?: BuildPool },
): Promise<{ facts: Map<string, { facts: ReleaseFacts; size: number; mtimeMs: number }>; problems: Problem[] }> {
  const facts = new Map<string, { facts: ReleaseFacts; size: number; mtimeMs: number }>();
  const problems: Problem[] = [];
  let next = 0;
  let done = 0;
  const worker = async (): Promise<void> => {
    while (next < files.length) {
      const file = files[next++]!;
      try {
        const obj = await store.get(`${TARBALLS_PREFIX}${file}`);
        if (!obj) throw new HexrepoError('NOT_FOUND', `${file} disappeared while building`, { file });
        const parsed = opts.pool ? await opts.pool.facts(file, obj.body, opts.limits) : factsFromBytes(file, obj.body, opts.limits);
        facts.set(file, { facts: parsed, size: obj.size, mtimeMs: obj.mtime.getTime() });
      } catch (err) {
        // Not the tarball's fault (a bug, a build worker thread that died): the build stops.
        if (!isHexrepoError(err) || err.code === 'INTERNAL') throw err;
        problems.push({ file, code: err.code, message: err.message });
      }
      opts.onProgress?.(++done, files.length);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(opts.concurrency ?? 32, files.length)) }, worker));
  problems.sort((a, b) => a.file.localeCompare(b.file));
  return { facts, problems };
}
