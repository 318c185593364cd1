/**
 * `hexrepo mirror sync|export|import|evict|status` end to end: the built CLI against a loopback
 * upstream that is a real Hex repository named `hexpm` (built by hexrepo with its own test key,
 * served by a plain static server that counts what it sends), and the real rebar3 fetching and
 * compiling through the mirror with the upstream stopped. The mirror store is served as a plain
 * static folder: the store's layout is hex.pm's, so that is what a mirror serves.
 */
import { spawn } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { generateKeyPair } from '@hexrepo/registry';
import { buildRegistry } from '@hexrepo/repo';
import { FsStore } from '@hexrepo/storage';
import { createTarball } from '@hexrepo/tarball';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, hexrepo } from './support/cli.js';
import { rebar3Unavailable, runRebar3, writeConsumer } from './support/rebar3.js';
import { startStaticServer, type StaticServer } from './support/static-server.js';

const FIXTURES = new URL('../test-fixtures/tarballs/', import.meta.url).pathname;
const unavailable = rebar3Unavailable();
if (unavailable) console.warn(`skipping the rebar3 parts of the mirror tests: ${unavailable}`);

let dir: string;
let keyPem: string;
let keyFile: string;

/** Every stored object of a mirror store (not its _hexrepo state). */
async function storedObjects(root: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string): Promise<void> => {
    for (const e of await readdir(d, { withFileTypes: true }).catch(() => [])) {
      const p = join(d, e.name);
      if (e.isDirectory()) {
        if (e.name !== '_hexrepo') await walk(p);
      } else if (!e.name.startsWith('.')) out.push(relative(root, p));
    }
  };
  await walk(root);
  return out.sort();
}

/**
 * Build a repository named hexpm in DIR/NAME from tarballs with hexrepo's builder and a fresh key
 * ("hexrepo init" rightly refuses the name hexpm for a private repository).
 */
