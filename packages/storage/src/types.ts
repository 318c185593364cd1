/** An object read from a store. */
export interface StoredObject {
  body: Uint8Array;
  /** Strong validator of the content (quoted, as in HTTP). */
  etag: string;
  size: number;
  mtime: Date;
}

/** What `head` and `list` know about an object without reading it. */
export interface ObjectInfo {
  key: string;
  size: number;
  mtime: Date;
}

export interface PutOptions {
  /** Write only if the current object has this etag (optimistic concurrency). */
  ifMatch?: string;
  /** `'*'`: write only if no object exists at the key. */
  ifNoneMatch?: '*';
  /** Content-Type to record where the backend keeps one. */
  contentType?: string;
  /** Cache-Control to record where the backend keeps one. */
  cacheControl?: string;
}

/** An object read as a stream (large tarballs from a bucket are never held whole in memory). */
export interface StreamedObject {
  /** The bytes, chunk by chunk (a Node stream, or a plain list of chunks). */
  body: AsyncIterable<Uint8Array> | Iterable<Uint8Array>;
  etag: string;
  size: number;
  mtime: Date;
}

/** What a write reports: the new etag, and the modification time where the backend knows it. */
export interface PutResult {
  etag: string;
  mtime?: Date;
}

/** One write of a batch (`BlobStore.putMany`): a key, its bytes and its own conditions. */
export interface BatchEntry {
  key: string;
  body: Uint8Array;
  opts?: PutOptions;
}

/**
 * A bytes-only store. Keys are repository paths (`names`, `packages/foo`, `tarballs/foo-1.0.0.tar`),
 * so a store written by hexrepo is itself a servable Hex repository. "Not there" is `null`.
 * A failed condition throws HexrepoError STORAGE_CONFLICT; an unsafe key throws PATH_UNSAFE.
 */
export interface BlobStore {
  /** A short description for logs and status bars, e.g. `file:///srv/acme/public`. */
  readonly url: string;
  get(key: string): Promise<StoredObject | null>;
  /** The object as a stream, where the backend can do better than `get` (buckets). */
  getStream?(key: string): Promise<StreamedObject | null>;
  /**
   * The object as `get` would return it right now, without waiting, when a memory cache holds it
   * fresh; otherwise null (which says nothing about whether it exists: ask `get`).
   */
  peek?(key: string): StoredObject | null;
  head(key: string): Promise<(ObjectInfo & { etag: string }) | null>;
  put(key: string, body: Uint8Array, opts?: PutOptions): Promise<PutResult>;
  /**
   * Several puts as one batch, where the backend can make that cheaper than one put after another
   * (a folder: one fsync wave for all the bytes, then the renames, then one fsync per folder). Same
   * outcome as `put` of each entry in order: each entry's conditions hold for that entry; the first
   * failure stops the batch, the entries before it are stored, it and those after it are not; an
   * unsafe key anywhere stores nothing. Callers use `putMany(store, entries)`, which falls back to
   * sequential puts for a store without it.
   */
  putMany?(entries: readonly BatchEntry[]): Promise<PutResult[]>;
  /** Removes the object; removing a missing object is not an error. */
  delete(key: string): Promise<void>;
  /** Every object whose key starts with `prefix`, in no particular order. */
  list(prefix: string): AsyncIterable<ObjectInfo>;
}
