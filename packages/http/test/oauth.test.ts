/**
 * The OAuth endpoints on a real server over loopback, with the requests shaped exactly as hex_core
 * sends them (src/hex_api_oauth.erl: ETF bodies, `Accept: application/vnd.hex+erlang`): an API key
 * exchanged for a bearer token that never holds more than the key, refresh with rotation, expiry
 * (an injected clock: no waiting), revocation of the token and of its key, a second server on the
 * same state store, and the device flow's polling answers and approval form (CSRF) without a
 * browser (the browser run is e2e/oauth-device.test.ts).
 */
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadPrivateKey } from '@hexrepo/registry';
import { OAuthStore, RepoService, TokenStore } from '@hexrepo/repo';
import { CachedStore, FsStore } from '@hexrepo/storage';
import { createTarball } from '@hexrepo/tarball';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Access, createHostHandler, decodeEtf, encodeEtf, listen, type Etf, type HostedRepository, type RunningServer } from '../src/index.js';
import { FIXTURES } from './helpers.js';

const key = loadPrivateKey(await readFile(join(FIXTURES, 'golden-acme/test-only-rsa.pem'), 'utf8'));
const HEX_CLIENT_ID = '78ea6566-89fd-481e-a1d6-7d9d78eacca8';
const ETF = 'application/vnd.hex+erlang';

/** The request bodies of hex_core's hex_api_oauth.erl (current main), field for field. */
const hexCore = {
  clientCredentials: (apiKey: string, scope: string): Record<string, Etf> => ({ grant_type: 'client_credentials', client_id: HEX_CLIENT_ID, client_secret: apiKey, scope }),
  deviceAuthorization: (scope: string, name: string): Record<string, Etf> => ({ client_id: HEX_CLIENT_ID, scope, name }),
  pollDeviceToken: (deviceCode: string): Record<string, Etf> => ({ grant_type: 'urn:ietf:params:oauth:grant-type:device_code', device_code: deviceCode, client_id: HEX_CLIENT_ID }),
  refreshToken: (refreshToken: string): Record<string, Etf> => ({ grant_type: 'refresh_token', refresh_token: refreshToken, client_id: HEX_CLIENT_ID }),
  revokeToken: (token: string): Record<string, Etf> => ({ token, client_id: HEX_CLIENT_ID }),
};

let clock = Date.parse('2026-06-01T12:00:00Z');
const now = (): number => clock;
let root: string;
let server: RunningServer;
let second: RunningServer;
let tokens: TokenStore;
let secondOAuth: OAuthStore;
let secondTokens: TokenStore;
let repositories: HostedRepository[];
let state: FsStore;
const tarball = (name: string, version: string): Uint8Array => createTarball({ name, version, description: `${name} ${version}`, licenses: ['MIT'] }, [{ path: `src/${name}.erl`, contents: Buffer.from(`-module(${name}).\n`) }]).tarball;

async function post(base: string, path: string, body: Record<string, Etf>): Promise<{ status: number; body: Record<string, Etf> | null; headers: Headers }> {
  const res = await fetch(`${base}${path}`, { method: 'POST', headers: { accept: ETF, 'content-type': ETF, 'user-agent': 'hex_core/0.19.0 hex/2.5.2 (elixir/1.18.0) (OTP/27) (erts/15.0)' }, body: encodeEtf(body) });
  const bytes = Buffer.from(await res.arrayBuffer());
  if (bytes.length > 0) expect(res.headers.get('content-type')).toBe(ETF);
  return { status: res.status, body: bytes.length ? (decodeEtf(bytes) as Record<string, Etf>) : null, headers: res.headers };
}

const get = (path: string, auth?: string, base = server.url): Promise<Response> => fetch(`${base}${path}`, { headers: auth ? { authorization: auth } : {} });
const publish = (repo: string, name: string, version: string, auth: string): Promise<Response> =>
  fetch(`${server.url}/api/repos/${repo}/publish`, { method: 'POST', headers: { authorization: auth, 'content-type': 'application/octet-stream', accept: 'application/json' }, body: tarball(name, version) });

