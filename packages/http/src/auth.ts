/**
 * Access control of the repository endpoint. Accepts every form the clients send (HEX_SPEC.md §1.3):
 * a raw `Authorization: KEY` (Mix and rebar3 `repo_key`), `Bearer KEY`, and Basic from URL
 * userinfo or netrc (user:password, or a token as the password). Credentials are compared in
 * constant time. Failed attempts are rate-limited: password guesses per client address and user
 * name, everything else (unknown tokens) per client address. A valid token is never refused by the
 * limiter (tokens are 32 random bytes: telling whether one is valid helps no one guess one), and a
 * user's password is refused only after failures for that same user from that same address.
 * What an identity may do is its grants (repository, scopes, packages), checked per repository.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { grantAllows, OAuthStore, type Grant, type OAuthSubject, type Scope, type TokenInfo, type TokenStore } from '@hexrepo/repo';

export interface BasicUser {
  username: string;
  password: string;
}

/**
 * Who made a request. Users of the host's credentials carry their grants; the configured users (the
 * guide's AUTH_USERNAME/AUTH_PASSWORD) have every scope on every repository.
 */
export type Identity = { kind: 'user'; username: string; grants: Grant[] } | { kind: 'token'; token: TokenInfo };

const EVERYTHING: Grant[] = [{ repository: '*', scopes: ['admin'], packages: [] }];

/** The repository a request is for: its name (for grants) and whether its reads are open. */
export interface AccessTarget {
  repository: string;
  /** `private`: every read needs credentials. `public`: reads are open, writes need credentials. */
  visibility: 'public' | 'private';
}

export interface AccessOptions {
  /** The visibility of a check that names no repository (a server of one repository). */
  visibility: 'public' | 'private';
  /**
   * The repository a check is about when the caller names none. @default '*' (then only grants on
   * every repository count)
   */
  repository?: string;
  /** Users with every scope on every repository (AUTH_USERNAME/AUTH_PASSWORD, the config file's "users"). */
  users: BasicUser[];
  /** The host's credentials: tokens and users with grants. */
  tokens?: TokenStore;
  /** The host's OAuth sessions: their bearer access tokens are accepted with their (derived) grants. */
  oauth?: OAuthStore;
  /** Failed attempts (per address, or per address and user for passwords) before they are refused for `windowMs`. @default 10 */
  maxFailures?: number;
  /** @default 60_000 */
  windowMs?: number;
  now?: () => number;
}

export type AccessDecision =
  | { ok: true; identity: Identity | null }
  /** `identity`: who was refused, on a 403 (known, but not allowed). */
  | { ok: false; status: 401 | 403 | 429; message: string; retryAfterSeconds?: number; identity?: Identity; tokenExpired?: true };

const VERIFIED_TTL_MS = 5_000;

/** A header verified lately: who it is, until when and for which credentials' generation. */
interface Verified {
  identity: Identity;
  until: number;
  generation: number;
  /** When a token's own expiry ends it (ms; Infinity when it never expires). */
  expiresAt: number;
  /** The configured or stored user a Basic header names (its failures are counted per address and user). */
  claimed: string | undefined;
}

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

/** A refusal as every endpoint sends it: status, message, and the challenge or retry headers. */
export interface Refusal {
  status: 401 | 403 | 429;
  message: string;
  headers: Record<string, string>;
}

/**
 * The one place that turns a refused decision into a response's status and headers, for the
 * repository endpoint and the API alike: a 401 challenges for Basic in the realm "hexrepo", a 429
 * says when to retry.
 */
