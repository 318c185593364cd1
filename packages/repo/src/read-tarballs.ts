import { HexrepoError, isHexrepoError, type ReleaseFacts, type TarballLimits } from '@hexrepo/core';
import { type BlobStore, FsStore, readFileInside } from '@hexrepo/storage';
import { checkTarballSize, parseTarball } from '@hexrepo/tarball';
import { TARBALLS_PREFIX } from './layout.js';
import type { BuildPool } from './pool.js';
import type { ReadOutcome } from './pool-protocol.js';

/** Tarballs per task when worker threads read them from a folder: few messages, yet fine-grained enough to balance the threads. */
const FILES_PER_TASK = 64;

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

/** The error for a tarball listed by the scan but gone (or no longer a file) when read. */
function disappeared(file: string): HexrepoError {
  return new HexrepoError('NOT_FOUND', `${file} disappeared while building`, { file });
}

/**
 * Read tarball `file` from the folder store at `root` and validate it, as a build worker does: the
 * tarball's own problems (and I/O errors) are the outcome; anything else (a bug) is thrown.
 */
export function readTarballFile(root: string, file: string, limits?: Partial<TarballLimits>): ReadOutcome {
  try {
    const read = readFileInside(root, `${TARBALLS_PREFIX}${file}`);
    if (!read) throw disappeared(file);
    return { file, ok: true, facts: factsFromBytes(file, read.body, limits), size: read.size, mtimeMs: read.mtime.getTime() };
  } catch (err) {
    if (!isHexrepoError(err) || err.code === 'INTERNAL') throw err;
    return { file, ok: false, code: err.code, message: err.message };
  }
}

/**
 * Read several tarballs from the store with bounded concurrency; problems are returned, not thrown.
 * With `pool`, validation runs on its worker threads; from a folder store the workers read the files
 * themselves (readTarballFile), so no tarball's bytes pass through this thread, else this thread
 * reads the next files meanwhile.
 */
export async function readTarballs(
  store: BlobStore,
  files: string[],
  opts: { limits?: Partial<TarballLimits>; concurrency?: number; onProgress?: (done: number, total: number) => void; pool?: BuildPool; sizes?: ReadonlyMap<string, { size: number }> },
): Promise<{ facts: Map<string, { facts: ReleaseFacts; size: number; mtimeMs: number }>; problems: Problem[] }> {
  const facts = new Map<string, { facts: ReleaseFacts; size: number; mtimeMs: number }>();
  const problems: Problem[] = [];
  // A file listed larger than the limit is refused unread: reading it whole first would hold
  // gigabytes in memory (one buffer per thread), or fail as an I/O error past what a buffer holds.
  if (opts.sizes) {
    const { sizes } = opts;
    const fitting: string[] = [];
    for (const file of files) {
      try {
        checkTarballSize(sizes.get(file)?.size ?? 0, opts.limits);
        fitting.push(file);
      } catch (err) {
        if (!isHexrepoError(err)) throw err;
        problems.push({ file, code: err.code, message: err.message });
      }
    }
    if (problems.length > 0) {
      const { sizes: _listed, onProgress, ...others } = opts;
      const refused = problems.length;
      const rest = await readTarballs(store, fitting, { ...others, ...(onProgress ? { onProgress: (done: number) => onProgress(refused + done, files.length) } : {}) });
      return { facts: rest.facts, problems: [...problems, ...rest.problems].sort((a, b) => a.file.localeCompare(b.file)) };
    }
  }
  let next = 0;
  let done = 0;
  if (opts.pool && store instanceof FsStore) {
    const { pool } = opts;
    const root = store.root;
    const task = async (): Promise<void> => {
      while (next < files.length) {
        const chunk = files.slice(next, (next += FILES_PER_TASK));
        for (const r of await pool.read(root, chunk, opts.limits)) {
          if (r.ok) facts.set(r.file, { facts: r.facts, size: r.size, mtimeMs: r.mtimeMs });
          else problems.push({ file: r.file, code: r.code, message: r.message });
        }
        opts.onProgress?.((done += chunk.length), files.length);
      }
    };
    // Two tasks per thread: each thread has the next one queued when it finishes one.
    await Promise.all(Array.from({ length: Math.min(pool.size * 2, Math.ceil(files.length / FILES_PER_TASK)) }, task));
    problems.sort((a, b) => a.file.localeCompare(b.file));
    return { facts, problems };
  }
  const worker = async (): Promise<void> => {
    while (next < files.length) {
      const file = files[next++]!;
      try {
        const obj = await store.get(`${TARBALLS_PREFIX}${file}`);
        if (!obj) throw disappeared(file);
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
