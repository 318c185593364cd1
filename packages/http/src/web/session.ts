/**
 * Web login with the host's users, and the tokens page. A session is a token of the host's
 * credentials (stored hashed like every token, listed, revocable, expiring after SESSION_HOURS)
 * owned by the user, carrying the user's grants; its secret lives only in an HttpOnly,
 * SameSite=Lax cookie (Secure behind TLS). Every form carries a CSRF token: for a session, a hash
 * of the session's secret (the same on every server of the host, unknowable without the cookie);
 * for the login form, a random value also set in a SameSite=Strict cookie (double submit). A POST
 * whose Origin is another site is refused as well.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { formatError, isHexrepoError } from '@hexrepo/core';
import { grantAllows, packageAllowed, SCOPES, type Grant, type Scope, type TokenInfo } from '@hexrepo/repo';
import type { Access, Identity } from '../auth.js';
import type { HostedRepository } from '../host.js';
import { requestOrigin } from '../request.js';
import { day, h, type Html } from './html.js';

export const SESSION_COOKIE = 'hexrepo_session';
const LOGIN_CSRF_COOKIE = 'hexrepo_login_csrf';
const SESSION_HOURS = 12;
/** The label of the host tokens that are web UI login sessions (not keys: the keys API leaves them out). */
export const SESSION_LABEL = 'web session';
const MAX_FORM_BYTES = 16 * 1024;
const EXPIRY_DAYS = [1, 7, 30, 90, 365] as const;

export interface Sessions {
  /** The session a request's cookie names, when it is valid. */
  identity(req: IncomingMessage): Promise<{ identity: Identity; username: string; secret: string } | null>;
  /** The CSRF token of the request's session, or null without one. */
  csrfFor(req: IncomingMessage): Promise<string | null>;
  handle(req: IncomingMessage, res: ServerResponse, path: string, ctx: SessionPageContext): Promise<void>;
}

export interface SessionPageContext {
  page: (id: Identity | null, title: string, body: Html, status?: number) => Promise<void>;
  repositories: readonly HostedRepository[];
}

function cookies(req: IncomingMessage): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0) out.set(part.slice(0, eq).trim(), part.slice(eq + 1).trim());
  }
  return out;
}

