/**
 * A host of three repositories on one real server: alpha (private, mounted at / too), beta
 * (private) and gamma (public), each on its own folder. A credential granted one repository never
 * reads or writes another, on every route of the repository endpoint and of the API.
 */
import { mkdtemp, readFile } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { loadPrivateKey, unpackNames } from '@hexrepo/registry';
import { RepoService, TokenStore } from '@hexrepo/repo';
import { CachedStore, FsStore } from '@hexrepo/storage';
import { createTarball, writeTar } from '@hexrepo/tarball';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Access, createHostHandler, listen, type HostedRepository, type RunningServer } from '../src/index.js';
import { FIXTURES } from './helpers.js';

const key = loadPrivateKey(await readFile(join(FIXTURES, 'golden-acme/test-only-rsa.pem'), 'utf8'));
const NAMES = ['alpha', 'beta', 'gamma'] as const;
type Name = (typeof NAMES)[number];

const tarball = (name: string, version: string): Uint8Array => createTarball({ name, version, description: `${name} ${version}`, licenses: ['MIT'] }, [{ path: `src/${name}.erl`, contents: Buffer.from(`-module(${name}).\n`) }]).tarball;
const docs = gzipSync(writeTar([{ name: 'index.html', data: Buffer.from('<h1>docs</h1>') }]));

let server: RunningServer;
const dirs = {} as Record<Name, string>;
const services = {} as Record<Name, RepoService>;
/** A read+write token granted only that repository. */
const only = {} as Record<Name, string>;
let everywhere: string;

async function call(path: string, opts: { method?: string; token?: string; body?: Uint8Array | string; type?: string } = {}): Promise<Response> {
  const headers: Record<string, string> = { accept: 'application/json' };
  if (opts.token) headers.authorization = opts.token;
  if (opts.type) headers['content-type'] = opts.type;
  return fetch(`${server.url}${path}`, { method: opts.method ?? 'GET', headers, ...(opts.body !== undefined ? { body: opts.body } : {}), redirect: 'manual' });
}

beforeAll(async () => {
  const root = await mkdtemp(join(tmpdir(), 'hexrepo-host-'));
  const tokens = await TokenStore.open(new FsStore(join(root, 'state')));
  const repositories: HostedRepository[] = [];
  for (const name of NAMES) {
    dirs[name] = join(root, name, 'public');
    const store = new CachedStore(new FsStore(dirs[name]));
    ({ service: services[name] } = await RepoService.open({ store, repository: name, privateKey: key }));
    repositories.push({ name, store, service: services[name], visibility: name === 'gamma' ? 'public' : 'private', ...(name === 'alpha' ? { root: true } : {}) });
    only[name] = (await tokens.create({ label: `${name}-ci`, grants: [{ repository: name, scopes: ['read', 'write'], packages: [] }] })).token;
    // Every repository starts with foo 1.0.0 and its docs.
    await services[name].publish(tarball('foo', '1.0.0'), {});
    await services[name].putDocs('foo', '1.0.0', docs);
  }
  everywhere = (await tokens.create({ label: 'admin', grants: [{ repository: '*', scopes: ['read', 'write'], packages: [] }] })).token;
  server = await listen(createHostHandler({ repositories, access: new Access({ visibility: 'private', users: [{ username: 'ops', password: 'long-password' }], tokens, maxFailures: 1000 }) }), { host: '127.0.0.1', port: 0 });
});

afterAll(async () => {
  await server?.close();
});

const RESOURCES = ['/names', '/versions', '/packages/foo', '/tarballs/foo-1.0.0.tar', '/docs/foo-1.0.0.tar.gz', '/public_key'];

