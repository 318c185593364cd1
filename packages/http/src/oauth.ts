/**
 * The OAuth endpoints Hex ≥ 2.4 calls (hex_core `hex_api_oauth`), at `{apiRoot}/oauth/…`:
 * `token` (grants `client_credentials` — an API key sent as client_secret, what `oauth_exchange`
 * does —, RFC 8693 `token-exchange` with the key as subject_token, `refresh_token`, and RFC 8628
 * `device_code`), `device_authorization` and `revoke` (RFC 7009). Bodies come as ETF (hex_core),
 * JSON or a form (RFC 6749); answers are ETF when the client accepts it, else JSON, with RFC 6749's
 * `error`/`error_description` on failure and hex.pm's statuses.
 *
 * At `/api/repos/NAME/oauth/…` the same host-wide sessions are served, limited to repository NAME.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { isHexrepoError } from '@hexrepo/core';
import { OAUTH_SCOPE_RE, type IssuedTokens, type OAuthStore } from '@hexrepo/repo';
import type { Access } from './auth.js';
import { refusal } from './auth.js';
import { decodeEtf, encodeEtf, ETF_CONTENT_TYPE, type Etf } from './etf.js';
import { bodyUnread } from './request.js';

export type OAuthEndpoint = 'token' | 'device_authorization' | 'revoke';

/** The path of the device approval page: outside `/api` and `/repos`, and no repository resource. */
export const DEVICE_PAGE_PATH = '/oauth/device';

/** An OAuth API path: which endpoint, and the repository its root names (null: the host's `/api`). */
export function matchOAuthPath(path: string): { endpoint: OAuthEndpoint; repository: string | null } | null {
  const m = /^\/api(?:\/repos\/([a-z][a-z0-9_]*))?\/oauth\/(token|device_authorization|revoke)$/.exec(path);
  return m ? { endpoint: m[2] as OAuthEndpoint, repository: m[1] ?? null } : null;
}

const MAX_BODY = 16 * 1024;
/** Longer than any real client's id (Hex sends a UUID) or scope list; each is stored with the session or device code. */
const MAX_CLIENT_ID = 255;
const MAX_SCOPE = 1024;

class OAuthError extends Error {
  constructor(
    readonly status: number,
    readonly error: string,
    description: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(description);
  }
}

function send(req: IncomingMessage, res: ServerResponse, status: number, body: Record<string, Etf> | null, headers: Record<string, string> = {}): void {
  for (const [k, v] of Object.entries({ 'cache-control': 'no-store', pragma: 'no-cache', ...headers })) res.setHeader(k, v);
  if (status >= 400 && bodyUnread(req)) res.setHeader('connection', 'close');
  if (body === null) {
    res.setHeader('content-length', '0');
    res.writeHead(status);
    res.end();
    return;
  }
  const etf = (req.headers.accept ?? '').includes(ETF_CONTENT_TYPE);
  const bytes = etf ? encodeEtf(body) : Buffer.from(`${JSON.stringify(body)}\n`);
  res.setHeader('content-type', etf ? ETF_CONTENT_TYPE : 'application/json; charset=utf-8');
  res.setHeader('content-length', String(bytes.length));
  res.writeHead(status);
  res.end(bytes);
}

