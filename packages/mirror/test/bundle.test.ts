import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildPackage, generateKeyPair, publicKeyPem } from '@hexrepo/registry';
import { FsStore, type BlobStore } from '@hexrepo/storage';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exportBundle, importBundle, readBundleMembers, writeBundleMembers } from '../src/bundle.js';
import { evict, mirrorStatus } from '../src/evict.js';
import { metaKey, parseMeta, parsePin, PINS_PREFIX, resolveUpstream, writeMeta, type Upstream } from '../src/layout.js';
import { parseMixLock } from '../src/lockfile.js';
import { syncMirror } from '../src/sync.js';
import { UpstreamClient } from '../src/upstream.js';
import { sha256Hex, verifyPackage } from '../src/verify.js';
import { FIXTURE_SUMS } from './helpers.js';
import { startUpstream, type UpstreamServer } from './upstream-server.js';

let up: UpstreamServer;
let upstream: Upstream;
let tmp: string;
let source: FsStore;
let client: UpstreamClient;
const LOCK = parseMixLock(`%{
  "baz": {:hex, :baz, "1.0.0", "${'a'.repeat(64)}", [:rebar3], [], "hexpm", "${FIXTURE_SUMS.get('baz-1.0.0.tar')}"},
  "quux": {:hex, :quux, "0.1.0", "${'a'.repeat(64)}", [:rebar3], [{:baz, "~> 1.0", [hex: :baz, repo: "hexpm", optional: false]}], "hexpm", "${FIXTURE_SUMS.get('quux-0.1.0.tar')}"},
}`);

const listAll = async (store: BlobStore): Promise<string[]> => {
  const keys: string[] = [];
  for await (const i of store.list('')) keys.push(i.key);
  return keys.sort();
};

beforeAll(async () => {
  up = await startUpstream();
  upstream = resolveUpstream({ url: up.url, repository: 'hexpm', publicKey: up.upstream.publicKeyPem });
  client = new UpstreamClient(upstream);
  tmp = await mkdtemp(join(tmpdir(), 'hexrepo-bundle-'));
  source = new FsStore(join(tmp, 'source'));
  const s = await syncMirror({ kind: 'lock', lock: LOCK }, { store: source, upstream, get: (p, o) => client.get(p, o) });
  expect(s.failures).toEqual([]);
});
afterAll(async () => {
  await client.close();
  await up.close();
  await rm(up.root, { recursive: true, force: true });
  await rm(tmp, { recursive: true, force: true });
});

// The far side knows only the upstream's name and key: no URL is ever contacted.
const offline = (): Upstream => resolveUpstream({ url: 'http://127.0.0.1:9', repository: 'hexpm', publicKey: up.upstream.publicKeyPem });

