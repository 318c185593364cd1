/**
 * A read cache in front of any store, for serving: small objects are kept in memory and `get`
 * serves them without touching the backend until they are `revalidateMs` old, then revalidates
 * with one `head` (an unchanged etag keeps the bytes); `head` itself always asks the backend. Writes and deletes through the cache update it at once;
 * changes made behind its back (another process, `hexrepo build`) show within `revalidateMs`.
 */
import { putMany } from './batch.js';
import type { BatchEntry, BlobStore, ObjectInfo, PutOptions, PutResult, StoredObject, StreamedObject } from './types.js';

export interface CachedStoreOptions {
  /** Objects larger than this are never cached. @default 1 MiB */
  maxObjectBytes?: number;
  /** Total bytes kept; least recently used objects go first. @default 64 MiB */
  maxBytes?: number;
  /** How long an entry is trusted before it is revalidated. @default 1000 ms */
  revalidateMs?: number;
  now?: () => number;
}

interface Entry {
  obj: StoredObject;
  checkedAt: number;
}

export class CachedStore implements BlobStore {
  readonly url: string;
  readonly #entries = new Map<string, Entry>();
  #bytes = 0;
  readonly #maxObject: number;
  readonly #max: number;
  readonly #ttl: number;
  readonly #now: () => number;
  /** In-flight loads, so a burst of requests for one key costs one backend read. */
  readonly #loading = new Map<string, Promise<StoredObject | null>>();

  constructor(
    readonly inner: BlobStore,
    opts: CachedStoreOptions = {},
  ) {
    this.url = inner.url;
    this.#maxObject = opts.maxObjectBytes ?? 1024 * 1024;
    this.#max = opts.maxBytes ?? 64 * 1024 * 1024;
    this.#ttl = opts.revalidateMs ?? 1000;
    this.#now = opts.now ?? Date.now;
  }

  async get(key: string): Promise<StoredObject | null> {
    const hit = this.#fresh(key);
    if (hit) return hit;
    let loading = this.#loading.get(key);
    if (!loading) {
      loading = this.#load(key).finally(() => this.#loading.delete(key));
      this.#loading.set(key, loading);
    }
    return loading;
  }

  /** The cached object while it is fresh (the same instance every time), else null: `get` loads or revalidates it. */
  peek(key: string): StoredObject | null {
    return this.#fresh(key);
  }

  /** Cached bytes when fresh; otherwise the backend's stream (large objects are never cached). */
  async getStream(key: string): Promise<StreamedObject | null> {
    const hit = this.#fresh(key);
    if (hit) return { body: [hit.body], etag: hit.etag, size: hit.size, mtime: hit.mtime };
    if (!this.inner.getStream) {
      const obj = await this.get(key);
      return obj && { body: [obj.body], etag: obj.etag, size: obj.size, mtime: obj.mtime };
    }
    return this.inner.getStream(key);
  }

  /**
   * Always asks the backend: heads decide conditional writes and 304s, where a stale answer is
   * wrong, and they are cheap. A changed object drops its cached bytes.
   */
  async head(key: string): Promise<(ObjectInfo & { etag: string }) | null> {
    const head = await this.inner.head(key);
    const entry = this.#entries.get(key);
    if (entry && (!head || head.etag !== entry.obj.etag)) this.#drop(key);
    return head;
  }

  async put(key: string, body: Uint8Array, opts?: PutOptions): Promise<PutResult> {
    this.#drop(key);
    const result = await this.inner.put(key, body, opts);
    this.#drop(key);
    return result;
  }

  async putMany(entries: readonly BatchEntry[]): Promise<PutResult[]> {
    for (const e of entries) this.#drop(e.key);
    try {
      return await putMany(this.inner, entries);
    } finally {
      for (const e of entries) this.#drop(e.key);
    }
  }

  async delete(key: string): Promise<void> {
    this.#drop(key);
    await this.inner.delete(key);
    this.#drop(key);
  }

  list(prefix: string): AsyncIterable<ObjectInfo> {
    return this.inner.list(prefix);
  }

  /**
   * The same store for a writer: reads go to the backend, so what another process just wrote (a
   * sidecar, a replaced tarball) is seen at once, not up to `revalidateMs` later; writes and deletes
   * still go through this cache, so it never serves bytes older than the writer's own change.
   */
  uncached(): BlobStore {
    const inner = this.inner;
    return {
      url: this.url,
      get: (key) => inner.get(key),
      ...(inner.getStream ? { getStream: (key: string) => inner.getStream!(key) } : {}),
      head: (key) => this.head(key),
      put: (key, body, opts) => this.put(key, body, opts),
      putMany: (entries) => this.putMany(entries),
      delete: (key) => this.delete(key),
      list: (prefix) => inner.list(prefix),
    };
  }

  #fresh(key: string): StoredObject | null {
    const entry = this.#entries.get(key);
    if (!entry || this.#now() - entry.checkedAt > this.#ttl) return null;
    // Refresh the LRU position.
    this.#entries.delete(key);
    this.#entries.set(key, entry);
    return entry.obj;
  }

  async #load(key: string): Promise<StoredObject | null> {
    const stale = this.#entries.get(key);
    if (stale) {
      const head = await this.inner.head(key);
      if (head && head.etag === stale.obj.etag && head.size === stale.obj.size) {
        stale.checkedAt = this.#now();
        return stale.obj;
      }
      this.#drop(key);
      if (!head) return null;
    }
    const obj = await this.inner.get(key);
    if (obj && obj.size <= this.#maxObject) this.#remember(key, obj);
    return obj;
  }

  #remember(key: string, obj: StoredObject): void {
    this.#drop(key);
    this.#entries.set(key, { obj, checkedAt: this.#now() });
    this.#bytes += obj.size;
    for (const [k, e] of this.#entries) {
      if (this.#bytes <= this.#max) break;
      this.#entries.delete(k);
      this.#bytes -= e.obj.size;
    }
  }

  #drop(key: string): void {
    const entry = this.#entries.get(key);
    if (entry) {
      this.#entries.delete(key);
      this.#bytes -= entry.obj.size;
    }
  }
}
