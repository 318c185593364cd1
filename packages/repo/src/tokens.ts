/**
 * API tokens: random secrets shown once, stored only as SHA-256 hashes in a JSON file kept next to
 * the signing key (never in the served folder). A token carries scopes and optional package-name
 * patterns. Verification looks the record up by its public id and compares hashes in constant time.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { HexrepoError } from '@hexrepo/core';

export const SCOPES = ['read', 'write', 'admin'] as const;
export type Scope = (typeof SCOPES)[number];

/** What is stored per token: no secret, only its hash. */
export interface TokenRecord {
  id: string;
  label: string;
  scopes: Scope[];
  /** Package-name globs (`*` wildcard) the token is limited to; empty means every package. */
  packages: string[];
  /** Per-repository permissions; absent: `scopes` and `packages` on every repository. */
  grants?: Grant[];
  createdAt: string;
  /** SHA-256 of the whole token, hex. */
  hash: string;
}

/** A token as shown to users and scripts: the record without its hash. */
export type TokenInfo = Omit<TokenRecord, 'hash'>;

/** One permission: `repository` is a repository name or '*' (every repository of the host). */
export interface Grant {
  repository: string;
  scopes: Scope[];
  /** Package-name globs; [] = all. */
  packages: string[];
}

/** True when one of `grants` gives `scope` on `repository` (and on `pkg`, when given). */
export function grantAllows(grants: readonly Grant[], repository: string, scope: Scope, pkg?: string): boolean {
  return grants.some((g) => (g.repository === '*' || g.repository === repository) && scopeAllows(g.scopes, scope) && (pkg === undefined || packageAllowed(g.packages, pkg)));
}

/**
 * The grants of a token: those it was created with, else one grant on every repository of the host
 * from its scopes and package patterns (a token of the single-repository token file).
 */
export function tokenGrants(token: TokenInfo): Grant[] {
  return token.grants ?? [{ repository: '*', scopes: token.scopes, packages: token.packages }];
}

const TOKEN_RE = /^hxr_([a-z0-9]{10})_([A-Za-z0-9_-]{43})$/;
const FILE_FORMAT = 1;

function hashOf(token: string): Buffer {
  return createHash('sha256').update(token).digest();
}

/**
 * True when `scopes` grant `needed`. admin grants everything; read and write are separate, so a
 * publishing token cannot download private packages unless it is also given read.
 */
export function scopeAllows(scopes: readonly Scope[], needed: Scope): boolean {
  return scopes.includes('admin') || scopes.includes(needed);
}

/** True when the token may touch `pkg` (no patterns: every package). */
export function packageAllowed(patterns: readonly string[], pkg: string): boolean {
  if (patterns.length === 0) return true;
  return patterns.some((p) => new RegExp(`^${p.split('*').map((s) => s.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`).test(pkg));
}

const PATTERN_RE = /^[a-z0-9_*]+$/;

/** The token file: load, add, revoke, verify. Every change is written atomically (temp + rename). */
export class TokenStore {
  #records: TokenRecord[] = [];
  #byId = new Map<string, TokenRecord>();

  private constructor(readonly path: string) {}

  /** Load the file at `path`; a missing file is an empty store. */
  static async open(path: string): Promise<TokenStore> {
    const store = new TokenStore(path);
    await store.reload();
    return store;
  }

  async reload(): Promise<void> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        this.#set([]);
        return;
      }
      throw new HexrepoError('STORAGE_IO', `cannot read the token file ${this.path}: ${(err as Error).message}`, {}, { cause: err });
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      throw new HexrepoError('CONFIG_INVALID', `the token file ${this.path} is not valid JSON`, { hint: 'restore it from a backup or delete it and create new tokens' });
    }
    const obj = parsed as { format?: unknown; tokens?: unknown };
    if (obj.format !== FILE_FORMAT || !Array.isArray(obj.tokens)) {
      throw new HexrepoError('CONFIG_INVALID', `the token file ${this.path} has an unknown format`, { hint: 'it was written by another version of hexrepo' });
    }
    this.#set(obj.tokens as TokenRecord[]);
  }

  /** Changes whenever the set of tokens changes (for caches of verification results). */
  generation = 0;

  #set(records: TokenRecord[]): void {
    this.generation++;
    this.#records = records;
    this.#byId = new Map(records.map((r) => [r.id, r]));
  }

  get size(): number {
    return this.#records.length;
  }

  list(): TokenInfo[] {
    return this.#records.map(({ hash: _hash, ...info }) => info);
  }

  /** Create a token; the returned secret is the only copy. */
  async create(opts: { label: string; scopes: Scope[]; packages?: string[]; grants?: Grant[] }): Promise<{ token: string; info: TokenInfo }> {
    if (opts.scopes.length === 0) throw new HexrepoError('USAGE', 'a token needs at least one scope (read, write or admin)');
    for (const s of opts.scopes) if (!SCOPES.includes(s)) throw new HexrepoError('USAGE', `unknown scope "${s}"; use read, write or admin`);
    const packages = opts.packages ?? [];
    for (const p of packages) if (!PATTERN_RE.test(p)) throw new HexrepoError('USAGE', `package pattern "${p}" may only hold lowercase letters, digits, "_" and "*"`);
    let id: string;
    do id = randomBytes(10).toString('base64url').toLowerCase().replace(/[^a-z0-9]/g, '').padEnd(10, '0').slice(0, 10);
    while (this.#byId.has(id));
    const token = `hxr_${id}_${randomBytes(32).toString('base64url')}`;
    const record: TokenRecord = { id, label: opts.label, scopes: [...new Set(opts.scopes)], packages, ...(opts.grants ? { grants: opts.grants } : {}), createdAt: new Date().toISOString(), hash: hashOf(token).toString('hex') };
    await this.#write([...this.#records, record]);
    const { hash: _hash, ...info } = record;
    return { token, info };
  }

  /** Revoke by id; false when no such token. */
  async revoke(id: string): Promise<boolean> {
    if (!this.#byId.has(id)) return false;
    await this.#write(this.#records.filter((r) => r.id !== id));
    return true;
  }

  /** The token's record when `token` is a valid, unrevoked token; null otherwise. Constant-time on the secret. */
  verify(token: string): TokenInfo | null {
    const m = TOKEN_RE.exec(token);
    if (!m) return null;
    const record = this.#byId.get(m[1]!);
    if (!record) return null;
    const expected = Buffer.from(record.hash, 'hex');
    const actual = hashOf(token);
    if (expected.length !== actual.length || !timingSafeEqual(expected, actual)) return null;
    const { hash: _hash, ...info } = record;
    return info;
  }

  async #write(records: TokenRecord[]): Promise<void> {
    await mkdir(dirname(this.path), { recursive: true });
    const tmp = `${this.path}.${randomBytes(8).toString('hex')}.tmp`;
    const fh = await open(tmp, 'wx', 0o600);
    try {
      await fh.writeFile(`${JSON.stringify({ format: FILE_FORMAT, tokens: records }, null, 2)}\n`);
      await fh.datasync();
    } finally {
      await fh.close();
    }
    try {
      await rename(tmp, this.path);
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
    this.#set(records);
  }
}
