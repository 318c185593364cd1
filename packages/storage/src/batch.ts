import { assertSafeKey } from './keys.js';
import type { BatchEntry, BlobStore, PutResult } from './types.js';

/**
 * Store `entries` in order as one batch: through the store's own `putMany` where it has one, else
 * one `put` after another, which has the same outcome (see `BlobStore.putMany`). Every key is checked
 * before anything is written, so an unsafe key stores nothing.
 */
export async function putMany(store: BlobStore, entries: readonly BatchEntry[]): Promise<PutResult[]> {
  for (const e of entries) assertSafeKey(e.key);
  if (store.putMany) return store.putMany(entries);
  const results: PutResult[] = [];
  for (const e of entries) results.push(await store.put(e.key, e.body, e.opts));
  return results;
}
