/**
 * The toolbox every BlobStore driver builds on, so that each rule a driver must follow is written once:
 * the conditional-write rule, key safety, ETag quoting and comparison, the content etag kept in object
 * metadata by bucket drivers, and the keys of a store that lives under a bucket prefix.
 * Drivers import it as `@hexrepo/storage/driver-kit`; the layers above use the BlobStore interface only.
 */
import { HexrepoError } from '@hexrepo/core';
import { assertSafeKey, isSafeKey } from './keys.js';
import type { PutOptions } from './types.js';

export { assertSafeKey, contentEtag, isSafeKey } from './keys.js';

/**
 * The STORAGE_CONFLICT error of a failed conditional write. `currentEtag` is the etag found (`null`:
 * no object), or `undefined` when the backend refused the write without saying what it holds.
 */
export function conflictError(key: string, currentEtag: string | null | undefined, opts: PutOptions, cause?: unknown): HexrepoError {
  const details = { key, ...(currentEtag !== undefined && { currentEtag }), ...(opts.ifMatch !== undefined && { expected: opts.ifMatch }) };
  const message =
    opts.ifNoneMatch === '*' && opts.ifMatch === undefined
      ? `${key} already exists`
      : `${key} changed since it was read (expected ${opts.ifMatch ?? 'nothing'}, found ${currentEtag === undefined ? 'another version' : (currentEtag ?? 'nothing')})`;
  return new HexrepoError('STORAGE_CONFLICT', message, details, cause === undefined ? undefined : { cause });
}

/**
 * The conditional-write rule, for a driver that compares etags itself (under its own lock, or before
 * a backend write that is conditional on the backend's own version): throws STORAGE_CONFLICT when
 * `ifNoneMatch: '*'` meets an object or `ifMatch` does not name the current one (`null`: none).
 */
export function checkCondition(key: string, currentEtag: string | null, opts: PutOptions): void {
  if (opts.ifNoneMatch === '*' && currentEtag !== null) throw conflictError(key, currentEtag, { ifNoneMatch: '*' });
  if (opts.ifMatch !== undefined && !etagsMatch(currentEtag, opts.ifMatch)) throw conflictError(key, currentEtag, { ifMatch: opts.ifMatch });
}

/**
 * Whether the current etag (`null`: no object) is the one a conditional write expects. Exact string
 * equality of the quoted forms: every driver reports the same content etag for the same bytes.
 */
export function etagsMatch(current: string | null, expected: string): boolean {
  return current !== null && current === expected;
}

/** An etag in its quoted form (`"abc"`), as HTTP and BlobStore report it; a weak or quoted one is kept as is. */
export function quoteEtag(etag: string): string {
  return /^"[^"]*"$/.test(etag) || etag.startsWith('W/') ? etag : `"${etag}"`;
}

/** An etag without its quotes, as some S3-compatible servers need it in If-Match (Ceph RGW Pacific). */
export function unquoteEtag(etag: string): string {
  return etag.replace(/^"(.*)"$/, '$1');
}

/**
 * The etag a bucket driver reports for an object: the content etag its own puts recorded in the
 * object's metadata, or, for objects other tools wrote, the backend's own validator, quoted.
 */
export function etagFromMetadata(stored: unknown, backendEtag: string | undefined): string {
  if (typeof stored === 'string' && /^"[^"]+"$/.test(stored)) return stored;
  return quoteEtag(backendEtag ?? '');
}

/** The bucket object name of a key in a store under `prefix` (`''` or ending in `/`), after the key check. */
export function prefixedKey(prefix: string, key: string): string {
  return prefix + assertSafeKey(key);
}

/**
 * The store key of a listed bucket object, or null when the object is not part of the store: outside
 * the prefix, or a name no key can spell (`a//b`, `.hidden`, `x/`).
 */
export function keyOfObject(prefix: string, name: string): string | null {
  if (!name.startsWith(prefix)) return null;
  const key = name.slice(prefix.length);
  return isSafeKey(key) ? key : null;
}

/**
 * A bounded map of what a driver remembers per object (the backend version of the content etag it
 * wrote or read last), so a conditional write need not look the object up first. The least recently
 * remembered entry goes first.
 */
export class VersionMemo<V> {
  readonly #entries = new Map<string, V>();

  constructor(readonly limit = 10_000) {}

  get(name: string): V | undefined {
    return this.#entries.get(name);
  }

  remember(name: string, value: V): void {
    this.#entries.delete(name);
    this.#entries.set(name, value);
    if (this.#entries.size > this.limit) this.#entries.delete(this.#entries.keys().next().value!);
  }

  forget(name: string): null {
    this.#entries.delete(name);
    return null;
  }
}

/** The STORAGE_IO error of a failed backend call, naming the backend, the operation, the key and the HTTP status. */
export function backendIoError(backend: string, op: string, key: string, err: unknown, status: number | undefined): HexrepoError {
  const what = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
  return new HexrepoError('STORAGE_IO', `${backend} ${op} ${key} failed${status ? ` (HTTP ${status})` : ''}: ${what}`, { key, op, ...(status !== undefined && { status }) }, { cause: err });
}
