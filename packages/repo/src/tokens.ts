/**
 * The host's credentials: API tokens and users, each with grants per repository. Kept as one JSON
 * object (`_hexrepo/host/credentials.json`) in the host's state store, so every server on that store
 * shares them. Token secrets are shown once and stored only as SHA-256 hashes; passwords as scrypt
 * hashes. Every change is a conditional write of the object read just before; when another server
 * changed it meanwhile, the change is applied again to what that server wrote, so no creation or
 * revocation is ever lost or undone.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { HexrepoError } from '@hexrepo/core';
import type { BlobStore } from '@hexrepo/storage';
import { hashPassword, verifyPassword } from './password.js';
import { HeldJsonFile } from './json-state.js';

export const SCOPES = ['read', 'write', 'admin'] as const;
export type Scope = (typeof SCOPES)[number];

/** One permission: `repository` is a repository name or '*' (every repository of the host). */
export interface Grant {
  repository: string;
  scopes: Scope[];
  /** Package-name globs (`*` wildcard); empty means every package. */
  packages: string[];
}

/** A permission as the Hex API spells it (`POST /api/keys`): `api` (`read`/`write`), `repository` (a name), `repositories`. */
export interface HexPermission {
  domain: string;
  resource?: string;
}

/** A token as shown to users and scripts: no secret, no hash. */
export interface TokenInfo {
  id: string;
  label: string;
  grants: Grant[];
  createdAt: string;
  /** After this instant the token is refused. */
  expiresAt?: string;
  /** The host user it belongs to (a key created through the API); absent for tokens made with `hexrepo token`. */
  user?: string;
  /** The Hex permissions it was created with through the API, shown back as they were asked. */
  permissions?: HexPermission[];
}

/** What is stored per token. */
export interface TokenRecord extends TokenInfo {
  /** SHA-256 of the whole token, hex. */
  hash: string;
}

/** A host user as shown: no password hash. */
export interface UserInfo {
  username: string;
  grants: Grant[];
  createdAt: string;
}

/** What is stored per user. */
export interface UserRecord extends UserInfo {
  /** `scrypt$N$r$p$SALT$HASH` (see password.ts). */
  passwordHash: string;
}

/** Where the host's own state lives in its state store (never served, never deployed). */
export const HOST_STATE_PREFIX = '_hexrepo/host/';
export const CREDENTIALS_KEY = `${HOST_STATE_PREFIX}credentials.json`;

const FILE_FORMAT = 2;
interface CredentialsFile {
  format: typeof FILE_FORMAT;
  tokens: TokenRecord[];
  users: UserRecord[];
}

const TOKEN_RE = /^hxr_([a-z0-9]{10})_([A-Za-z0-9_-]{43})$/;
const PATTERN_RE = /^[a-z0-9_*]+$/;
const REPOSITORY_RE = /^(\*|[a-z][a-z0-9_]*)$/;
const USERNAME_RE = /^[A-Za-z0-9_.@-]{1,64}$/;

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

/** True when the patterns admit `pkg` (no patterns: every package). */
export function packageAllowed(patterns: readonly string[], pkg: string): boolean {
  if (patterns.length === 0) return true;
  return patterns.some((p) =>
    new RegExp(
      `^${p
        .split('*')
        .map((s) => s.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
        .join('.*')}$`,
    ).test(pkg),
  );
}

/**
 * True when one of `grants` lets its holder use `scope` on `repository` (and on package `pkg`, when
 * given). A grant for '*' covers every repository of the host; one for a name covers only that one.
 */
export function grantAllows(grants: readonly Grant[], repository: string, scope: Scope, pkg?: string): boolean {
  return grants.some((g) => (g.repository === '*' || g.repository === repository) && scopeAllows(g.scopes, scope) && (pkg === undefined || packageAllowed(g.packages, pkg)));
}

/** Check and normalise grants given by a user (command line or API); throws USAGE with what to fix. */
export function validateGrants(grants: readonly Grant[]): Grant[] {
  if (grants.length === 0) throw new HexrepoError('USAGE', 'a credential needs at least one grant (a repository, or "*", with scopes)');
  return grants.map((g) => {
    if (!REPOSITORY_RE.test(g.repository)) throw new HexrepoError('USAGE', `"${g.repository}" is not a repository name (lowercase letters, digits and "_", starting with a letter) nor "*" (every repository)`);
    if (g.scopes.length === 0) throw new HexrepoError('USAGE', `the grant on ${g.repository} needs at least one scope (read, write or admin)`);
    for (const s of g.scopes) if (!SCOPES.includes(s)) throw new HexrepoError('USAGE', `unknown scope "${s}"; use read, write or admin`);
    for (const p of g.packages) if (!PATTERN_RE.test(p)) throw new HexrepoError('USAGE', `package pattern "${p}" may only hold lowercase letters, digits, "_" and "*"`);
    return { repository: g.repository, scopes: [...new Set(g.scopes)], packages: [...new Set(g.packages)] };
  });
}

