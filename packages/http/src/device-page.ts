/**
 * The device approval page (RFC 8628 §3.3) at /oauth/device: a host user enters the code the client
 * printed, logs in with their user name and password (through the same failed-attempt limiter as
 * every password check), sees what the client asks for, and approves or denies. Server-rendered,
 * no script; the form is protected by a double-submit token (a random value in a SameSite=Strict,
 * HttpOnly cookie that must equal the form's hidden field, which a page elsewhere can neither read
 * nor set), and the page may not be framed.
 */
import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { deriveGrants, type Grant, type OAuthStore, type PendingDevice } from '@hexrepo/repo';
import { safeEqual, type Access } from './auth.js';
import { DEVICE_PAGE_PATH } from './oauth.js';

const CSRF_COOKIE = 'hexrepo_device_csrf';
const CSRF_RE = /^[A-Za-z0-9_-]{43}$/;
/** The client id Hex (Mix) sends (`Hex.API.OAuth`), named on the page. */
const KNOWN_CLIENTS: Record<string, string> = { '78ea6566-89fd-481e-a1d6-7d9d78eacca8': 'Hex (mix)' };
const MAX_FORM = 8 * 1024;

const HEADERS = {
  'content-type': 'text/html; charset=utf-8',
  'cache-control': 'no-store',
  'content-security-policy': "default-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  'x-frame-options': 'DENY',
  'x-content-type-options': 'nosniff',
  // Not no-referrer: with it, browsers send `Origin: null` on the form's POST, and the Origin check needs the real one.
  'referrer-policy': 'same-origin',
};

function esc(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function cookieOf(req: IncomingMessage): string | null {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const [k, v] = part.trim().split('=', 2);
    if (k === CSRF_COOKIE && v !== undefined && CSRF_RE.test(v)) return v;
  }
  return null;
}

