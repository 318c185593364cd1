/**
 * Builds on worker threads (`threads` > 1) against builds on one thread: the same bytes, the same
 * errors, nothing written when a tarball is bad, and no thread left behind. The pool runs the
 * compiled worker (packages/repo/dist/build-worker.js): `pnpm build` first.
 */
import { readdirSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { copyFile, mkdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { HexrepoError, isHexrepoError } from '@hexrepo/core';
import { loadPrivateKey } from '@hexrepo/registry';
import { FsStore, MemoryStore, type ObjectInfo, type StoredObject } from '@hexrepo/storage';
import { createTarball } from '@hexrepo/tarball';
import { buildRegistry, type BuildSummary } from '../src/index.js';
import { GOLDEN_KEY, setMtime, snapshot, tempDir } from './helpers.js';

const key = loadPrivateKey(await readFile(GOLDEN_KEY, 'utf8'));
const PACKAGES = 40;
const VERSIONS = 5;

/** A public folder with PACKAGES × VERSIONS generated tarballs (dependencies, fixed mtimes). */
async function generatedPublic(): Promise<string> {
  const pub = join(await tempDir(), 'public');
  await mkdir(join(pub, 'tarballs'), { recursive: true });
  for (let i = 0; i < PACKAGES; i++) {
    for (let v = 0; v < VERSIONS; v++) {
      const name = `pkg_${String(i).padStart(3, '0')}`;
      const requirements = i > 0 ? [{ package: `pkg_${String(i - 1).padStart(3, '0')}`, requirement: '~> 1.0', optional: v % 2 === 0, app: 'dep' }] : [];
      const { tarball } = createTarball({ name, version: `1.${v}.0`, app: name, description: `generated ${i}`, licenses: ['MIT'], buildTools: ['rebar3'], requirements }, [
        { path: `src/${name}.erl`, contents: new TextEncoder().encode(`-module(${name}).\n% ${'x'.repeat(i * 3 + v)}\n`) },
      ]);
      const file = join(pub, 'tarballs', `${name}-1.${v}.0.tar`);
      await writeFile(file, tarball);
      await setMtime(file, new Date(Date.UTC(2026, 0, 1 + i, v)).toISOString());
    }
  }
  return pub;
}

async function copyOf(pub: string): Promise<string> {
  const copy = join(await tempDir(), 'public');
  await mkdir(join(copy, 'tarballs'), { recursive: true });
  for (const f of readdirSync(join(pub, 'tarballs'))) {
    await writeFile(join(copy, 'tarballs', f), await readFile(join(pub, 'tarballs', f)));
    await setMtime(join(copy, 'tarballs', f), statSync(join(pub, 'tarballs', f)).mtime.toISOString());
  }
  return copy;
}

function build(pub: string, threads: number, extra: { skipInvalid?: boolean; onProgress?: () => void } = {}) {
  return buildRegistry({ store: new FsStore(pub), repository: 'acme', privateKey: key, threads, ...extra });
}

/** OS threads of this process (Linux): a worker thread is one more, a terminated one is gone. */
function osThreads(): number {
  return readdirSync('/proc/self/task').length;
}

/**
 * The thread count once it has settled back to `baseline`, or what it is after 5 s: a worker thread's
 * OS thread is reaped a moment after the pool has seen it exit, so an immediate count can be one high.
 */
async function threadsAfterPool(baseline: number): Promise<number> {
  for (let i = 0; i < 100 && osThreads() !== baseline; i++) await new Promise((r) => setTimeout(r, 50));
  return osThreads();
}

const comparable = (s: BuildSummary) => ({ ...s, durationMs: 0, written: [...s.written].sort() });

describe.skipIf(process.platform !== 'linux')('build on worker threads', () => {
  it('threads: 2 writes the same bytes as threads: 1 for 200 tarballs, on two threads that are gone afterwards', async () => {
    const one = await generatedPublic();
    const two = await copyOf(one);
    const single = await build(one, 1);
    const baseline = osThreads();
    let peak = 0;
    const pooled = await build(two, 2, { onProgress: () => (peak = Math.max(peak, osThreads())) });
    expect(peak).toBeGreaterThanOrEqual(baseline + 2);
    expect(await threadsAfterPool(baseline)).toBe(baseline);
    expect(comparable(pooled.summary)).toEqual(comparable(single.summary));
    expect(pooled.summary).toMatchObject({ packages: PACKAGES, releases: PACKAGES * VERSIONS, read: PACKAGES * VERSIONS });
    const a = await snapshot(one);
    const b = await snapshot(two);
    expect([...b.keys()].sort()).toEqual([...a.keys()].sort());
    for (const [file, bytes] of a) expect(b.get(file), file).toBe(bytes);
    expect([...pooled.cache.tarballs.entries()]).toEqual([...single.cache.tarballs.entries()]);
  });

  it('bad tarballs report the same codes and messages on threads, nothing is written, and no thread remains', async () => {
    const one = await generatedPublic();
    await writeFile(join(one, 'tarballs/garbage-1.0.0.tar'), 'not a tarball');
    await writeFile(join(one, 'tarballs/pkg_999-1.0.0.tar'), await readFile(join(one, 'tarballs/pkg_001-1.1.0.tar')));
    const damaged = Buffer.from(await readFile(join(one, 'tarballs/pkg_002-1.2.0.tar')));
    damaged.writeUInt8(damaged.readUInt8(damaged.length - 700) ^ 0xff, damaged.length - 700);
    await writeFile(join(one, 'tarballs/pkg_002-1.2.0.tar'), damaged);
    const two = await copyOf(one);
    const before = await snapshot(two);

    const errOne = await build(one, 1).catch((e: unknown) => e);
    const baseline = osThreads();
    let peak = 0;
    const errTwo = await build(two, 2, { onProgress: () => (peak = Math.max(peak, osThreads())) }).catch((e: unknown) => e);
    expect(peak).toBeGreaterThanOrEqual(baseline + 2);
    expect(await threadsAfterPool(baseline)).toBe(baseline);
    expect(isHexrepoError(errTwo, 'BUILD_INVALID_INPUT')).toBe(true);
    expect(isHexrepoError(errOne, 'BUILD_INVALID_INPUT')).toBe(true);
    if (!isHexrepoError(errOne) || !isHexrepoError(errTwo)) return;
    expect(errTwo.message).toBe(errOne.message);
    expect(errTwo.details).toEqual(errOne.details);
    const codes = (errTwo.details.problems as { file: string; code: string }[]).map((p) => `${p.file} ${p.code}`);
    expect(codes).toEqual(['garbage-1.0.0.tar TAR_CORRUPT', expect.stringMatching(/^pkg_002-1\.2\.0\.tar /), 'pkg_999-1.0.0.tar TARBALL_NAME_MISMATCH']);
    expect(await snapshot(two)).toEqual(before);

    const skipOne = await build(one, 1, { skipInvalid: true });
    const skipTwo = await build(two, 2, { skipInvalid: true });
    expect(await threadsAfterPool(baseline)).toBe(baseline);
    expect(skipTwo.summary.skipped).toEqual(skipOne.summary.skipped);
    expect(skipTwo.summary.releases).toBe(PACKAGES * VERSIONS - 1);
  });

  it('from a folder store the worker threads read the tarballs themselves: none passes through the main thread', async () => {
    const one = await generatedPublic();
    const two = await copyOf(one);
    /** A folder store that notes every key read through it (on this thread). */
    class WatchedStore extends FsStore {
      readonly got: string[] = [];
      override async get(key: string): Promise<StoredObject | null> {
        this.got.push(key);
        return super.get(key);
      }
    }
    const watched = new WatchedStore(two);
    const pooled = await buildRegistry({ store: watched, repository: 'acme', privateKey: key, threads: 2 });
    expect(watched.got.filter((k) => k.startsWith('tarballs/'))).toEqual([]);
    const single = await build(one, 1);
    expect(comparable(pooled.summary)).toEqual(comparable(single.summary));
    expect([...pooled.cache.tarballs.entries()]).toEqual([...single.cache.tarballs.entries()]);
    expect(await snapshot(two)).toEqual(await snapshot(one));
  });

  it('from a store that is not a folder (as S3 or GCS) this thread reads and the threads validate: the bytes one thread would write', async () => {
    const pub = await generatedPublic();
    const store = new MemoryStore();
    for (const f of readdirSync(join(pub, 'tarballs'))) await store.put(`tarballs/${f}`, await readFile(join(pub, 'tarballs', f)));
    const pooled = await buildRegistry({ store, repository: 'acme', privateKey: key, threads: 2 });
    expect(pooled.summary).toMatchObject({ packages: PACKAGES, releases: PACKAGES * VERSIONS, read: PACKAGES * VERSIONS, written: expect.arrayContaining(['names', 'versions']) });
    // One thread, no cache, the same store: every file it would write is already there, byte for byte.
    const single = await buildRegistry({ store, repository: 'acme', privateKey: key, threads: 1 });
    expect(single.summary).toMatchObject({ written: [], removed: [], unchanged: PACKAGES + 2 });
    expect([...pooled.cache.tarballs.entries()]).toEqual([...single.cache.tarballs.entries()]);
  });

  it('tarballs that are links out of the folder or to a private key read as missing on threads as on one thread', async () => {
    const one = await generatedPublic();
    const outside = await tempDir();
    await copyFile(GOLDEN_KEY, join(outside, 'key.pem'));
    await copyFile(join(one, 'tarballs/pkg_001-1.1.0.tar'), join(outside, 'pkg_900-1.0.0.tar'));
    await symlink(join(outside, 'key.pem'), join(one, 'tarballs/pkg_901-1.0.0.tar'));
    await symlink(join(outside, 'pkg_900-1.0.0.tar'), join(one, 'tarballs/pkg_900-1.0.0.tar'));
    await copyFile(GOLDEN_KEY, join(one, 'tarballs/pkg_902-1.0.0.tar'));
    const two = await copyOf(one);
    for (const f of ['pkg_900-1.0.0.tar', 'pkg_901-1.0.0.tar']) {
      await rm(join(two, 'tarballs', f));
      await symlink(join(outside, f === 'pkg_900-1.0.0.tar' ? f : 'key.pem'), join(two, 'tarballs', f));
    }
    const errOne = await build(one, 1).catch((e: unknown) => e);
    const errTwo = await build(two, 2).catch((e: unknown) => e);
    expect(isHexrepoError(errOne, 'BUILD_INVALID_INPUT')).toBe(true);
    if (!isHexrepoError(errOne) || !isHexrepoError(errTwo)) throw new Error(`expected two build errors, got ${String(errTwo)}`);
    expect(errTwo.message).toBe(errOne.message);
    expect(errTwo.details).toEqual(errOne.details);
    const problems = errTwo.details.problems as { file: string; code: string; message: string }[];
    expect(problems.map((p) => `${p.file} ${p.code}`)).toEqual(['pkg_900-1.0.0.tar NOT_FOUND', 'pkg_901-1.0.0.tar NOT_FOUND', 'pkg_902-1.0.0.tar NOT_FOUND']);
    expect(errTwo.message).not.toContain('MII');
  });

  it('a store error in the middle of a pooled build ends every thread', async () => {
    const pub = await generatedPublic();
    const baseline = osThreads();
    let peak = 0;
    const err = await build(pub, 2, {
      onProgress: () => {
        peak = Math.max(peak, osThreads());
        // Once the scan is done, the folder the package files go to becomes a file: every write fails.
        writeFileSync(join(pub, 'packages'), 'in the way');
      },
    }).catch((e: unknown) => e);
    expect(String(err)).toMatch(/packages/);
    expect(peak).toBeGreaterThanOrEqual(baseline + 2);
    expect(await threadsAfterPool(baseline)).toBe(baseline);
  });

  it('threads started during the scan end when the scan then fails', async () => {
    const pub = await generatedPublic();
    /** A folder whose registry index cannot be read (an I/O error after the tarballs were listed). */
    class FailingStore extends FsStore {
      override async head(key: string): Promise<(ObjectInfo & { etag: string }) | null> {
        if (key === 'names') throw new HexrepoError('STORAGE_IO', 'could not stat names: EIO', { key });
        return super.head(key);
      }
    }
    const baseline = osThreads();
    const err = await buildRegistry({ store: new FailingStore(pub), repository: 'acme', privateKey: key, threads: 2 }).catch((e: unknown) => e);
    expect(isHexrepoError(err, 'STORAGE_IO')).toBe(true);
    expect(await threadsAfterPool(baseline)).toBe(baseline);
  });

  it('a file in tarballs/ larger than a buffer can hold is reported as too big on threads as on one thread, not read', async () => {
    // Sparse: 5 GiB listed, no disk used. A worker thread sized its buffer by the file, which threw
    // a RangeError (a crash of the whole build) and, under 4 GiB, read every byte before the limit.
    const pub = await copyOf(await generatedPublic());
    const huge = join(pub, 'tarballs', 'huge-1.0.0.tar');
    writeFileSync(huge, '');
    truncateSync(huge, 5 * 1024 ** 3);
    const outcomes: BuildSummary['skipped'][] = [];
    for (const threads of [1, 2]) {
      const { summary } = await build(pub, threads, { skipInvalid: true });
      outcomes.push(summary.skipped);
      expect(summary.releases).toBe(PACKAGES * VERSIONS);
    }
    expect(outcomes[1]!.map((p) => [p.file, p.code])).toEqual([['huge-1.0.0.tar', 'TAR_TOO_BIG']]);
    expect(outcomes[1]).toEqual(outcomes[0]);
  });

  it('refuses a thread count that is not a whole number of at least 1', async () => {
    const pub = await generatedPublic();
    for (const threads of [0, -1, 1.5, Number.NaN]) {
      const err = await build(pub, threads).catch((e: unknown) => e);
      expect(isHexrepoError(err, 'CONFIG_INVALID'), String(threads)).toBe(true);
    }
  });
});
