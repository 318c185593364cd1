/**
 * Short-lived OAuth tokens of a host (what Hex ≥ 2.4 asks for): API keys exchanged for bearer
 * tokens (client credentials), and sessions a host user approved through the device flow. Kept as
 * one JSON object (`_hexrepo/host/oauth.json`) in the host's state store beside the credentials, so
 * every server on that store shares them, with the same conditional-write discipline as tokens.ts.
 * Secrets (access, refresh and device codes) are stored only as SHA-256 hashes.
 *
 * A session stores who it speaks for (an API key, or a user) and what was asked (scopes, a
 * repository), never a copy of the grants: its grants are derived again from the subject's current
 * grants on every use, so a token never holds more than its key or user holds now, and revoking the
 * key (or removing the user) ends every token that came from it.
 */
import { createHash, randomBytes, randomInt, timingSafeEqual } from 'node:crypto';
import { HexrepoError } from '@hexrepo/core';
import type { BlobStore } from '@hexrepo/storage';
import { HOST_STATE_PREFIX, scopeAllows, type Grant, type TokenInfo } from './tokens.js';
import { HeldJsonFile } from './json-state.js';

export const OAUTH_KEY = `${HOST_STATE_PREFIX}oauth.json`;

/** Who a session speaks for: an API key (by id) or a user (by name). */
export type OAuthSubject = { kind: 'key'; id: string } | { kind: 'user'; username: string };

/** What a session may ask for: hex.pm's scopes (`api`, `api:read`, `api:write`, `repositories`, `repository:NAME`). */
export const OAUTH_SCOPE_RE = /^(api|api:read|api:write|repositories|repository:[a-z][a-z0-9_]*)$/;

interface SessionRecord {
  id: string;
  clientId: string;
  /** The client's own name for itself (Hex sends the machine's host name). */
  name: string;
  subject: OAuthSubject;
  scopes: string[];
  /** Asked at `/api/repos/NAME`: limited to that repository. */
  repository: string | null;
  createdAt: string;
  accessHash: string;
  accessExpiresAt: string;
  refreshHash: string;
  refreshExpiresAt: string;
}

interface DeviceRecord {
  id: string;
  deviceHash: string;
  /** `XXXX-XXXX`, from consonants only (RFC 8628 §6.1: no vowels, no look-alikes). */
  userCode: string;
  clientId: string;
  name: string;
  scopes: string[];
  repository: string | null;
  createdAt: string;
  expiresAt: string;
  interval: number;
  status: 'pending' | 'approved' | 'denied';
  username?: string;
}

const FILE_FORMAT = 1;
interface OAuthFile {
  format: typeof FILE_FORMAT;
  sessions: SessionRecord[];
  devices: DeviceRecord[];
}

const ACCESS_RE = /^hxa_([a-z0-9]{10})_[A-Za-z0-9_-]{43}$/;
const REFRESH_RE = /^hxf_([a-z0-9]{10})_[A-Za-z0-9_-]{43}$/;
const DEVICE_RE = /^hxd_([a-z0-9]{10})_[A-Za-z0-9_-]{43}$/;
const USER_CODE_ALPHABET = 'BCDFGHJKLMNPQRSTVWXZ';
/** An expired device code is kept this long, so a late poll hears expired_token rather than invalid_grant. */
const DEVICE_GRACE_MS = 10 * 60_000;

/** Lifetimes and clock; every one has hex.pm's value as its default. */
export interface OAuthOptions {
  key?: string;
  /** @default 1_800_000 (30 minutes, hex.pm's for exchanged keys) */
  accessTtlMs?: number;
  /** @default 2_592_000_000 (30 days) */
  refreshTtlMs?: number;
  /** How long a device code waits for approval. @default 600_000 */
  deviceTtlMs?: number;
  /** Seconds a client waits between polls. @default 5 */
  intervalSeconds?: number;
  /**
   * Device authorizations kept at once (waiting, or expired and not yet pruned). Anyone may start
   * one, and every server re-reads them all, so past this a new one is refused until old ones go.
   * @default 1000
   */
  maxDevices?: number;
  /**
   * Sessions kept per API key or user. Every exchange of a key starts one that lasts 30 days, so
   * past this the subject's least recently renewed ones end: a client exchanging in a loop cannot
   * grow the host's state without bound, and only its own sessions pay for it.
   * @default 100
   */
  maxSessionsPerSubject?: number;
  now?: () => number;
}

