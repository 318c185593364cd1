import { generateKeyPairSync } from 'node:crypto';
import { compareVersions, isHexrepoError, type Retirement } from '@hexrepo/core';
import { unpackNames, unpackPackage, unpackVersions } from '@hexrepo/registry';
import { MemoryStore, type BlobStore, type PutOptions, type PutResult } from '@hexrepo/storage';
import { createTarball } from '@hexrepo/tarball';
import { describe, expect, it } from 'vitest';
import { loadReleaseStates, RepoService } from '../src/index.js';

// Many writes at once through one RepoService, and through two services on one store (two servers on one
// bucket): every acknowledged write must end up in the signed registry and the sidecar, and nothing else.
const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const REPO = 'acme';

/** A BlobStore that counts writes per key, so a test can count the service's registry flushes. */
class CountingStore implements BlobStore {
  readonly puts = new Map<string, number>();
  constructor(readonly inner: BlobStore) {}
  get url(): string {
    return this.inner.url;
  }
  get(key: string) {
    return this.inner.get(key);
  }
  head(key: string) {
    return this.inner.head(key);
  }
  put(key: string, body: Uint8Array, opts?: PutOptions): Promise<PutResult> {
    this.puts.set(key, (this.puts.get(key) ?? 0) + 1);
    return this.inner.put(key, body, opts);
  }
  delete(key: string) {
    return this.inner.delete(key);
  }
  list(prefix: string) {
    return this.inner.list(prefix);
  }
  /** Every flush that changes anything writes `versions` (it lists every version and every retirement). */
  get flushes(): number {
    return this.puts.get('versions') ?? 0;
  }
}

const tarball = (name: string, version: string): Uint8Array => createTarball({ name, version, description: `${name} ${version}`, licenses: ['MIT'] }, [{ path: `src/${name}.erl`, contents: Buffer.from(`-module(${name}).\n`) }]).tarball;

/** What the acknowledged writes say the repository holds: package → version → retirement (or none). */
type Model = Map<string, Map<string, Retirement | null>>;

function set(model: Model, name: string, version: string, retired: Retirement | null): void {
  const releases = model.get(name) ?? new Map<string, Retirement | null>();
  releases.set(version, retired);
  model.set(name, releases);
}

function drop(model: Model, name: string, version: string): void {
  model.get(name)?.delete(version);
  if (model.get(name)?.size === 0) model.delete(name);
}

/** Decode the signed registry and the sidecar from the store and compare both with the model, in full. */
async function expectStoreToHold(store: BlobStore, model: Model): Promise<void> {
  const want = [...model].map(([name, releases]) => ({ name, versions: [...releases.keys()].sort(compareVersions) })).sort((a, b) => (a.name < b.name ? -1 : 1));
  const names = unpackNames((await store.get('names'))!.body, { publicKey, repository: REPO });
  expect(names.packages.map((p) => p.name)).toEqual(want.map((p) => p.name));
  const versions = unpackVersions((await store.get('versions'))!.body, { publicKey, repository: REPO });
  expect(versions.packages.map((p) => ({ name: p.name, versions: p.versions }))).toEqual(want);
  for (const p of versions.packages) {
    const retiredVersions = p.retired.map((i) => p.versions[i]);
    expect(retiredVersions, `versions: retired releases of ${p.name}`).toEqual(want.find((w) => w.name === p.name)!.versions.filter((v) => model.get(p.name)!.get(v) !== null));
  }
  for (const { name, versions: vs } of want) {
    const pkg = unpackPackage((await store.get(`packages/${name}`))!.body, { publicKey, repository: REPO, name });
    expect(
      pkg.releases.map((r) => [r.version, r.retired ?? null]),
      `packages/${name}`,
    ).toEqual(vs.map((v) => [v, model.get(name)!.get(v)]));
  }
  const packageFiles: string[] = [];
  for await (const o of store.list('packages/')) packageFiles.push(o.key);
  expect(packageFiles.sort()).toEqual(want.map((p) => `packages/${p.name}`));
  const tarballs: string[] = [];
  for await (const o of store.list('tarballs/')) tarballs.push(o.key);
  expect(tarballs.sort()).toEqual(want.flatMap((p) => p.versions.map((v) => `tarballs/${p.name}-${v}.tar`)).sort());
  // The sidecar: a publish time for every release, the retirement of the retired ones, no reverted release.
  const states = await loadReleaseStates(store);
  const sidecar = [...states].filter(([, r]) => r.size > 0).map(([name, r]) => [name, [...r].map(([v, s]) => [v, s.retired ?? null, typeof s.publishedAt]).sort((a, b) => compareVersions(String(a[0]), String(b[0])))]);
  expect(sidecar.sort((a, b) => (String(a[0]) < String(b[0]) ? -1 : 1))).toEqual(want.map((p) => [p.name, p.versions.map((v) => [v, model.get(p.name)!.get(v), 'number'])]));
}

const PACKAGES = ['alpha', 'beta', 'gamma', 'delta'];
const VERSIONS = ['1.0.0', '1.1.0', '1.2.0', '2.0.0', '2.1.0', '3.0.0'];
const retirementOf = (name: string, version: string): Retirement => ({ reason: 'deprecated', message: `use ${name} > ${version}` });

