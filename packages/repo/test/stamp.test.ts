import { copyFile, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { generateKeyPair, loadPrivateKey } from '@hexrepo/registry';
import { FsStore } from '@hexrepo/storage';
import { defaultCachePath, openRepository, stampPathOf, updatePackageState } from '../src/index.js';
import { FIXTURES, fixturePublic, GOLDEN_KEY, setMtime } from './helpers.js';

const key = loadPrivateKey(await readFile(GOLDEN_KEY, 'utf8'));

/** A built public folder with its cache and stamp saved, as `hexrepo build` leaves it. */
async function built(only?: string[]): Promise<{ pub: string; cachePath: string }> {
  const pub = await fixturePublic(only);
  const cachePath = defaultCachePath(pub);
  await (await openRepository({ store: new FsStore(pub), repository: 'acme', privateKey: key, cachePath })).close();
  return { pub, cachePath };
}

const build = (pub: string, cachePath: string, privateKey = key) => openRepository({ store: new FsStore(pub), repository: 'acme', privateKey, cachePath, summaryOnly: true });

describe('the registry stamp beside the build cache', () => {
  it('a no-change rebuild is answered from the stamp file without loading the cache', async () => {
    const { pub, cachePath } = await built();
    expect((await stat(stampPathOf(cachePath))).isFile()).toBe(true);
    // Garbage where the cache was: a build that loaded it would find it unreadable and read all 9 tarballs.
    await writeFile(cachePath, 'not a cache');
    const opened = await build(pub, cachePath);
    expect(opened.service).toBeUndefined();
    expect(opened.cacheCurrent).toBe(true);
    expect(opened.summary).toMatchObject({ upToDate: true, packages: 8, releases: 9, read: 0, reused: 9, written: [], removed: [], unchanged: 10, publicKey: 'unchanged' });
    await opened.close();
    expect(await readFile(cachePath, 'utf8')).toBe('not a cache');
  });

  it('reports what the cache-loading check reports, except that it opens no service', async () => {
    const { pub, cachePath } = await built();
    const slow = await openRepository({ store: new FsStore(pub), repository: 'acme', privateKey: key, cachePath });
    const fast = await build(pub, cachePath);
    const { durationMs: _a, ...slowSummary } = slow.summary!;
    const { durationMs: _b, ...fastSummary } = fast.summary!;
    expect(fastSummary).toEqual(slowSummary);
    expect(slow.service).toBeDefined();
  });

  it('a tarball overwritten in place (same name, new bytes and mtime) is read again', async () => {
    const { pub, cachePath } = await built(['foo-0.1.0.tar', 'bar-1.0.0.tar']);
    // As `cp` does: the folder's own mtime does not change, the file's does.
    await copyFile(join(pub, 'tarballs/bar-1.0.0.tar'), join(pub, 'tarballs/foo-0.1.0.tar'));
    await setMtime(join(pub, 'tarballs/foo-0.1.0.tar'), '2026-03-01T00:00:00Z');
    const opened = await build(pub, cachePath);
    expect(opened.summary?.upToDate).toBe(false);
    expect(opened.summary?.read).toBe(1);
    // bar's bytes under foo's name: invalid, left out with a warning; packages/foo goes.
    expect(opened.summary?.skipped.map((p) => p.file)).toEqual(['foo-0.1.0.tar']);
    expect(opened.summary?.removed).toContain('packages/foo');
  });

  it('a tarball added, a tarball removed, an output touched: each one is a full check', async () => {
    const { pub, cachePath } = await built(['foo-0.1.0.tar', 'bar-1.0.0.tar']);
    await copyFile(join(FIXTURES, 'tarballs/baz-1.0.0.tar'), join(pub, 'tarballs/baz-1.0.0.tar'));
    const added = await build(pub, cachePath);
    expect(added.summary).toMatchObject({ upToDate: false, read: 1, packages: 3 });
    await added.close();
    expect((await build(pub, cachePath)).summary?.upToDate).toBe(true);

    await rm(join(pub, 'tarballs/bar-1.0.0.tar'));
    const removed = await build(pub, cachePath);
    expect(removed.summary).toMatchObject({ upToDate: false, removed: ['packages/bar'], packages: 2 });
    await removed.close();
    expect((await build(pub, cachePath)).summary?.upToDate).toBe(true);

    await setMtime(join(pub, 'packages/foo'), '2026-04-01T00:00:00Z');
    const touched = await build(pub, cachePath);
    expect(touched.summary?.upToDate).toBe(false);
    expect(touched.service).toBeDefined();
  });

  it('a retirement recorded in the repository state but not yet signed is picked up', async () => {
    const { pub, cachePath } = await built(['foo-0.1.0.tar', 'foo-0.2.0.tar']);
    const before = await readFile(join(pub, 'packages/foo'));
    await updatePackageState(new FsStore(pub), 'foo', (r) => r.set('0.1.0', { retired: { reason: 'security', message: 'CVE' } }));
    const opened = await build(pub, cachePath);
    expect(opened.summary).toMatchObject({ upToDate: false, read: 0, written: ['packages/foo', 'versions'] });
    expect((await readFile(join(pub, 'packages/foo'))).equals(before)).toBe(false);
  });

  it('a stamp file of another key, of another format, or unreadable is not trusted', async () => {
    const { pub, cachePath } = await built(['foo-0.1.0.tar']);
    const stampPath = stampPathOf(cachePath);
    const good = JSON.parse(await readFile(stampPath, 'utf8')) as Record<string, unknown>;

    const other = loadPrivateKey((await generateKeyPair()).privateKeyPem);
    const rekeyed = await build(pub, cachePath, other);
    expect(rekeyed.summary?.upToDate).toBe(false);
    expect(rekeyed.summary?.written).toContain('packages/foo');
    await rekeyed.close();
    // The new key's build left a stamp for the new key; the old key's build does not trust it.
    expect(JSON.parse(await readFile(stampPath, 'utf8'))).not.toMatchObject({ keyFingerprint: good.keyFingerprint });
    const back = await build(pub, cachePath);
    expect(back.summary?.upToDate).toBe(false);
    await back.close();
    expect((await build(pub, cachePath)).summary?.upToDate).toBe(true);

    await writeFile(stampPath, JSON.stringify({ ...JSON.parse(await readFile(stampPath, 'utf8')), format: 999 }));
    const future = await build(pub, cachePath);
    expect(future.service).toBeDefined();
    // The cache still knew everything: nothing is read, and the check saves a stamp this version trusts.
    expect(future.summary).toMatchObject({ upToDate: true, read: 0 });
    expect(future.cacheCurrent).toBe(false);
    await future.save();
    expect((await build(pub, cachePath)).service).toBeUndefined();

    await writeFile(stampPath, '{"format": 1, "stamp": ');
    const torn = await build(pub, cachePath);
    expect(torn.service).toBeDefined();
    expect(torn.summary).toMatchObject({ upToDate: true, read: 0 });
  });

  it('a build that skipped an invalid tarball leaves no stamp, so the next one looks again', async () => {
    const pub = await fixturePublic(['foo-0.1.0.tar']);
    await writeFile(join(pub, 'tarballs/bad-1.0.0.tar'), 'not a tarball');
    const cachePath = defaultCachePath(pub);
    const first = await build(pub, cachePath);
    expect(first.summary?.skipped).toHaveLength(1);
    await first.close();
    await expect(stat(stampPathOf(cachePath))).rejects.toThrow();
    const second = await build(pub, cachePath);
    expect(second.summary?.upToDate).toBe(false);
    expect(second.summary?.read).toBe(1);
  });
});
