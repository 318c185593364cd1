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
  if (!obj) return null;
  try {
    return { value: JSON.parse(Buffer.from(obj.body).toString('utf8')) as unknown, etag: obj.etag };
  } catch {
    throw new HexrepoError('REGISTRY_CORRUPT', `${key} is not valid JSON`, { key, hint: 'restore it from a backup, or delete it' });
  }
}

/**
 * Apply `change` to the object at `key` (`undefined` when absent) and write the result only if
 * nobody wrote in between; `change` returns null for "nothing to write". Returns what `change`
 * returned last.
 */
export async function updateJsonState<T>(store: BlobStore, key: string, change: (current: unknown) => { value: unknown; result: T } | { value: null; result: T }): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    const current = await readJsonState(store, key);
    const { value, result } = change(current?.value);
    if (value === null) return result;
    const body = Buffer.from(`${JSON.stringify(value, null, 2)}\n`);
    try {
      await store.put(key, body, { contentType: 'application/json', ...(current ? { ifMatch: current.etag } : { ifNoneMatch: '*' as const }) });
      return result;
    } catch (err) {
      if (!isHexrepoError(err, 'STORAGE_CONFLICT') || attempt >= MAX_ATTEMPTS) throw err;
      // Randomly, so two writers do not collide again in step.
      await new Promise((r) => setTimeout(r, Math.random() * 10 * attempt));
    }
  }
}
