/**
 * A publish changes the package's sidecar (`_hexrepo/releases/NAME.json`). The service holds the
 * version it last wrote, so it writes over it without reading it again, on the condition that the
 * file is still that version: another writer's change in between is read and kept, never lost.
 */
import { generateKeyPairSync } from 'node:crypto';
import { FsStore, type StoredObject } from '@hexrepo/storage';
import { createTarball } from '@hexrepo/tarball';
import { describe, expect, it } from 'vitest';
import { loadReleaseStates, RepoService, stateKey, updatePackageState } from '../src/index.js';
import { tempDir } from './helpers.js';

const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const tarball = (name: string, version: string): Uint8Array => createTarball({ name, version, description: `${name} ${version}`, licenses: ['MIT'] }, [{ path: `src/${name}.erl`, contents: Buffer.from(`-module(${name}).\n`) }]).tarball;

/** A real folder store that counts the reads of each key. */
class CountingStore extends FsStore {
  readonly reads = new Map<string, number>();
  override async get(key: string): Promise<StoredObject | null> {
    this.reads.set(key, (this.reads.get(key) ?? 0) + 1);
    return super.get(key);
  }
}

describe('the sidecar a publish changes', () => {
  it('is not read again when this service wrote it last', async () => {
    const store = new CountingStore(await tempDir());
    const { service } = await RepoService.open({ store, repository: 'acme', privateKey });
    const before = store.reads.get(stateKey('foo')) ?? 0;
    for (const v of ['1.0.0', '1.1.0', '1.2.0', '2.0.0']) await service.publish(tarball('foo', v));
    await service.retire('foo', '1.0.0', { reason: 'deprecated' });
    // One read: the first publish finds no file; every later change starts from the version it wrote.
    expect((store.reads.get(stateKey('foo')) ?? 0) - before).toBe(1);
    const states = (await loadReleaseStates(store)).get('foo')!;
    expect([...states.keys()].sort()).toEqual(['1.0.0', '1.1.0', '1.2.0', '2.0.0']);
    expect(states.get('1.0.0')?.retired).toEqual({ reason: 'deprecated' });
  });

  it("keeps another writer's change made in between (the conditional write fails, the file is read and merged)", async () => {
    const dir = await tempDir();
    const store = new FsStore(dir);
    const { service } = await RepoService.open({ store, repository: 'acme', privateKey });
    await service.publish(tarball('foo', '1.0.0'));
    // Another server on the same folder retires 1.0.0 behind this service's back.
    await updatePackageState(new FsStore(dir), 'foo', (r) => void r.set('1.0.0', { ...r.get('1.0.0'), retired: { reason: 'security', message: 'CVE-1' } }));
    await service.publish(tarball('foo', '1.1.0'));
    const states = (await loadReleaseStates(store)).get('foo')!;
    expect(states.get('1.0.0')?.retired).toEqual({ reason: 'security', message: 'CVE-1' });
    expect(typeof states.get('1.1.0')?.publishedAt).toBe('number');
    expect(service.releases('foo').find((r) => r.version === '1.0.0')?.retired).toEqual({ reason: 'security', message: 'CVE-1' });
  });
});
