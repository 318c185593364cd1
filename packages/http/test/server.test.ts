/**
 * The repository endpoint over a real FsStore and a real HTTP server on 127.0.0.1, asserted at the
 * header level (what `curl -i` shows) for every resource.
 */
import { createHash } from 'node:crypto';
import { copyFile, mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { TokenStore } from '@hexrepo/repo';
import { FsStore, MemoryStore } from '@hexrepo/storage';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Access, clientKind, createRepositoryHandler, listen, type RunningServer } from '../src/index.js';
import { FIXTURES, goldenPublic, raw } from './helpers.js';

const basic = (user: string, pass: string): string => `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;

let pub: string;
let publicServer: RunningServer;
let privateServer: RunningServer;
let readToken: string;
let writeOnlyOther: string;

beforeAll(async () => {
  pub = await goldenPublic();
  await mkdir(join(pub, 'docs'));
  await writeFile(join(pub, 'docs/foo-0.1.0.tar.gz'), gzipSync(Buffer.from('docs')));
  // A careless user: the private key and the token file inside the public folder, and a symlink out.
  await copyFile(join(FIXTURES, 'golden-acme/test-only-rsa.pem'), join(pub, 'private_key.pem'));
  await writeFile(join(pub, '.env'), 'AUTH_PASSWORD=secret');
  await symlink('/etc/passwd', join(pub, 'tarballs/evil-1.0.0.tar'));
  const store = new FsStore(pub);
  publicServer = await listen(createRepositoryHandler({ store, repository: 'acme', access: new Access({ repository: 'acme', visibility: 'public', users: [] }) }), { host: '127.0.0.1', port: 0 });
  const tokens = await TokenStore.open(new FsStore(join(pub, '..', 'state')));
  readToken = (await tokens.create({ label: 'r', grants: [{ repository: 'acme', scopes: ['read'], packages: [] }] })).token;
  writeOnlyOther = (await tokens.create({ label: 'o', grants: [{ repository: 'acme', scopes: ['read'], packages: ['other_*'] }] })).token;
  const access = new Access({ repository: 'acme', visibility: 'private', users: [{ username: 'alice', password: 'wonderland' }], tokens, maxFailures: 1000 });
  privateServer = await listen(createRepositoryHandler({ store, repository: 'acme', access }), { host: '127.0.0.1', port: 0 });
});

afterAll(async () => {
  await publicServer?.close();
  await privateServer?.close();
});

describe('repository resources (public repository)', () => {
  it.each([
    ['/names', 'names', 'application/octet-stream', 'public, max-age=60'],
    ['/versions', 'versions', 'application/octet-stream', 'public, max-age=60'],
    ['/packages/foo', 'packages/foo', 'application/octet-stream', 'public, max-age=60'],
    ['/tarballs/foo-0.1.0.tar', 'tarballs/foo-0.1.0.tar', 'application/octet-stream', 'public, max-age=31536000, immutable'],
    ['/docs/foo-0.1.0.tar.gz', 'docs/foo-0.1.0.tar.gz', 'application/gzip', 'public, max-age=3600'],
    ['/public_key', 'public_key', 'text/plain; charset=utf-8', 'public, max-age=3600'],
  ])('GET %s: bytes as stored, strong ETag, Cache-Control, Content-Type, no Content-Encoding', async (path, file, type, cache) => {
    const res = await raw(publicServer.url, path);
    const bytes = await readFile(join(pub, file));
    expect(res.status).toBe(200);
    expect(res.body.equals(bytes)).toBe(true);
    expect(res.headers.etag).toMatch(/^"[0-9a-f]{40}"$/);
    expect(res.headers.etag).toBe(`"${createHash('sha256').update(bytes).digest('hex').slice(0, 40)}"`);
    expect(res.headers['content-type']).toBe(type);
    expect(res.headers['cache-control']).toBe(cache);
    expect(res.headers['content-encoding']).toBeUndefined();
    expect(res.headers['content-length']).toBe(String(bytes.length));
    expect(res.headers['last-modified']).toBeDefined();
  });

  it('HEAD: same headers, no body', async () => {
    const get = await raw(publicServer.url, '/packages/foo');
    const head = await raw(publicServer.url, '/packages/foo', { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.body.length).toBe(0);
    expect(head.headers.etag).toBe(get.headers.etag);
    expect(head.headers['content-length']).toBe(get.headers['content-length']);
  });

  it('304 only for a non-empty matching If-None-Match; an empty one (rebar3) is absent', async () => {
    const { headers } = await raw(publicServer.url, '/tarballs/foo-0.1.0.tar');
    const etag = headers.etag as string;
    const hit = await raw(publicServer.url, '/tarballs/foo-0.1.0.tar', { headers: { 'if-none-match': etag } });
    expect(hit.status).toBe(304);
    expect(hit.body.length).toBe(0);
    expect(hit.headers.etag).toBe(etag);
    expect((await raw(publicServer.url, '/tarballs/foo-0.1.0.tar', { headers: { 'if-none-match': `"other", ${etag}` } })).status).toBe(304);
    expect((await raw(publicServer.url, '/tarballs/foo-0.1.0.tar', { headers: { 'if-none-match': `W/${etag}` } })).status).toBe(304);
    const empty = await raw(publicServer.url, '/tarballs/foo-0.1.0.tar', { headers: { 'if-none-match': '' } });
    expect(empty.status).toBe(200);
    expect(empty.headers.etag).toBe(etag);
    expect((await raw(publicServer.url, '/tarballs/foo-0.1.0.tar', { headers: { 'if-none-match': '"nope"' } })).status).toBe(200);
  });

  it('tolerates what httpc sends on GET: content-length 0 and an empty te header', async () => {
    const res = await raw(publicServer.url, '/packages/foo', { headers: { 'content-length': '0', te: '' } });
    expect(res.status).toBe(200);
  });

  it('404 for a missing package, tarball or docs', async () => {
    for (const path of ['/packages/nope', '/tarballs/foo-9.9.9.tar', '/docs/foo-9.9.9.tar.gz']) {
      const res = await raw(publicServer.url, path);
      expect(res.status).toBe(404);
      expect(res.headers.etag).toBeUndefined();
    }
  });

  it('405 for writes on the repository endpoint', async () => {
    expect((await raw(publicServer.url, '/packages/foo', { method: 'PUT' })).status).toBe(405);
  });

  it('an unrecognised Authorization header does not turn a public read into a 401', async () => {
    expect((await raw(publicServer.url, '/packages/foo', { headers: { authorization: 'Bearer hexpm-oauth-token' } })).status).toBe(200);
  });
});

describe('nothing outside the repository is ever served', () => {
  it.each([
    '/private_key.pem',
    '/../private_key.pem',
    '/%2e%2e/private_key.pem',
    '/%252e%252e/private_key.pem',
    '/packages/..%2fprivate_key.pem',
    '/packages/%2e%2e%2fprivate_key.pem',
    '/tarballs/../private_key.pem',
    '/tarballs/..%5cprivate_key.pem',
    '/.env',
    '/%2eenv',
    '/tarballs/.%2e/.env',
    '/tarballs/evil-1.0.0.tar',
    '//etc/passwd',
    '/packages/foo%00',
  ])('%s is refused', async (path) => {
    for (const server of [publicServer, privateServer]) {
      const res = await raw(server.url, path, { headers: { authorization: basic('alice', 'wonderland') } });
      expect([400, 404]).toContain(res.status);
      expect(res.body.toString()).not.toMatch(/PRIVATE KEY|AUTH_PASSWORD|root:/);
    }
  });
});

describe('private repository', () => {
  it('401 with WWW-Authenticate without credentials; 200 with Basic, raw token, Bearer, Basic-password token', async () => {
    const none = await raw(privateServer.url, '/packages/foo');
    expect(none.status).toBe(401);
    expect(none.headers['www-authenticate']).toMatch(/^Basic realm="hexrepo"/);
    for (const authorization of [basic('alice', 'wonderland'), readToken, `Bearer ${readToken}`, basic('x', readToken)]) {
      const res = await raw(privateServer.url, '/packages/foo', { headers: { authorization } });
      expect(res.status).toBe(200);
      expect(res.headers['cache-control']).toBe('private, max-age=60');
      expect(res.headers.vary).toBe('authorization');
    }
  });

  it('wrong credentials → 401; a token limited to other packages → 403', async () => {
    expect((await raw(privateServer.url, '/packages/foo', { headers: { authorization: basic('alice', 'wrong') } })).status).toBe(401);
    expect((await raw(privateServer.url, '/packages/foo', { headers: { authorization: writeOnlyOther } })).status).toBe(403);
    expect((await raw(privateServer.url, '/names', { headers: { authorization: writeOnlyOther } })).status).toBe(200);
  });

  it('/health and /metrics', async () => {
    const health = await raw(privateServer.url, '/health');
    expect(health.status).toBe(200);
    expect(JSON.parse(health.body.toString())).toMatchObject({ status: 'ok', repository: 'acme' });
    const metrics = (await raw(privateServer.url, '/metrics')).body.toString();
    expect(metrics).toMatch(/hexrepo_http_requests_total\{method="GET",route="\/packages\/:name",status="200"\} \d+/);
    expect(metrics).toMatch(/hexrepo_http_requests_total\{method="GET",route="\/packages\/:name",status="401"\} \d+/);
    expect(metrics).toMatch(/hexrepo_http_request_duration_seconds_bucket\{route="\/packages\/:name",le="\+Inf"\} \d+/);
    expect(metrics).not.toContain('foo');
  });
});

describe('graceful shutdown', () => {
  it('lets an in-flight request finish, then refuses new connections', async () => {
    const store = new FsStore(pub);
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const slow = new Proxy(store, {
      get(target, prop, receiver) {
        if (prop === 'get') return async (key: string) => (await gate, target.get(key));
        const value = Reflect.get(target, prop, receiver) as unknown;
        return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      },
    });
    const server = await listen(createRepositoryHandler({ store: slow, repository: 'acme', access: new Access({ repository: 'acme', visibility: 'public', users: [] }) }), { host: '127.0.0.1', port: 0 });
    const inFlight = raw(server.url, '/packages/foo');
    await new Promise((r) => setTimeout(r, 50));
    const closing = server.close(5_000);
    await new Promise((r) => setTimeout(r, 50));
    await expect(raw(server.url, '/names')).rejects.toThrow(/ECONNREFUSED/);
    release();
    expect((await inFlight).status).toBe(200);
    await closing;
  });
});

describe('clientKind', () => {
  it.each([
    ['hex_core/0.19.0 hex/2.5.2-dev (elixir/1.14.0) (OTP/25) (erts/13.1.5)', 'mix'],
    ['Hex/2.0.6 (Elixir/1.14.0) (OTP/25.2.3)', 'mix'],
    ['hex_core/0.7.1 (rebar3/3.19.0) (httpc) (OTP/25) (erts/13.1.5)', 'rebar3'],
    ['curl/7.88.1', 'curl'],
    ['hex_core/0.7.1 (httpc) (OTP/25)', 'other'],
    [undefined, 'other'],
  ])('%s → %s', (ua, kind) => {
    expect(clientKind(ua)).toBe(kind);
  });
});

describe('streamed tarballs', () => {
  it('passes a store stream through with the store etag and length, never buffering it', async () => {
    const chunks = [Buffer.alloc(64 * 1024, 1), Buffer.alloc(64 * 1024, 2), Buffer.from('end')];
    const whole = Buffer.concat(chunks);
    const memory = new MemoryStore();
    await memory.put('tarballs/big-1.0.0.tar', whole);
    const etag = (await memory.head('tarballs/big-1.0.0.tar'))!.etag;
    let streamed = 0;
    const store = {
      url: memory.url,
      get: memory.get.bind(memory),
      head: memory.head.bind(memory),
      put: memory.put.bind(memory),
      delete: memory.delete.bind(memory),
      list: memory.list.bind(memory),
      getStream: async (key: string) => {
        streamed++;
        const head = await memory.head(key);
        return (
          head && {
            body: (async function* () {
              for (const c of chunks) yield c;
            })(),
            etag: head.etag,
            size: head.size,
            mtime: head.mtime,
          }
        );
      },
    };
    const server = await listen(createRepositoryHandler({ store, repository: 'acme', access: new Access({ repository: 'acme', visibility: 'public', users: [] }) }), { host: '127.0.0.1', port: 0 });
    try {
      const res = await raw(server.url, '/tarballs/big-1.0.0.tar');
      expect(res.status).toBe(200);
      expect(res.body.equals(whole)).toBe(true);
      expect(res.headers.etag).toBe(etag);
      expect(res.headers['content-length']).toBe(String(whole.length));
      expect(res.headers['content-encoding']).toBeUndefined();
      expect(streamed).toBe(1);
      expect((await raw(server.url, '/tarballs/big-1.0.0.tar', { headers: { 'if-none-match': etag } })).status).toBe(304);
      expect(streamed).toBe(1);
      expect((await raw(server.url, '/tarballs/none-1.0.0.tar')).status).toBe(404);
    } finally {
      await server.close();
    }
  });
});