function page(res: ServerResponse, status: number, title: string, body: string, extra: Record<string, string> = {}): void {
  const html = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>${esc(title)} · hexrepo</title></head>
<body><main>
<h1>${esc(title)}</h1>
${body}
</main></body></html>
`;
  const bytes = Buffer.from(html);
  for (const [k, v] of Object.entries({ ...HEADERS, ...extra, 'content-length': String(bytes.length) })) res.setHeader(k, v);
  res.writeHead(status);
  res.end(res.req.method === 'HEAD' ? undefined : bytes);
}

function scopeText(scope: string): string {
  if (scope === 'api' || scope === 'api:write') return 'use the API with your permissions (publish, retire, revert where you may)';
  if (scope === 'api:read') return 'read through the API';
  if (scope === 'repositories') return 'download packages from the repositories you can read';
  return `download packages from repository ${scope.slice('repository:'.length)}`;
}

function requestDetails(d: PendingDevice): string {
  const client = KNOWN_CLIENTS[d.clientId] ?? `client ${d.clientId}`;
  const scopes = d.scopes.length > 0 ? d.scopes : ['api'];
  return `<p data-testid="client">${esc(client)}${d.name ? ` on <strong>${esc(d.name)}</strong>` : ''} asks to:</p>
<ul data-testid="scopes">${scopes.map((s) => `<li>${esc(scopeText(s))} <code>${esc(s)}</code></li>`).join('')}</ul>
<p data-testid="repositories">Repositories: ${d.repository ? `<code>${esc(d.repository)}</code> only` : 'every repository of this host your account has access to'}. The tokens expire; you can revoke them with <code>hexrepo oauth revoke</code>.</p>`;
}

function codeForm(message?: string): string {
  return `${message ? `<p role="alert" data-testid="error">${esc(message)}</p>` : ''}<form method="get" action="${DEVICE_PAGE_PATH}">
<label>Code shown by your terminal <input name="user_code" autocomplete="off" autofocus required placeholder="XXXX-XXXX"></label>
<button type="submit">Continue</button>
</form>`;
}

function approveForm(d: PendingDevice, csrf: string, message?: string): string {
  return `${message ? `<p role="alert" data-testid="error">${esc(message)}</p>` : ''}<p>Code <strong data-testid="user-code">${esc(d.userCode)}</strong></p>
${requestDetails(d)}
<form method="post" action="${DEVICE_PAGE_PATH}">
<input type="hidden" name="csrf" value="${csrf}">
<input type="hidden" name="user_code" value="${esc(d.userCode)}">
<p><label>User name <input name="username" autocomplete="username" required></label></p>
<p><label>Password <input name="password" type="password" autocomplete="current-password" required></label></p>
<button type="submit" name="action" value="approve">Approve</button>
<button type="submit" name="action" value="deny">Deny</button>
</form>`;
}

function grantText(grants: readonly Grant[]): string {
  if (grants.length === 0) return '<p data-testid="granted">Your account has no access that the request covers: the tokens will be refused everywhere.</p>';
  return `<ul data-testid="granted">${grants.map((g) => `<li><code>${esc(g.repository === '*' ? 'every repository' : g.repository)}</code>: ${esc(g.scopes.join(', '))}${g.packages.length ? ` (packages ${esc(g.packages.join(', '))})` : ''}</li>`).join('')}</ul>`;
}

async function readForm(req: IncomingMessage): Promise<URLSearchParams | null> {
  const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if (type !== 'application/x-www-form-urlencoded') return null;
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_FORM) return null;
    chunks.push(chunk);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

const UNKNOWN_CODE = 'That code is unknown, expired or already used. Check the code your terminal shows, or start again there.';

/**
 * The pending device a user code names, through the failed-attempt limiter: user codes are short
 * enough to guess (RFC 8628 §5.1), so unknown ones count against the address. 'blocked' carries
 * the seconds to wait.
 */
async function lookUp(opts: { access: Access; oauth: OAuthStore; ip: string }, code: string): Promise<PendingDevice | { blocked: number } | null> {
  const key = `user-code\n${opts.ip}`;
  const blocked = opts.access.attemptsBlocked(key);
  if (blocked !== null) return { blocked };
  const d = await opts.oauth.pendingDevice(code);
  if (!d) opts.access.attemptFailed(key);
  return d;
}

function tooManyCodes(res: ServerResponse, seconds: number, extra: Record<string, string> = {}): void {
  page(res, 429, 'Authorize a device', codeForm('Too many unknown codes from your address; wait a minute and try again.'), { ...extra, 'retry-after': String(seconds) });
}

/** Serve GET/HEAD/POST on the approval page. `origin`: the request's (requestOrigin), which a POST's Origin must equal (or its https form) when sent. */
export async function handleDevicePage(req: IncomingMessage, res: ServerResponse, opts: { access: Access; oauth: OAuthStore; origin: string; ip: string; query: URLSearchParams }): Promise<void> {
  const { oauth } = opts;
  if (req.method === 'GET' || req.method === 'HEAD') {
    // One token per browser for the cookie's life, so two open tabs both work.
    const csrf = cookieOf(req) ?? randomBytes(32).toString('base64url');
    const cookie = { 'set-cookie': `${CSRF_COOKIE}=${csrf}; Path=${DEVICE_PAGE_PATH}; HttpOnly; SameSite=Strict; Max-Age=900` };
    const code = opts.query.get('user_code');
    if (code === null || code.trim() === '') return page(res, 200, 'Authorize a device', codeForm(), cookie);
    const d = await lookUp(opts, code);
    if (d && 'blocked' in d) return tooManyCodes(res, d.blocked, cookie);
    if (!d) return page(res, 404, 'Authorize a device', codeForm(UNKNOWN_CODE), cookie);
    return page(res, 200, 'Authorize a device', approveForm(d, csrf), cookie);
  }
  if (req.method !== 'POST') return page(res, 405, 'Method not allowed', '<p>Use the form.</p>', { allow: 'GET, HEAD, POST' });
  const form = await readForm(req);
  const cookie = cookieOf(req);
  const field = form?.get('csrf') ?? '';
  const origin = req.headers.origin;
  // Behind a proxy that terminates TLS the browser's Origin is https://HOST for this same Host (a
  // trusted proxy says so itself; without trustProxy the https form of the Host is accepted).
  const sameSite = origin === undefined || origin === opts.origin || origin === opts.origin.replace(/^http:/, 'https:');
  // The double-submit check first: nothing about a request from another site is looked at.
  if (!form || cookie === null || !safeEqual(cookie, field) || !sameSite) {
    return page(res, 403, 'Request refused', `<p data-testid="error">The form expired or did not come from this page. <a href="${DEVICE_PAGE_PATH}">Start again</a> with the code your terminal shows.</p>`);
  }
  const d = await lookUp(opts, form.get('user_code') ?? '');
  if (d && 'blocked' in d) return tooManyCodes(res, d.blocked);
  if (!d) return page(res, 404, 'Authorize a device', codeForm(UNKNOWN_CODE));
  const username = form.get('username') ?? '';
  const password = form.get('password') ?? '';
  const decision = await opts.access.authenticate(opts.ip, `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`);
  if (!decision.ok || decision.identity?.kind !== 'user') {
    const why = !decision.ok && decision.status === 429 ? 'Too many failed attempts; wait a minute and try again.' : 'Wrong user name or password.';
    return page(
      res,
      !decision.ok && decision.status === 429 ? 429 : 401,
      'Authorize a device',
      approveForm(d, cookie, why),
      !decision.ok && decision.retryAfterSeconds !== undefined ? { 'retry-after': String(decision.retryAfterSeconds) } : {},
    );
  }
  const user = decision.identity;
  if (form.get('action') === 'deny') {
    await oauth.decideDevice(d.userCode, 'deny');
    return page(res, 200, 'Request denied', '<p data-testid="result">Denied. The terminal that asked will be told; you can close this page.</p>');
  }
  if (!(await oauth.decideDevice(d.userCode, { approve: user.username }))) {
    return page(res, 409, 'Authorize a device', codeForm('That code was used or expired meanwhile. Start again in your terminal.'));
  }
  return page(
    res,
    200,
    'Device authorized',
    `<p data-testid="result">Approved for <strong>${esc(user.username)}</strong>. Return to your terminal; you can close this page.</p>
<p>The tokens carry:</p>
${grantText(deriveGrants(user.grants, d.scopes, d.repository))}`,
  );
}
