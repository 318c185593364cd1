/**
 * Audit logs: what was done, by whom, from which client, in hex.pm's shape (`action`, `params`,
 * `user_agent`, `inserted_at`, plus `user`). One JSON object per package in the repository's store
 * (`_hexrepo/audit/packages/NAME.json`) and one per user in the host's state store
 * (`_hexrepo/audit/users/USERNAME.json`). Entries are only appended; each log keeps its newest
 * `max` entries, so it stays bounded. Appends to one log from one process are queued and written
 * together; writers on other processes are merged by conditional writes.
 */
import { HexrepoError, isHexrepoError } from '@hexrepo/core';
import type { BlobStore } from '@hexrepo/storage';
import { readJsonState } from './json-state.js';

export const AUDIT_PREFIX = '_hexrepo/audit/';
export const packageAuditKey = (name: string): string => `${AUDIT_PREFIX}packages/${name}.json`;
export const userAuditKey = (username: string): string => `${AUDIT_PREFIX}users/${encodeURIComponent(username)}.json`;

/** hex.pm's action names: `release.publish`, `owner.add`, `key.generate`, … */
export type AuditAction = 'release.publish' | 'release.revert' | 'release.retire' | 'release.unretire' | 'docs.publish' | 'docs.revert' | 'owner.add' | 'owner.transfer' | 'owner.remove' | 'key.generate' | 'key.remove';

export interface AuditEntry {
  action: AuditAction;
  params: Record<string, unknown>;
  /** The client's User-Agent, when it sent one. */
  user_agent: string | null;
  /** ISO-8601. */
  inserted_at: string;
  /** The user name, or `token:LABEL` for a token that belongs to no user; null when unknown. */
  user: string | null;
}

interface AuditFile {
  format: 1;
  entries: AuditEntry[];
}

/** @default 1000 entries per log */
export const DEFAULT_AUDIT_MAX = 1000;

function parseAudit(key: string, value: unknown): AuditEntry[] {
  if (value === undefined) return [];
  const file = value as Partial<AuditFile> | null;
  if (file?.format !== 1 || !Array.isArray(file.entries)) throw new HexrepoError('REGISTRY_CORRUPT', `${key} has an unknown format`, { key, hint: 'restore it from a backup, or delete it (its history is then lost)' });
  return file.entries;
}

/** Conditional writes lost in a row before an append gives up (each loss means another writer's append landed). */
const MAX_ATTEMPTS = 30;
/** Logs whose last written version is kept in memory (the most recently written ones). */
const KEPT_LOGS = 64;

/** One entry as it stands inside the file's `entries` array (JSON.stringify with 2 spaces, nested twice), UTF-8. */
function entryText(entry: AuditEntry): Buffer {
  return Buffer.from(JSON.stringify(entry, null, 2).replaceAll('\n', '\n    '));
}

const FILE_HEAD = Buffer.from('{\n  "format": 1,\n  "entries": [\n    ');
const ENTRY_SEPARATOR = Buffer.from(',\n    ');
const FILE_TAIL = Buffer.from('\n  ]\n}\n');
const EMPTY_FILE = Buffer.from('{\n  "format": 1,\n  "entries": []\n}\n');

/**
 * A log's entries as the file holds them, between `"entries": [` and `]`: their texts joined by
 * separators, and where each one starts. Appending copies bytes; no entry is serialised twice.
 */
interface EntryTexts {
  body: Buffer;
  starts: number[];
}

/** The texts of `texts` followed by `added`, without the first `drop`. */
function appendTexts(texts: EntryTexts, added: readonly Buffer[], drop: number): EntryTexts {
  const kept = drop < texts.starts.length ? texts.body.subarray(texts.starts[drop]) : Buffer.alloc(0);
  const shift = drop < texts.starts.length ? texts.starts[drop]! : 0;
  const starts = texts.starts.slice(drop).map((s) => s - shift);
  const parts: Buffer[] = [kept];
  let at = kept.byteLength;
  for (const t of added.slice(Math.max(0, drop - texts.starts.length))) {
    if (at > 0) {
      parts.push(ENTRY_SEPARATOR);
      at += ENTRY_SEPARATOR.byteLength;
    }
    starts.push(at);
    parts.push(t);
    at += t.byteLength;
  }
  return { body: Buffer.concat(parts, at), starts };
}

