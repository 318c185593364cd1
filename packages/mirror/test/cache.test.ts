import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isHexrepoError, type HexrepoError } from '@hexrepo/core';
import { FsStore, type BlobStore } from '@hexrepo/storage';
import { startFaultProxy, startStaticUpstream, type FaultProxy, type Listening } from '@hexrepo/test-support/hex-upstream';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { metaKey, MirrorCache, readMeta, resolveUpstream, sha256Hex, UpstreamClient, type MirrorCacheOptions, type MirrorEvent } from '../src/index.js';
import { buildUpstream, type TestUpstream } from './helpers.js';

let dir: string;
let up: TestUpstream;
let upstream: Listening;
let proxy: FaultProxy;
/** Same repository name, another key. */
let otherKey: Listening;
/** Same key, repository "acme". */
let otherRepo: Listening;
/** packages/foo holds bar's releases. */
let swapped: Listening;
const open: { close(): Promise<void> }[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hexrepo-mirror-cache-'));
  up = await buildUpstream({ store: new FsStore(join(dir, 'upstream')) });
  await buildUpstream({ store: new FsStore(join(dir, 'other-key')) });
  await buildUpstream({ store: new FsStore(join(dir, 'other-repo')), repository: 'acme', privateKey: up.privateKey });
  await mkdir(join(dir, 'upstream/installs'));
  await writeFile(join(dir, 'upstream/installs/hex-1.x.csv'), '2.1.1,abc,1.15.0\n');
  await cp(join(dir, 'upstream'), join(dir, 'swapped'), { recursive: true });
  await writeFile(join(dir, 'swapped/packages/foo'), await readFile(join(dir, 'upstream/packages/bar')));
  upstream = await startStaticUpstream(join(dir, 'upstream'));
  otherKey = await startStaticUpstream(join(dir, 'other-key'));
  otherRepo = await startStaticUpstream(join(dir, 'other-repo'));
  swapped = await startStaticUpstream(join(dir, 'swapped'));
  proxy = await startFaultProxy(upstream.url);
}, 60_000);

afterAll(async () => {
  for (const s of [proxy, upstream, otherKey, otherRepo, swapped]) await s?.close();
  await rm(dir, { recursive: true, force: true });
});

afterEach(async () => {
  proxy.setFault({ kind: 'none' });
  upstream.requests.length = 0;
  while (open.length) await open.pop()!.close();
});

let n = 0;
function mirror(opts: Partial<MirrorCacheOptions> & { firstByteTimeoutMs?: number; storeDir?: string } = {}): { cache: MirrorCache; store: FsStore; events: MirrorEvent[] } {
  const store = new FsStore(opts.storeDir ?? join(dir, `mirror-${n++}`));
  const client = new UpstreamClient(resolveUpstream({ url: proxy.url, publicKey: up.publicKeyPem }), { firstByteTimeoutMs: opts.firstByteTimeoutMs ?? 5_000, connectTimeoutMs: 5_000 });
  open.push(client);
  const events: MirrorEvent[] = [];
  const cache = new MirrorCache({ store, client, onEvent: (e) => events.push(e), ...opts });
  return { cache, store, events };
}

async function failure(p: Promise<unknown>): Promise<HexrepoError> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  if (!isHexrepoError(err)) throw new Error(`expected a HexrepoError, got ${String(err)}`);
  return err;
}

const upstreamBytes = (path: string): Promise<Buffer> => readFile(join(dir, 'upstream', path));