describe('RepoService: concurrent writes on one in-memory store', () => {
  it('one service: 24 publishes at once, then retires, reverts and publishes at once; group commit bounds the flushes', async () => {
    const store = new CountingStore(new MemoryStore());
    const { service } = await RepoService.open({ store, repository: REPO, privateKey });
    const model: Model = new Map();

    const first = PACKAGES.flatMap((name) => VERSIONS.map((version) => ({ name, version })));
    await Promise.all(
      first.map(async ({ name, version }) => {
        const res = await service.publish(tarball(name, version));
        expect(res.created).toBe(true);
        set(model, name, version, null);
      }),
    );
    // Group commit: a flush that starts while another runs covers every write waiting for it. Writes to one
    // package take turns (6 versions each here), writes to different packages share flushes: so at most one
    // flush per turn plus the one already running, not one per publish.
    const publishFlushes = store.flushes;
    expect(publishFlushes).toBeGreaterThanOrEqual(1);
    expect(publishFlushes).toBeLessThanOrEqual(VERSIONS.length + 1);
    await expectStoreToHold(store, model);

    // Second wave, all at once: retire the x.0.0 releases, revert the 1.1.0 ones, unretire nothing yet,
    // publish a 4.0.0 of every package, and retire-then-unretire 2.1.0 (ordered per release).
    const ops: Promise<void>[] = [];
    for (const name of PACKAGES) {
      for (const version of ['1.0.0', '2.0.0', '3.0.0']) ops.push(service.retire(name, version, retirementOf(name, version)).then(() => set(model, name, version, retirementOf(name, version))));
      ops.push(service.revert(name, '1.1.0').then(() => drop(model, name, '1.1.0')));
      ops.push(service.publish(tarball(name, '4.0.0')).then(() => set(model, name, '4.0.0', null)));
      ops.push(
        service
          .retire(name, '2.1.0', { reason: 'security', message: 'CVE-2026-0001' })
          .then(() => service.unretire(name, '2.1.0'))
          .then(() => set(model, name, '2.1.0', null)),
      );
    }
    await Promise.all(ops);
    await service.flushed();
    // Per package: 3 retires, a revert, a publish and a retire followed by its unretire take 7 turns.
    expect(store.flushes - publishFlushes).toBeLessThanOrEqual(7 + 1);
    await expectStoreToHold(store, model);
  });

  it('one service: publishes of 40 different packages at once share two flushes', async () => {
    const store = new CountingStore(new MemoryStore());
    const { service } = await RepoService.open({ store, repository: REPO, privateKey });
    const model: Model = new Map();
    const names = Array.from({ length: 40 }, (_, i) => `pkg_${i}`);
    await Promise.all(names.map((name) => service.publish(tarball(name, '1.0.0')).then(() => set(model, name, '1.0.0', null))));
    // The first write starts a flush; every other one arrives while it runs and waits for the single next one.
    expect(store.flushes).toBeLessThanOrEqual(2);
    await expectStoreToHold(store, model);
  });

  it('two services on one store: interleaved writes to the same packages lose nothing, a duplicate is refused once', async () => {
    const shared = new MemoryStore();
    const a = (await RepoService.open({ store: new CountingStore(shared), repository: REPO, privateKey })).service;
    const b = (await RepoService.open({ store: new CountingStore(shared), repository: REPO, privateKey })).service;
    const model: Model = new Map();
    const owner = new Map<string, RepoService>();

    // Every package gets versions through both services at once, and 2.0.0 of each is sent through both.
    const writes = PACKAGES.flatMap((name) =>
      VERSIONS.filter((v) => v !== '2.0.0').map(async (version, i) => {
        const via = i % 2 === 0 ? a : b;
        await via.publish(tarball(name, version));
        owner.set(`${name}-${version}`, via);
        set(model, name, version, null);
      }),
    );
    const duplicates = PACKAGES.map(async (name) => {
      const results = await Promise.allSettled([a, b].map((s) => s.publish(tarball(name, '2.0.0'))));
      const won = results.flatMap((r, i) => (r.status === 'fulfilled' ? [[a, b][i]!] : []));
      const refused = results.flatMap((r) => (r.status === 'rejected' ? [isHexrepoError(r.reason) ? r.reason.code : String(r.reason)] : []));
      // Exactly one of the two creates it; the other is told it exists, as hex.pm answers a duplicate.
      expect({ name, won: won.length, refused }).toEqual({ name, won: 1, refused: ['ALREADY_EXISTS'] });
      owner.set(`${name}-2.0.0`, won[0]!);
      set(model, name, '2.0.0', null);
    });
    await Promise.all([...writes, ...duplicates]);
    await Promise.all([a.flushed(), b.flushed()]);
    await expectStoreToHold(shared, model);

    // Second wave through both at once, each release changed through the service that published it.
    const ops: Promise<void>[] = [];
    for (const name of PACKAGES) {
      for (const version of ['1.0.0', '1.1.0', '3.0.0']) {
        ops.push(
          owner
            .get(`${name}-${version}`)!
            .retire(name, version, retirementOf(name, version))
            .then(() => set(model, name, version, retirementOf(name, version))),
        );
      }
      ops.push(
        owner
          .get(`${name}-1.2.0`)!
          .revert(name, '1.2.0')
          .then(() => drop(model, name, '1.2.0')),
      );
      ops.push(a.publish(tarball(name, '4.0.0')).then(() => set(model, name, '4.0.0', null)));
      ops.push(b.publish(tarball(name, '5.0.0')).then(() => set(model, name, '5.0.0', null)));
    }
    await Promise.all(ops);
    await Promise.all([a.flushed(), b.flushed()]);
    await expectStoreToHold(shared, model);
  });
});
