/**
 * Behind a proxy (`trustProxy`): the origin browsers use — `X-Forwarded-Proto` and `X-Forwarded-Host`
 * — is honoured only when the operator says a proxy sets them. Two real servers over the same real
 * stores, one trusting and one not, on 127.0.0.1.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadPrivateKey } from '@hexrepo/registry';
import { OAuthStore, RepoService, TokenStore } from '@hexrepo/repo';
import { FsStore } from '@hexrepo/storage';
import { createTarball } from '@hexrepo/tarball';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Access, createHostHandler, listen, type HostedRepository, type RunningServer } from '../src/index.js';
import { FIXTURES, raw } from './helpers.js';

const PASSWORD = 'alice-password-1';
const FORWARDED = { 'x-forwarded-proto': 'https', 'x-forwarded-host': 'repo.example.com' };
let root: string;
let trusting: RunningServer;
let plain: RunningServer;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'hexrepo-trust-proxy-'));
  const key = loadPrivateKey(await readFile(join(FIXTURES, 'golden-acme/test-only-rsa.pem'), 'utf8'));
  const state = new FsStore(join(root, 'state'));
  const tokens = await TokenStore.open(state);
  const oauth = await OAuthStore.open(state);
  await tokens.addUser({ username: 'alice', password: PASSWORD, grants: [{ repository: 'acme', scopes: ['read', 'write'], packages: [] }] });
  const store = new FsStore(join(root, 'acme'));
  const { service } = await RepoService.open({ store, repository: 'acme', privateKey: key });
  await service.publish(createTarball({ name: 'foo', version: '1.0.0', description: 'foo', licenses: ['MIT'] }, [{ path: 'src/foo.erl', contents: Buffer.from('-module(foo).\n') }]).tarball, {});
  const repositories: HostedRepository[] = [{ name: 'acme', store, service, visibility: 'public', root: true }];
  const access = new Access({ visibility: 'public', users: [], tokens, oauth });
  trusting = await listen(createHostHandler({ repositories, access, trustProxy: true }), { host: '127.0.0.1', port: 0 });
  plain = await listen(createHostHandler({ repositories, access }), { host: '127.0.0.1', port: 0 });
});

afterAll(async () => {
  await trusting?.close();
  await plain?.close();
  if (root) await rm(root, { recursive: true, force: true });
});

const deviceAuthorization = async (server: RunningServer): Promise<Record<string, unknown>> => {
  const res = await raw(server.url, '/api/oauth/device_authorization', {
    method: 'POST',
    headers: { ...FORWARDED, 'content-type': 'application/json', accept: 'application/json' },
    body: JSON.stringify({ client_id: 'hexrepo-test', scope: 'api:read' }),
  });
  expect(res.status, res.body.toString()).toBe(200);
  return JSON.parse(res.body.toString()) as Record<string, unknown>;
};

/** The login form's CSRF cookie and field, then a POST as a browser on `origin` sends it. */
async function login(server: RunningServer, origin: string, headers: Record<string, string>): Promise<{ status: number; setCookie: string[] }> {
  const form = await raw(server.url, '/-/login', { headers });
  const csrfCookie = String(form.headers['set-cookie']).split(';')[0]!;
  const csrf = /name="csrf" value="([^"]+)"/.exec(form.body.toString())![1]!;
  const res = await raw(server.url, '/-/login', {
    method: 'POST',
    headers: { ...headers, 'content-type': 'application/x-www-form-urlencoded', cookie: csrfCookie, origin },
    body: new URLSearchParams({ csrf, username: 'alice', password: PASSWORD, next: '/-/' }).toString(),
  });
  return { status: res.status, setCookie: ([] as string[]).concat(res.headers['set-cookie'] ?? []) };
}

/** The device page's CSRF cookie and field, then a POST from `origin` with a code nobody issued. */
async function devicePost(server: RunningServer, origin: string): Promise<number> {
  const form = await raw(server.url, '/oauth/device?user_code=ABCD-EFGH', { headers: FORWARDED });
  const cookie = String(form.headers['set-cookie']).split(';')[0]!;
  const csrf = cookie.split('=')[1]!;
  const res = await raw(server.url, '/oauth/device', {
    method: 'POST',
    headers: { ...FORWARDED, cookie, origin, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ csrf, user_code: 'WXYZ-WXYZ', username: 'alice', password: PASSWORD }).toString(),
  });
  return res.status;
}

describe('trustProxy', () => {
  it("OAuth's verification_uri uses the forwarded proto and host only when trusted", async () => {
    expect((await deviceAuthorization(trusting)).verification_uri).toBe('https://repo.example.com/oauth/device');
    const { verification_uri, verification_uri_complete } = await deviceAuthorization(plain);
    expect(verification_uri).toBe(`${plain.url}/oauth/device`);
    expect(verification_uri_complete).toMatch(new RegExp(`^${plain.url}/oauth/device\\?user_code=`));
  });

  it("the device page accepts a POST from the proxy's public origin only when trusted", async () => {
    // 404: past the origin and CSRF checks, the (unknown) code is looked up.
    expect(await devicePost(trusting, 'https://repo.example.com')).toBe(404);
    expect(await devicePost(plain, 'https://repo.example.com')).toBe(403);
    // A trusting server still refuses another site.
    expect(await devicePost(trusting, 'https://evil.example')).toBe(403);
  });

  it('the session cookie is Secure when the request came over TLS through a trusted proxy, and login checks the public origin', async () => {
    const secure = await login(trusting, 'https://repo.example.com', FORWARDED);
    expect(secure.status).toBe(303);
    const session = secure.setCookie.find((c) => c.startsWith('hexrepo_session='))!;
    expect(session).toMatch(/; Secure$/);
    // Plain HTTP through the same proxy: no Secure (the browser would drop it).
    const overHttp = await login(trusting, 'http://repo.example.com', { 'x-forwarded-proto': 'http', 'x-forwarded-host': 'repo.example.com' });
    expect(overHttp.setCookie.find((c) => c.startsWith('hexrepo_session='))).not.toMatch(/Secure/);
    // Not trusted: the headers are anyone's, so they change nothing — the forwarded origin is another site.
    expect((await login(plain, 'https://repo.example.com', FORWARDED)).status).toBe(403);
    const direct = await login(plain, plain.url, FORWARDED);
    expect(direct.status).toBe(303);
    expect(direct.setCookie.find((c) => c.startsWith('hexrepo_session='))).not.toMatch(/Secure/);
  });

  it("the API's links (html_url, url) use the forwarded origin only when trusted", async () => {
    const get = async (server: RunningServer): Promise<{ url: string; html_url: string }> =>
      JSON.parse((await raw(server.url, '/api/packages/foo', { headers: { ...FORWARDED, accept: 'application/json' } })).body.toString()) as { url: string; html_url: string };
    expect((await get(trusting)).url).toBe('https://repo.example.com/api/packages/foo');
    expect((await get(plain)).url).toBe(`${plain.url}/api/packages/foo`);
  });

  it('a forwarded host that is not a host name is ignored', async () => {
    const res = await raw(trusting.url, '/api/oauth/device_authorization', {
      method: 'POST',
      headers: { 'x-forwarded-proto': 'https', 'x-forwarded-host': 'evil.example/path?x=', 'content-type': 'application/json' },
      body: JSON.stringify({ client_id: 'hexrepo-test' }),
    });
    expect((JSON.parse(res.body.toString()) as { verification_uri: string }).verification_uri).toBe(`${trusting.url.replace('http:', 'https:')}/oauth/device`);
  });
});
