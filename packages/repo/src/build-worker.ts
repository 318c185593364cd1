/**
 * The entry of a build worker thread (see pool.ts): validates tarballs and signs registry files
 * with the same functions the main thread uses, so its results are byte for byte the same.
 * Errors go back as code, message and details and are rebuilt as the same HexrepoError.
 */
import type { KeyObject } from 'node:crypto';
import { parentPort } from 'node:worker_threads';
import { isHexrepoError } from '@hexrepo/core';
import { signAndWrap } from '@hexrepo/registry';
import { factsFromBytes, readTarballFile } from './read-tarballs.js';
import type { PoolReply, PoolRequest } from './pool-protocol.js';

const port = parentPort;
if (!port) throw new Error('build-worker.js runs only as a worker thread of the build pool');

const keys = new Map<number, KeyObject>();

function keyOf(id: number): KeyObject {
  const key = keys.get(id);
  if (!key) throw new Error(`build worker: no signing key ${id}`);
  return key;
}

function run(req: PoolRequest): unknown {
  switch (req.op) {
    case 'key':
      keys.set(req.keyId, req.key);
      return null;
    case 'facts':
      return factsFromBytes(req.file, req.bytes, req.limits);
    case 'read':
      return req.files.map((file) => readTarballFile(req.root, file, req.limits));
    case 'wrap':
      return signAndWrap(req.payload, keyOf(req.keyId));
  }
}

function handle(req: PoolRequest): PoolReply {
  try {
    return { id: req.id, ok: true, value: run(req) };
  } catch (err) {
    return isHexrepoError(err)
      ? { id: req.id, ok: false, hexrepo: { code: err.code, message: err.message, details: err.details } }
      : { id: req.id, ok: false, crash: { message: err instanceof Error ? err.message : String(err), stack: err instanceof Error ? (err.stack ?? '') : '' } };
  }
}

// Requests come in batches (one message per event-loop turn of the main thread); so do replies.
port.on('message', (batch: PoolRequest[]) => {
  const replies = batch.map(handle);
  try {
    port.postMessage(replies);
  } catch {
    // Details that cannot be cloned (none of hexrepo's do today) must not lose the error itself.
    port.postMessage(replies.map((r) => (!r.ok && r.hexrepo ? { ...r, hexrepo: { ...r.hexrepo, details: {} } } : r)));
  }
});
