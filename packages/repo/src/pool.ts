/**
 * A pool of worker threads for the CPU-bound parts of a build: validating tarballs (gunzip, tar
 * walk, metadata parse, two SHA-256) and signing + gzipping registry files. The workers run the
 * same functions as the main thread, so the output is byte for byte the same; HexrepoErrors cross
 * back with their code, message and details. Workers start on the first task and all end in
 * `close`, which a build calls however it ends.
 */
import { existsSync } from 'node:fs';
import type { KeyObject } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { HexrepoError, type ReleaseFacts, type TarballLimits } from '@hexrepo/core';
import type { PoolReply, PoolRequest, ReadOutcome } from './pool-protocol.js';

/** Distributive Omit, so each request variant keeps its own fields. */
type Task = PoolRequest extends infer R ? (R extends PoolRequest ? Omit<R, 'id'> : never) : never;

/**
 * The compiled worker entry. From dist it is the sibling build-worker.js. When this module runs as
 * TypeScript source (vitest imports the packages from src/), Node cannot run the .ts entry in a
 * worker, so the compiled one in ../dist is used: tests that start a pool need `pnpm build` first,
 * as the CLI tests do.
 */
export function workerEntry(): URL {
  const here = import.meta.url;
  const url = here.endsWith('.ts') ? new URL('../dist/build-worker.js', here) : new URL('./build-worker.js', here);
  if (!existsSync(fileURLToPath(url))) {
    throw new HexrepoError('INTERNAL', `the build worker script ${fileURLToPath(url)} is missing`, {
      hint: here.endsWith('.ts') ? 'run "pnpm build" so packages/repo/dist holds the compiled worker' : 'reinstall hexrepo, or build with --threads 1',
    });
  }
  return url;
}

/** Threads for a build when none is asked for: every core. */
export function defaultThreads(): number {
  return availableParallelism();
}

/**
 * A worker's young generation. What a worker allocates per task (a tarball's members and contents,
 * a payload's signature and gzip) is garbage at once, so a small young generation costs no more
 * scavenging time, while V8's default (up to 3 × 16 MiB per thread) grows to its maximum under a
 * build's churn: measured on 20,000 tarballs, 4 MiB took ~20 MB off the build's peak RSS.
 */
const WORKER_YOUNG_GENERATION_MB = 4;

interface Slot {
  worker: Worker;
  pending: Map<number, { resolve: (v: unknown) => void; reject: (e: unknown) => void }>;
  /** Requests not yet posted: sent as one message once this turn of the event loop is done. */
  outbox: PoolRequest[];
}

/** A key registered with the pool's workers, for `wrap`. */
export interface PoolSigner {
  signAndWrap(payload: Uint8Array): Promise<Uint8Array>;
}

export class BuildPool {
  readonly #slots: Slot[] = [];
  readonly #keys = new Map<KeyObject, number>();
  #nextId = 0;
  #failure: Error | null = null;
  #closed = false;

  /** `size` worker threads (at least 1), started on the first task. */
  constructor(readonly size: number) {
    if (!Number.isInteger(size) || size < 1) throw new HexrepoError('CONFIG_INVALID', `the build pool needs a whole number of threads of at least 1, not ${size}`, { setting: 'threads' });
  }

  /** factsFromBytes in a worker. */
  facts(file: string, bytes: Uint8Array, limits?: Partial<TarballLimits>): Promise<ReleaseFacts> {
    // A view into a larger buffer (a store's slab or cache) would be cloned whole: send its bytes only.
    const own = bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength ? bytes : bytes.slice();
    return this.#run({ op: 'facts', file, bytes: own, ...(limits ? { limits } : {}) }) as Promise<ReleaseFacts>;
  }

  /** readTarballFile for each of `files` of the folder store at `root`, in one worker. */
  read(root: string, files: string[], limits?: Partial<TarballLimits>): Promise<ReadOutcome[]> {
    return this.#run({ op: 'read', root, files, ...(limits ? { limits } : {}) }) as Promise<ReadOutcome[]>;
  }

