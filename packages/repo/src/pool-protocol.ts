/** Messages between the build pool (pool.ts) and its worker threads (build-worker.ts). */
import type { KeyObject } from 'node:crypto';
import type { ErrorCode, ReleaseFacts, TarballLimits } from '@hexrepo/core';

export type PoolRequest =
  /** Register a signing key once per worker; later `wrap` requests name it by id. */
  | { id: number; op: 'key'; keyId: number; key: KeyObject }
  /** factsFromBytes: read and validate one tarball. */
  | { id: number; op: 'facts'; file: string; bytes: Uint8Array; limits?: Partial<TarballLimits> }
  /**
   * Read tarballs `files` of the folder store at `root` (readFileInside) and validate each
   * (factsFromBytes): the bytes stay in the worker; the reply is one ReadOutcome per file.
   */
  | { id: number; op: 'read'; root: string; files: string[]; limits?: Partial<TarballLimits> }
  /** signAndWrap: sign a registry payload and gzip it. */
  | { id: number; op: 'wrap'; keyId: number; payload: Uint8Array };

export type PoolReply =
  | { id: number; ok: true; value: unknown }
  /** A HexrepoError, rebuilt on the main thread with the same code, message and details. */
  | { id: number; ok: false; hexrepo: { code: ErrorCode; message: string; details: Readonly<Record<string, unknown>> }; crash?: undefined }
  /** Anything else: a bug, rethrown as a plain Error. */
  | { id: number; ok: false; crash: { message: string; stack: string }; hexrepo?: undefined };

/** One tarball of a `read` request: its facts with the size and mtime read, or why it cannot go in. */
export type ReadOutcome = { file: string; ok: true; facts: ReleaseFacts; size: number; mtimeMs: number } | { file: string; ok: false; code: ErrorCode; message: string };
