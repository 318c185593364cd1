import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FsStore } from '@hexrepo/storage';
import { startStaticUpstream, type Listening } from '@hexrepo/test-support/hex-upstream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveUpstream, UpstreamClient, verifyNames } from '../src/index.js';
import { buildUpstream, type TestUpstream } from './helpers.js';

let dir: string;
let up: TestUpstream;
let upstream: Listening;
let proxy: Server;
let proxyUrl: string;
const tunnels: string[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hexrepo-mirror-upstream-'));
  up = await buildUpstream({ store: new FsStore(join(dir, 'upstream')) });
  upstream = await startStaticUpstream(join(dir, 'upstream'));
  // A forward proxy as corporate networks run them: CONNECT tunnels only.
  proxy = createServer((_req, res) => res.writeHead(405).end());
  proxy.on('connect', (req, socket) => {
    tunnels.push(req.url ?? '');
    const [host, port] = (req.url ?? '').split(':');
    const out = connect(Number(port), host!, () => {
      socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      out.pipe(socket);
      socket.pipe(out);
    });
    out.on('error', () => socket.destroy());
    socket.on('error', () => out.destroy());
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  const address = proxy.address();
  proxyUrl = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
}, 60_000);

afterAll(async () => {
  await upstream?.close();
  proxy?.closeAllConnections();
  await new Promise((resolve) => proxy?.close(resolve));
  await rm(dir, { recursive: true, force: true });
});

describe('UpstreamClient', () => {
  it('fetches through the configured proxy, and directly for NO_PROXY hosts', async () => {
    const upstreamConfig = resolveUpstream({ url: upstream.url, publicKey: up.publicKeyPem });
    const viaProxy = new UpstreamClient(upstreamConfig, { proxy: { httpProxy: proxyUrl } });
    const answer = await viaProxy.get('names');
    expect(answer.status).toBe('ok');
    if (answer.status === 'ok') expect(verifyNames(answer.body, up.publicKey, 'hexpm').packages.length).toBeGreaterThan(0);
    await viaProxy.close();
    expect(tunnels).toEqual([new URL(upstream.url).host]);

    const bypass = new UpstreamClient(upstreamConfig, { proxy: { httpProxy: proxyUrl, noProxy: 'localhost,127.0.0.1' } });
    expect((await bypass.get('names')).status).toBe('ok');
    await bypass.close();
    expect(tunnels).toHaveLength(1);
  });

  it('sends If-None-Match and reports 304 and 404 as answers', async () => {
    const client = new UpstreamClient(resolveUpstream({ url: upstream.url, publicKey: up.publicKeyPem }));
    const first = await client.get('versions');
    if (first.status !== 'ok') throw new Error('expected the object');
    expect(first.etag).toMatch(/^"/);
    expect(await client.get('versions', { etag: first.etag })).toEqual({ status: 'not-modified', etag: first.etag });
    expect(await client.get('packages/nope')).toEqual({ status: 'not-found' });
    await client.close();
  });

  it('refuses an answer larger than maxBytes', async () => {
    const client = new UpstreamClient(resolveUpstream({ url: upstream.url, publicKey: up.publicKeyPem }), { maxBytes: 10 });
    await expect(client.get('names')).rejects.toMatchObject({ code: 'UPSTREAM_UNAVAILABLE', message: expect.stringContaining('more than the 10') });
    await client.close();
  });
});
