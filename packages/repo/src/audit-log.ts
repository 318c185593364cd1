/**
 * Audit logs: what was done, by whom, from which client, in hex.pm's shape (`action`, `params`,
 * `user_agent`, `inserted_at`, plus `user`). One JSON object per package in the repository's store
 * (`_hexrepo/audit/packages/NAME.json`) and one per user in the host's state store
 * (`_hexrepo/audit/users/USERNAME.json`). Entries are only appended; each log keeps its newest
 * `max` entries, so it stays bounded. Appends to one log from one process are queued and written
 * together; writers on other processes are merged by conditional writes.
 */
import { HexrepoError } from '@hexrepo/core';
import type { BlobStore } from '@hexrepo/storage';
import { readJsonState, updateJsonState } from './json-state.js';

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

/** Appends to and reads the audit logs of one store. */
export class AuditLog {
  readonly #queues = new Map<string, { entries: AuditEntry[]; done: Promise<void> }>();
  readonly #tail = new Map<string, Promise<void>>();

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
    await updateJsonState(this.store, key, (current) => {
      const all = [...parseAudit(key, current), ...entries];
      const file: AuditFile = { format: 1, entries: all.slice(Math.max(0, all.length - this.max)) };
      return { value: file, result: undefined };
    });
  }

  /** The log at `key`, newest first; `page` (from 1) of `perPage` entries. */
  async read(key: string, opts: { page?: number; perPage?: number } = {}): Promise<AuditEntry[]> {
    const perPage = opts.perPage ?? 100;
    const page = Math.max(1, opts.page ?? 1);
    const entries = parseAudit(key, (await readJsonState(this.store, key))?.value).reverse();
    return entries.slice((page - 1) * perPage, page * perPage);
  }
}
