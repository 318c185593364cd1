import { assertSafeKey, checkCondition, contentEtag } from './driver-kit.js';
import type { BlobStore, ObjectInfo, PutOptions, PutResult, StoredObject } from './types.js';

/** An in-memory store, for tests and the dev server's scratch use. Conditional puts are exact. */
export class MemoryStore implements BlobStore {
  readonly url = 'memory://';
  readonly #objects = new Map<string, StoredObject>();

  async get(key: string): Promise<StoredObject | null> {
    const obj = this.#objects.get(assertSafeKey(key));
    return obj ? { ...obj, body: obj.body.slice() } : null;
  }

  async head(key: string): Promise<(ObjectInfo & { etag: string }) | null> {
    const obj = this.#objects.get(assertSafeKey(key));
    return obj ? { key, size: obj.size, mtime: obj.mtime, etag: obj.etag } : null;
  }

  async put(key: string, body: Uint8Array, opts: PutOptions = {}): Promise<PutResult> {
    assertSafeKey(key);
    const current = this.#objects.get(key);
    checkCondition(key, current?.etag ?? null, opts);
    const etag = contentEtag(body);
    const mtime = new Date();
    this.#objects.set(key, { body: body.slice(), etag, size: body.byteLength, mtime });
    return { etag, mtime };
  }

  async delete(key: string): Promise<void> {
    this.#objects.delete(assertSafeKey(key));
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    for (const [key, obj] of [...this.#objects]) {
      if (key.startsWith(prefix)) yield { key, size: obj.size, mtime: obj.mtime };
    }
  }
}
