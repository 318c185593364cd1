/**
 * Signing and gzipping of a long-running service's registry files on worker threads: the CPU-bound
 * part of a publish's flush (three RSA signatures and a gzip of `names`, ~46 KB for 2,000 packages,
 * in JavaScript so that the bytes match stock zlib's) runs beside the thread that serves requests,
 * and `names`, `versions` and `packages/NAME` are signed at once. The workers run the build
 * workers' code (build-worker.ts), so the bytes are those of `signAndWrap` on this thread. Idle
 * workers do not keep the process alive. When a worker fails, every waiting and later file is
 * signed on this thread instead: a broken thread never stops publishing.
 */
import type { KeyObject } from 'node:crypto';
import { Worker } from 'node:worker_threads';
import { signAndWrap } from '@hexrepo/registry';
import type { PoolReply, PoolRequest } from './pool-protocol.js';
import { workerEntry, type PoolSigner } from './pool.js';

interface Waiting {
  payload: Uint8Array;
  resolve: (v: Uint8Array) => void;
  reject: (e: unknown) => void;
}

interface Thread {
  worker: Worker;
  pending: Map<number, Waiting>;
  /** Requests not yet posted: the files one flush stages together go as one message. */
  outbox: PoolRequest[];
  /** The outbox's payload buffers, moved rather than copied. */
  moves: ArrayBuffer[];
  /** Bytes of payload waiting for a reply: the next file goes to the thread with the least. */
  load: number;
}

const KEY_ID = 0;

export class FlushSigner implements PoolSigner {
  readonly #threads: Thread[] = [];
  #nextId = 1;
  /** Set when a worker failed: from then on everything is signed on this thread. */
  #broken = false;

  /** `size` worker threads (at least 1), started on the first file. */
  constructor(
    private readonly privateKey: KeyObject,
    readonly size: number,
  ) {}

  signAndWrap(payload: Uint8Array): Promise<Uint8Array> {
    if (this.#threads.length === 0 && !this.#broken) {
      try {
        this.#start();
      } catch {
        // No worker script (a broken install): sign here rather than refuse every publish.
        this.#broken = true;
      }
    }
    if (this.#broken) return Promise.resolve().then(() => signAndWrap(payload, this.privateKey));
    let thread = this.#threads[0]!;
    for (const t of this.#threads) if (t.load < thread.load) thread = t;
    thread.load += payload.byteLength;
    const id = this.#nextId++;
    return new Promise<Uint8Array>((resolve, reject) => {
      thread.pending.set(id, { payload, resolve, reject });
      // Waiting for a reply keeps the process alive; an idle worker does not.
      if (thread.pending.size === 1) thread.worker.ref();
      // A copy of exactly the payload, moved to the worker: a view would be cloned with all of its
      // buffer (protobufjs encodes into shared slabs).
      const own = new Uint8Array(payload);
      thread.moves.push(own.buffer);
      if (thread.outbox.push({ id, op: 'wrap', keyId: KEY_ID, payload: own }) === 1) queueMicrotask(() => this.#post(thread));
    });
  }

  /** Stop the workers; files still waiting are signed on this thread. */
  async close(): Promise<void> {
    await this.#fallBack();
  }

  #start(): void {
    const entry = workerEntry();
    for (let i = 0; i < this.size; i++) {
      const thread: Thread = { worker: new Worker(entry), pending: new Map(), outbox: [], moves: [], load: 0 };
      thread.worker.postMessage([{ id: 0, op: 'key', keyId: KEY_ID, key: this.privateKey } satisfies PoolRequest]);
      thread.worker.unref();
      thread.worker.on('message', (replies: PoolReply[]) => {
        for (const reply of replies) {
          const waiting = thread.pending.get(reply.id);
          if (!waiting) continue;
          thread.pending.delete(reply.id);
          thread.load -= waiting.payload.byteLength;
          if (thread.pending.size === 0) thread.worker.unref();
          if (reply.ok) waiting.resolve(reply.value as Uint8Array);
          // signAndWrap fails only on a bad key: this thread refuses it the same way, with its own error.
          else this.#signHere(waiting);
        }
      });
      thread.worker.on('error', () => void this.#fallBack());
      thread.worker.on('exit', () => void this.#fallBack());
      this.#threads.push(thread);
    }
  }

  /** One message per thread for what was asked since the last one (a wake-up of a thread is not free). */
  #post(thread: Thread): void {
    const batch = thread.outbox.splice(0);
    const moves = thread.moves.splice(0);
    if (batch.length === 0 || !this.#threads.includes(thread)) return;
    thread.worker.postMessage(batch, moves);
  }

  /** Sign what waits on this thread and use no worker any more. */
  async #fallBack(): Promise<void> {
    this.#broken = true;
    const threads = this.#threads.splice(0);
    for (const t of threads) {
      for (const w of t.pending.values()) this.#signHere(w);
      t.pending.clear();
      t.outbox.length = 0;
      t.moves.length = 0;
    }
    await Promise.all(threads.map((t) => t.worker.terminate()));
  }

  #signHere(w: Waiting): void {
    try {
      w.resolve(signAndWrap(w.payload, this.privateKey));
    } catch (err) {
      w.reject(err);
    }
  }
}
