/**
 * A mirror repository of the host over a real socket: an upstream Hex repository named hexpm
 * (built by hexrepo, served by a static server) behind a fault-injecting proxy.
 */
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateKeyPair, publicKeyPem } from '@hexrepo/registry';
import { MirrorCache, resolveUpstream, UpstreamClient } from '@hexrepo/mirror';
import { buildRegistry } from '@hexrepo/repo';
import { FsStore, MemoryStore } from '@hexrepo/storage';
import { startFaultProxy, startStaticUpstream, type FaultProxy, type Listening } from '@hexrepo/test-support/hex-upstream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Access, createHostHandler, listen, type RunningServer } from '../src/index.js';
import { FIXTURES, raw } from './helpers.js';

let dir: string;
let upstream: Listening;
let proxy: FaultProxy;
let server: RunningServer;
let pem: string;
let mirrorStore: FsStore;
let client: UpstreamClient;
let privateServer: RunningServer;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hexrepo-http-mirror-'));
  const up = new FsStore(join(dir, 'upstream'));
  for (const f of (await readdir(join(FIXTURES, 'tarballs'))).filter((f) => f.endsWith('.tar'))) await up.put(`tarballs/${f}`, await readFile(join(FIXTURES, 'tarballs', f)));
  const { privateKey } = await generateKeyPair();
  await buildRegistry({ store: up, repository: 'hexpm', privateKey, threads: 1 });
  pem = publicKeyPem(privateKey);
  upstream = await startStaticUpstream(join(dir, 'upstream'));
  proxy = await startFaultProxy(upstream.url);
  mirrorStore = new FsStore(join(dir, 'mirror'));
  client = new UpstreamClient(resolveUpstream({ url: proxy.url, publicKey: pem }), { firstByteTimeoutMs: 1_000 });
  const mirror = new MirrorCache({ store: mirrorStore, client, maxAgeMs: 0 });
  const acme = { name: 'acme', store: new MemoryStore(), visibility: 'public' as const };
  server = await listen(createHostHandler({ repositories: [{ name: 'hexpm', store: mirrorStore, visibility: 'public', mirror, root: true }, acme], access: new Access({ visibility: 'public', users: [] }) }), { host: '127.0.0.1', port: 0 });
  const privMirror = new MirrorCache({ store: new MemoryStore(), client });
  privateServer = await listen(
    createHostHandler({
      repositories: [{ name: 'hexpm', store: new MemoryStore(), visibility: 'private', mirror: privMirror }],
      access: new Access({ visibility: 'private', users: [{ username: 'ops', password: 'long-password' }], maxFailures: 1000 }),
    }),
    { host: '127.0.0.1', port: 0 },
  );
}, 60_000);

afterAll(async () => {
  await server?.close(0);
  await privateServer?.close(0);
  await client?.close();
  await proxy?.close();
  await upstream?.close();
  await rm(dir, { recursive: true, force: true });
});

const upstreamBytes = (path: string): Promise<Buffer> => readFile(join(dir, 'upstream', path));