function sameText(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

function csrfOf(secret: string): string {
  return createHash('sha256').update(`hexrepo-csrf\n${secret}`).digest('base64url');
}

async function readForm(req: IncomingMessage): Promise<URLSearchParams | null> {
  const type = (req.headers['content-type'] ?? '').split(';', 1)[0]!.trim().toLowerCase();
  if (type !== 'application/x-www-form-urlencoded') return null;
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_FORM_BYTES) return null;
    chunks.push(chunk);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

/**
 * A `next` target that stays on this site: a path, never `//host` or a scheme. Judged as a browser
 * parses it (tabs and newlines dropped, `\\` as `/`), and given back as that parser writes it
 * (percent-encoded), so a Location header can always hold it.
 */
function localPath(next: string | null): string {
  if (!next?.startsWith('/')) return '/-/';
  try {
    const url = new URL(next, 'http://this.site');
    return url.origin === 'http://this.site' ? `${url.pathname}${url.search}${url.hash}` : '/-/';
  } catch {
    return '/-/';
  }
}

/** Whether `wanted` asks for nothing beyond `held`: every scope on the repository, within the held package patterns. */
export function grantWithin(held: readonly Grant[], wanted: Grant): boolean {
  return wanted.scopes.every((scope) =>
    held.some(
      (g) =>
        (g.repository === '*' || g.repository === wanted.repository) && grantAllows([g], wanted.repository, scope) && (g.packages.length === 0 || (wanted.packages.length > 0 && wanted.packages.every((p) => packageAllowed(g.packages, p)))),
    ),
  );
}

export function createSessions(opts: { access: Access; trustProxy?: boolean }): Sessions {
  const tokens = opts.access.options.tokens;
  const secure = (req: IncomingMessage): boolean => requestOrigin(req, opts.trustProxy === true).startsWith('https:');
  const cookie = (req: IncomingMessage, name: string, value: string, attrs: { maxAge: number; sameSite: 'Lax' | 'Strict'; path?: string }): string =>
    `${name}=${value}; Path=${attrs.path ?? '/'}; Max-Age=${attrs.maxAge}; HttpOnly; SameSite=${attrs.sameSite}${secure(req) ? '; Secure' : ''}`;

  const identity: Sessions['identity'] = async (req) => {
    const secret = cookies(req).get(SESSION_COOKIE);
    if (!secret || !tokens) return null;
    const id = await opts.access.identify(`Bearer ${secret}`);
    // Only a session token counts: a cookie holding another token of the user's is not a login.
    if (id === null || id === 'invalid' || id.kind !== 'token' || id.token.user === undefined || id.token.label !== SESSION_LABEL) return null;
    return { identity: id, username: id.token.user, secret };
  };

  const redirect = (res: ServerResponse, location: string, setCookies: string[] = []): void => {
    if (setCookies.length) res.setHeader('set-cookie', setCookies);
    res.writeHead(303, { location, 'cache-control': 'no-store', 'content-length': '0' });
    res.end();
  };

  /** A POST from another site, or without the right CSRF token, is refused before anything is done. */
  const crossSite = (req: IncomingMessage): boolean => {
    const origin = req.headers.origin;
    if (origin === undefined || origin === 'null') return origin === 'null';
    try {
      return new URL(origin).host !== new URL(requestOrigin(req, opts.trustProxy === true)).host;
    } catch {
      return true;
    }
  };

  const loginPage = async (req: IncomingMessage, res: ServerResponse, ctx: SessionPageContext, message: string | null, status = 200, next = '/-/'): Promise<void> => {
    const csrf = randomBytes(24).toString('base64url');
    res.setHeader('set-cookie', cookie(req, LOGIN_CSRF_COOKIE, csrf, { maxAge: 3600, sameSite: 'Strict', path: '/-/login' }));
    const body = tokens
      ? h`<h1>Log in</h1>
${message ? h`<p class="error" role="alert" id="login-error">${message}</p>` : ''}
<form method="post" action="/-/login" class="stack">
<input type="hidden" name="csrf" value="${csrf}">
<input type="hidden" name="next" value="${next}">
<label for="username">User name</label>
<input id="username" name="username" autocomplete="username" required${message ? h` aria-describedby="login-error"` : ''}>
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required>
<button type="submit">Log in</button>
</form>
<p class="muted">Users are made by the host's administrator: <code>hexrepo user add</code>.</p>`
      : h`<h1>Log in</h1><p>This server has no users to log in with: its administrator can add some with <code>hexrepo user add</code>.</p>`;
    await ctx.page(null, 'Log in', body, status);
  };

  const login = async (req: IncomingMessage, res: ServerResponse, ctx: SessionPageContext): Promise<void> => {
    if (req.method === 'GET' || req.method === 'HEAD') return loginPage(req, res, ctx, null, 200, localPath(new URL(req.url ?? '/', 'http://h').searchParams.get('next')));
    const form = await readForm(req);
    const expected = cookies(req).get(LOGIN_CSRF_COOKIE);
    if (!form || crossSite(req) || !expected || !sameText(form.get('csrf') ?? '', expected)) return loginPage(req, res, ctx, 'The form expired or did not come from this site; please try again.', 403);
    const username = form.get('username') ?? '';
    const password = form.get('password') ?? '';
    const next = localPath(form.get('next'));
    if (!tokens) return loginPage(req, res, ctx, null, 403, next);
    // The same limiter as every password check of the host.
    const decision = await opts.access.authenticate(req.socket.remoteAddress ?? 'unknown', `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`);
    if (!decision.ok || decision.identity?.kind !== 'user') {
      const why = decision.ok ? 'Log in with a user name and password, not a token.' : decision.status === 429 ? 'Too many failed attempts; try again in a minute.' : 'Wrong user name or password.';
      return loginPage(req, res, ctx, why, decision.ok ? 401 : decision.status, next);
    }
    const user = decision.identity;
    const created = await tokens.create({ label: SESSION_LABEL, user: user.username, grants: user.grants, expiresAt: new Date(Date.now() + SESSION_HOURS * 3600_000) });
    redirect(res, next, [cookie(req, SESSION_COOKIE, created.token, { maxAge: SESSION_HOURS * 3600, sameSite: 'Lax' }), cookie(req, LOGIN_CSRF_COOKIE, '', { maxAge: 0, sameSite: 'Strict', path: '/-/login' })]);
  };

  const checkedForm = async (req: IncomingMessage, secret: string): Promise<URLSearchParams | null> => {
    const form = await readForm(req);
    if (!form || crossSite(req) || !sameText(form.get('csrf') ?? '', csrfOf(secret))) return null;
    return form;
  };

  const tokensPage = async (
    req: IncomingMessage,
    res: ServerResponse,
    ctx: SessionPageContext,
    session: NonNullable<Awaited<ReturnType<Sessions['identity']>>>,
    shown: { secret?: string; info?: TokenInfo; error?: string; status?: number } = {},
  ): Promise<void> => {
    const mine = tokens!.list().filter((t) => t.user === session.username);
    const grants = session.identity.kind === 'token' ? session.identity.token.grants : [];
    const repoChoices = [...(grants.some((g) => g.repository === '*') ? ['*'] : []), ...ctx.repositories.map((r) => r.name).filter((n) => grants.some((g) => g.repository === '*' || g.repository === n))];
    const csrf = csrfOf(session.secret);
    const rows = mine.map(
      (
        t,
      ) => h`<tr data-testid="token" data-id="${t.id}"><td>${t.label}</td><td>${t.grants.map((g) => `${g.repository}: ${g.scopes.join('+')}${g.packages.length ? ` (${g.packages.join(', ')})` : ''}`).join('; ')}</td><td>${day(Date.parse(t.createdAt) / 1000)}</td><td>${t.expiresAt ? day(Date.parse(t.expiresAt) / 1000) : 'never'}</td><td>
<form method="post" action="/-/tokens/${t.id}/revoke"><input type="hidden" name="csrf" value="${csrf}"><button type="submit" aria-label="Revoke ${t.label} (${t.id})">Revoke</button></form></td></tr>`,
    );
    await ctx.page(
      session.identity,
      'Tokens',
      h`<h1>Your tokens</h1>
${shown.error ? h`<p class="error" role="alert">${shown.error}</p>` : ''}
${shown.secret ? h`<div class="warning" role="status"><p><strong>Token ${shown.info?.label ?? ''} created.</strong> Copy it now: it is not shown again.</p><pre><code id="new-token" data-testid="new-token">${shown.secret}</code></pre></div>` : ''}
<div class="table-wrap" role="region" aria-label="Your tokens" tabindex="0"><table><caption class="visually-hidden">Your tokens and sessions</caption><thead><tr><th scope="col">Label</th><th scope="col">Grants</th><th scope="col">Created</th><th scope="col">Expires</th><th scope="col"><span class="visually-hidden">Actions</span></th></tr></thead><tbody>${rows}</tbody></table></div>
<h2>Create a token</h2>
<form method="post" action="/-/tokens" class="stack">
<input type="hidden" name="csrf" value="${csrf}">
<label for="label">Label</label><input id="label" name="label" required maxlength="100">
<label for="repository">Repository</label>
<select id="repository" name="repository">${repoChoices.map((r) => h`<option value="${r}">${r === '*' ? 'every repository (*)' : r}</option>`)}</select>
<fieldset><legend>Scopes</legend>${SCOPES.map((s) => h`<label><input type="checkbox" name="scope" value="${s}"${s === 'read' ? h` checked` : ''}> ${s}</label> `)}</fieldset>
<label for="packages">Packages (patterns like <code>team_*</code>, comma-separated; empty: every package)</label><input id="packages" name="packages">
<label for="expires">Expires after</label>
<select id="expires" name="expires">${EXPIRY_DAYS.map((d) => h`<option value="${d}"${d === 90 ? h` selected` : ''}>${d} ${d === 1 ? 'day' : 'days'}</option>`)}<option value="never">never</option></select>
<button type="submit">Create token</button>
</form>`,
      shown.status ?? 200,
    );
  };

  return {
    identity,
    async csrfFor(req) {
      const s = await identity(req);
      return s ? csrfOf(s.secret) : null;
    },
    async handle(req, res, path, ctx) {
      if (path === '/-/login') return login(req, res, ctx);
      const session = await identity(req);
      if (path === '/-/logout') {
        if (req.method !== 'POST') return redirect(res, '/-/');
        // Another site may not log the viewer out either (its POST carries no Lax cookie, but the answer's would be cleared).
        const form = session ? await checkedForm(req, session.secret) : crossSite(req) ? null : await readForm(req);
        if (!form) return ctx.page(session?.identity ?? null, 'Not logged out', h`<h1>Not logged out</h1><p>The form expired or did not come from this site: log out with the button at the top of the page.</p>`, 403);
        if (session?.identity.kind === 'token') await tokens!.revoke(session.identity.token.id);
        return redirect(res, '/-/', [cookie(req, SESSION_COOKIE, '', { maxAge: 0, sameSite: 'Lax' })]);
      }
      if (!session) return redirect(res, `/-/login?next=${encodeURIComponent('/-/tokens')}`);
      if (path === '/-/tokens' && (req.method === 'GET' || req.method === 'HEAD')) return tokensPage(req, res, ctx, session);
      if (req.method !== 'POST') return ctx.page(session.identity, 'Not found', h`<h1>Not found</h1>`, 404);
      const form = await checkedForm(req, session.secret);
      if (!form) return tokensPage(req, res, ctx, session, { error: 'The form expired or did not come from this site; nothing was changed.', status: 403 });
      const revoke = /^\/-\/tokens\/([a-z0-9]{10})\/revoke$/.exec(path);
      if (revoke) {
        const target = tokens!.list().find((t) => t.id === revoke[1] && t.user === session.username);
        if (!target) return tokensPage(req, res, ctx, session, { error: 'No such token of yours.', status: 404 });
        await tokens!.revoke(target.id);
        if (target.id === (session.identity.kind === 'token' ? session.identity.token.id : '')) return redirect(res, '/-/', [cookie(req, SESSION_COOKIE, '', { maxAge: 0, sameSite: 'Lax' })]);
        return redirect(res, '/-/tokens');
      }
      if (path !== '/-/tokens') return ctx.page(session.identity, 'Not found', h`<h1>Not found</h1>`, 404);
      const label = (form.get('label') ?? '').trim().slice(0, 100);
      const wanted: Grant = {
        repository: form.get('repository') ?? '',
        scopes: form.getAll('scope').filter((s): s is Scope => (SCOPES as readonly string[]).includes(s)),
        packages: (form.get('packages') ?? '')
          .split(',')
          .map((p) => p.trim())
          .filter((p) => p !== ''),
      };
      const held = session.identity.kind === 'token' ? session.identity.token.grants : [];
      if (!label) return tokensPage(req, res, ctx, session, { error: 'Give the token a label, so you know it later.', status: 422 });
      // As the keys API refuses it: a token with this label would pass for a login session (in the cookie, and hidden from GET /api/keys).
      if (label === SESSION_LABEL) return tokensPage(req, res, ctx, session, { error: `"${SESSION_LABEL}" names the login sessions: pick another label.`, status: 422 });
      if (!grantWithin(held, wanted)) return tokensPage(req, res, ctx, session, { error: 'You can only give a token access you have yourself: pick fewer scopes or another repository.', status: 403 });
      const days = form.get('expires');
      const expiresAt = days === 'never' ? undefined : new Date(Date.now() + Number(EXPIRY_DAYS.find((d) => String(d) === days) ?? 90) * 86_400_000);
      try {
        const created = await tokens!.create({ label, user: session.username, grants: [wanted], ...(expiresAt ? { expiresAt } : {}) });
        return tokensPage(req, res, ctx, session, { secret: created.token, info: created.info, status: 201 });
      } catch (err) {
        if (!isHexrepoError(err, 'USAGE')) throw err;
        return tokensPage(req, res, ctx, session, { error: formatError(err), status: 422 });
      }
    },
  };
}
