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

/**
 * A JSON file of a store held in memory for synchronous checks (the host's tokens and users, its
 * OAuth sessions) and kept in step by `refresh()`: every version read or written replaces the
 * copy, and `generation` moves with it so caches of verification results know to drop.
 */
export abstract class HeldJsonFile<F> {
  #etag: string | null = null;
  #refreshing: Promise<boolean> | null = null;
  /** The content as last read or written. */
  protected held: F;
  /** Changes whenever the held content changes (for caches of verification results). */
  generation = 0;
  readonly #codec: JsonFileCodec<F> = {
    parse: (text) => this.parse(text),
    empty: () => this.empty(),
    onRead: (file, etag) => {
      if (etag !== this.#etag) this.#hold(file, etag);
    },
    onWritten: (file, etag) => this.#hold(file, etag),
  };

  protected constructor(
    readonly store: BlobStore,
    readonly key: string,
  ) {
    this.held = this.empty();
  }

  /** Parse the stored text, throwing a HexrepoError that names `where` when it is unusable. */
  protected abstract parse(text: string): F;
  /** The content of a file that does not exist yet. */
  protected abstract empty(): F;
  /** Rebuild the indexes of a new version (called after `held` is replaced). */
  protected abstract indexHeld(): void;

  /** Where the file is, for messages. */
  get where(): string {
    return `${this.store.url.replace(/\/$/, '')}/${this.key}`;
  }

  /** True once the file exists in the store. */
  get exists(): boolean {
    return this.#etag !== null;
  }

  /** Re-read the file when the stored object changed; true when it did. */
  async refresh(): Promise<boolean> {
    const head = await this.store.head(this.key);
    if ((head?.etag ?? null) === this.#etag) return false;
    const obj = await this.store.get(this.key);
    if ((obj?.etag ?? null) === this.#etag) return false;
    this.#hold(obj ? this.parse(Buffer.from(obj.body).toString('utf8')) : this.empty(), obj?.etag ?? null);
    return true;
  }

  /**
   * Refresh now, sharing a refresh already under way: what another server wrote a moment ago (a
   * token it just issued, a device code it just handed out) is looked up once more. One HEAD of the
   * object per lookup that missed; a caller sending unknown tokens is stopped by the failed-attempt
   * limiter long before that costs anything (a time-based throttle would instead let them hide
   * fresh tokens from everyone).
   */
  async refreshSoon(): Promise<void> {
    if (this.#refreshing) {
      await this.#refreshing;
      return;
    }
    this.#refreshing = this.refresh();
    try {
      await this.#refreshing;
    } finally {
      this.#refreshing = null;
    }
  }

  /**
   * Apply `fn` to the file as stored now and write the result conditionally; when another writer
   * got there first, read again and apply `fn` to what it wrote. `fn` returns file null for
   * "nothing to write".
   */
  protected change<T>(fn: (file: F, exists: boolean) => { file: F | null; result: T }): Promise<T> {
    return changeJsonFile(this.store, this.key, this.#codec, fn);
  }

  #hold(file: F, etag: string | null): void {
    this.generation++;
    this.held = file;
    this.#etag = etag;
    this.indexHeld();
  }
}