/** What the token endpoint returns: hex_core reads access_token and expires_in, and refresh_token when present. */
export interface IssuedTokens {
  accessToken: string;
  refreshToken: string;
  expiresIn: number;
  scope: string;
}

/** The subject's grants now, or null when it no longer exists (key revoked or expired, user removed). */
export type SubjectGrants = (subject: OAuthSubject) => { grants: Grant[]; label: string; expiresAt?: string; user?: string } | null;

/** A device authorization waiting for a user, as the approval page shows it. */
export interface PendingDevice {
  userCode: string;
  clientId: string;
  name: string;
  scopes: string[];
  repository: string | null;
  expiresAt: string;
}

export type PollResult = { ok: true; tokens: IssuedTokens } | { ok: false; error: 'authorization_pending' | 'slow_down' | 'expired_token' | 'access_denied' | 'invalid_grant' };

function hashOf(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}

function hashMatches(expectedHex: string, secret: string): boolean {
  const expected = Buffer.from(expectedHex, 'hex');
  const actual = createHash('sha256').update(secret).digest();
  return expected.length === actual.length && timingSafeEqual(expected, actual);
}

function newId(taken: ReadonlySet<string>): string {
  let id: string;
  do id = Array.from(randomBytes(10), (b) => 'abcdefghijklmnopqrstuvwxyz0123456789'[b % 36]).join('');
  while (taken.has(id));
  return id;
}

const secret = (prefix: string, id: string): string => `${prefix}_${id}_${randomBytes(32).toString('base64url')}`;

/** `abcd efgh`, `ABCD-EFGH`, `abcdefgh` → `ABCD-EFGH`; null when it cannot be a user code. */
export function normalizeUserCode(input: string): string | null {
  const letters = input.toUpperCase().replace(/[^A-Z]/g, '');
  if (letters.length !== 8 || [...letters].some((c) => !USER_CODE_ALPHABET.includes(c))) return null;
  return `${letters.slice(0, 4)}-${letters.slice(4)}`;
}

/**
 * The grants a session holds: the subject's grants narrowed to what was asked. `api`/`api:write`
 * keep the subject's scopes; `api:read`, `repositories` and `repository:NAME` alone allow reads
 * only; `repository:NAME` scopes and a repository-scoped API root limit the repositories. Never
 * more than `base`: every result grant is one of `base`, with fewer scopes or one repository.
 */
export function deriveGrants(base: readonly Grant[], scopes: readonly string[], repository: string | null): Grant[] {
  const full = scopes.length === 0 || scopes.includes('api') || scopes.includes('api:write');
  const named = scopes.filter((s) => s.startsWith('repository:')).map((s) => s.slice('repository:'.length));
  // A repository:NAME scope without repositories or api limits the session to the named ones.
  const limitedTo = repository !== null ? [repository] : named.length > 0 && !scopes.includes('repositories') && !full ? named : null;
  const out: Grant[] = [];
  for (const g of base) {
    const grantScopes = full ? g.scopes : scopeAllows(g.scopes, 'read') ? (['read'] as const) : [];
    if (grantScopes.length === 0) continue;
    const repos = limitedTo === null ? [g.repository] : limitedTo.filter((r) => g.repository === '*' || g.repository === r);
    for (const r of repos) out.push({ repository: r, scopes: [...grantScopes], packages: [...g.packages] });
  }
  return out;
}

const emptyFile = (): OAuthFile => ({ format: FILE_FORMAT, sessions: [], devices: [] });

