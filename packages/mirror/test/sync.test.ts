import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FsStore } from '@hexrepo/storage';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { metaKey, parseMeta, resolveUpstream, type Upstream } from '../src/layout.js';
import { parseRebarLock } from '../src/lockfile.js';
import { syncMirror, withRetries, type SyncOptions } from '../src/sync.js';
import { UpstreamClient } from '../src/upstream.js';
import { sha256Hex } from '../src/verify.js';
import { FIXTURE_SUMS } from './helpers.js';
import { startUpstream, type UpstreamServer } from './upstream-server.js';

let up: UpstreamServer;
let upstream: Upstream;
let dir: string;
let store: FsStore;
let client: UpstreamClient;

beforeAll(async () => {
  up = await startUpstream();
  upstream = resolveUpstream({ url: up.url, repository: 'hexpm', publicKey: up.upstream.publicKeyPem });
  client = new UpstreamClient(upstream);
});
afterAll(async () => {
  await client.close();
  await up.close();
  await rm(up.root, { recursive: true, force: true });
});
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hexrepo-mirror-sync-'));
  store = new FsStore(dir);
  up.bodies.clear();
  up.requests.length = 0;
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const opts = (extra: Partial<SyncOptions> = {}): SyncOptions => ({ store, upstream, get: withRetries((p, o) => client.get(p, o), { baseDelayMs: 1 }), concurrency: 4, ...extra });
const text = async (key: string): Promise<string | null> => {
  const o = await store.get(key);
  return o ? new TextDecoder().decode(o.body) : null;
};