export function refusal(decision: Extract<AccessDecision, { ok: false }>): Refusal {
  const headers: Record<string, string> = {};
  // hex_core refreshes its OAuth token and retries on exactly this challenge (hex_cli_auth).
  if (decision.status === 401) headers['www-authenticate'] = decision.tokenExpired ? 'Bearer realm="hex", error="token_expired"' : 'Basic realm="hexrepo", charset="UTF-8"';
  if (decision.retryAfterSeconds !== undefined) headers['retry-after'] = String(decision.retryAfterSeconds);
  return { status: decision.status, message: decision.message, headers };
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
   * Only successes are kept, each for the credentials' generation it was verified against.
   */
  readonly #verified = new Map<string, Verified>();

  /** The identity the header was verified as, while that still holds (same credentials, not expired); else undefined. */
  #verifiedHit(header: string, now: number): Verified | undefined {
    const hit = this.#verified.get(header);
    if (hit === undefined || !(hit.until > now) || hit.generation !== this.#generation() || !(hit.expiresAt > now)) return undefined;
    return hit;
  }

  /** Both only ever grow, so their sum changes whenever either does. */
  #generation(): number {
    return (this.options.tokens?.generation ?? 0) + (this.options.oauth?.generation ?? 0);
  }

  /** Resolve the header to an identity: null when absent, 'invalid' when present but unknown. */
  async identify(header: string | undefined): Promise<Identity | null | 'invalid'> {
    if (header === undefined) return null;
    const generation = this.#generation();
    const now = this.#now();
    const hit = this.#verifiedHit(header, now);
    if (hit) return hit.identity;
    const found = await this.#identifyUncached(header);
    if (found !== null && found !== 'invalid') {
      if (this.#verified.size >= 10_000) this.#verified.clear();
      const expiresAt = found.kind === 'token' && found.token.expiresAt !== undefined ? Date.parse(found.token.expiresAt) : Infinity;
      // Which limiter entry the header's failures count against, worked out once (a Basic header
      // costs a constant-time comparison with every configured user).
      const parsed = parseAuthorization(header);
      const claimed = parsed ? this.#claimedUser(parsed) : undefined;
      this.#verified.set(header, { identity: found, until: now + VERIFIED_TTL_MS, generation, expiresAt: Number.isNaN(expiresAt) ? -Infinity : expiresAt, claimed });
    }
    return found;
  }

  /**
   * The decision `check` reaches, without waiting, for a header verified in the last few seconds
   * against the credentials as they are now (a keep-alive client sends the same header on every
   * request), and for a public read without credentials. undefined when only `check` can tell (a
   * header not seen lately, an address with failed attempts). Same outcome as `check`, which starts with it.
   */
  checkVerified(address: string, header: string | undefined, scope: Scope, pkg?: string, target?: AccessTarget): AccessDecision | undefined {
    const publicRead = scope === 'read' && (target?.visibility ?? this.options.visibility) === 'public';
    if (header === undefined) return publicRead ? { ok: true, identity: null } : undefined;
    const hit = this.#verifiedHit(header, this.#now());
    if (!hit) return undefined;
    // As `check`: a public read only names who asked.
    if (publicRead) return { ok: true, identity: hit.identity };
    // As in `authenticate`, the limiter comes first: a caller it refuses goes the full way.
    if (this.#failures.size > 0 && this.#blocked(hit.claimed === undefined ? address : `${address}\n${hit.claimed}`) !== null) return undefined;
    return this.authorize(hit.identity, scope, pkg, target?.repository);
  }

  async #identifyUncached(header: string): Promise<Identity | null | 'invalid'> {
    const parsed = parseAuthorization(header);
    if (!parsed) return null;
    let found: Identity | null = null;
    // Check every configured user without stopping early, so timing does not reveal which matched.
    if (parsed.basic) {
      for (const u of this.options.users) {
        const ok = safeEqual(parsed.basic.username, u.username) && safeEqual(parsed.basic.password, u.password);
        if (ok && !found) found = { kind: 'user', username: u.username, grants: EVERYTHING };
      }
    }
    found ??= this.#token(parsed.secrets);
    // An OAuth token another server issued a moment ago is not in memory yet: look at the store once.
    if (!found && this.options.oauth && parsed.secrets.some((s) => OAuthStore.looksLikeAccessToken(s) && this.options.oauth!.verifyAccess(s, this.subjectGrants) === 'unknown')) {
      await this.options.oauth.refreshSoon();
      found = this.#token(parsed.secrets);
    }
    // A stored user costs a scrypt, so only a Basic header naming one pays it (a token sent as the
    // Basic password does not); user names are not secret, passwords are compared in constant time.
    if (!found && parsed.basic && this.options.tokens?.hasUser(parsed.basic.username)) {
      const user = await this.options.tokens.verifyUser(parsed.basic.username, parsed.basic.password);
      if (user) found = { kind: 'user', username: user.username, grants: user.grants };
    }
    return found ?? 'invalid';
  }

  #token(secrets: readonly string[]): Identity | null {
    for (const secret of secrets) {
      const token = this.options.tokens?.verify(secret);
      if (token) return { kind: 'token', token };
      const oauth = this.options.oauth?.verifyAccess(secret, this.subjectGrants);
      if (oauth && typeof oauth === 'object') return { kind: 'token', token: oauth };
    }
    return null;
  }

  /**
   * What an OAuth session's subject holds now: an API key's grants while it is unrevoked and
   * unexpired, a user's while they exist (a configured user has every scope). null: gone, and so
   * is every token made from it.
   */
  readonly subjectGrants = (subject: OAuthSubject): { grants: Grant[]; label: string; expiresAt?: string; user?: string } | null => {
    // `user` names who acts (audit logs, the publisher): a key's label is unique only per user.
    if (subject.kind === 'key') {
      const key = this.options.tokens?.tokenById(subject.id);
      return key ? { grants: key.grants, label: key.label, ...(key.expiresAt !== undefined ? { expiresAt: key.expiresAt } : {}), ...(key.user !== undefined ? { user: key.user } : {}) } : null;
    }
    if (this.options.users.some((u) => u.username === subject.username)) return { grants: EVERYTHING, label: subject.username, user: subject.username };
    const user = this.options.tokens?.user(subject.username);
    return user ? { grants: user.grants, label: user.username, user: user.username } : null;
  };

  /** The configured user a Basic header names, checked against every user (constant time). */
  #claimedUser(parsed: NonNullable<ReturnType<typeof parseAuthorization>>): string | undefined {
    if (!parsed.basic) return undefined;
    let claimed: string | undefined;
    for (const u of this.options.users) if (safeEqual(parsed.basic.username, u.username) && claimed === undefined) claimed = u.username;
    if (claimed === undefined && this.options.tokens?.hasUser(parsed.basic.username)) claimed = parsed.basic.username;
    return claimed;
  }

  /**
   * Who the header proves the caller is, through the failed-attempt limiter: every credential check
   * goes through here (or `check`). Guesses at a configured user's password count against that user
   * from that address, and once over the limit are refused without being checked, so a refusal says
   * nothing about the password; anything else counts against the address. A valid token always wins.
   */
  async authenticate(address: string, header: string | undefined): Promise<AccessDecision> {
    const parsed = parseAuthorization(header);
    if (!parsed) return { ok: false, status: 401, message: 'authentication required' };
    const user = this.#claimedUser(parsed);
    const key = user === undefined ? address : `${address}\n${user}`;
    const blocked = this.#blocked(key);
    if (blocked) {
      const token = this.#token(parsed.secrets);
      if (token) return { ok: true, identity: token };
      return { ok: false, status: 429, message: 'too many failed authentication attempts; try again later', retryAfterSeconds: blocked };
    }
    const id = await this.identify(header);
    if (id === null || id === 'invalid') {
      this.#fail(key);
      if (parsed.secrets.some((s) => this.options.oauth?.verifyAccess(s, this.subjectGrants) === 'expired')) return { ok: false, status: 401, message: 'the OAuth access token expired; refresh it', tokenExpired: true };
      return { ok: false, status: 401, message: 'invalid credentials' };
    }
    return { ok: true, identity: id };
  }

  /**
   * Decide whether a request from `address` with `header` may use `scope` on the target repository
   * (on `pkg`, if given). Without a target: the options' visibility and repository.
   */
  async check(address: string, header: string | undefined, scope: Scope, pkg?: string, target?: AccessTarget): Promise<AccessDecision> {
    const verified = this.checkVerified(address, header, scope, pkg, target);
    if (verified) return verified;
    const visibility = target?.visibility ?? this.options.visibility;
    const publicRead = scope === 'read' && visibility === 'public';
    // A public read never fails on credentials: Hex ≥ 2.4 may send a stranger's hex.pm token.
    // (Nor does it tell whether they are valid, so it needs no limiter.)
    if (publicRead) {
      const id = header === undefined ? null : await this.identify(header);
      return { ok: true, identity: id === 'invalid' ? null : id };
    }
    const decision = await this.authenticate(address, header);
    if (!decision.ok) return decision;
    return this.authorize(decision.identity!, scope, pkg, target?.repository);
  }

  /** Whether an identity already authenticated may use `scope` on `repository` (and `pkg`): its grants only, synchronous. */
  authorize(id: Identity, scope: Scope, pkg?: string, repository: string = this.options.repository ?? '*'): AccessDecision {
    const grants = id.kind === 'token' ? id.token.grants : id.grants;
    if (!grantAllows(grants, repository, scope, pkg)) {
      const who = id.kind === 'token' ? 'the token' : `user ${id.username}`;
      // Which of the three is missing, so the holder knows what to ask for.
      const message = !grantAllows(grants, repository, scope)
        ? grants.some((g) => g.repository === '*' || g.repository === repository)
          ? `${who} does not have the ${scope} scope on repository ${repository}`
          : `${who} has no access to repository ${repository}`
        : `${who} is not allowed to access package ${pkg} in repository ${repository}`;
      return { ok: false, status: 403, message, identity: id };
    }
    return { ok: true, identity: id };
  }

  /** Seconds until `key` may try again when it failed too often (the same limiter as credentials, for other guesses); null when it may. */
  attemptsBlocked(key: string): number | null {
    return this.#blocked(key);
  }

  /** Count a failed guess against `key` (say, a user code from an address). */
  attemptFailed(key: string): void {
    this.#fail(key);
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
