/**
 * A small JSON object in a store, changed by read–change–conditional-write: when another writer
 * (another worker or server on the same store) wrote in between, the change is applied again to
 * what it wrote, so no concurrent change is lost.
 */
import { HexrepoError, isHexrepoError } from '@hexrepo/core';
import type { BlobStore } from '@hexrepo/storage';

/** Conditional writes lost in a row before a change gives up (each loss means another change landed). */
const MAX_ATTEMPTS = 30;

/** Read and parse `key`; null when absent. Throws REGISTRY_CORRUPT when it is not JSON. */
export async function readJsonState(store: BlobStore, key: string): Promise<{ value: unknown; etag: string } | null> {
  const obj = await store.get(key);
  return obj ? { value: parseJson(Buffer.from(obj.body).toString('utf8'), key), etag: obj.etag } : null;
}

/**
 * Apply `change` to the object at `key` (`undefined` when absent) and write the result only if
 * nobody wrote in between; `change` returns null for "nothing to write". Returns what `change`
 * returned last.
 */
export async function updateJsonState<T>(store: BlobStore, key: string, change: (current: unknown) => { value: unknown; result: T } | { value: null; result: T }): Promise<T> {
  return changeJsonFile<unknown, T>(store, key, { parse: (text) => parseJson(text, key), empty: () => undefined }, (current, exists) => {
    const { value, result } = change(exists ? current : undefined);
    return { file: value, result };
  });
}

/** How a typed JSON file is read, and what the caller keeps of each version it sees. */
export interface JsonFileCodec<F> {
  /** Parse the stored text (throwing a HexrepoError naming the file when it is unusable). */
  parse: (text: string) => F;
  /** The value of a file that does not exist yet. */
  empty: () => F;
  /** Called with each version read (etag null: absent), e.g. to refresh an in-memory copy. */
  onRead?: (file: F, etag: string | null) => void;
  /** Called with the version this change wrote and its etag. */
  onWritten?: (file: F, etag: string) => void;
}

/**
 * The read–change–conditional-write loop for one JSON file: `change` sees the current content
 * (and whether the file exists) and returns the new content, or null for "nothing to write"; a
 * write that lost to another writer is applied again to what that writer wrote, after a short
 * random back-off (so two writers do not collide again in step). Returns what `change` returned last.
 */
export async function changeJsonFile<F, T>(store: BlobStore, key: string, codec: JsonFileCodec<F>, change: (current: F, exists: boolean) => { file: F | null; result: T }): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    const obj = await store.get(key);
    const current = obj ? codec.parse(Buffer.from(obj.body).toString('utf8')) : codec.empty();
    codec.onRead?.(current, obj?.etag ?? null);
    const { file, result } = change(current, obj !== null);
    if (file === null) return result;
    try {
      const put = await store.put(key, Buffer.from(`${JSON.stringify(file, null, 2)}\n`), { contentType: 'application/json', ...(obj ? { ifMatch: obj.etag } : { ifNoneMatch: '*' as const }) });
      codec.onWritten?.(file, put.etag);
      return result;
    } catch (err) {
      if (!isHexrepoError(err, 'STORAGE_CONFLICT') || attempt >= MAX_ATTEMPTS) throw err;
      await new Promise((r) => setTimeout(r, Math.random() * 10 * attempt));
    }
  }
}

function parseJson(text: string, key: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new HexrepoError('REGISTRY_CORRUPT', `${key} is not valid JSON`, { key, hint: 'restore it from a backup, or delete it' });
  }
}