describe('the repository endpoint of each repository', () => {
  it('serves each private repository under /repos/NAME to its own credential, and refuses the other one (403) and none (401)', async () => {
    for (const path of RESOURCES) {
      for (const [mine, other] of [
        ['alpha', 'beta'],
        ['beta', 'alpha'],
      ] as const) {
        const ok = await call(`/repos/${mine}${path}`, { token: only[mine] });
        expect(ok.status, `${mine}${path}`).toBe(200);
        expect(Buffer.from(await ok.arrayBuffer()).equals(await readFile(join(dirs[mine], path)))).toBe(true);
        expect((await call(`/repos/${mine}${path}`, { token: only[other] })).status, `${other}'s token on ${mine}${path}`).toBe(403);
        const none = await call(`/repos/${mine}${path}`);
        expect(none.status).toBe(401);
        expect(none.headers.get('www-authenticate')).toBe('Basic realm="hexrepo", charset="UTF-8"');
      }
    }
  });

  it('serves the public repository to anyone, and the root repository at / too', async () => {
    for (const path of RESOURCES) {
      expect((await call(`/repos/gamma${path}`)).status).toBe(200);
      expect((await call(`/repos/gamma${path}`, { token: only.beta })).status).toBe(200);
      expect((await call(path, { token: only.alpha })).status).toBe(200);
      expect((await call(path, { token: only.beta })).status).toBe(403);
    }
    // Each registry is signed for its own repository name.
    const names = await (await call('/repos/beta/names', { token: only.beta })).arrayBuffer();
    expect(unpackNames(new Uint8Array(names), { publicKey: key, repository: 'beta' }).packages.map((p) => p.name)).toEqual(['foo']);
  });

  it('answers 404 for a repository the host does not have, on both endpoints', async () => {
    expect((await call('/repos/unknown/names', { token: everywhere })).status).toBe(404);
    expect((await call('/repos/alpha', { token: everywhere })).status).toBe(404);
    const api = await call('/api/repos/unknown/packages/foo', { token: everywhere });
    expect(api.status).toBe(404);
    expect(await api.json()).toMatchObject({ status: 404, message: expect.stringContaining('no repository unknown') });
  });

  it('never lets a path climb from one repository into another (sent as is, not normalised)', async () => {
    const raw = (path: string): Promise<number> =>
      new Promise((resolve, reject) => {
        const url = new URL(server.url);
        const req = request({ host: url.hostname, port: url.port, path, headers: { authorization: only.alpha }, agent: false }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        });
        req.on('error', reject);
        req.end();
      });
    expect(await raw('/repos/alpha/../beta/names')).toBe(400);
    expect(await raw('/repos/alpha/%2e%2e/beta/names')).toBe(400);
    expect(await raw('/repos/alpha/..%2fbeta/names')).toBe(400);
    expect(await raw('/repos/%62eta/names')).toBe(404);
    expect(await raw('/api/repos/alpha/../repos/beta/packages/foo')).toBe(404);
    expect(await raw('/api/repos/alpha/packages/%66oo')).toBe(404);
    expect(await raw('/api/../repos/beta/names')).toBe(404);
  });

  it('a token on every repository and the environment user read them all', async () => {
    for (const name of NAMES) {
      expect((await call(`/repos/${name}/names`, { token: everywhere })).status).toBe(200);
      expect((await call(`/repos/${name}/names`, { token: `Basic ${Buffer.from('ops:long-password').toString('base64')}` })).status).toBe(200);
    }
  });
});