function parseFile(text: string, where: string): OAuthFile {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new HexrepoError('CONFIG_INVALID', `the OAuth sessions ${where} are not valid JSON`, { hint: 'delete the object: every OAuth session ends, and clients log in or exchange their keys again' });
  }
  const obj = parsed as Partial<OAuthFile> | null;
  if (obj?.format !== FILE_FORMAT || !Array.isArray(obj.sessions) || !Array.isArray(obj.devices)) {
    throw new HexrepoError('CONFIG_INVALID', `the OAuth sessions ${where} have an unknown format`, { hint: 'they were written by another version of hexrepo; upgrade hexrepo on this machine' });
  }
  return { format: FILE_FORMAT, sessions: obj.sessions, devices: obj.devices };
}

/**
 * The host's OAuth sessions and device authorizations, held in memory for synchronous checks and
 * kept in step with the state store by `refresh()` (a server calls it with the credentials').
 */
export class OAuthStore extends HeldJsonFile<OAuthFile> {
  #sessions = new Map<string, SessionRecord>();
  #devices = new Map<string, DeviceRecord>();
  /** Last poll per device id, in this process: slow_down is advice, not state worth a write. */
  readonly #polls = new Map<string, number>();
  readonly #now: () => number;
  readonly accessTtlMs: number;
  readonly refreshTtlMs: number;
  readonly deviceTtlMs: number;
  readonly intervalSeconds: number;
  readonly maxDevices: number;
  readonly maxSessionsPerSubject: number;

  private constructor(store: BlobStore, key: string, opts: OAuthOptions) {
    super(store, key);
    this.#now = opts.now ?? Date.now;
    this.accessTtlMs = opts.accessTtlMs ?? 30 * 60_000;
    this.refreshTtlMs = opts.refreshTtlMs ?? 30 * 24 * 3_600_000;
    this.deviceTtlMs = opts.deviceTtlMs ?? 10 * 60_000;
    this.intervalSeconds = opts.intervalSeconds ?? 5;
    this.maxDevices = opts.maxDevices ?? 1000;
    this.maxSessionsPerSubject = opts.maxSessionsPerSubject ?? 100;
  }

  /** Open the sessions in `store` (at OAUTH_KEY unless `key` says otherwise); none yet is an empty set. */
  static async open(store: BlobStore, opts: OAuthOptions = {}): Promise<OAuthStore> {
    const oauth = new OAuthStore(store, opts.key ?? OAUTH_KEY, opts);
    await oauth.refresh();
    return oauth;
  }

  protected parse(text: string): OAuthFile {
    return parseFile(text, this.where);
  }

  protected empty(): OAuthFile {
    return emptyFile();
  }

  protected indexHeld(): void {
    this.#sessions = new Map(this.held.sessions.map((s) => [s.id, s]));
    this.#devices = new Map(this.held.devices.map((d) => [d.id, d]));
  }

  /** Sessions as an administrator sees them: no hashes. */
  list(): { id: string; clientId: string; name: string; subject: OAuthSubject; scopes: string[]; repository: string | null; createdAt: string; refreshExpiresAt: string }[] {
    return this.held.sessions.map(({ accessHash: _a, refreshHash: _r, accessExpiresAt: _e, ...rest }) => rest);
  }

  /** True when `token` has the shape of an access token this store issues (so a miss is worth a refresh). */
  static looksLikeAccessToken(token: string): boolean {
    return ACCESS_RE.test(token);
  }

