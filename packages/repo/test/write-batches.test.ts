import { generateKeyPairSync } from 'node:crypto';
import { writeFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { unpackNames, unpackPackage, unpackVersions } from '@hexrepo/registry';
import { FsStore, type BatchEntry, type PutOptions, type PutResult } from '@hexrepo/storage';
import { createTarball } from '@hexrepo/tarball';
import { describe, expect, it } from 'vitest';
import { RepoService } from '../src/index.js';
import { tempDir } from './helpers.js';

// The durable writes of a publish and of a build go to the folder in as few batches (fsync waves) as
// their order allows; each batch is renamed in the order given, so the order inside it is the order
// on disk: tarball before sidecar, packages before versions before names.
const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const REPO = 'acme';

/** A real FsStore that notes the keys of every write: a batch as its list of keys, a lone put as a list of one. */
class NotingFsStore extends FsStore {
  readonly writes: { batch: boolean; keys: string[] }[] = [];
  override put(key: string, body: Uint8Array, opts?: PutOptions): Promise<PutResult> {
    this.writes.push({ batch: false, keys: [key] });
    return super.put(key, body, opts);
  }
  override putMany(entries: readonly BatchEntry[]): Promise<PutResult[]> {
    this.writes.push({ batch: true, keys: entries.map((e) => e.key) });
    return super.putMany(entries);
  }
}

const tarball = (name: string, version: string): Uint8Array => createTarball({ name, version }, [{ path: `src/${name}.erl`, contents: Buffer.from(`-module(${name}).\n`) }]).tarball;

describe('durable write batches', () => {
  it('a publish is two batches: tarball and sidecar, then packages/NAME, versions and names', async () => {
    const store = new NotingFsStore(await tempDir());
    const { service } = await RepoService.open({ store, repository: REPO, privateKey });
    await service.publish(tarball('foo', '1.0.0'));
    store.writes.length = 0;
    await service.publish(tarball('bar', '1.0.0'));
    expect(store.writes).toEqual([
      { batch: true, keys: ['tarballs/bar-1.0.0.tar', '_hexrepo/releases/bar.json'] },
      { batch: true, keys: ['packages/bar', 'versions', 'names'] },
    ]);
    const versions = unpackVersions((await store.get('versions'))!.body, { publicKey, repository: REPO });
    expect(versions.packages.map((p) => p.name)).toEqual(['bar', 'foo']);
    expect(unpackNames((await store.get('names'))!.body, { publicKey, repository: REPO }).packages.map((p) => p.name)).toEqual(['bar', 'foo']);
    expect(unpackPackage((await store.get('packages/bar'))!.body, { publicKey, repository: REPO, name: 'bar' }).releases.map((r) => r.version)).toEqual(['1.0.0']);
  });

  it('a build writes every package file once in batches, and versions then names last, after every package', async () => {
    const root = await tempDir();
    await mkdir(join(root, 'tarballs'));
    const names = Array.from({ length: 70 }, (_, i) => `p${String(i).padStart(2, '0')}`);
    await Promise.all(names.map((n) => writeFile(join(root, 'tarballs', `${n}-1.0.0.tar`), tarball(n, '1.0.0'))));
    const store = new NotingFsStore(root);
    await RepoService.open({ store, repository: REPO, privateKey });
    const batches = store.writes.filter((w) => w.keys.some((k) => k.startsWith('packages/') || k === 'versions' || k === 'names'));
    expect(batches.every((w) => w.batch)).toBe(true);
    expect(batches.length).toBeGreaterThan(1);
    const last = batches.at(-1)!.keys;
    expect(last.slice(-2)).toEqual(['versions', 'names']);
    expect(
      batches
        .slice(0, -1)
        .flatMap((w) => w.keys)
        .filter((k) => !k.startsWith('packages/')),
    ).toEqual([]);
    expect(
      batches
        .flatMap((w) => w.keys)
        .filter((k) => k.startsWith('packages/'))
        .sort(),
    ).toEqual(names.map((n) => `packages/${n}`));
    expect(unpackVersions((await store.get('versions'))!.body, { publicKey, repository: REPO }).packages).toHaveLength(70);
  });
});
