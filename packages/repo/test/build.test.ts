import { execFileSync } from 'node:child_process';
import { copyFile, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { isHexrepoError } from '@hexrepo/core';
import { loadPrivateKey, unpackNames, unpackPackage, publicKeyPem } from '@hexrepo/registry';
import { FsStore } from '@hexrepo/storage';
import { buildRegistry, type BuildCache, RepoService, verifyRepository } from '../src/index.js';
import { FIXTURES, fixturePublic, GOLDEN_KEY, GOLDEN_PUBLIC, setMtime, snapshot } from './helpers.js';

const key = loadPrivateKey(await readFile(GOLDEN_KEY, 'utf8'));

async function build(pub: string, cache?: BuildCache, extra: { skipInvalid?: boolean } = {}) {
  return buildRegistry({ store: new FsStore(pub), repository: 'acme', privateKey: key, ...(cache ? { cache } : {}), ...extra });
}

describe('hexrepo build against the golden registry of mix hex.registry build', () => {
  it('reproduces golden-acme/public byte for byte', async () => {
    const pub = await fixturePublic();
    const { summary } = await build(pub);
    expect(summary.packages).toBe(8);
    expect(summary.releases).toBe(9);
    const golden = await snapshot(GOLDEN_PUBLIC);
    const ours = await snapshot(pub);
    for (const [file, bytes] of golden) expect(ours.get(file), file).toBe(bytes);
    expect([...ours.keys()].filter((f) => !f.startsWith('tarballs/')).sort()).toEqual([...golden.keys()].sort());
  });

  it('the result verifies, including every outer checksum', async () => {
    const pub = await fixturePublic();
    await build(pub);
    const report = await verifyRepository(new FsStore(pub), { repository: 'acme' });
    expect(report.problems).toEqual([]);
    expect(report).toMatchObject({ ok: true, packages: 8, releases: 9, tarballsChecked: 9 });
  });
});

describe('incremental builds', () => {
  it('a no-change rebuild reads nothing and rewrites nothing', async () => {
    const pub = await fixturePublic();
    const first = await build(pub);
    const before = await stat(join(pub, 'packages/foo'));
    const second = await build(pub, first.cache);
    expect(second.summary).toMatchObject({ read: 0, reused: 9, written: [], removed: [] });
    expect((await stat(join(pub, 'packages/foo'))).mtimeMs).toBe(before.mtimeMs);
  });

  it('adding one tarball reads only it and re-signs only its package plus names and versions', async () => {
    const pub = await fixturePublic(['foo-0.1.0.tar', 'bar-1.0.0.tar', 'baz-1.0.0.tar']);
    const first = await build(pub);
    await copyFile(join(FIXTURES, 'tarballs/foo-0.2.0.tar'), join(pub, 'tarballs/foo-0.2.0.tar'));
    const second = await build(pub, first.cache);
    expect(second.summary.read).toBe(1);
    expect(second.summary.written.sort()).toEqual(['names', 'packages/foo', 'versions']);
    const pkg = unpackPackage(await readFile(join(pub, 'packages/foo')), { publicKey: key, repository: 'acme', name: 'foo' });
    expect(pkg.releases.map((r) => r.version)).toEqual(['0.1.0', '0.2.0']);
  });

  it('removing the last tarball of a package removes packages/NAME', async () => {
    const pub = await fixturePublic(['foo-0.1.0.tar', 'baz-1.0.0.tar']);
    const first = await build(pub);
    await rm(join(pub, 'tarballs/baz-1.0.0.tar'));
    const second = await build(pub, first.cache);
    expect(second.summary.removed).toEqual(['packages/baz']);
    await expect(stat(join(pub, 'packages/baz'))).rejects.toThrow();
    expect((await verifyRepository(new FsStore(pub), { repository: 'acme' })).ok).toBe(true);
  });

  it('the same result with and without the cache, and after a touched mtime', async () => {
    const pub = await fixturePublic();
    const first = await build(pub);
    await setMtime(join(pub, 'tarballs/baz-1.0.0.tar'), '2026-03-01T00:00:00Z');
    const second = await build(pub, first.cache);
    expect(second.summary.read).toBe(1);
    expect(second.summary.written).toContain('names');
    expect(second.summary.written).not.toContain('packages/baz'); // same bytes: not rewritten
    const withCache = await snapshot(pub);
    const fresh = await fixturePublic();
    await setMtime(join(fresh, 'tarballs/baz-1.0.0.tar'), '2026-03-01T00:00:00Z');
    await build(fresh);
    expect(await snapshot(fresh)).toEqual(withCache);
  });

  it('rewrites a registry file edited behind its back', async () => {
    const pub = await fixturePublic(['foo-0.1.0.tar']);
    const first = await build(pub);
    const good = await readFile(join(pub, 'packages/foo'));
    await writeFile(join(pub, 'packages/foo'), 'garbage');
    const second = await build(pub, first.cache);
    expect(second.summary.written).toEqual(['packages/foo']);
    expect(await readFile(join(pub, 'packages/foo'))).toEqual(good);
  });

  it('replaces a public_key that does not match the private key', async () => {
    const pub = await fixturePublic(['foo-0.1.0.tar']);
    await writeFile(join(pub, 'public_key'), 'stale');
    const { summary } = await build(pub);
    expect(summary.publicKey).toBe('updated');
    expect(await readFile(join(pub, 'public_key'), 'utf8')).toBe(publicKeyPem(key));
  });
});

describe('names updated_at is the newest tarball mtime, truncated to the second as mix does', () => {
  const updatedAt = async (pub: string, name: string): Promise<number | undefined> => unpackNames(await readFile(join(pub, 'names')), { publicKey: key, repository: 'acme' }).packages.find((p) => p.name === name)?.updatedAt?.seconds;
  // `mix hex.registry build` writes 1796000000 for both; Stats.mtime rounds both up to …001, and
  // floor(mtimeMs) still gives …001 for the second (a double cannot hold its nanoseconds).
  const touch = (path: string, at: string): void => void execFileSync('touch', ['-d', `@${at}`, path]);

  it.each(['1796000000.9996', '1796000000.999999999'])('a tarball touched at @%s: a full build, then a cached one that reads nothing', async (at) => {
    const pub = await fixturePublic(['foo-0.1.0.tar']);
    touch(join(pub, 'tarballs/foo-0.1.0.tar'), at);
    const first = await build(pub);
    expect(await updatedAt(pub, 'foo')).toBe(1796000000);
    const second = await build(pub, first.cache);
    expect(second.summary).toMatchObject({ read: 0, written: [] });
  });

  it('a tarball the running service picks up (the dev server path)', async () => {
    const pub = await fixturePublic(['foo-0.1.0.tar']);
    const { service } = await RepoService.open({ store: new FsStore(pub), repository: 'acme', privateKey: key });
    await copyFile(join(FIXTURES, 'tarballs/baz-1.0.0.tar'), join(pub, 'tarballs/baz-1.0.0.tar'));
    touch(join(pub, 'tarballs/baz-1.0.0.tar'), '1796000000.9996');
    await service.refresh(['baz-1.0.0.tar']);
    expect(await updatedAt(pub, 'baz')).toBe(1796000000);
  });
});

describe('invalid input never touches the registry', () => {
  it('a file name that disagrees with the metadata stops the build with the file and reason', async () => {
    const pub = await fixturePublic(['foo-0.1.0.tar', 'baz-1.0.0.tar']);
    const first = await build(pub);
    const before = await snapshot(pub);
    await copyFile(join(FIXTURES, 'tarballs/foo-0.2.0.tar'), join(pub, 'tarballs/qux-9.9.9.tar'));
    const err = await build(pub, first.cache).catch((e: unknown) => e);
    expect(isHexrepoError(err, 'BUILD_INVALID_INPUT')).toBe(true);
    expect(String((err as Error).message)).toMatch(/qux-9\.9\.9\.tar.*TARBALL_NAME_MISMATCH.*foo 0\.2\.0/s);
    const after = await snapshot(pub);
    after.delete('tarballs/qux-9.9.9.tar');
    expect(after).toEqual(before);
  });

  it('--skip-invalid builds without the bad file and reports it', async () => {
    const pub = await fixturePublic(['foo-0.1.0.tar']);
    await writeFile(join(pub, 'tarballs/bad-1.0.0.tar'), 'not a tarball');
    const { summary } = await build(pub, undefined, { skipInvalid: true });
    expect(summary.skipped.map((p) => p.file)).toEqual(['bad-1.0.0.tar']);
    expect(summary.packages).toBe(1);
  });
});

describe('a rebuild with nothing to do', () => {
  it('is known from the cache alone: up to date, nothing read or written, the same registry', async () => {
    const pub = await fixturePublic();
    const first = await build(pub);
    expect(first.summary.upToDate).toBe(false);
    const before = await snapshot(pub);
    const second = await build(pub, first.cache);
    expect(second.summary).toMatchObject({ upToDate: true, read: 0, reused: 9, written: [], removed: [], packages: 8, releases: 9 });
    expect(await snapshot(pub)).toEqual(before);
  });

  it('the index it returns is complete: a publish through it re-signs names and versions with every package', async () => {
    const pub = await fixturePublic(['foo-0.1.0.tar', 'bar-1.0.0.tar', 'baz-1.0.0.tar']);
    const first = await build(pub);
    const service = (await RepoService.open({ store: new FsStore(pub), repository: 'acme', privateKey: key, cache: first.cache })).service;
    await service.publish(await readFile(join(FIXTURES, 'tarballs/foo-0.2.0.tar')));
    await service.flushed();
    const names = unpackNames(await readFile(join(pub, 'names')), { publicKey: key, repository: 'acme' });
    expect(names.packages.map((p) => p.name)).toEqual(['bar', 'baz', 'foo']);
    expect((await verifyRepository(new FsStore(pub), { repository: 'acme' })).ok).toBe(true);
  });

  it('is not trusted after an output changed, a tarball was touched, or a retirement was recorded', async () => {
    const pub = await fixturePublic(['foo-0.1.0.tar', 'bar-1.0.0.tar']);
    const first = await build(pub);
    await rm(join(pub, 'versions'));
    const afterDelete = await build(pub, first.cache);
    expect(afterDelete.summary).toMatchObject({ upToDate: false, written: ['versions'] });

    await setMtime(join(pub, 'tarballs/bar-1.0.0.tar'), '2026-04-01T00:00:00Z');
    const afterTouch = await build(pub, afterDelete.cache);
    expect(afterTouch.summary).toMatchObject({ upToDate: false, read: 1 });

    const retired = { reason: 'security' as const, message: 'CVE' };
    const afterRetire = await buildRegistry({
      store: new FsStore(pub),
      repository: 'acme',
      privateKey: key,
      cache: afterTouch.cache,
      releaseState: (name, version) => (name === 'foo' && version === '0.1.0' ? { retired } : undefined),
    });
    expect(afterRetire.summary.upToDate).toBe(false);
    expect(afterRetire.summary.written).toContain('packages/foo');
    const pkg = unpackPackage(await readFile(join(pub, 'packages/foo')), { publicKey: key, repository: 'acme', name: 'foo' });
    expect(pkg.releases[0]?.retired).toMatchObject({ message: 'CVE' });
  });

  it('a build that skipped an invalid tarball leaves no stamp to trust', async () => {
    const pub = await fixturePublic(['foo-0.1.0.tar']);
    await writeFile(join(pub, 'tarballs/bad-1.0.0.tar'), 'not a tarball');
    const first = await build(pub, undefined, { skipInvalid: true });
    expect(first.cache.stamp).toBeUndefined();
    const second = await build(pub, first.cache, { skipInvalid: true });
    expect(second.summary.upToDate).toBe(false);
  });
});