/** Every API route, as the request that exercises it on repository NAME (under /api/repos/NAME, or /api for the root one). */
function apiCalls(base: string): { label: string; path: string; method: string; body?: Uint8Array | string; type?: string; ok: number }[] {
  return [
    { label: 'publish (/publish)', path: `${base}/publish`, method: 'POST', body: tarball('bar', '1.0.0'), type: 'application/octet-stream', ok: 201 },
    { label: 'publish (/packages/N/releases)', path: `${base}/packages/bar/releases`, method: 'POST', body: tarball('bar', '1.1.0'), type: 'application/octet-stream', ok: 201 },
    { label: 'release GET', path: `${base}/packages/foo/releases/1.0.0`, method: 'GET', ok: 200 },
    { label: 'package GET', path: `${base}/packages/foo`, method: 'GET', ok: 200 },
    { label: 'retire', path: `${base}/packages/foo/releases/1.0.0/retire`, method: 'POST', body: JSON.stringify({ reason: 'security', message: 'CVE' }), type: 'application/json', ok: 204 },
    { label: 'unretire', path: `${base}/packages/foo/releases/1.0.0/retire`, method: 'DELETE', ok: 204 },
    { label: 'docs GET', path: `${base}/packages/foo/releases/1.0.0/docs`, method: 'GET', ok: 302 },
    { label: 'docs delete', path: `${base}/packages/foo/releases/1.0.0/docs`, method: 'DELETE', ok: 204 },
    { label: 'docs upload', path: `${base}/packages/foo/releases/1.0.0/docs`, method: 'POST', body: docs, type: 'application/octet-stream', ok: 201 },
    { label: 'revert', path: `${base}/packages/bar/releases/1.1.0`, method: 'DELETE', ok: 204 },
  ];
}

describe('the API of each repository', () => {
  it('refuses every route to a credential of another repository (403), before anything is changed', async () => {
    const before = await Promise.all(['names', 'packages/foo', 'docs/foo-1.0.0.tar.gz'].map((f) => readFile(join(dirs.beta, f))));
    for (const c of apiCalls('/api/repos/beta')) {
      const res = await call(c.path, { method: c.method, token: only.alpha, ...(c.body !== undefined ? { body: c.body, type: c.type! } : {}) });
      expect(res.status, `alpha's token: ${c.label} on beta`).toBe(403);
      expect(await res.json()).toMatchObject({ message: 'the token has no access to repository beta' });
      const none = await call(c.path, { method: c.method, ...(c.body !== undefined ? { body: c.body, type: c.type! } : {}) });
      expect(none.status, `no token: ${c.label} on beta`).toBe(401);
      expect(none.headers.get('www-authenticate')).toBe('Basic realm="hexrepo", charset="UTF-8"');
    }
    // Writes on the public repository need its own grant too.
    for (const c of apiCalls('/api/repos/gamma').filter((x) => x.method !== 'GET')) {
      expect((await call(c.path, { method: c.method, token: only.beta, ...(c.body !== undefined ? { body: c.body, type: c.type! } : {}) })).status, `beta's token: ${c.label} on gamma`).toBe(403);
    }
    const after = await Promise.all(['names', 'packages/foo', 'docs/foo-1.0.0.tar.gz'].map((f) => readFile(join(dirs.beta, f))));
    after.forEach((bytes, i) => expect(bytes.equals(before[i]!)).toBe(true));
    expect(services.beta.releases('bar')).toEqual([]);
    expect(services.gamma.releases('bar')).toEqual([]);
    expect(services.beta.releases('foo')[0]!.retired).toBeUndefined();
  });

  it("accepts every route for the repository's own credential, under /api/repos/NAME and at the root /api", async () => {
    for (const [name, base] of [
      ['beta', '/api/repos/beta'],
      ['alpha', '/api'],
    ] as const) {
      for (const c of apiCalls(base)) {
        const res = await call(c.path, { method: c.method, token: only[name], ...(c.body !== undefined ? { body: c.body, type: c.type! } : {}) });
        expect(res.status, `${name}: ${c.label} (${await res.clone().text()})`).toBe(c.ok);
        if (c.label === 'docs GET') expect(res.headers.get('location')).toBe(`${server.url}${name === 'alpha' ? '' : `/repos/${name}`}/docs/foo-1.0.0.tar.gz`);
        if (c.label === 'package GET') expect(await res.json()).toMatchObject({ repository: name, url: `${server.url}${base}/packages/foo` });
      }
      expect(services[name].releases('bar').map((r) => r.version)).toEqual(['1.0.0']);
    }
    // The others saw none of it.
    expect(services.gamma.releases('bar')).toEqual([]);
  });
});
