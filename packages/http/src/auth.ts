/**
 * Access control of the repository endpoint. Accepts every form the clients send (HEX_SPEC.md §1.3):
 * a raw `Authorization: KEY` (Mix and rebar3 `repo_key`), `Bearer KEY`, and Basic from URL
 * userinfo or netrc (user:password, or a token as the password). Credentials are compared in
 * constant time; failed attempts are rate-limited per client address.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { packageAllowed, scopeAllows, type Scope, type TokenInfo, type TokenStore } from '@hexrepo/repo';

export interface BasicUser {
  username: string;
  password: string;
}

/** Who made a request. Basic-auth users (the guide's AUTH_USERNAME/AUTH_PASSWORD) have every scope. */
export type Identity = { kind: 'user'; username: string } | { kind: 'token'; token: TokenInfo };

export interface AccessOptions {
  /** `private`: every read needs credentials. `public`: reads are open, writes need credentials. */
  visibility: 'public' | 'private';
  users: BasicUser[];
  tokens?: TokenStore;
  /** Failed attempts per address before it is refused for `windowMs`. @default 10 */
  maxFailures?: number;
  /** @default 60_000 */
  windowMs?: number;
  now?: () => number;
}

export type AccessDecision =
  | { ok: true; identity: Identity | null }
  | { ok: false; status: 401 | 403 | 429; message: string; retryAfterSeconds?: number };

const VERIFIED_TTL_MS = 5_000;

function digest(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

/** Constant-time equality of two strings (hashes first, so lengths leak nothing). */
export function safeEqual(a: string, b: string): boolean {
  return timingSafeEqual(digest(a), digest(b));
}

/** The credentials a header carries: secrets to try as tokens, and a user:password pair if Basic. */
export function parseAuthorization(header: string | undefined): { secrets: string[]; basic?: BasicUser } | null {
  if (header === undefined) return null;
  const value = header.trim();
  if (value === '') return null;
  const space = value.indexOf(' ');
  const scheme = space === -1 ? '' : value.slice(0, space).toLowerCase();
  const rest = space === -1 ? '' : value.slice(space + 1).trim();
  if (scheme === 'basic') {
    const decoded = Buffer.from(rest, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    const username = colon === -1 ? decoded : decoded.slice(0, colon);
    const password = colon === -1 ? '' : decoded.slice(colon + 1);
    return { secrets: [password, username].filter((s) => s !== ''), basic: { username, password } };
  }
  if (scheme === 'bearer') return { secrets: [rest] };
  return { secrets: [value] };
}

export class Access {
  readonly #failures = new Map<string, { count: number; until: number }>();
  readonly #maxFailures: number;
  readonly #windowMs: number;
  readonly #now: () => number;

  constructor(readonly options: AccessOptions) {
    this.#maxFailures = options.maxFailures ?? 10;
    this.#windowMs = options.windowMs ?? 60_000;
    this.#now = options.now ?? Date.now;
  }

  /** True when neither users nor tokens are configured (nothing to check against). */
  get open(): boolean {
    return this.options.users.length === 0 && (this.options.tokens?.size ?? 0) === 0;
  }

  /**
   * Recently verified headers, for VERIFIED_TTL_MS: a client on a keep-alive connection sends the
   * same header on every request, and hashing it each time costs more than serving a cached file.
   * Only successes are kept, and the map is emptied whenever the token file changes.
   */
  readonly #verified = new Map<string, { identity: Identity; until: number; generation: number }>();

  /** Resolve the header to an identity: null when absent, 'invalid' when present but unknown. */
  identify(header: string | undefined): Identity | null | 'invalid' {
    if (header === undefined) return null;
    const generation = this.options.tokens?.generation ?? 0;
    const now = this.#now();
    const hit = this.#verified.get(header);
    if (hit && hit.until > now && hit.generation === generation) return hit.identity;
    const found = this.#identifyUncached(header);
    if (found !== null && found !== 'invalid') {
      if (this.#verified.size >= 10_000) this.#verified.clear();
      this.#verified.set(header, { identity: found, until: now + VERIFIED_TTL_MS, generation });
    }
    return found;
  }

  #identifyUncached(header: string): Identity | null | 'invalid' {
    const parsed = parseAuthorization(header);
    if (!parsed) return null;
    let found: Identity | null = null;
    // Check every configured user without stopping early, so timing does not reveal which matched.
    if (parsed.basic) {
      for (const u of this.options.users) {
        const ok = safeEqual(parsed.basic.username, u.username) && safeEqual(parsed.basic.password, u.password);
        if (ok && !found) found = { kind: 'user', username: u.username };
      }
    }
    if (!found && this.options.tokens) {
      for (const secret of parsed.secrets) {
        const token = this.options.tokens.verify(secret);
        if (token) {
          found = { kind: 'token', token };
          break;
        }
      }
    }
    return found ?? 'invalid';
  }

  /** Decide whether a request from `address` with `header` may use `scope` (on `pkg`, if given). */
  check(address: string, header: string | undefined, scope: Scope, pkg?: string): AccessDecision {
    const publicRead = scope === 'read' && this.options.visibility === 'public';
    // A public read never fails on credentials: Hex ≥ 2.4 may send a stranger's hex.pm token.
    if (publicRead) {
      const id = header === undefined ? null : this.identify(header);
      return { ok: true, identity: id === 'invalid' ? null : id };
    }
    const blocked = this.#blocked(address);
    if (blocked) return { ok: false, status: 429, message: 'too many failed authentication attempts; try again later', retryAfterSeconds: blocked };
    const id = this.identify(header);
    if (id === null) return { ok: false, status: 401, message: 'authentication required' };
    if (id === 'invalid') {
      this.#fail(address);
      return { ok: false, status: 401, message: 'invalid credentials' };
    }
    if (id.kind === 'token') {
      if (!scopeAllows(id.token.scopes, scope)) return { ok: false, status: 403, message: `the token does not have the ${scope} scope` };
      if (pkg !== undefined && !packageAllowed(id.token.packages, pkg)) return { ok: false, status: 403, message: `the token is not allowed to access package ${pkg}` };
    }
    return { ok: true, identity: id };
  }

  #blocked(address: string): number | null {
    const entry = this.#failures.get(address);
    if (!entry) return null;
    const now = this.#now();
    if (now >= entry.until) {
      this.#failures.delete(address);
      return null;
    }
    return entry.count >= this.#maxFailures ? Math.ceil((entry.until - now) / 1000) : null;
  }

  #fail(address: string): void {
    const now = this.#now();
    const entry = this.#failures.get(address);
    if (!entry || now >= entry.until) this.#failures.set(address, { count: 1, until: now + this.#windowMs });
    else entry.count++;
    if (this.#failures.size > 10_000) {
      for (const [k, v] of this.#failures) if (now >= v.until) this.#failures.delete(k);
    }
  }
}