describe('bundles', () => {
  it('round trip: export for a lockfile with transitive deps, import into an empty store with no upstream', async () => {
    const { bundle, manifest } = await exportBundle(source, upstream, LOCK, { source: 'mix.lock' });
    expect(manifest.objects.map((o) => o.path).sort()).toEqual(['packages/baz', 'packages/quux', 'tarballs/baz-1.0.0.tar', 'tarballs/quux-0.1.0.tar']);
    expect(manifest.upstream.fingerprint).toMatch(/^SHA256:/);
    const target = new FsStore(join(tmp, 'target-1'));
    const result = await importBundle(target, offline(), bundle);
    expect(result).toMatchObject({ stored: 4, kept: 0 });
    for (const o of manifest.objects) {
      const a = await source.get(o.path);
      const b = await target.get(o.path);
      expect(Buffer.compare(a!.body, b!.body), o.path).toBe(0);
      expect(parseMeta((await target.get(metaKey(o.path)))!.body)?.sha256).toBe(o.sha256);
    }
    const pin = parsePin((await target.get(`${PINS_PREFIX}${result.pin}.json`))!.body);
    expect(pin?.paths.sort()).toEqual(manifest.objects.map((o) => o.path).sort());
    // Importing again changes nothing.
    expect(await importBundle(target, offline(), bundle)).toMatchObject({ stored: 0, kept: 4 });
  });

  it('refuses a tampered bundle, a bundle for another key, and a truncated one, storing nothing', async () => {
    const { bundle } = await exportBundle(source, upstream, LOCK, { source: 'mix.lock' });
    const target = new FsStore(join(tmp, 'target-2'));
    // Flip one byte inside the last object's body (a tarball), keeping the tar structure valid.
    const tampered = Buffer.from(bundle);
    const at = tampered.length - 1024 - 700;
    tampered[at]! ^= 1;
    await expect(importBundle(target, offline(), tampered)).rejects.toMatchObject({ code: 'BUNDLE_INVALID' });
    const other = await generateKeyPair();
    await expect(importBundle(target, resolveUpstream({ url: 'http://127.0.0.1:9', publicKey: publicKeyPem(other.privateKey) }), bundle)).rejects.toThrow(/exported with upstream key SHA256:/);
    await expect(importBundle(target, offline(), bundle.subarray(0, bundle.length - 2048))).rejects.toMatchObject({ code: 'BUNDLE_INVALID' });
    expect(await listAll(target)).toEqual([]);
  });

  it('refuses a bundle whose tarball matches its manifest but not the signed registry', async () => {
    // A forger rewrites a tarball and its manifest SHA-256 consistently; only the signature catches it.
    const { bundle, manifest } = await exportBundle(source, upstream, LOCK, { source: 'mix.lock' });
    const members = readBundleMembers(bundle);
    const obj = manifest.objects.find((o) => o.path === 'tarballs/baz-1.0.0.tar')!;
    const forged = Buffer.from(members.get(obj.member)!);
    forged[forged.length - 1]! ^= 1;
    const m2 = { ...manifest, objects: manifest.objects.map((o) => (o === obj ? { ...o, sha256: sha256Hex(forged) } : o)) };
    members.set(obj.member, forged);
    members.set('manifest.json', new TextEncoder().encode(JSON.stringify(m2)));
    const target = new FsStore(join(tmp, 'target-3'));
    await expect(
      importBundle(
        target,
        offline(),
        writeBundleMembers(
          [...members].map(([name, body]) => ({ name, body })),
          Date.now(),
        ),
      ),
    ).rejects.toMatchObject({ code: 'REGISTRY_CHECKSUM_MISMATCH' });
    expect(await listAll(target)).toEqual([]);
  });

  it('export names what the store lacks', async () => {
    const empty = new FsStore(join(tmp, 'empty'));
    await expect(exportBundle(empty, upstream, LOCK, { source: 'mix.lock' })).rejects.toThrow(/lacks 2 object\(s\).*packages\/baz/);
  });

  it('keeps a newer stored packages/NAME over the bundle, replaces an older one', async () => {
    const { bundle } = await exportBundle(source, upstream, LOCK, { source: 'mix.lock' });
    // Another verified packages/baz (the upstream re-signed it, e.g. after a retirement): same key, other bytes.
    const current = verifyPackage((await source.get('packages/baz'))!.body, upstream.publicKey, 'hexpm', 'baz');
    const resigned = buildPackage({ repository: 'hexpm', name: 'baz', releases: current.releases.map((r) => ({ ...r, outerChecksum: r.outerChecksum!, retired: { reason: 'security', message: 'later news' } })) }, up.upstream.privateKey);
    const newer = new FsStore(join(tmp, 'target-4'));
    await newer.put('packages/baz', resigned);
    await writeMeta(newer, 'packages/baz', { etag: null, fetchedAt: Date.now() + 60_000, sha256: sha256Hex(resigned) });
    const r = await importBundle(newer, offline(), bundle);
    expect(r).toMatchObject({ stored: 3, kept: 1 });
    expect(r.notes).toContain("packages/baz: the stored copy is newer than the bundle's and stays");
    expect(Buffer.compare((await newer.get('packages/baz'))!.body, resigned)).toBe(0);

    const older = new FsStore(join(tmp, 'target-5'));
    await older.put('packages/baz', resigned);
    await writeMeta(older, 'packages/baz', { etag: null, fetchedAt: 1000, sha256: sha256Hex(resigned) });
    expect(await importBundle(older, offline(), bundle)).toMatchObject({ stored: 4, kept: 0 });
    expect(Buffer.compare((await older.get('packages/baz'))!.body, (await source.get('packages/baz'))!.body)).toBe(0);
  });
  it('refuses a rollback: a bundle cannot claim its old packages/NAME was fetched later (the manifest is unsigned)', async () => {
    const { bundle, manifest } = await exportBundle(source, upstream, LOCK, { source: 'mix.lock' });
    // The stored packages/baz is newer: the upstream signed it after publishing baz 1.1.0.
    const current = verifyPackage((await source.get('packages/baz'))!.body, upstream.publicKey, 'hexpm', 'baz');
    const later = buildPackage(
      { repository: 'hexpm', name: 'baz', releases: [...current.releases, ...current.releases.map((r) => ({ ...r, version: '1.1.0' }))].map((r) => ({ ...r, outerChecksum: r.outerChecksum! })) },
      up.upstream.privateKey,
    );
    const target = new FsStore(join(tmp, 'target-rollback'));
    await target.put('packages/baz', later);
    await writeMeta(target, 'packages/baz', { etag: null, fetchedAt: Date.now() - 1000, sha256: sha256Hex(later) });
    // The carrier of the bundle rewrites only the unsigned manifest: "fetched" far in the future.
    const members = readBundleMembers(bundle);
    const future = Date.now() + 10 * 365 * 86_400_000;
    members.set('manifest.json', new TextEncoder().encode(JSON.stringify({ ...manifest, objects: manifest.objects.map((o) => ({ ...o, fetchedAt: future })) })));
    const forged = writeBundleMembers(
      [...members].map(([name, body]) => ({ name, body })),
      Date.now(),
    );
    const before = Date.now();
    const r = await importBundle(target, offline(), forged);
    expect(Buffer.compare((await target.get('packages/baz'))!.body, later)).toBe(0);
    expect(r.notes).toContain("packages/baz: the stored copy is newer than the bundle's and stays");
    // Nothing imported may look fresher than the import itself: the cache revalidates it on time.
    for (const path of ['packages/quux', 'tarballs/baz-1.0.0.tar', 'tarballs/quux-0.1.0.tar']) {
      expect(parseMeta((await target.get(metaKey(path)))!.body)!.fetchedAt, path).toBeLessThanOrEqual(Date.now());
      expect(parseMeta((await target.get(metaKey(path)))!.body)!.fetchedAt, path).toBeGreaterThanOrEqual(before);
    }
  });
});