async function buildHexpm(name: string, tarballs: { file: string; bytes: Uint8Array }[]): Promise<string> {
  const root = join(dir, name);
  const store = new FsStore(root);
  for (const t of tarballs) await store.put(`tarballs/${t.file}`, t.bytes);
  const { privateKey, publicKeyPem } = await generateKeyPair();
  await buildRegistry({ store, repository: 'hexpm', privateKey, threads: 1 });
  await writeFile(join(root, 'public_key'), publicKeyPem);
  return root;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hexrepo-e2e-mirror-'));
}, 60_000);
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('mirror sync with a real upstream', () => {
  let upstream: StaticServer;
  let upstreamRoot: string;

  beforeAll(async () => {
    const tarballs = await Promise.all(['baz-1.0.0.tar', 'quux-0.1.0.tar', 'foo-0.1.0.tar', 'foo-0.2.0.tar'].map(async (file) => ({ file, bytes: await readFile(join(FIXTURES, file)) })));
    upstreamRoot = await buildHexpm('upstream', tarballs);
    keyFile = join(upstreamRoot, 'public_key');
    keyPem = await readFile(keyFile, 'utf8');
    upstream = await startStaticServer(upstreamRoot);
  }, 60_000);
  afterAll(async () => {
    await upstream?.close();
  });

  const mirrorArgs = (store: string): string[] => ['--store', store, '--upstream', upstream.url, '--upstream-key', keyFile];

  it.skipIf(unavailable !== null)(
    'sync --package with its transitive closure; rebar3 fetches and compiles through the mirror with the upstream stopped; the lockfile bundle builds on an air-gapped mirror',
    async () => {
      const store = join(dir, 'mirror-a');
      const r = await hexrepo(['mirror', 'sync', '--package', 'quux', '--json', ...mirrorArgs(store)]);
      expect(r.status, r.stdout + r.stderr).toBe(0);
      const summary = JSON.parse(r.stdout) as { ok: boolean; fetched: number; skipped: number; bytes: number; failures: unknown[] };
      expect(summary).toMatchObject({ ok: true, fetched: 4, skipped: 0, failures: [] });
      expect(await storedObjects(store)).toEqual(['packages/baz', 'packages/quux', 'tarballs/baz-1.0.0.tar', 'tarballs/quux-0.1.0.tar']);
      await upstream.close();

      // The upstream is gone: rebar3 (repos replace → hexpm at the mirror, the upstream's key) builds from the mirror.
      const mirror = await startStaticServer(store);
      try {
        const project = join(dir, 'consumer');
        await writeConsumer(project, { name: 'hexpm', url: mirror.url, publicKeyPem: keyPem }, { quux: '~> 0.1' });
        const built = await runRebar3(project, ['compile'], join(dir, 'home-a'), { HEX_CDN: mirror.url });
        expect(built.status, built.output).toBe(0);
        expect(mirror.requests.filter((q) => q.status === 200).map((q) => q.path)).toEqual(expect.arrayContaining(['/packages/quux', '/packages/baz', '/tarballs/quux-0.1.0.tar', '/tarballs/baz-1.0.0.tar']));
        const lock = await readFile(join(project, 'rebar.lock'), 'utf8');
        expect(lock).toContain('<<"baz">>');

        // Bundle from the mirror for rebar3's own lockfile; import on a mirror that has never seen an upstream.
        const bundle = join(dir, 'deps.bundle');
        const ex = await hexrepo(['mirror', 'export', '--lock', join(project, 'rebar.lock'), '-o', bundle, '--json', '--store', store, '--upstream-key', keyFile]);
        expect(ex.status, ex.stdout + ex.stderr).toBe(0);
        expect(JSON.parse(ex.stdout)).toMatchObject({ ok: true, objects: 4 });

        const tamperedFile = join(dir, 'tampered.bundle');
        const bytes = await readFile(bundle);
        bytes[bytes.length - 1024 - 100]! ^= 1;
        await writeFile(tamperedFile, bytes);
        const airgap = join(dir, 'airgap');
        const bad = await hexrepo(['mirror', 'import', tamperedFile, '--json', '--store', airgap, '--upstream-key', keyFile]);
        expect(bad.status).toBe(1);
        expect(JSON.parse(bad.stdout)).toMatchObject({ ok: false, error: { code: expect.stringMatching(/BUNDLE_INVALID|REGISTRY_/) } });
        expect(await storedObjects(airgap)).toEqual([]);

        const im = await hexrepo(['mirror', 'import', bundle, '--store', airgap, '--upstream-key', keyFile]);
        expect(im.status, im.stdout + im.stderr).toBe(0);
        expect(im.stdout).toMatch(/4 stored, 0 already there; pinned as [0-9a-f]{16}/);
        const airgapServer = await startStaticServer(airgap);
        try {
          const offline = join(dir, 'consumer-offline');
          await writeConsumer(offline, { name: 'hexpm', url: airgapServer.url, publicKeyPem: keyPem }, { quux: '~> 0.1' });
          await copyFile(join(project, 'rebar.lock'), join(offline, 'rebar.lock'));
          const again = await runRebar3(offline, ['compile'], join(dir, 'home-b'), { HEX_CDN: airgapServer.url });
          expect(again.status, again.output).toBe(0);
        } finally {
          await airgapServer.close();
        }

        // Evict cannot remove what the bundle pinned; status shows the pin.
        const ev = await hexrepo(['mirror', 'evict', '--max-size', '0', '--json', '--store', airgap]);
        expect(ev.status, ev.stderr).toBe(0);
        expect(JSON.parse(ev.stdout)).toMatchObject({ evicted: [], keptPinned: 2 });
        const st = await hexrepo(['mirror', 'status', '--json', '--store', airgap]);
        expect(JSON.parse(st.stdout)).toMatchObject({ objects: { packages: { count: 2 }, tarballs: { count: 2 } }, pinnedPaths: 4 });
      } finally {
        await mirror.close();
        upstream = await startStaticServer(upstreamRoot);
      }
    },
    180_000,
  );
});