describe('MirrorCache', () => {
  it('fetches a miss, verifies it, stores it verbatim with its meta, then serves it without the upstream', async () => {
    const { cache, store } = mirror();
    const first = await cache.get('tarballs/foo-0.1.0.tar');
    expect(first?.outcome).toBe('miss');
    const expected = await upstreamBytes('tarballs/foo-0.1.0.tar');
    expect(Buffer.from(first!.body).equals(expected)).toBe(true);
    await cache.flushed();
    expect(Buffer.from((await store.get('tarballs/foo-0.1.0.tar'))!.body).equals(expected)).toBe(true);
    await cache.flushed();
    expect(Buffer.from((await store.get('packages/foo'))!.body).equals(await upstreamBytes('packages/foo'))).toBe(true);
    await cache.flushed();
    expect(await readMeta(store, 'tarballs/foo-0.1.0.tar')).toMatchObject({ sha256: sha256Hex(expected) });
    const before = upstream.requests.length;
    expect((await cache.get('tarballs/foo-0.1.0.tar'))?.outcome).toBe('hit');
    expect((await cache.get('packages/foo'))?.outcome).toBe('hit');
    expect(upstream.requests.length).toBe(before);
    expect(cache.stats).toMatchObject({ misses: 2, hits: 2, bytesFromUpstream: expected.length + (await upstreamBytes('packages/foo')).length });
  });

  it('on a miss reads the store once before the upstream, then writes object and meta in one batch and reads nothing back', async () => {
    // A real folder store, with each call written down along with how many upstream requests preceded it.
    const inner = new FsStore(join(dir, `mirror-${n++}`));
    const log: { op: string; keys: string[]; upstream: number }[] = [];
    const note = (op: string, keys: string[]): void => void log.push({ op, keys, upstream: upstream.requests.length });
    const store: BlobStore = {
      url: inner.url,
      get: (key) => (note('get', [key]), inner.get(key)),
      head: (key) => (note('head', [key]), inner.head(key)),
      put: (key, body, opts) => (note('put', [key]), inner.put(key, body, opts)),
      putMany: (entries) => (
        note(
          'putMany',
          entries.map((e) => e.key),
        ),
        inner.putMany(entries)
      ),
      delete: (key) => inner.delete(key),
      list: (prefix) => inner.list(prefix),
    };
    const { cache } = mirror({ store });
    const writes = (): typeof log => log.filter((e) => e.op === 'put' || e.op === 'putMany');

    // A cold tarball: packages/bar and then the tarball are fetched, each stored as one batch.
    expect((await cache.get('tarballs/bar-1.0.0.tar'))?.outcome).toBe('miss');
    const fetched = upstream.requests.map((r) => r.path);
    expect(fetched).toEqual(['/packages/bar', '/tarballs/bar-1.0.0.tar']);
    expect(writes()).toEqual([
      { op: 'putMany', keys: ['packages/bar', metaKey('packages/bar')], upstream: 1 },
      { op: 'putMany', keys: ['tarballs/bar-1.0.0.tar', metaKey('tarballs/bar-1.0.0.tar')], upstream: 2 },
    ]);
    // Each key read once, all before the first upstream request: nothing just written is read back.
    const reads = log.filter((e) => e.op === 'get' || e.op === 'head');
    expect(reads.every((e) => e.upstream === 0)).toBe(true);
    expect(reads.map((e) => e.keys[0]).sort()).toEqual(['packages/bar', 'tarballs/bar-1.0.0.tar']);

    // A registry file miss: its object and meta read together once, one batch written after the fetch.
    log.length = 0;
    upstream.requests.length = 0;
    expect((await cache.get('packages/foo'))?.outcome).toBe('miss');
    expect(log).toEqual([
      { op: 'get', keys: ['packages/foo'], upstream: 0 },
      { op: 'get', keys: [metaKey('packages/foo')], upstream: 0 },
      { op: 'putMany', keys: ['packages/foo', metaKey('packages/foo')], upstream: 1 },
    ]);
    // What the batch stored is what is served next, from the store (once written: the writes run
    // behind the answers).
    await cache.flushed();
    log.length = 0;
    const hit = await cache.get('tarballs/bar-1.0.0.tar');
    expect(hit?.outcome).toBe('hit');
    expect(Buffer.from(hit!.body).equals(await upstreamBytes('tarballs/bar-1.0.0.tar'))).toBe(true);
    expect(await readMeta(inner, 'tarballs/bar-1.0.0.tar')).toMatchObject({ sha256: sha256Hex(hit!.body) });
    expect(writes()).toEqual([]);
  });

  it('answers null for what the upstream does not have, and for paths a mirror never serves', async () => {
    const { cache } = mirror();
    expect(await cache.get('packages/nope')).toBeNull();
    expect(await cache.get('tarballs/foo-9.9.9.tar')).toBeNull();
    expect(await cache.get('repos/acme/names')).toBeNull();
  });

  it('serves the configured public key', async () => {
    const { cache } = mirror();
    expect(new TextDecoder().decode((await cache.get('public_key'))!.body)).toBe(up.publicKeyPem);
  });

  it('shares one upstream fetch among 50 concurrent requests for one object', async () => {
    const { cache } = mirror();
    const results = await Promise.all(Array.from({ length: 50 }, () => cache.get('tarballs/bar-1.0.0.tar')));
    const expected = await upstreamBytes('tarballs/bar-1.0.0.tar');
    for (const r of results) expect(Buffer.from(r!.body).equals(expected)).toBe(true);
    expect(upstream.requests.filter((r) => r.path === '/tarballs/bar-1.0.0.tar')).toHaveLength(1);
    expect(upstream.requests.filter((r) => r.path === '/packages/bar')).toHaveLength(1);
    // Revalidation is shared too.
    const stale = mirror({ maxAgeMs: 0 });
    await stale.cache.get('names');
    upstream.requests.length = 0;
    const again = await Promise.all(Array.from({ length: 50 }, () => stale.cache.get('names')));
    expect(new Set(again.map((r) => r!.outcome))).toEqual(new Set(['revalidated']));
    expect(upstream.requests.filter((r) => r.path === '/names')).toEqual([expect.objectContaining({ status: 304 })]);
  });

  const tamperings: { label: string; path: string; setup: () => void; code: string }[] = [
    { label: 'names signed by another key', path: 'names', setup: () => proxy.setFault({ kind: 'substitute', url: otherKey.url }), code: 'REGISTRY_BAD_SIGNATURE' },
    { label: 'versions for another repository', path: 'versions', setup: () => proxy.setFault({ kind: 'substitute', url: otherRepo.url }), code: 'REGISTRY_BAD_REPO_NAME' },
    { label: 'packages/NAME signed by another key', path: 'packages/foo', setup: () => proxy.setFault({ kind: 'substitute', url: otherKey.url }), code: 'REGISTRY_BAD_SIGNATURE' },
    { label: 'packages/NAME for another repository', path: 'packages/foo', setup: () => proxy.setFault({ kind: 'substitute', url: otherRepo.url }), code: 'REGISTRY_BAD_REPO_NAME' },
    { label: 'packages/NAME of another package', path: 'packages/foo', setup: () => proxy.setFault({ kind: 'substitute', url: swapped.url }), code: 'REGISTRY_BAD_PACKAGE_NAME' },
    { label: 'a gzip-corrupted names', path: 'names', setup: () => proxy.setFault({ kind: 'tamper' }), code: 'REGISTRY_CORRUPT' },
    { label: 'a tampered tarball', path: 'tarballs/foo-0.2.0.tar', setup: () => proxy.setFault({ kind: 'tamper' }, /^\/tarballs\//), code: 'REGISTRY_CHECKSUM_MISMATCH' },
  ];
  for (const t of tamperings) {
    it(`refuses ${t.label}: not stored, logged, a clear error`, async () => {
      const { cache, store, events } = mirror();
      t.setup();
      const err = await failure(cache.get(t.path));
      expect(err.code).toBe(t.code);
      await cache.flushed();
      expect(await store.get(t.path)).toBeNull();
      await cache.flushed();
      expect(await store.get(metaKey(t.path))).toBeNull();
      expect(events).toContainEqual(expect.objectContaining({ type: 'refused', path: t.path }));
      expect(cache.stats.refused).toBe(1);
      // Once the upstream behaves, the same object is fetched and stored.
      proxy.setFault({ kind: 'none' });
      expect((await cache.get(t.path))?.outcome).toBe('miss');
      await cache.flushed();
      expect(await store.get(t.path)).not.toBeNull();
    });
  }

  it('answers UPSTREAM_UNAVAILABLE / UPSTREAM_TIMEOUT for what was never cached', async () => {
    const { cache, store } = mirror({ firstByteTimeoutMs: 1_000 });
    proxy.setFault({ kind: 'status', status: 502 });
    expect((await failure(cache.get('packages/foo'))).code).toBe('UPSTREAM_UNAVAILABLE');
    proxy.setFault({ kind: 'reset' });
    expect((await failure(cache.get('packages/foo'))).code).toBe('UPSTREAM_UNAVAILABLE');
    proxy.setFault({ kind: 'hang' });
    const timeout = await failure(cache.get('packages/foo'));
    expect(timeout.code).toBe('UPSTREAM_TIMEOUT');
    expect(timeout.message).toContain('first byte');
    proxy.setFault({ kind: 'slow-first-byte', ms: 4_000 });
    expect((await failure(cache.get('docs/foo-0.1.0.tar.gz'))).code).toBe('UPSTREAM_TIMEOUT');
    await cache.flushed();
    expect(await store.get('packages/foo')).toBeNull();
    expect(cache.stats.upstreamErrors).toBe(4);
    // An upstream that is only a little slow is waited for.
    proxy.setFault({ kind: 'slow-first-byte', ms: 20 });
    expect((await cache.get('packages/foo'))?.outcome).toBe('miss');
  });

  it('answers UPSTREAM_UNAVAILABLE when the upstream is not listening', async () => {
    const gone = await startStaticUpstream(join(dir, 'upstream'));
    await gone.close();
    const client = new UpstreamClient(resolveUpstream({ url: gone.url, publicKey: up.publicKeyPem }));
    open.push(client);
    const cache = new MirrorCache({ store: new FsStore(join(dir, 'mirror-gone')), client });
    const err = await failure(cache.get('names'));
    expect(err.code).toBe('UPSTREAM_UNAVAILABLE');
    expect(err.message).toContain('ECONNREFUSED');
  });

  it('serves the cached copy, marked stale, while the upstream fails or is slow', async () => {
    const { cache, events } = mirror({ maxAgeMs: 0, firstByteTimeoutMs: 300 });
    for (const p of ['names', 'packages/foo', 'tarballs/foo-0.1.0.tar', 'installs/hex-1.x.csv']) await cache.get(p);
    for (const fault of [{ kind: 'status', status: 503 }, { kind: 'reset' }, { kind: 'hang' }, { kind: 'substitute', url: otherKey.url }] as const) {
      proxy.setFault(fault);
      const served = await cache.get('packages/foo');
      expect(served?.outcome, fault.kind).toBe('stale');
      expect(Buffer.from(served!.body).equals(await upstreamBytes('packages/foo'))).toBe(true);
      // Immutable tarballs never wait on the upstream.
      expect((await cache.get('tarballs/foo-0.1.0.tar'))?.outcome).toBe('hit');
    }
    proxy.setFault({ kind: 'status', status: 500 });
    expect((await cache.get('installs/hex-1.x.csv'))?.outcome).toBe('stale');
    expect(events.filter((e) => e.type === 'stale')).toHaveLength(5);
    expect(cache.stats.staleServes).toBe(5);
  });

  it('revalidates after max-age with If-None-Match and keeps the bytes on a 304', async () => {
    let now = 1_000_000;
    const { cache, store } = mirror({ maxAgeMs: 10_000, now: () => now });
    await cache.get('versions');
    await cache.flushed();
    const etag = (await readMeta(store, 'versions'))!.etag;
    expect(etag).toMatch(/^"/);
    now += 5_000;
    expect((await cache.get('versions'))?.outcome).toBe('hit');
    now += 6_000;
    upstream.requests.length = 0;
    expect((await cache.get('versions'))?.outcome).toBe('revalidated');
    expect(upstream.requests).toEqual([expect.objectContaining({ path: '/versions', status: 304, ifNoneMatch: etag })]);
    await cache.flushed();
    expect((await readMeta(store, 'versions'))!.fetchedAt).toBe(now);
    expect((await cache.get('versions'))?.outcome).toBe('hit');
  });

  it('refetches packages/NAME when a fresher names says the package changed after it was fetched', async () => {
    let now = 1_000; // long before the fixtures' updated_at
    const { cache } = mirror({ maxAgeMs: 3_600_000, now: () => now });
    await cache.get('packages/foo');
    expect((await cache.get('packages/foo'))?.outcome).toBe('hit');
    now = Date.now();
    await cache.get('names');
    upstream.requests.length = 0;
    expect((await cache.get('packages/foo'))?.outcome).toBe('revalidated');
    expect(upstream.requests.map((r) => r.path)).toEqual(['/packages/foo']);
    expect((await cache.get('packages/foo'))?.outcome).toBe('hit');
  });

  it('refetches a stored tarball whose checksum no longer matches packages/NAME (a replaced release)', async () => {
    const { cache, store } = mirror();
    await store.put('tarballs/foo-0.1.0.tar', await upstreamBytes('tarballs/bar-1.0.0.tar'));
    const served = await cache.get('tarballs/foo-0.1.0.tar');
    expect(served?.outcome).toBe('refreshed');
    await cache.flushed();
    expect(Buffer.from((await store.get('tarballs/foo-0.1.0.tar'))!.body).equals(await upstreamBytes('tarballs/foo-0.1.0.tar'))).toBe(true);
  });

  it('lets several mirrors share one store', async () => {
    const shared = join(dir, 'shared');
    const a = mirror({ storeDir: shared });
    const b = mirror({ storeDir: shared });
    const paths = ['names', 'versions', 'packages/foo', 'packages/bar', 'tarballs/foo-0.1.0.tar', 'tarballs/bar-1.0.0.tar'];
    const all = await Promise.all(paths.flatMap((p) => [a.cache.get(p), b.cache.get(p)]));
    for (const [i, r] of all.entries()) expect(Buffer.from(r!.body).equals(await upstreamBytes(paths[Math.floor(i / 2)]!))).toBe(true);
    await Promise.all([a.cache.flushed(), b.cache.flushed()]);
    const c = mirror({ storeDir: shared });
    upstream.requests.length = 0;
    for (const p of paths) expect((await c.cache.get(p))?.outcome).toBe('hit');
    expect(upstream.requests).toEqual([]);
  });

  it('serves a stored object without meta once it verifies, and revalidates it', async () => {
    const { cache, store } = mirror();
    await store.put('packages/foo', await upstreamBytes('packages/foo'));
    const served = await cache.get('packages/foo');
    expect(served?.outcome).toBe('refreshed');
    await cache.flushed();
    expect(await readMeta(store, 'packages/foo')).not.toBeNull();
    // A stored file that does not verify is never served: fetched again instead.
    const other = mirror();
    await other.store.put('packages/foo', await readFile(join(dir, 'other-key/packages/foo')));
    expect((await other.cache.get('packages/foo'))?.outcome).toBe('miss');
    await other.cache.flushed();
    expect(Buffer.from((await other.store.get('packages/foo'))!.body).equals(await upstreamBytes('packages/foo'))).toBe(true);
  });
  it('serves a miss once verified, without waiting for its write; meanwhile this process answers from memory', async () => {
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (release = resolve));
    // A real folder store whose batch writes wait for the gate: the write is still pending while the
    // client is answered.
    class GatedStore extends FsStore {
      override async putMany(entries: Parameters<FsStore['putMany']>[0]): ReturnType<FsStore['putMany']> {
        await gate;
        return super.putMany(entries);
      }
    }
    const store = new GatedStore(join(dir, `gated-${n++}`));
    const client = new UpstreamClient(resolveUpstream({ url: proxy.url, publicKey: up.publicKeyPem }), { firstByteTimeoutMs: 5_000, connectTimeoutMs: 5_000 });
    open.push(client);
    const cache = new MirrorCache({ store, client });
    const first = await cache.get('tarballs/foo-0.1.0.tar');
    expect(first?.outcome).toBe('miss');
    expect(await store.get('tarballs/foo-0.1.0.tar')).toBeNull();
    expect((await cache.get('tarballs/foo-0.1.0.tar'))?.outcome).toBe('hit');
    expect(upstream.requests.filter((r) => r.path === '/tarballs/foo-0.1.0.tar')).toHaveLength(1);
    release();
    await cache.flushed();
    expect(Buffer.from((await store.get('tarballs/foo-0.1.0.tar'))!.body).equals(await upstreamBytes('tarballs/foo-0.1.0.tar'))).toBe(true);
    expect(await readMeta(store, 'tarballs/foo-0.1.0.tar')).toMatchObject({ sha256: sha256Hex(first!.body) });
  });

  it('a write that fails is reported, leaves nothing behind, and the next request fetches again', async () => {
    const root = join(dir, `blocked-${n++}`);
    await mkdir(root, { recursive: true });
    // tarballs/ cannot be created: a file stands where the folder would go.
    await writeFile(join(root, 'tarballs'), 'not a folder');
    const { cache, store, events } = mirror({ storeDir: root });
    expect((await cache.get('tarballs/foo-0.1.0.tar'))?.outcome).toBe('miss');
    await cache.flushed();
    expect(events).toContainEqual(expect.objectContaining({ type: 'store-failed', path: 'tarballs/foo-0.1.0.tar' }));
    expect(await readMeta(store, 'tarballs/foo-0.1.0.tar')).toBeNull();
    expect((await cache.get('tarballs/foo-0.1.0.tar'))?.outcome).toBe('miss');
    expect(upstream.requests.filter((r) => r.path === '/tarballs/foo-0.1.0.tar')).toHaveLength(2);
  });
});