async function exchange(apiKey: string, scope: string, path = '/api/oauth/token'): Promise<{ access: string; refresh: string; body: Record<string, Etf> }> {
  const r = await post(server.url, path, hexCore.clientCredentials(apiKey, scope));
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  return { access: r.body!.access_token as string, refresh: r.body!.refresh_token as string, body: r.body! };
}

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'hexrepo-oauth-'));
  state = new FsStore(join(root, 'state'));
  tokens = await TokenStore.open(state, { now });
  const oauth = await OAuthStore.open(state, { now });
  repositories = [];
  for (const name of ['alpha', 'beta', 'gamma']) {
    const store = new CachedStore(new FsStore(join(root, name)));
    const { service } = await RepoService.open({ store, repository: name, privateKey: key });
    await service.publish(tarball('foo', '1.0.0'), {});
    repositories.push({ name, store, service, visibility: name === 'gamma' ? 'public' : 'private', ...(name === 'alpha' ? { root: true } : {}) });
  }
  await tokens.addUser({ username: 'alice', password: 'alice-password-1', grants: [{ repository: 'alpha', scopes: ['read', 'write'], packages: [] }] });
  server = await listen(createHostHandler({ repositories, access: new Access({ visibility: 'private', users: [], tokens, oauth, now, maxFailures: 1000 }) }), { host: '127.0.0.1', port: 0 });
  // Another server of the host: its own processes' view of the same state store.
  secondTokens = await TokenStore.open(state, { now });
  secondOAuth = await OAuthStore.open(state, { now });
  second = await listen(createHostHandler({ repositories, access: new Access({ visibility: 'private', users: [], tokens: secondTokens, oauth: secondOAuth, now, maxFailures: 1000 }) }), { host: '127.0.0.1', port: 0 });
});

afterAll(async () => {
  await server?.close();
  await second?.close();
});

