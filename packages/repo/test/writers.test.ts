/**
 * Several services writing one folder, each behind its own read cache, as the workers of
 * `hexrepo serve` do: what one writes, another merges at once, never a cached copy of before.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadPrivateKey, unpackPackage } from '@hexrepo/registry';
import { CachedStore, FsStore } from '@hexrepo/storage';
import { createTarball } from '@hexrepo/tarball';
import { RepoService } from '../src/index.js';
import { GOLDEN_KEY, tempDir } from './helpers.js';

const key = loadPrivateKey(await readFile(GOLDEN_KEY, 'utf8'));
const tarball = (version: string): Uint8Array => createTarball({ name: 'foo', version }, [{ path: 'src/foo.erl', contents: Buffer.from(`-module(foo). %% ${version}\n`) }]).tarball;

describe('two services on one folder, each with a read cache', () => {
  it('a revert through one keeps a retirement just made through the other', async () => {
    const pub = join(await tempDir(), 'public');
    // Caches that never revalidate on their own: any stale read would show, whatever the timing.
    const open = async (): Promise<RepoService> => (await RepoService.open({ store: new CachedStore(new FsStore(pub), { revalidateMs: 3_600_000 }), repository: 'acme', privateKey: key })).service;
    const a = await open();
    await a.publish(tarball('1.0.0'));
    await a.publish(tarball('1.1.0'));
    const b = await open();
    // b reads the package's sidecar (as a worker catching up does), then a retires.
    await b.resync();
    await a.retire('foo', '1.0.0', { reason: 'security', message: 'CVE' });
    await b.revert('foo', '1.1.0');

    const pkg = unpackPackage(await readFile(join(pub, 'packages', 'foo')), { publicKey: key, repository: 'acme', name: 'foo' });
    expect(pkg.releases.map((r) => [r.version, r.retired])).toEqual([['1.0.0', { reason: 'security', message: 'CVE' }]]);
    expect(b.releases('foo').map((r) => [r.version, r.retired])).toEqual([['1.0.0', { reason: 'security', message: 'CVE' }]]);
  });
});