  /**
   * The identity an access token carries: its subject's current grants narrowed to the session's
   * scopes, expiring with the token (or its key, if sooner). `unknown`: well-formed but not the
   * current token of a session here (perhaps issued or refreshed by another server a moment ago,
   * or revoked); `expired`: this token, past its time (the refresh token may still work); null:
   * not an access token, or its key or user is gone.
   */
  verifyAccess(token: string, current: SubjectGrants): TokenInfo | 'unknown' | 'expired' | null {
    const m = ACCESS_RE.exec(token);
    if (!m) return null;
    const s = this.#sessions.get(m[1]!);
    // Another access token of a known session may be the one another server just rotated to.
    if (!s || !hashMatches(s.accessHash, token)) return 'unknown';
    if (!(Date.parse(s.accessExpiresAt) > this.#now())) return 'expired';
    const subject = current(s.subject);
    if (!subject) return null;
    const expiresAt = subject.expiresAt !== undefined && Date.parse(subject.expiresAt) < Date.parse(s.accessExpiresAt) ? subject.expiresAt : s.accessExpiresAt;
    return { id: `oauth:${s.id}`, label: subject.label, grants: deriveGrants(subject.grants, s.scopes, s.repository), createdAt: s.createdAt, expiresAt, ...(subject.user !== undefined ? { user: subject.user } : {}) };
  }

  /** Start a session for a subject that proved itself (an API key exchanged, a device approved). */
  async issue(opts: { clientId: string; name: string; subject: OAuthSubject; scopes: string[]; repository: string | null }): Promise<IssuedTokens> {
    return this.#change((file) => {
      const { session, tokens } = this.#newSession(file, opts);
      return { file: { ...file, sessions: this.#added(file.sessions, session) }, result: tokens };
    });
  }

  /** `sessions` with `session` added, less its subject's least recently renewed ones past maxSessionsPerSubject. */
  #added(sessions: readonly SessionRecord[], session: SessionRecord): SessionRecord[] {
    const same = (s: SessionRecord): boolean => (s.subject.kind === 'key' ? session.subject.kind === 'key' && s.subject.id === session.subject.id : session.subject.kind === 'user' && s.subject.username === session.subject.username);
    const mine = sessions.filter(same);
    const over = mine.length + 1 - this.maxSessionsPerSubject;
    if (over <= 0) return [...sessions, session];
    const ended = new Set([...mine].sort((a, b) => Date.parse(a.refreshExpiresAt) - Date.parse(b.refreshExpiresAt)).slice(0, over));
    return [...sessions.filter((s) => !ended.has(s)), session];
  }

  #newSession(file: OAuthFile, opts: { clientId: string; name: string; subject: OAuthSubject; scopes: string[]; repository: string | null }): { session: SessionRecord; tokens: IssuedTokens } {
    const now = this.#now();
    const id = newId(new Set(file.sessions.map((s) => s.id)));
    const accessToken = secret('hxa', id);
    const refreshToken = secret('hxf', id);
    const session: SessionRecord = {
      id,
      clientId: opts.clientId,
      name: opts.name,
      subject: opts.subject,
      scopes: opts.scopes,
      repository: opts.repository,
      createdAt: new Date(now).toISOString(),
      accessHash: hashOf(accessToken),
      accessExpiresAt: new Date(now + this.accessTtlMs).toISOString(),
      refreshHash: hashOf(refreshToken),
      refreshExpiresAt: new Date(now + this.refreshTtlMs).toISOString(),
    };
    return { session, tokens: { accessToken, refreshToken, expiresIn: Math.floor(this.accessTtlMs / 1000), scope: opts.scopes.join(' ') } };
  }