function assertUsername(username: string): void {
  if (!USERNAME_RE.test(username)) throw new HexrepoError('USAGE', `"${username}" is not a usable user name: 1 to 64 letters, digits, "_", ".", "@" or "-" (no ":", which Basic auth uses as separator)`);
}

const emptyFile = (): CredentialsFile => ({ format: FILE_FORMAT, tokens: [], users: [] });

function parseFile(text: string, where: string): CredentialsFile {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new HexrepoError('CONFIG_INVALID', `the credentials ${where} are not valid JSON`, { hint: 'restore the object from a backup or version of the store, or delete it and create new tokens and users' });
  }
  const obj = parsed as Partial<CredentialsFile> | null;
  if (obj?.format !== FILE_FORMAT || !Array.isArray(obj.tokens) || !Array.isArray(obj.users)) {
    throw new HexrepoError('CONFIG_INVALID', `the credentials ${where} have an unknown format`, { hint: 'they were written by another version of hexrepo; upgrade hexrepo on this machine' });
  }
  return { format: FILE_FORMAT, tokens: obj.tokens, users: obj.users };
}

function infoOf(record: TokenRecord): TokenInfo {
  const { hash: _hash, ...info } = record;
  return info;
}

function userInfoOf(record: UserRecord): UserInfo {
  const { passwordHash: _hash, ...info } = record;
  return info;
}

function newTokenId(taken: ReadonlySet<string>): string {
  let id: string;
  do
    id = randomBytes(10)
      .toString('base64url')
      .toLowerCase()
      .replace(/[^a-z0-9]/g, '')
      .padEnd(10, '0')
      .slice(0, 10);
  while (taken.has(id));
  return id;
}

/**
 * The host's tokens and users, held in memory for synchronous verification and kept in step with
 * the state store by `refresh()` (a server calls it every 2 s).
 */
export class TokenStore extends HeldJsonFile<CredentialsFile> {
  #byId = new Map<string, TokenRecord>();
  #byUser = new Map<string, UserRecord>();
  readonly #now: () => number;

  private constructor(store: BlobStore, key: string, now: () => number) {
    super(store, key);
    this.#now = now;
  }

  /** Open the credentials in `store` (at CREDENTIALS_KEY unless `key` says otherwise); none yet is an empty set. */
  static async open(store: BlobStore, opts: { key?: string; now?: () => number } = {}): Promise<TokenStore> {
    const tokens = new TokenStore(store, opts.key ?? CREDENTIALS_KEY, opts.now ?? Date.now);
    await tokens.refresh();
    return tokens;
  }

  protected parse(text: string): CredentialsFile {
    return parseFile(text, this.where);
  }

  protected empty(): CredentialsFile {
    return emptyFile();
  }

  protected indexHeld(): void {
    this.#byId = new Map(this.held.tokens.map((r) => [r.id, r]));
    this.#byUser = new Map(this.held.users.map((u) => [u.username, u]));
  }

  /** Tokens and users together: 0 means there is nothing to authenticate against. */
  get size(): number {
    return this.held.tokens.length + this.held.users.length;
  }

  list(): TokenInfo[] {
    return this.held.tokens.map(infoOf);
  }

  users(): UserInfo[] {
    return this.held.users.map(userInfoOf);
  }

  /** True when `username` names a stored user (for the per-user failed-attempt limiter). */
  hasUser(username: string): boolean {
    return this.#byUser.has(username);
  }