  /** A signer for `key`: signAndWrap in a worker. */
  signer(key: KeyObject): PoolSigner {
    let keyId = this.#keys.get(key);
    if (keyId === undefined) {
      keyId = this.#keys.size;
      this.#keys.set(key, keyId);
      // Each worker handles its messages in order, so the key is there before any wrap naming it.
      for (const slot of this.#slots) this.#sendKey(slot, keyId, key);
    }
    const id = keyId;
    return { signAndWrap: (payload) => this.#run({ op: 'wrap', keyId: id, payload }) as Promise<Uint8Array> };
  }

  /** Stop every worker; pending tasks fail. Safe to call twice. */
  async close(): Promise<void> {
    this.#closed = true;
    const slots = this.#slots.splice(0);
    await Promise.all(slots.map((s) => s.worker.terminate()));
    const closed = new Error('the build pool was closed before this task finished');
    for (const s of slots) for (const w of s.pending.values()) w.reject(closed);
  }

  /** Start the worker threads now rather than on the first task (no-op once started or closed). */
  start(): void {
    if (!this.#closed && this.#slots.length < this.size) this.#start();
  }

  #run(task: Task): Promise<unknown> {
    if (this.#failure) return Promise.reject(this.#failure);
    if (this.#closed) return Promise.reject(new Error('the build pool is closed'));
    if (this.#slots.length < this.size) this.#start();
    // The least busy worker: tasks differ in cost (a signature is ~5 tarball validations).
    let slot = this.#slots[0]!;
    for (const s of this.#slots) if (s.pending.size < slot.pending.size) slot = s;
    return this.#send(slot, task);
  }

  #sendKey(slot: Slot, keyId: number, key: KeyObject): void {
    // A worker that fails fails the tasks that follow too; this reply is not awaited by anyone.
    this.#send(slot, { op: 'key', keyId, key }).catch(() => undefined);
  }

  #send(slot: Slot, task: Task): Promise<unknown> {
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      slot.pending.set(id, { resolve, reject });
      // One message per task cost ~0.1 ms of CPU each (a clone and a thread wake-up), as much as
      // validating a small tarball: the tasks of one event-loop turn go together.
      if (slot.outbox.push({ ...task, id } as PoolRequest) === 1) {
        setImmediate(() => {
          const batch = slot.outbox.splice(0);
          if (batch.length > 0 && !this.#closed) slot.worker.postMessage(batch);
        });
      }
    });
  }

  #start(): void {
    // All workers at once: their start-up (module loading, ~tens of ms) overlaps.
    const entry = workerEntry();
    while (this.#slots.length < this.size) {
      const slot: Slot = { worker: new Worker(entry, { resourceLimits: { maxYoungGenerationSizeMb: WORKER_YOUNG_GENERATION_MB } }), pending: new Map(), outbox: [] };
      for (const [key, keyId] of this.#keys) this.#sendKey(slot, keyId, key);
      slot.worker.on('message', (replies: PoolReply[]) => {
        for (const reply of replies) {
          const waiting = slot.pending.get(reply.id);
          if (!waiting) continue;
          slot.pending.delete(reply.id);
          if (reply.ok) waiting.resolve(reply.value);
          else if (reply.hexrepo) waiting.reject(new HexrepoError(reply.hexrepo.code, reply.hexrepo.message, reply.hexrepo.details));
          else waiting.reject(Object.assign(new Error(reply.crash.message), { stack: reply.crash.stack }));
        }
      });
      const fail = (err: Error): void => {
        this.#failure ??= err;
        for (const w of slot.pending.values()) w.reject(err);
        slot.pending.clear();
      };
      slot.worker.on('error', (err) => fail(new HexrepoError('INTERNAL', `a build worker thread failed: ${err.message}`, {}, { cause: err })));
      slot.worker.on('exit', (code) => {
        if (!this.#closed) fail(new HexrepoError('INTERNAL', `a build worker thread exited (code ${code}) in the middle of a build`, { hint: 'build again, or with --threads 1' }));
      });
      this.#slots.push(slot);
    }
  }
}