describe('syncMirror', () => {
  it('syncs a package with its dependency closure, verbatim, each object followed by its meta', async () => {
    const summary = await syncMirror({ kind: 'packages', names: ['quux'] }, opts());
    expect(summary.failures).toEqual([]);
    expect(summary).toMatchObject({ fetched: 4, skipped: 0, packages: 2, tarballs: 2 });
    for (const key of ['packages/quux', 'packages/baz', 'tarballs/quux-0.1.0.tar', 'tarballs/baz-1.0.0.tar']) {
      const mine = await store.get(key);
      const theirs = await up.upstream.store.get(key);
      expect(mine && theirs && Buffer.compare(mine.body, theirs.body), key).toBe(0);
      const meta = parseMeta((await store.get(metaKey(key)))!.body);
      expect(meta?.sha256).toBe(sha256Hex(mine!.body));
      expect(meta?.etag).toBe(`"${sha256Hex(mine!.body)}"`);
    }
    expect(FIXTURE_SUMS.get('baz-1.0.0.tar')).toBe(parseMeta((await store.get(metaKey('tarballs/baz-1.0.0.tar')))!.body)?.sha256);
    expect(summary.bytes).toBeGreaterThan(0);
    // Nothing else (no names/versions needed for a closure; no other package).
    expect(await store.get('names')).toBeNull();
    expect(await store.get('packages/foo')).toBeNull();
  });

  it('does not download again what is stored and verified: fresh registry files are not asked for, stale ones get a 304', async () => {
    await syncMirror({ kind: 'packages', names: ['quux'] }, opts());
    up.bodies.clear();
    up.requests.length = 0;
    const again = await syncMirror({ kind: 'packages', names: ['quux'] }, opts());
    expect(again).toMatchObject({ fetched: 0, skipped: 4, bytes: 0 });
    expect(up.requests).toEqual([]);
    const stale = await syncMirror({ kind: 'packages', names: ['quux'] }, opts({ maxAgeMs: 0 }));
    expect(stale).toMatchObject({ fetched: 0, skipped: 4 });
    expect(up.requests.map((r) => `${r.path} ${r.status}`).sort()).toEqual(['packages/baz 304', 'packages/quux 304']);
    expect(up.bodies.size).toBe(0);
  });

  it('resumes after a kill between an object and its meta without downloading it again', async () => {
    await syncMirror({ kind: 'packages', names: ['quux'] }, opts());
    await store.delete(metaKey('tarballs/baz-1.0.0.tar'));
    await store.delete(metaKey('packages/baz'));
    up.bodies.clear();
    const again = await syncMirror({ kind: 'packages', names: ['quux'] }, opts());
    expect(again).toMatchObject({ fetched: 0, skipped: 4 });
    expect(up.bodies.size).toBe(0);
    expect(parseMeta((await store.get(metaKey('tarballs/baz-1.0.0.tar')))!.body)?.sha256).toBe(FIXTURE_SUMS.get('baz-1.0.0.tar'));
  });

  it('retries 503s and connection resets with backoff', async () => {
    up.failNext('packages/quux', 2, '503');
    up.failNext('tarballs/baz-1.0.0.tar', 2, 'reset');
    const retries: string[] = [];
    const summary = await syncMirror({ kind: 'packages', names: ['quux'] }, opts({ get: withRetries((p, o) => client.get(p, o), { baseDelayMs: 1, onRetry: (p, n) => retries.push(`${p} ${n}`) }) }));
    expect(summary.failures).toEqual([]);
    expect(summary.fetched).toBe(4);
    expect(retries).toEqual(['packages/quux 1', 'packages/quux 2', 'tarballs/baz-1.0.0.tar 1', 'tarballs/baz-1.0.0.tar 2']);
  });

  it('gives up after the retries and reports the failure; the rest is synced', async () => {
    up.failNext('tarballs/baz-1.0.0.tar', 10, '503');
    const summary = await syncMirror({ kind: 'packages', names: ['quux'] }, opts({ get: withRetries((p, o) => client.get(p, o), { baseDelayMs: 1, retries: 2 }) }));
    expect(summary.failures).toEqual([expect.objectContaining({ path: 'tarballs/baz-1.0.0.tar', code: 'UPSTREAM_UNAVAILABLE' })]);
    expect(summary.fetched).toBe(3);
    expect(await store.get('tarballs/baz-1.0.0.tar')).toBeNull();
    up.failNext('tarballs/baz-1.0.0.tar', 0, '503');
  });

  it('refuses a tampered tarball and a wrongly signed packages/NAME: nothing of them stored', async () => {
    const tarPath = join(up.root, 'tarballs/baz-1.0.0.tar');
    const pkgPath = join(up.root, 'packages/quux');
    const tar = (await up.upstream.store.get('tarballs/baz-1.0.0.tar'))!.body;
    const pkg = (await up.upstream.store.get('packages/quux'))!.body;
    try {
      const tampered = Buffer.from(tar);
      tampered[tampered.length - 1]! ^= 1;
      await writeFile(tarPath, tampered);
      const wrong = Buffer.from(pkg);
      wrong[wrong.length - 1]! ^= 1;
      await writeFile(pkgPath, wrong);
      const summary = await syncMirror({ kind: 'packages', names: ['quux', 'baz'] }, opts());
      expect(summary.failures.map((f) => `${f.path} ${f.code}`).sort()).toEqual(['packages/quux REGISTRY_CORRUPT', 'tarballs/baz-1.0.0.tar REGISTRY_CHECKSUM_MISMATCH'].sort());
      expect(await store.get('packages/quux')).toBeNull();
      expect(await store.get('tarballs/baz-1.0.0.tar')).toBeNull();
      expect(await store.get(metaKey('tarballs/baz-1.0.0.tar'))).toBeNull();
    } finally {
      await writeFile(tarPath, tar);
      await writeFile(pkgPath, pkg);
    }
  });

  it('syncs the whole registry: names, versions and every packages/NAME, no tarballs', async () => {
    const progress: string[] = [];
    const summary = await syncMirror({ kind: 'all' }, opts({ onProgress: (p) => progress.push(`${p.phase} ${p.done}/${p.total}`) }));
    expect(summary.failures).toEqual([]);
    const names = ['bar', 'baz', 'foo', 'opt', 'pre', 'quux', 'qux', 'unicode_pkg'];
    expect(summary).toMatchObject({ packages: names.length, tarballs: 0, fetched: names.length + 2 });
    for (const n of names) expect(await store.head(`packages/${n}`), n).not.toBeNull();
    expect(await text('names')).not.toBeNull();
    expect(progress.at(-1)).toBe(`registry ${names.length}/${names.length}`);
    let tarballs = 0;
    for await (const _ of store.list('tarballs/')) tarballs++;
    expect(tarballs).toBe(0);
  });

  it('syncs exactly what a rebar.lock pins, and refuses a version whose locked checksum disagrees', async () => {
    const sum = FIXTURE_SUMS.get('quux-0.1.0.tar')!;
    const lock = parseRebarLock(`{"1.2.0",[{<<"baz">>,{pkg,<<"baz">>,<<"1.0.0">>},1},{<<"quux">>,{pkg,<<"quux">>,<<"0.1.0">>},0}]}.
[{pkg_hash_ext,[{<<"quux">>,<<"${sum.toUpperCase()}">>},{<<"baz">>,<<"${'0'.repeat(64)}">>}]}].`);
    const summary = await syncMirror({ kind: 'lock', lock }, opts());
    expect(summary.failures).toEqual([expect.objectContaining({ path: 'tarballs/baz-1.0.0.tar', code: 'REGISTRY_CHECKSUM_MISMATCH' })]);
    expect(await store.head('tarballs/quux-0.1.0.tar')).not.toBeNull();
    expect(await store.head('packages/baz')).not.toBeNull();
    expect(await store.head('tarballs/baz-1.0.0.tar')).toBeNull();
  });

  it('fails for a package named or locked that the upstream does not have', async () => {
    const named = await syncMirror({ kind: 'packages', names: ['quux', 'no_such_pkg'] }, opts());
    expect(named.failures).toEqual([expect.objectContaining({ path: 'packages/no_such_pkg', code: 'NOT_FOUND' })]);
    expect(named.fetched).toBe(4);
    const lock = parseRebarLock('{"1.2.0",[{<<"ghost">>,{pkg,<<"ghost">>,<<"1.0.0">>},0}]}.\n[].');
    const locked = await syncMirror({ kind: 'lock', lock }, opts());
    expect(locked.failures).toEqual([expect.objectContaining({ path: 'packages/ghost', code: 'NOT_FOUND', message: expect.stringContaining('locked in rebar.lock') })]);
  });
});