describe('a mirror repository of the host', () => {
  it('serves the upstream files verbatim, fetching a miss once, with X-Hexrepo-Cache and ETags', async () => {
    const miss = await raw(server.url, '/tarballs/foo-0.1.0.tar');
    expect(miss.status).toBe(200);
    expect(miss.headers['x-hexrepo-cache']).toBe('miss');
    expect(miss.body.equals(await upstreamBytes('tarballs/foo-0.1.0.tar'))).toBe(true);
    const hit = await raw(server.url, '/tarballs/foo-0.1.0.tar');
    expect(hit.headers['x-hexrepo-cache']).toBe('hit');
    expect(hit.headers['cache-control']).toContain('immutable');
    const notModified = await raw(server.url, '/tarballs/foo-0.1.0.tar', { headers: { 'if-none-match': String(hit.headers.etag) } });
    expect(notModified.status).toBe(304);
    const pkg = await raw(server.url, '/packages/foo');
    expect(pkg.body.equals(await upstreamBytes('packages/foo'))).toBe(true);
    // The same mirror under /repos/hexpm, HEAD included.
    const head = await raw(server.url, '/repos/hexpm/names', { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(Number(head.headers['content-length'])).toBe((await upstreamBytes('names')).length);
  });

  it('serves the upstream public key', async () => {
    const res = await raw(server.url, '/public_key');
    expect(res.body.toString()).toBe(pem);
  });

  it('answers 50 clients asking at once for one object with one upstream fetch', async () => {
    const before = upstream.requests.filter((r) => r.path === '/tarballs/baz-1.0.0.tar').length;
    const all = await Promise.all(Array.from({ length: 50 }, () => raw(server.url, '/tarballs/baz-1.0.0.tar')));
    const expected = await upstreamBytes('tarballs/baz-1.0.0.tar');
    for (const r of all) expect(r.status === 200 && r.body.equals(expected)).toBe(true);
    expect(upstream.requests.filter((r) => r.path === '/tarballs/baz-1.0.0.tar').length - before).toBe(1);
  });

  it('is read-only: the publish API answers 405, its reads 404', async () => {
    const publish = await raw(server.url, '/api/publish', { method: 'POST', headers: { 'content-type': 'application/octet-stream', accept: 'application/json' }, body: new Uint8Array(10) });
    expect(publish.status).toBe(405);
    expect(JSON.parse(publish.body.toString()).message).toContain('read-only mirror');
    const read = await raw(server.url, '/api/packages/foo', { headers: { accept: 'application/json' } });
    expect(read.status).toBe(404);
    // The other repository of the host keeps its API.
    expect((await raw(server.url, '/api/repos/acme/packages/foo', { headers: { accept: 'application/json' } })).status).not.toBe(405);
  });

  it('never fetches upstream organization paths', async () => {
    const before = upstream.requests.length;
    const res = await raw(server.url, '/repos/hexpm/repos/acme/names');
    expect(res.status).toBe(404);
    expect(res.body.toString()).toContain('organization repositories');
    expect(upstream.requests.length).toBe(before);
  });

  it('serves stale copies when the upstream fails, 503/504 for what was never cached, 502 for refused answers', async () => {
    await raw(server.url, '/packages/bar');
    proxy.setFault({ kind: 'status', status: 500 });
    const stale = await raw(server.url, '/packages/bar');
    expect(stale.status).toBe(200);
    expect(stale.headers['x-hexrepo-cache']).toBe('stale');
    expect(stale.headers['cache-control']).toBe('no-cache');
    const down = await raw(server.url, '/packages/qux');
    expect(down.status).toBe(503);
    expect(down.body.toString()).toContain('error[UPSTREAM_UNAVAILABLE]: the upstream answered 500');
    // Erlang's httpc (rebar3) retries a 503 with Retry-After for ever.
    expect(down.headers['retry-after']).toBeUndefined();
    proxy.setFault({ kind: 'hang' });
    const slow = await raw(server.url, '/packages/qux');
    expect(slow.status).toBe(504);
    expect(slow.body.toString()).toContain('UPSTREAM_TIMEOUT');
    proxy.setFault({ kind: 'tamper' }, /^\/tarballs\//);
    const tampered = await raw(server.url, '/tarballs/bar-1.0.0.tar');
    expect(tampered.status).toBe(502);
    expect(tampered.body.toString()).toContain('REGISTRY_CHECKSUM_MISMATCH');
    expect(await mirrorStore.get('tarballs/bar-1.0.0.tar')).toBeNull();
    proxy.setFault({ kind: 'none' });
    const metrics = (await raw(server.url, '/metrics')).body.toString();
    expect(metrics).toMatch(/hexrepo_mirror_stale_total\{repository="hexpm"\} [1-9]/);
    expect(metrics).toMatch(/hexrepo_mirror_refused_total\{repository="hexpm"\} 1\n/);
    expect(metrics).toMatch(/hexrepo_mirror_upstream_errors_total\{repository="hexpm"\} [3-9]/);
    expect(metrics).toMatch(/hexrepo_mirror_upstream_bytes_total\{repository="hexpm"\} [1-9]/);
    expect(metrics).toMatch(/hexrepo_mirror_hits_total\{repository="hexpm"\} [1-9]/);
    expect(metrics).toMatch(/hexrepo_mirror_misses_total\{repository="hexpm"\} [1-9]/);
  });

  it('applies the access rules of the host', async () => {
    expect((await raw(privateServer.url, '/repos/hexpm/packages/foo')).status).toBe(401);
    const ok = await raw(privateServer.url, '/repos/hexpm/packages/foo', { headers: { authorization: `Basic ${Buffer.from('ops:long-password').toString('base64')}` } });
    expect(ok.status).toBe(200);
    expect(ok.headers.vary).toBe('authorization');
  });
});