  /** Create a token; the returned secret is the only copy. */
  async create(opts: { label: string; grants: Grant[]; expiresAt?: Date; user?: string; permissions?: HexPermission[] }): Promise<{ token: string; info: TokenInfo }> {
    const grants = validateGrants(opts.grants);
    if (opts.expiresAt !== undefined && !(opts.expiresAt.getTime() > this.#now())) throw new HexrepoError('USAGE', 'the expiry must be in the future');
    return this.change((file) => {
      const id = newTokenId(new Set(file.tokens.map((t) => t.id)));
      const token = `hxr_${id}_${randomBytes(32).toString('base64url')}`;
      const record: TokenRecord = {
        id,
        label: opts.label,
        grants,
        createdAt: new Date(this.#now()).toISOString(),
        ...(opts.expiresAt ? { expiresAt: opts.expiresAt.toISOString() } : {}),
        ...(opts.user !== undefined ? { user: opts.user } : {}),
        ...(opts.permissions ? { permissions: opts.permissions } : {}),
        hash: hashOf(token).toString('hex'),
      };
      return { file: { ...file, tokens: [...file.tokens, record] }, result: { token, info: infoOf(record) } };
    });
  }

  /** Revoke by id; false when no such token (also when another server revoked it first). */
  async revoke(id: string): Promise<boolean> {
    return this.change((file) => (file.tokens.some((t) => t.id === id) ? { file: { ...file, tokens: file.tokens.filter((t) => t.id !== id) }, result: true } : { file: null, result: false }));
  }

  /** Revoke every token `select` picks (e.g. all of one user's keys); returns those revoked. */
  async revokeWhere(select: (token: TokenInfo) => boolean): Promise<TokenInfo[]> {
    return this.change((file) => {
      const gone = file.tokens.filter((t) => select(infoOf(t)));
      return gone.length === 0 ? { file: null, result: [] } : { file: { ...file, tokens: file.tokens.filter((t) => !gone.includes(t)) }, result: gone.map(infoOf) };
    });
  }

  /**
   * A key only this token's holder and the host can compute (from the stored hash of the secret),
   * for capabilities tied to a live token, such as the web UI's private docs links; null when the
   * token is unknown, revoked or expired.
   */
  keyOf(id: string): { key: Buffer; info: TokenInfo } | null {
    const record = this.#byId.get(id);
    if (!record) return null;
    if (record.expiresAt !== undefined && !(Date.parse(record.expiresAt) > this.#now())) return null;
    return { key: createHash('sha256').update(`hexrepo-capability\n${record.hash}`).digest(), info: infoOf(record) };
  }

  /** The token's record when `token` is a valid, unrevoked, unexpired token; null otherwise. Constant-time on the secret. */
  verify(token: string): TokenInfo | null {
    const m = TOKEN_RE.exec(token);
    if (!m) return null;
    const record = this.#byId.get(m[1]!);
    if (!record) return null;
    const expected = Buffer.from(record.hash, 'hex');
    const actual = hashOf(token);
    if (expected.length !== actual.length || !timingSafeEqual(expected, actual)) return null;
    if (record.expiresAt !== undefined && !(Date.parse(record.expiresAt) > this.#now())) return null;
    return infoOf(record);
  }

  /** The token with this id when it is unrevoked and unexpired (what an OAuth session made from it checks); null otherwise. */
  tokenById(id: string): TokenInfo | null {
    const record = this.#byId.get(id);
    if (!record || (record.expiresAt !== undefined && !(Date.parse(record.expiresAt) > this.#now()))) return null;
    return infoOf(record);
  }

  /** The stored user with this name; null when there is none. */
  user(username: string): UserInfo | null {
    const record = this.#byUser.get(username);
    return record ? userInfoOf(record) : null;
  }

  /** Add a user; ALREADY_EXISTS when the name is taken. */
  async addUser(opts: { username: string; password: string; grants: Grant[] }): Promise<UserInfo> {
    assertUsername(opts.username);
    const grants = validateGrants(opts.grants);
    const passwordHash = await hashPassword(opts.password);
    return this.change((file) => {
      if (file.users.some((u) => u.username === opts.username)) throw new HexrepoError('ALREADY_EXISTS', `user ${opts.username} already exists`, { hint: 'change the password with "hexrepo user passwd", or remove the user first' });
      const record: UserRecord = { username: opts.username, grants, createdAt: new Date(this.#now()).toISOString(), passwordHash };
      return { file: { ...file, users: [...file.users, record] }, result: userInfoOf(record) };
    });
  }

  /** Set a user's password; false when there is no such user. */
  async setPassword(username: string, password: string): Promise<boolean> {
    const passwordHash = await hashPassword(password);
    return this.change((file) => (file.users.some((u) => u.username === username) ? { file: { ...file, users: file.users.map((u) => (u.username === username ? { ...u, passwordHash } : u)) }, result: true } : { file: null, result: false }));
  }

  /** Remove a user, and the API keys they created (a removed user's keys must not outlive them); false when there is no such user. */
  async removeUser(username: string): Promise<boolean> {
    return this.change((file) =>
      file.users.some((u) => u.username === username) ? { file: { ...file, users: file.users.filter((u) => u.username !== username), tokens: file.tokens.filter((t) => t.user !== username) }, result: true } : { file: null, result: false },
    );
  }

  /** The user when `password` is theirs; null otherwise. Costs one scrypt (tens of milliseconds) when the user exists. */
  async verifyUser(username: string, password: string): Promise<UserInfo | null> {
    const record = this.#byUser.get(username);
    if (!record) return null;
    return (await verifyPassword(password, record.passwordHash)) ? userInfoOf(record) : null;
  }

  /**
   * Import records as they are (the format-1 migration), only when no credentials exist yet in the
   * store: the first server to migrate wins, and a second one finds the object and imports nothing.
   * True when imported.
   */
  async importIfEmpty(tokens: TokenRecord[]): Promise<boolean> {
    return this.change((file, exists) => (exists ? { file: null, result: false } : { file: { ...file, tokens }, result: true }));
  }
}