  /**
   * The refresh_token grant: a new access token and a new refresh token for the same session (the
   * old pair stops working), while the subject still exists. null when the refresh token is not
   * valid (unknown, expired, already used, revoked, or its key or user is gone).
   */
  async refreshSession(refreshToken: string, current: SubjectGrants): Promise<IssuedTokens | null> {
    const m = REFRESH_RE.exec(refreshToken);
    if (!m) return null;
    if (!(await this.#sessionMatches(m[1]!, (s) => hashMatches(s.refreshHash, refreshToken)))) return null;
    return this.#change((file) => {
      const s = file.sessions.find((x) => x.id === m[1]);
      if (!s || !hashMatches(s.refreshHash, refreshToken) || !(Date.parse(s.refreshExpiresAt) > this.#now())) return { file: null, result: null };
      if (!current(s.subject)) return { file: { ...file, sessions: file.sessions.filter((x) => x !== s) }, result: null };
      const accessToken = secret('hxa', s.id);
      const next = secret('hxf', s.id);
      const now = this.#now();
      const updated: SessionRecord = { ...s, accessHash: hashOf(accessToken), accessExpiresAt: new Date(now + this.accessTtlMs).toISOString(), refreshHash: hashOf(next), refreshExpiresAt: new Date(now + this.refreshTtlMs).toISOString() };
      return { file: { ...file, sessions: file.sessions.map((x) => (x === s ? updated : x)) }, result: { accessToken, refreshToken: next, expiresIn: Math.floor(this.accessTtlMs / 1000), scope: s.scopes.join(' ') } };
    });
  }

  /** End the session an access or refresh token belongs to (RFC 7009); false when there was none. */
  async revoke(token: string): Promise<boolean> {
    const m = ACCESS_RE.exec(token) ?? REFRESH_RE.exec(token);
    if (!m) return false;
    const id = m[1]!;
    if (!(await this.#sessionMatches(id, (s) => hashMatches(s.accessHash, token) || hashMatches(s.refreshHash, token)))) return false;
    return this.#change((file) => {
      const s = file.sessions.find((x) => x.id === id);
      if (!s || !(hashMatches(s.accessHash, token) || hashMatches(s.refreshHash, token))) return { file: null, result: false };
      return { file: { ...file, sessions: file.sessions.filter((x) => x !== s) }, result: true };
    });
  }

  /**
   * Whether session `id` matches here, looking at the store once when it does not: a token another
   * server issued or rotated a moment ago is still found, while a made-up one costs a HEAD of the
   * state, never a read and rewrite attempt of all of it.
   */
  async #sessionMatches(id: string, matches: (s: SessionRecord) => boolean): Promise<boolean> {
    const here = this.#sessions.get(id);
    if (here && matches(here)) return true;
    await this.refreshSoon();
    const fresh = this.#sessions.get(id);
    return fresh !== undefined && matches(fresh);
  }

  /** End a session by id (the administrator's `hexrepo oauth revoke`); false when there is none. */
  async revokeId(id: string): Promise<boolean> {
    return this.#change((file) => (file.sessions.some((s) => s.id === id) ? { file: { ...file, sessions: file.sessions.filter((s) => s.id !== id) }, result: true } : { file: null, result: false }));
  }

  /**
   * RFC 8628 device authorization: a device code for the client, a user code for the person.
   * RATE_LIMITED (with `retryAfterSeconds`) when `maxDevices` are kept already.
   */
  async startDevice(opts: { clientId: string; name: string; scopes: string[]; repository: string | null }): Promise<{ deviceCode: string; userCode: string; expiresIn: number; interval: number }> {
    return this.#change((file) => {
      if (file.devices.length >= this.maxDevices) {
        const freed = Math.min(...file.devices.map((d) => Date.parse(d.expiresAt) + DEVICE_GRACE_MS));
        const retryAfterSeconds = Math.max(1, Math.ceil((freed - this.#now()) / 1000));
        throw new HexrepoError('RATE_LIMITED', `${file.devices.length} device logins are waiting or recently expired, the most this host keeps`, {
          hint: `retry in ${retryAfterSeconds} s; if nobody is logging in, someone is starting device logins in bulk`,
          retryAfterSeconds,
        });
      }
      const id = newId(new Set(file.devices.map((d) => d.id)));
      const deviceCode = secret('hxd', id);
      const taken = new Set(file.devices.map((d) => d.userCode));
      let userCode: string;
      do userCode = Array.from({ length: 8 }, (_, i) => (i === 4 ? '-' : '') + USER_CODE_ALPHABET[randomInt(USER_CODE_ALPHABET.length)]).join('');
      while (taken.has(userCode));
      const now = this.#now();
      const record: DeviceRecord = {
        id,
        deviceHash: hashOf(deviceCode),
        userCode,
        clientId: opts.clientId,
        name: opts.name,
        scopes: opts.scopes,
        repository: opts.repository,
        createdAt: new Date(now).toISOString(),
        expiresAt: new Date(now + this.deviceTtlMs).toISOString(),
        interval: this.intervalSeconds,
        status: 'pending',
      };
      return { file: { ...file, devices: [...file.devices, record] }, result: { deviceCode, userCode, expiresIn: Math.floor(this.deviceTtlMs / 1000), interval: this.intervalSeconds } };
    });
  }

  /** The pending, unexpired device authorization with this user code, for the approval page; null otherwise. */
  async pendingDevice(userCode: string): Promise<PendingDevice | null> {
    const code = normalizeUserCode(userCode);
    if (code === null) return null;
    let d = this.held.devices.find((x) => x.userCode === code);
    if (!d) {
      await this.refreshSoon();
      d = this.held.devices.find((x) => x.userCode === code);
    }
    if (!d || d.status !== 'pending' || !(Date.parse(d.expiresAt) > this.#now())) return null;
    return { userCode: d.userCode, clientId: d.clientId, name: d.name, scopes: d.scopes, repository: d.repository, expiresAt: d.expiresAt };
  }

  /** Approve (for `username`) or deny a pending device authorization; false when it is not pending any more. */
  async decideDevice(userCode: string, decision: { approve: string } | 'deny'): Promise<boolean> {
    const code = normalizeUserCode(userCode);
    if (code === null) return false;
    return this.#change((file) => {
      const d = file.devices.find((x) => x.userCode === code);
      if (!d || d.status !== 'pending' || !(Date.parse(d.expiresAt) > this.#now())) return { file: null, result: false };
      const decided: DeviceRecord = decision === 'deny' ? { ...d, status: 'denied' } : { ...d, status: 'approved', username: decision.approve };
      return { file: { ...file, devices: file.devices.map((x) => (x === d ? decided : x)) }, result: true };
    });
  }

  /**
   * The device_code grant: tokens once the user approved (the device code is then used up), else
   * the RFC 8628 error the client acts on.
   */
  async pollDevice(deviceCode: string, clientId: string): Promise<PollResult> {
    const m = DEVICE_RE.exec(deviceCode);
    if (!m) return { ok: false, error: 'invalid_grant' };
    const id = m[1]!;
    const now = this.#now();
    // Approval happens on whichever server the user's browser reached: look at the store, not only memory.
    await this.refreshSoon();
    const known = this.#devices.get(id);
    // Just looked at the store: a code unknown here is unknown everywhere, and costs no read of the whole state.
    if (!known || !hashMatches(known.deviceHash, deviceCode) || known.clientId !== clientId) return { ok: false, error: 'invalid_grant' };
    if (known.status === 'pending') {
      const last = this.#polls.get(id);
      this.#polls.set(id, now);
      if (this.#polls.size > 10_000) this.#polls.clear();
      if (last !== undefined && now - last < known.interval * 1000) return { ok: false, error: 'slow_down' };
    }
    return this.#change<PollResult>((file) => {
      const d = file.devices.find((x) => x.id === id);
      if (!d || !hashMatches(d.deviceHash, deviceCode) || d.clientId !== clientId) return { file: null, result: { ok: false, error: 'invalid_grant' } };
      if (!(Date.parse(d.expiresAt) > now)) return { file: null, result: { ok: false, error: 'expired_token' } };
      if (d.status === 'pending') return { file: null, result: { ok: false, error: 'authorization_pending' } };
      const devices = file.devices.filter((x) => x !== d);
      if (d.status === 'denied') return { file: { ...file, devices }, result: { ok: false, error: 'access_denied' } };
      const { session, tokens } = this.#newSession(file, { clientId: d.clientId, name: d.name, subject: { kind: 'user', username: d.username! }, scopes: d.scopes, repository: d.repository });
      return { file: { ...file, devices, sessions: this.#added(file.sessions, session) }, result: { ok: true, tokens } };
    });
  }

  /** Drop what can never be used again: sessions past their refresh expiry, device codes long expired. */
  #prune(file: OAuthFile): OAuthFile {
    const now = this.#now();
    return { ...file, sessions: file.sessions.filter((s) => Date.parse(s.refreshExpiresAt) > now), devices: file.devices.filter((d) => Date.parse(d.expiresAt) + DEVICE_GRACE_MS > now) };
  }

  /** `change`, on the sessions as stored now with what can never be used again pruned. */
  #change<T>(fn: (file: OAuthFile) => { file: OAuthFile | null; result: T }): Promise<T> {
    return this.change((current) => fn(this.#prune(current)));
  }
}