describe('mirror sync killed with SIGKILL and restarted', () => {
  let upstream: StaticServer;
  let upstreamRoot: string;

  beforeAll(async () => {
    const tarballs: { file: string; bytes: Uint8Array }[] = [];
    for (let i = 0; i < 150; i++) {
      const name = `pkg_${String(i).padStart(3, '0')}`;
      for (const version of ['1.0.0', '1.1.0']) {
        const { tarball } = createTarball({ name, version }, [{ path: `src/${name}.erl`, contents: Buffer.from(`-module(${name}). %% ${version} ${'x'.repeat(2000 + i)}\n`) }]);
        tarballs.push({ file: `${name}-${version}.tar`, bytes: tarball });
      }
    }
    upstreamRoot = await buildHexpm('big', tarballs);
    upstream = await startStaticServer(upstreamRoot);
  }, 120_000);
  afterAll(async () => {
    await upstream?.close();
  });

  it('completes, never downloads an object it had already stored and verified, and the mirror verifies', async () => {
    const store = join(dir, 'mirror-kill');
    const args = [CLI, 'mirror', 'sync', '--all', '--tarballs', '--concurrency', '4', '--json', '--store', store, '--upstream', upstream.url, '--upstream-key', join(upstreamRoot, 'public_key')];
    let kills = 0;
    let completed = false;
    for (let round = 0; round < 12 && !completed; round++) {
      const before = new Set(await storedObjects(store));
      const from = upstream.requests.length;
      const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
      // Kill the first rounds at a random point of their progress (after 5 to 120 more objects are
      // stored; the CLI's start-up time varies too much for a timer); let the last ones run to the end.
      const target = before.size + 5 + Math.floor(Math.random() * 115);
      let watching = round < 5;
      const watch = async (): Promise<void> => {
        while (watching) {
          if ((await storedObjects(store)).length >= target) {
            child.kill('SIGKILL');
            return;
          }
          await new Promise((r) => setTimeout(r, 10));
        }
      };
      const watcher = watch();
      const code = await exited;
      watching = false;
      await watcher;
      if (code === null) kills++;
      else {
        expect(code, out).toBe(0);
        completed = true;
      }
      const redownloaded = upstream.requests.slice(from).filter((q) => q.status === 200 && before.has(q.path.slice(1)));
      expect(redownloaded, `round ${round}`).toEqual([]);
    }
    expect(completed).toBe(true);
    expect(kills).toBeGreaterThanOrEqual(3);
    expect((await storedObjects(store)).filter((p) => p.startsWith('tarballs/'))).toHaveLength(300);
    const verified = await hexrepo(['verify', '--store', store, '--name', 'hexpm', '--public-key', join(upstreamRoot, 'public_key'), '--json']);
    expect(verified.status, verified.stdout + verified.stderr).toBe(0);
    expect(JSON.parse(verified.stdout)).toMatchObject({ ok: true, packages: 150, releases: 300, tarballsChecked: 300 });
  }, 180_000);

  it('takes the store and the upstream from a mirror repository of the host config (--repo)', async () => {
    const host = join(dir, 'host');
    await mkdir(host, { recursive: true });
    await copyFile(join(upstreamRoot, 'public_key'), join(host, 'upstream_key.pem'));
    const config = { repositories: [{ name: 'hexpm', publicDir: 'mirror', mirror: { url: upstream.url, publicKey: 'upstream_key.pem' } }] };
    await writeFile(join(host, 'hexrepo.json'), JSON.stringify(config));
    const r = await hexrepo(['mirror', 'sync', '--repo', 'hexpm', '--package', 'pkg_002', '--json'], { cwd: host });
    expect(r.status, r.stdout + r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ ok: true, fetched: 3, failures: [] });
    expect(await storedObjects(join(host, 'mirror'))).toEqual(['packages/pkg_002', 'tarballs/pkg_002-1.0.0.tar', 'tarballs/pkg_002-1.1.0.tar']);
    const st = await hexrepo(['mirror', 'status', host, '--repo', 'hexpm', '--json']);
    expect(JSON.parse(st.stdout)).toMatchObject({ objects: { packages: { count: 1 }, tarballs: { count: 2 } }, withoutMeta: 0 });
    const clash = await hexrepo(['mirror', 'status', '--repo', 'hexpm', '--store', 'x'], { cwd: host });
    expect(clash.status).toBe(2);
    expect(clash.stderr).toContain('--repo takes the store and the upstream from hexrepo.json; drop --store');
  });

  it('goes through HTTP_PROXY (a CONNECT tunnel) unless NO_PROXY names the host', async () => {
    const tunnels: string[] = [];
    const proxy: Server = createServer((_req, res) => res.writeHead(405).end());
    proxy.on('connect', (req, client: Socket, head: Buffer) => {
      tunnels.push(req.url ?? '');
      const [host, port] = (req.url ?? '').split(':');
      const upstreamSocket = connect(Number(port), host, () => {
        client.write('HTTP/1.1 200 Connection established\r\n\r\n');
        upstreamSocket.write(head);
        upstreamSocket.pipe(client);
        client.pipe(upstreamSocket);
      });
      upstreamSocket.on('error', () => client.destroy());
      client.on('error', () => upstreamSocket.destroy());
    });
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    const address = proxy.address();
    if (!address || typeof address === 'string') throw new Error('no address');
    const proxyUrl = `http://127.0.0.1:${address.port}`;
    try {
      const base = ['mirror', 'sync', '--package', 'pkg_001', '--json', '--upstream', upstream.url, '--upstream-key', join(upstreamRoot, 'public_key')];
      const via = await hexrepo([...base, '--store', join(dir, 'mirror-proxy')], { env: { HTTP_PROXY: proxyUrl, NO_PROXY: 'example.com' } });
      expect(via.status, via.stdout + via.stderr).toBe(0);
      expect(tunnels.length).toBeGreaterThan(0);
      expect(new Set(tunnels)).toEqual(new Set([new URL(upstream.url).host]));
      tunnels.length = 0;
      const direct = await hexrepo([...base, '--store', join(dir, 'mirror-direct')], { env: { HTTP_PROXY: proxyUrl, NO_PROXY: '127.0.0.1' } });
      expect(direct.status, direct.stdout + direct.stderr).toBe(0);
      expect(tunnels).toEqual([]);
    } finally {
      proxy.closeAllConnections();
      await new Promise((resolve) => proxy.close(resolve));
    }
  }, 60_000);
});