describe('evict and status', () => {
  it('evicts least recently fetched tarballs first, never pinned ones, never registry files', async () => {
    const store = new FsStore(join(tmp, 'evict'));
    const s = await syncMirror({ kind: 'packages', names: ['quux', 'foo', 'bar'] }, { store, upstream, get: (p, o) => client.get(p, o) });
    expect(s.failures).toEqual([]);
    const tarballs = ['tarballs/bar-1.0.0.tar', 'tarballs/baz-1.0.0.tar', 'tarballs/foo-0.1.0.tar', 'tarballs/foo-0.2.0.tar', 'tarballs/quux-0.1.0.tar'];
    // Fetch times in a known order: bar oldest ... quux newest.
    for (const [i, path] of tarballs.entries()) {
      const meta = parseMeta((await store.get(metaKey(path)))!.body)!;
      await writeMeta(store, path, { ...meta, fetchedAt: 1_000_000 + i * 1000 });
    }
    const { bundle } = await exportBundle(store, upstream, LOCK, { source: 'mix.lock' });
    const { pin } = await importBundle(store, upstream, bundle);
    const before = await mirrorStatus(store);
    expect(before.objects.tarballs.count).toBe(5);
    expect(before.pins).toEqual([expect.objectContaining({ id: pin, paths: 4 })]);

    const dry = await evict(store, { maxSize: 0, dryRun: true });
    expect(dry.evicted.map((e) => e.path)).toEqual(['tarballs/bar-1.0.0.tar', 'tarballs/foo-0.1.0.tar', 'tarballs/foo-0.2.0.tar']);
    expect(dry.keptPinned).toBe(2);
    expect((await mirrorStatus(store)).objects.tarballs.count).toBe(5);

    const byAge = await evict(store, { maxAgeMs: 1000, now: 1_000_000 + 2500 });
    expect(byAge.evicted.map((e) => e.path)).toEqual(['tarballs/bar-1.0.0.tar']);
    expect(await store.get(metaKey('tarballs/bar-1.0.0.tar'))).toBeNull();

    const foo1 = (await store.head('tarballs/foo-0.1.0.tar'))!.size;
    const bySize = await evict(store, { maxSize: byAge.bytesAfter - foo1 });
    expect(bySize.evicted.map((e) => e.path)).toEqual(['tarballs/foo-0.1.0.tar']);
    const after = await mirrorStatus(store);
    expect(after.objects.tarballs.count).toBe(3);
    // bar's dependency on foo names repository "acme", so the closure has 4 packages/NAME.
    expect(after.objects.packages.count).toBe(4);
    for (const p of ['tarballs/baz-1.0.0.tar', 'tarballs/quux-0.1.0.tar']) expect(await store.head(p)).not.toBeNull();
  });
});