/** The file: the same bytes as `JSON.stringify(file, null, 2)` and a newline. */
function auditFileBytes(texts: EntryTexts): Buffer {
  return texts.starts.length === 0 ? EMPTY_FILE : Buffer.concat([FILE_HEAD, texts.body, FILE_TAIL]);
}

/** A version of a log this process wrote or read: its etag ('' when absent) and its entries' texts. */
interface KeptLog {
  etag: string;
  texts: EntryTexts;
}

/** Appends to and reads the audit logs of one store. */
export class AuditLog {
  readonly #queues = new Map<string, { entries: AuditEntry[]; done: Promise<void> }>();
  readonly #tail = new Map<string, Promise<void>>();
  /**
   * The version of each recently written log as written: the next append writes over it on the
   * condition that it is still the stored version, so a log this process wrote last is neither
   * read nor parsed again (a publisher's log of 1,000 entries is ~300 KB); a conflict re-reads it.
   */
  readonly #kept = new Map<string, KeptLog>();

  constructor(
    readonly store: BlobStore,
    readonly max: number = DEFAULT_AUDIT_MAX,
  ) {}

  /** Append entries to the log at `key`; resolves once they are stored. */
  append(key: string, ...entries: AuditEntry[]): Promise<void> {
    const queued = this.#queues.get(key);
    if (queued) {
      queued.entries.push(...entries);
      return queued.done;
    }
    const batch = { entries: [...entries], done: Promise.resolve() };
    const previous = this.#tail.get(key) ?? Promise.resolve();
    // One write per log at a time; what arrives meanwhile joins the next write.
    batch.done = previous.then(() => {
      this.#queues.delete(key);
      return this.#write(key, batch.entries);
    });
    this.#queues.set(key, batch);
    const tail = batch.done.catch(() => undefined);
    this.#tail.set(key, tail);
    void tail.then(() => {
      if (this.#tail.get(key) === tail) this.#tail.delete(key);
    });
    return batch.done;
  }

  async #write(key: string, entries: AuditEntry[]): Promise<void> {
    const added = entries.map(entryText);
    for (let attempt = 1; ; attempt++) {
      // The kept version when there is one (the write below fails if it is no longer the stored
      // one); otherwise, and after a lost write, what the store holds.
      const current = (attempt === 1 ? this.#kept.get(key) : undefined) ?? (await this.#read(key));
      const drop = Math.max(0, current.texts.starts.length + entries.length - this.max);
      const texts = appendTexts(current.texts, added, drop);
      const condition = current.etag === '' ? { ifNoneMatch: '*' as const } : { ifMatch: current.etag };
      try {
        const put = await this.store.put(key, auditFileBytes(texts), { contentType: 'application/json', ...condition });
        this.#keep(key, { etag: put.etag, texts });
        return;
      } catch (err) {
        this.#kept.delete(key);
        if (!isHexrepoError(err, 'STORAGE_CONFLICT') || attempt >= MAX_ATTEMPTS) throw err;
        if (attempt > 1) await new Promise((r) => setTimeout(r, Math.random() * 10 * attempt));
      }
    }
  }

  /** The stored version of a log (etag '' when there is none). */
  async #read(key: string): Promise<KeptLog> {
    const stored = await readJsonState(this.store, key);
    const entries = parseAudit(key, stored?.value);
    return { etag: stored?.etag ?? '', texts: appendTexts({ body: Buffer.alloc(0), starts: [] }, entries.map(entryText), 0) };
  }

  #keep(key: string, log: KeptLog): void {
    this.#kept.delete(key);
    this.#kept.set(key, log);
    if (this.#kept.size > KEPT_LOGS) this.#kept.delete(this.#kept.keys().next().value!);
  }

  /** The log at `key`, newest first; `page` (from 1) of `perPage` entries. */
  async read(key: string, opts: { page?: number; perPage?: number } = {}): Promise<AuditEntry[]> {
    const perPage = opts.perPage ?? 100;
    const page = Math.max(1, opts.page ?? 1);
    const entries = parseAudit(key, (await readJsonState(this.store, key))?.value).reverse();
    return entries.slice((page - 1) * perPage, page * perPage);
  }
}