async function readParams(req: IncomingMessage): Promise<Record<string, string>> {
  const declared = Number(req.headers['content-length'] ?? '0');
  if (declared > MAX_BODY) throw new OAuthError(413, 'invalid_request', `the body is over ${MAX_BODY} bytes`);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY) throw new OAuthError(413, 'invalid_request', `the body is over ${MAX_BODY} bytes`);
    chunks.push(chunk);
  }
  const body = Buffer.concat(chunks);
  const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  let value: unknown;
  if (type === ETF_CONTENT_TYPE) {
    try {
      value = decodeEtf(body);
    } catch {
      throw new OAuthError(400, 'invalid_request', 'the body is not a valid Erlang term');
    }
  } else if (type === 'application/json') {
    try {
      value = JSON.parse(body.toString('utf8'));
    } catch {
      throw new OAuthError(400, 'invalid_request', 'the body is not valid JSON');
    }
  } else if (type === 'application/x-www-form-urlencoded') {
    value = Object.fromEntries(new URLSearchParams(body.toString('utf8')));
  } else {
    throw new OAuthError(415, 'invalid_request', `send ${ETF_CONTENT_TYPE}, application/json or application/x-www-form-urlencoded, not ${type || 'nothing'}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value) || value instanceof Uint8Array) throw new OAuthError(400, 'invalid_request', 'the body must be a map of parameters');
  const params: Record<string, string> = {};
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) if (typeof v === 'string') params[k] = v;
  return params;
}

function required(params: Record<string, string>, name: string): string {
  const v = params[name];
  if (v === undefined || v === '') throw new OAuthError(400, 'invalid_request', `the ${name} parameter is missing`);
  return v;
}

/** The space-separated scopes, checked against hex.pm's; none asked means everything the subject has. */
function scopesOf(params: Record<string, string>): string[] {
  if ((params.scope ?? '').length > MAX_SCOPE) throw new OAuthError(400, 'invalid_request', `the scope parameter is over ${MAX_SCOPE} characters; ask for fewer scopes`);
  const scopes = [...new Set((params.scope ?? '').split(' ').filter((s) => s !== ''))];
  const unknown = scopes.find((s) => !OAUTH_SCOPE_RE.test(s));
  if (unknown !== undefined) throw new OAuthError(400, 'invalid_scope', `unknown scope "${unknown.slice(0, 64)}"; use api, api:read, api:write, repositories or repository:NAME`);
  return scopes;
}

/** The client's name for itself (Hex sends the host name), shown on the approval page: printable, short. */
function nameOf(params: Record<string, string>): string {
  return (params.name ?? '').replace(/[^\x20-\x7e]/g, '').slice(0, 100);
}

function tokenBody(t: IssuedTokens): Record<string, Etf> {
  return { access_token: t.accessToken, token_type: 'bearer', expires_in: t.expiresIn, refresh_token: t.refreshToken, scope: t.scope };
}

/** Statuses as hex.pm's OAuth controller gives them. */
const POLL_STATUS = { authorization_pending: 400, slow_down: 400, expired_token: 400, access_denied: 403, invalid_grant: 400 } as const;
const POLL_TEXT = {
  authorization_pending: 'the user has not approved the request yet',
  slow_down: 'polling too fast; wait the interval between polls',
  expired_token: 'the device code expired; start again',
  access_denied: 'the user denied the request',
  invalid_grant: 'unknown or used device code',
} as const;

/**
 * Handle one OAuth API request. `origin` is the request's (requestOrigin: for the verification URIs), `ip` the
 * client's address (for the failed-attempt limiter every credential check goes through).
 */
export async function handleOAuth(req: IncomingMessage, res: ServerResponse, opts: { access: Access; oauth: OAuthStore; endpoint: OAuthEndpoint; repository: string | null; origin: string; ip: string }): Promise<void> {
  const { access, oauth, repository } = opts;
  try {
    if (req.method !== 'POST') throw new OAuthError(405, 'invalid_request', 'use POST', { allow: 'POST' });
    const params = await readParams(req);
    if (opts.endpoint === 'revoke') {
      // RFC 7009 §2.2: 200 whether or not the token was known, so the answer reveals nothing.
      await oauth.revoke(required(params, 'token'));
      return send(req, res, 200, null);
    }
    const clientId = required(params, 'client_id');
    if (clientId.length > MAX_CLIENT_ID) throw new OAuthError(400, 'invalid_request', `the client_id parameter is over ${MAX_CLIENT_ID} characters`);
    if (opts.endpoint === 'device_authorization') {
      const d = await oauth.startDevice({ clientId, name: nameOf(params), scopes: scopesOf(params), repository }).catch((err: unknown) => {
        if (!isHexrepoError(err, 'RATE_LIMITED')) throw err;
        throw new OAuthError(503, 'temporarily_unavailable', `${err.message}; retry later`, { 'retry-after': String(err.details.retryAfterSeconds) });
      });
      const uri = `${opts.origin}${DEVICE_PAGE_PATH}`;
      return send(req, res, 200, { device_code: d.deviceCode, user_code: d.userCode, verification_uri: uri, verification_uri_complete: `${uri}?user_code=${d.userCode}`, expires_in: d.expiresIn, interval: d.interval });
    }
    const grantType = required(params, 'grant_type');
    if (grantType === 'client_credentials' || grantType === 'urn:ietf:params:oauth:grant-type:token-exchange') {
      const key = required(params, grantType === 'client_credentials' ? 'client_secret' : 'subject_token');
      // The same limiter as every credential check: a wrong key here is a guess like any other.
      // As a Bearer credential, so a "Basic …" sent here is never taken for a password.
      const decision = await access.authenticate(opts.ip, `Bearer ${key}`);
      if (!decision.ok) {
        const r = refusal(decision);
        throw new OAuthError(r.status === 429 ? 429 : 401, 'invalid_client', r.status === 429 ? r.message : 'unknown, revoked or expired API key', r.status === 429 ? { 'retry-after': r.headers['retry-after'] ?? '60' } : {});
      }
      const id = decision.identity;
      // Only an API key is exchanged: a token made from a token would outlive the revocation bound of neither.
      if (id?.kind !== 'token' || id.token.id.startsWith('oauth:')) throw new OAuthError(400, 'invalid_grant', 'exchange an API key (hexrepo token create), not a password or an OAuth token');
      const tokens = await oauth.issue({ clientId, name: nameOf(params), subject: { kind: 'key', id: id.token.id }, scopes: scopesOf(params), repository });
      return send(req, res, 200, tokenBody(tokens));
    }
    if (grantType === 'refresh_token') {
      const tokens = await oauth.refreshSession(required(params, 'refresh_token'), access.subjectGrants);
      if (!tokens) throw new OAuthError(400, 'invalid_grant', 'refresh token expired, revoked or already used; log in again');
      return send(req, res, 200, tokenBody(tokens));
    }
    if (grantType === 'urn:ietf:params:oauth:grant-type:device_code') {
      const polled = await oauth.pollDevice(required(params, 'device_code'), clientId);
      if (polled.ok) return send(req, res, 200, tokenBody(polled.tokens));
      throw new OAuthError(POLL_STATUS[polled.error], polled.error, POLL_TEXT[polled.error]);
    }
    throw new OAuthError(400, 'unsupported_grant_type', `unsupported grant type "${grantType.slice(0, 100)}"`);
  } catch (err) {
    if (res.headersSent) {
      res.destroy();
      return;
    }
    if (!(err instanceof OAuthError)) throw err;
    send(req, res, err.status, { error: err.error, error_description: err.message }, err.headers);
  }
}
