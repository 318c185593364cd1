/**
 * The one-time move of a format-1 token file (`.hexrepo/tokens.json`, one repository's tokens with
 * scopes and package patterns) into the host's credentials, as grants for that repository.
 */
import { readFile, rename } from 'node:fs/promises';
import { HexrepoError } from '@hexrepo/core';
import type { BlobStore } from '@hexrepo/storage';
import { SCOPES, TokenStore, validateGrants, type Scope, type TokenRecord } from './tokens.js';

/** A record of a format-1 token file. */
interface FormatOneRecord {
  id: string;
  label: string;
  scopes: Scope[];
  packages: string[];
  createdAt: string;
  hash: string;
}

export type MigrationResult =
  /** No format-1 file at that path. */
  | { status: 'none' }
  /** Imported, and the file renamed to `renamedTo`. */
  | { status: 'imported'; tokens: number; renamedTo: string }
  /** The store already held credentials: nothing imported, the file left where it is. */
  | { status: 'skipped'; tokens: number };

function isRecord(r: unknown): r is FormatOneRecord {
  const o = r as Partial<FormatOneRecord> | null;
  return (
    typeof o?.id === 'string' &&
    typeof o.label === 'string' &&
    typeof o.createdAt === 'string' &&
    typeof o.hash === 'string' &&
    Array.isArray(o.scopes) &&
    o.scopes.every((s) => (SCOPES as readonly unknown[]).includes(s)) &&
    Array.isArray(o.packages)
  );
}

/**
 * Import the format-1 token file at `path` into `tokens`, each token becoming one grant on
 * `repository` (the repository the file belonged to, never '*'), when the store holds no
 * credentials yet; then rename the file `tokens.json.migrated` (kept, never deleted).
 */
export async function migrateTokenFile(path: string, tokens: TokenStore, repository: string): Promise<MigrationResult> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { status: 'none' };
    throw new HexrepoError('STORAGE_IO', `cannot read the token file ${path}: ${(err as Error).message}`, {}, { cause: err });
  }
  let parsed: { format?: unknown; tokens?: unknown };
  try {
    parsed = JSON.parse(text) as typeof parsed;
  } catch {
    throw new HexrepoError('CONFIG_INVALID', `the token file ${path} is not valid JSON, so its tokens cannot be moved to ${tokens.where}`, { hint: 'restore it from a backup, or rename it away and create new tokens' });
  }
  if (parsed.format !== 1 || !Array.isArray(parsed.tokens) || !parsed.tokens.every(isRecord)) {
    throw new HexrepoError('CONFIG_INVALID', `the token file ${path} is not a format-1 token file, so it cannot be moved to ${tokens.where}`, { hint: 'rename it away, then create new tokens with "hexrepo token create"' });
  }
  const records: TokenRecord[] = parsed.tokens.map((t) => ({
    id: t.id,
    label: t.label,
    grants: validateGrants([{ repository, scopes: t.scopes, packages: t.packages }]),
    createdAt: t.createdAt,
    hash: t.hash,
  }));
  if (!(await tokens.importIfEmpty(records))) return { status: 'skipped', tokens: records.length };
  const renamedTo = `${path}.migrated`;
  await rename(path, renamedTo).catch((err: unknown) => {
    // Another server that migrated the same file at the same moment renamed it first.
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  });
  return { status: 'imported', tokens: records.length, renamedTo };
}

/**
 * Open the host's credentials in `store` and, when `legacyFile` holds a format-1 token file, migrate
 * it once (its tokens become grants on `repository`). Every app opens credentials through here.
 */
export async function openCredentials(opts: { store: BlobStore; legacyFile?: string; repository?: string }): Promise<{ tokens: TokenStore; migration: MigrationResult }> {
  const tokens = await TokenStore.open(opts.store);
  if (opts.legacyFile === undefined) return { tokens, migration: { status: 'none' } };
  if (opts.repository === undefined) {
    const probe = await readFile(opts.legacyFile).then(
      () => true,
      () => false,
    );
    if (probe) throw new HexrepoError('CONFIG_INVALID', `the token file ${opts.legacyFile} must be moved to ${tokens.where}, which needs the name of its repository`, { hint: 'pass --name or run where hexrepo.json is' });
    return { tokens, migration: { status: 'none' } };
  }
  return { tokens, migration: await migrateTokenFile(opts.legacyFile, tokens, opts.repository) };
}