describe('exchanging an API key (client_credentials, as hex_cli_auth does for oauth_exchange)', () => {
  it('returns a bearer token in the shape hex_core reads, carrying no more than the key', async () => {
    const readOnly = (await tokens.create({ label: 'reader', grants: [{ repository: 'alpha', scopes: ['read'], packages: [] }] })).token;
    const { access, refresh, body } = await exchange(readOnly, 'api');
    expect(body).toEqual({ access_token: access, token_type: 'bearer', expires_in: 1800, refresh_token: refresh, scope: 'api' });
    expect(access).toMatch(/^hxa_/);
    expect((await get('/packages/foo', `Bearer ${access}`)).status).toBe(200);
    // The key reads alpha only: asking for "api" (write) does not add write, nor other repositories.
    expect((await publish('alpha', 'bar', '1.0.0', `Bearer ${access}`)).status).toBe(403);
    expect((await get('/repos/beta/packages/foo', `Bearer ${access}`)).status).toBe(403);
  });

  it('narrows to reads for the "repositories" scope, and to the repository whose API root was asked', async () => {
    const writer = (await tokens.create({ label: 'writer', grants: [{ repository: '*', scopes: ['read', 'write'], packages: [] }] })).token;
    const repos = await exchange(writer, 'repositories');
    expect((await get('/repos/beta/packages/foo', `Bearer ${repos.access}`)).status).toBe(200);
    expect((await publish('alpha', 'bar', '1.0.0', `Bearer ${repos.access}`)).status).toBe(403);
    const api = await exchange(writer, 'api', '/api/repos/beta/oauth/token');
    expect((await publish('beta', 'bar', '1.0.0', `Bearer ${api.access}`)).status).toBe(201);
    expect((await publish('alpha', 'bar', '1.0.0', `Bearer ${api.access}`)).status).toBe(403);
    expect((await get('/packages/foo', `Bearer ${api.access}`)).status).toBe(403);
  });

  it('accepts RFC 8693 token-exchange with the key as subject_token, and a JSON or form body', async () => {
    const k = (await tokens.create({ label: 'x', grants: [{ repository: 'alpha', scopes: ['read'], packages: [] }] })).token;
    const viaExchange = await post(server.url, '/api/oauth/token', {
      grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
      client_id: 'cli',
      subject_token: k,
      subject_token_type: 'urn:x-oath:params:oauth:token-type:key',
      scope: 'api',
    });
    expect(viaExchange.status).toBe(200);
    const form = await fetch(`${server.url}/api/oauth/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'client_credentials', client_id: 'cli', client_secret: k }).toString(),
    });
    expect(form.status).toBe(200);
    expect(((await form.json()) as { token_type: string }).token_type).toBe('bearer');
  });

  it('refuses an unknown key (401 invalid_client), an OAuth token as the key (400 invalid_grant), an unknown scope and grant type', async () => {
    const bad = await post(server.url, '/api/oauth/token', hexCore.clientCredentials('hxr_0000000000_' + 'A'.repeat(43), 'api'));
    expect(bad.status).toBe(401);
    expect(bad.body!.error).toBe('invalid_client');
    const k = (await tokens.create({ label: 'y', grants: [{ repository: 'alpha', scopes: ['read'], packages: [] }] })).token;
    const { access } = await exchange(k, 'api');
    const chained = await post(server.url, '/api/oauth/token', hexCore.clientCredentials(access, 'api'));
    expect([chained.status, chained.body!.error]).toEqual([400, 'invalid_grant']);
    expect((await post(server.url, '/api/oauth/token', hexCore.clientCredentials(k, 'admin:everything'))).body!.error).toBe('invalid_scope');
    expect((await post(server.url, '/api/oauth/token', { grant_type: 'password', client_id: 'cli' })).body!.error).toBe('unsupported_grant_type');
  });
});

describe('refresh, expiry and revocation', () => {
  it('rotates on refresh: the new pair works, the old access and refresh tokens do not', async () => {
    const k = (await tokens.create({ label: 'r', grants: [{ repository: 'alpha', scopes: ['read'], packages: [] }] })).token;
    const first = await exchange(k, 'api');
    const r = await post(server.url, '/api/oauth/token', hexCore.refreshToken(first.refresh));
    expect(r.status).toBe(200);
    const next = r.body!;
    expect((await get('/packages/foo', `Bearer ${next.access_token as string}`)).status).toBe(200);
    expect((await get('/packages/foo', `Bearer ${first.access}`)).status).toBe(401);
    const again = await post(server.url, '/api/oauth/token', hexCore.refreshToken(first.refresh));
    expect([again.status, again.body!.error]).toEqual([400, 'invalid_grant']);
  });

  it('expires the access token after expires_in (the refresh token still works), and the refresh token after its own lifetime', async () => {
    const k = (await tokens.create({ label: 'e', grants: [{ repository: 'alpha', scopes: ['read'], packages: [] }] })).token;
    const t = await exchange(k, 'api');
    expect((await get('/packages/foo', `Bearer ${t.access}`)).status).toBe(200);
    clock += 1800 * 1000 + 1;
    expect((await get('/packages/foo', `Bearer ${t.access}`)).status).toBe(401);
    // The challenge on which hex_core (hex_cli_auth) refreshes and retries.
    const api = await fetch(`${server.url}/api/packages/foo`, { headers: { authorization: `Bearer ${t.access}`, accept: ETF } });
    expect(api.status).toBe(401);
    expect(api.headers.get('www-authenticate')).toBe('Bearer realm="hex", error="token_expired"');
    expect((await fetch(`${server.url}/api/packages/foo`, { headers: { authorization: `Bearer ${t.refresh}` } })).headers.get('www-authenticate')).toMatch(/^Basic/);
    const r = await post(server.url, '/api/oauth/token', hexCore.refreshToken(t.refresh));
    expect(r.status).toBe(200);
    clock += 31 * 24 * 3600 * 1000;
    expect((await post(server.url, '/api/oauth/token', hexCore.refreshToken(r.body!.refresh_token as string))).body!.error).toBe('invalid_grant');
  });

  it('revokes by access or refresh token (200 either way), and ends every token of a revoked key, on the other server too', async () => {
    const created = await tokens.create({ label: 'v', grants: [{ repository: 'alpha', scopes: ['read'], packages: [] }] });
    const a = await exchange(created.token, 'api');
    const b = await exchange(created.token, 'api');
    await secondTokens.refresh();
    await secondOAuth.refresh();
    expect((await get('/packages/foo', `Bearer ${a.access}`, second.url)).status).toBe(200);
    expect((await post(server.url, '/api/oauth/revoke', hexCore.revokeToken(a.refresh))).status).toBe(200);
    expect((await post(server.url, '/api/oauth/revoke', hexCore.revokeToken('nonsense'))).status).toBe(200);
    expect((await get('/packages/foo', `Bearer ${a.access}`)).status).toBe(401);
    // The other server sees it once it refreshes (serve does every 2 s).
    await secondOAuth.refresh();
    expect((await get('/packages/foo', `Bearer ${a.access}`, second.url)).status).toBe(401);
    expect((await get('/packages/foo', `Bearer ${b.access}`)).status).toBe(200);
    await tokens.revoke(created.info.id);
    expect((await get('/packages/foo', `Bearer ${b.access}`)).status).toBe(401);
    expect((await post(server.url, '/api/oauth/token', hexCore.refreshToken(b.refresh))).body!.error).toBe('invalid_grant');
  });

  it('accepts on one server a token the other issued a moment ago (one look at the store), and ignores unknown bearer tokens on public reads', async () => {
    const k = (await tokens.create({ label: 'w', grants: [{ repository: 'alpha', scopes: ['read'], packages: [] }] })).token;
    // The key is known there (serve re-reads credentials every 2 s); the token was issued just now, here.
    await secondTokens.refresh();
    const t = await exchange(k, 'api');
    expect((await get('/packages/foo', `Bearer ${t.access}`, second.url)).status).toBe(200);
    expect((await get('/repos/gamma/packages/foo', `Bearer hxa_0000000000_${'B'.repeat(43)}`)).status).toBe(200);
    expect((await get('/api/repos/gamma/packages/foo', `Bearer hxa_0000000000_${'B'.repeat(43)}`)).status).toBe(200);
  });
});

describe('refresh on one server, use on another', () => {
  it('accepts at once the access token another server rotated a moment ago (the old one is refused)', async () => {
    const k = (await tokens.create({ label: 'rot', grants: [{ repository: 'alpha', scopes: ['read'], packages: [] }] })).token;
    const t = await exchange(k, 'api');
    // Both servers know the session (and its first access token).
    expect((await get('/packages/foo', `Bearer ${t.access}`)).status).toBe(200);
    await secondTokens.refresh();
    expect((await get('/packages/foo', `Bearer ${t.access}`, second.url)).status).toBe(200);
    // Hex refreshes through the load balancer, which sends it to the second server …
    const r = await post(second.url, '/api/oauth/token', hexCore.refreshToken(t.refresh));
    expect(r.status).toBe(200);
    // … and its next request to the first, whose memory still has the old access token.
    expect((await get('/packages/foo', `Bearer ${r.body!.access_token as string}`)).status).toBe(200);
    expect((await get('/packages/foo', `Bearer ${t.access}`)).status).toBe(401);
  });
});

describe('a host without a root repository', () => {
  it('still answers the OAuth endpoints and the page at /api/oauth and /oauth/device (mix hex.user auth with HEX_API_URL=http://host/api)', async () => {
    const oauth = await OAuthStore.open(state, { now });
    const rootless = await listen(createHostHandler({ repositories: repositories.map(({ root: _root, ...r }) => r), access: new Access({ visibility: 'private', users: [], tokens, oauth, now }) }), { host: '127.0.0.1', port: 0 });
    try {
      const d = await post(rootless.url, '/api/oauth/device_authorization', hexCore.deviceAuthorization('api repositories', 'laptop'));
      expect(d.status).toBe(200);
      expect((await fetch(d.body!.verification_uri_complete as string)).status).toBe(200);
      expect((await post(rootless.url, '/api/repos/nope/oauth/token', hexCore.refreshToken('x'))).status).toBe(404);
    } finally {
      await rootless.close();
    }
  });
});

describe('the device flow without a browser', () => {
  const start = async (): Promise<Record<string, Etf>> => {
    const r = await post(server.url, '/api/oauth/device_authorization', hexCore.deviceAuthorization('api repositories', 'laptop'));
    expect(r.status).toBe(200);
    return r.body!;
  };
  const form = async (userCode: string): Promise<{ cookie: string; csrf: string; html: string; headers: Headers }> => {
    const res = await fetch(`${server.url}/oauth/device?user_code=${userCode}`);
    expect(res.status).toBe(200);
    const html = await res.text();
    const cookie = res.headers.get('set-cookie')!.split(';')[0]!;
    return { cookie, csrf: /name="csrf" value="([^"]+)"/.exec(html)![1]!, html, headers: res.headers };
  };
  const submit = (fields: Record<string, string>, cookie?: string, origin?: string): Promise<Response> =>
    fetch(`${server.url}/oauth/device`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', ...(cookie ? { cookie } : {}), ...(origin ? { origin } : {}) },
      body: new URLSearchParams(fields).toString(),
      redirect: 'manual',
    });

  it('answers what hex_core polls for: pending, slow_down, then tokens after approval that publish', async () => {
    const d = await start();
    expect(Object.keys(d).sort()).toEqual(['device_code', 'expires_in', 'interval', 'user_code', 'verification_uri', 'verification_uri_complete']);
    expect(d.verification_uri).toBe(`${server.url}/oauth/device`);
    expect(d.verification_uri_complete).toBe(`${server.url}/oauth/device?user_code=${d.user_code as string}`);
    expect([d.expires_in, d.interval]).toEqual([600, 5]);
    const pending = await post(server.url, '/api/oauth/token', hexCore.pollDeviceToken(d.device_code as string));
    expect([pending.status, pending.body!.error]).toEqual([400, 'authorization_pending']);
    const fast = await post(server.url, '/api/oauth/token', hexCore.pollDeviceToken(d.device_code as string));
    expect([fast.status, fast.body!.error]).toEqual([400, 'slow_down']);

    const page = await form(d.user_code as string);
    expect(page.headers.get('content-security-policy')).toContain("default-src 'self'");
    expect(page.headers.get('x-frame-options')).toBe('DENY');
    expect(page.headers.get('set-cookie')).toMatch(/HttpOnly; SameSite=Strict/);
    expect(page.html).toContain('laptop');
    expect(page.html).not.toContain('<script');
    const fields = { csrf: page.csrf, user_code: d.user_code as string, username: 'alice', password: 'alice-password-1', action: 'approve' };
    // Without the cookie, with a wrong token, or from another origin: refused, nothing decided.
    expect((await submit(fields)).status).toBe(403);
    expect((await submit({ ...fields, csrf: 'A'.repeat(43) }, page.cookie)).status).toBe(403);
    expect((await submit({ ...fields, csrf: '' }, page.cookie)).status).toBe(403);
    expect((await submit(fields, page.cookie, 'http://elsewhere.example')).status).toBe(403);
    expect((await submit({ ...fields, password: 'wrong-password' }, page.cookie)).status).toBe(401);
    clock += 5000;
    expect((await post(server.url, '/api/oauth/token', hexCore.pollDeviceToken(d.device_code as string))).body!.error).toBe('authorization_pending');
    const approved = await submit(fields, page.cookie);
    expect(approved.status).toBe(200);
    expect(await approved.text()).toContain('alpha');
    clock += 5000;
    const done = await post(server.url, '/api/oauth/token', hexCore.pollDeviceToken(d.device_code as string));
    expect(done.status).toBe(200);
    expect(done.body!.token_type).toBe('bearer');
    expect((await publish('alpha', 'devpkg', '1.0.0', `Bearer ${done.body!.access_token as string}`)).status).toBe(201);
    // alice has no grant on beta: neither has her token.
    expect((await publish('beta', 'devpkg', '1.0.0', `Bearer ${done.body!.access_token as string}`)).status).toBe(403);
    const me = await fetch(`${server.url}/api/users/me`, { headers: { authorization: `Bearer ${done.body!.access_token as string}`, accept: 'application/json' } });
    expect(((await me.json()) as { username: string }).username).toBe('alice');
    // The device code is used up.
    clock += 5000;
    expect((await post(server.url, '/api/oauth/token', hexCore.pollDeviceToken(d.device_code as string))).body!.error).toBe('invalid_grant');
  });

  it('accepts the form behind a TLS-terminating proxy (Origin https://HOST), and still refuses another site', async () => {
    const d = await start();
    const page = await form(d.user_code as string);
    const fields = { csrf: page.csrf, user_code: d.user_code as string, username: 'alice', password: 'alice-password-1', action: 'approve' };
    const host = new URL(server.url).host;
    expect((await submit(fields, page.cookie, `https://${host}.elsewhere.example`)).status).toBe(403);
    expect((await submit(fields, page.cookie, 'https://elsewhere.example')).status).toBe(403);
    // What a browser sends for the page at https://HOST/oauth/device when a proxy forwards to this server.
    expect((await submit(fields, page.cookie, `https://${host}`)).status).toBe(200);
  });

  it('tells the client access_denied (403) when the user denies, and expired_token once the code expired', async () => {
    const d = await start();
    const page = await form(d.user_code as string);
    expect((await submit({ csrf: page.csrf, user_code: d.user_code as string, username: 'alice', password: 'alice-password-1', action: 'deny' }, page.cookie)).status).toBe(200);
    const denied = await post(server.url, '/api/oauth/token', hexCore.pollDeviceToken(d.device_code as string));
    expect([denied.status, denied.body!.error]).toEqual([403, 'access_denied']);
    const late = await start();
    clock += 601 * 1000;
    expect((await fetch(`${server.url}/oauth/device?user_code=${late.user_code as string}`)).status).toBe(404);
    const expired = await post(server.url, '/api/oauth/token', hexCore.pollDeviceToken(late.device_code as string));
    expect([expired.status, expired.body!.error]).toEqual([400, 'expired_token']);
  });
});

describe('what a token does is recorded as its user', () => {
  it('two users with a key of the same name: each token acts as its own user, and neither sees the other’s audit log', async () => {
    await tokens.addUser({ username: 'bob', password: 'bob-password-123', grants: [{ repository: 'alpha', scopes: ['read'], packages: [] }] });
    const alices = (await tokens.create({ label: 'laptop', user: 'alice', grants: [{ repository: 'alpha', scopes: ['read', 'write'], packages: [] }] })).token;
    const bobs = (await tokens.create({ label: 'laptop', user: 'bob', grants: [{ repository: 'alpha', scopes: ['read'], packages: [] }] })).token;
    const alice = `Bearer ${(await exchange(alices, 'api')).access}`;
    const bob = `Bearer ${(await exchange(bobs, 'api')).access}`;
    expect((await publish('alpha', 'private_thing', '1.0.0', alice)).status).toBe(201);
    const json = async (res: Response): Promise<Record<string, Etf>[]> => {
      expect(res.status).toBe(200);
      return (await res.json()) as Record<string, Etf>[];
    };
    const mine = (auth: string): Promise<Record<string, Etf>[]> => fetch(`${server.url}/api/users/me/audit-logs`, { headers: { authorization: auth, accept: 'application/json' } }).then(json);
    expect((await mine(bob)).map((e) => JSON.stringify(e.params))).not.toContainEqual(expect.stringContaining('private_thing'));
    expect((await mine(alice)).map((e) => [e.action, e.user])).toContainEqual(['release.publish', 'alice']);
    const log = await fetch(`${server.url}/api/packages/private_thing/audit-logs`, { headers: { authorization: alice, accept: 'application/json' } }).then(json);
    expect(log.map((e) => [e.action, e.user])).toEqual([['release.publish', 'alice']]);
  });
});
