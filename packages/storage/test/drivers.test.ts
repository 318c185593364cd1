import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, symlink, writeFile, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { isHexrepoError } from '@hexrepo/core';
import { CachedStore, FsStore, MemoryStore, readFileInside } from '../src/index.js';
import { testDriver } from '../src/testing/contract.js';

const dirs: string[] = [];
async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'hexrepo-store-'));
  dirs.push(d);
  return d;
}
afterAll(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

testDriver('memory', async () => new MemoryStore());
testDriver('fs', async () => new FsStore(await tempDir()));
testDriver('fs (not durable)', async () => new FsStore(await tempDir(), { durable: false }));
testDriver('cached fs (read cache in front)', async () => new CachedStore(new FsStore(await tempDir()), { revalidateMs: 0 }));
testDriver('cached memory', async () => new CachedStore(new MemoryStore()));

describe('FsStore specifics', () => {
  it('reads a symlink inside the root but not one pointing outside', async () => {
    const root = await tempDir();
    const outside = await tempDir();
    await writeFile(join(outside, 'secret'), 'secret');
    const store = new FsStore(root);
    await store.put('tarballs/a-1.0.0.tar', new Uint8Array([1]));
    await symlink(join(root, 'tarballs', 'a-1.0.0.tar'), join(root, 'tarballs', 'b-1.0.0.tar'));
    await symlink(join(outside, 'secret'), join(root, 'names'));
    expect((await store.get('tarballs/b-1.0.0.tar'))?.size).toBe(1);
    expect(await store.get('names')).toBeNull();
    expect(await store.head('names')).toBeNull();
  });

  it("readFileInside (a build worker's read) sees exactly what get sees: links out, to hidden files and to keys read as missing", async () => {
    const root = await tempDir();
    const outside = await tempDir();
    await writeFile(join(outside, 'secret'), 'secret');
    const pem = '-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----\n';
    await writeFile(join(outside, 'key.pem'), pem);
    const store = new FsStore(root);
    await store.put('tarballs/a-1.0.0.tar', new Uint8Array([1, 2, 3]));
    await writeFile(join(root, '.env'), 'TOKEN=x');
    await symlink(join(root, 'tarballs', 'a-1.0.0.tar'), join(root, 'tarballs', 'inside-1.0.0.tar'));
    await symlink(join(outside, 'secret'), join(root, 'tarballs', 'outside-1.0.0.tar'));
    await symlink(join(root, '.env'), join(root, 'tarballs', 'hidden-1.0.0.tar'));
    await symlink(outside, join(root, 'tarballs', 'sub'));
    await writeFile(join(root, 'tarballs', 'key-1.0.0.tar'), `Bag Attributes\n${pem}`);
    await mkdir(join(root, 'tarballs', 'folder-1.0.0.tar'));
    const keys = ['a-1.0.0.tar', 'inside-1.0.0.tar', 'outside-1.0.0.tar', 'hidden-1.0.0.tar', 'sub/secret', 'key-1.0.0.tar', 'folder-1.0.0.tar', 'missing-1.0.0.tar'].map((f) => `tarballs/${f}`);
    for (const key of keys) {
      const viaGet = await store.get(key);
      const read = readFileInside(store.root, key);
      expect(read === null ? null : { body: [...read.body], size: read.size, mtime: read.mtime.getTime() }, key).toEqual(viaGet === null ? null : { body: [...viaGet.body], size: viaGet.size, mtime: viaGet.mtime.getTime() });
    }
    expect(readFileInside(store.root, 'tarballs/inside-1.0.0.tar')?.size).toBe(3);
    expect(readFileInside(store.root, 'tarballs/key-1.0.0.tar')).toBeNull();
    expect(() => readFileInside(store.root, '../outside')).toThrow();
  });

  it('readFileInside and get read no file outside the folder when a link out is swapped in between their check and their read', async () => {
    // Another process swaps tarballs/x.tar between a link to a file inside and one to a file
    // outside, as fast as it can. The check resolved the path, then the read opened it again: one
    // read in twenty returned the outside file.
    const base = await tempDir();
    const root = join(base, 'repo');
    await mkdir(join(root, 'tarballs'), { recursive: true });
    await writeFile(join(root, 'tarballs', 'inside.dat'), 'inside');
    await writeFile(join(base, 'outside.dat'), 'OUTSIDE');
    await symlink('inside.dat', join(root, 'tarballs', 'x.tar'));
    const swapper = spawn(
      process.execPath,
      [
        '-e',
        `const fs = require('node:fs'); const d = process.argv[1]; let i = 0;
         for (;;) { const t = d + '/.l' + i++; fs.symlinkSync(i % 2 ? '../../outside.dat' : 'inside.dat', t); fs.renameSync(t, d + '/x.tar'); if (i === 2) console.log('swapping'); }`,
        join(root, 'tarballs'),
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    try {
      await new Promise((resolve) => swapper.stdout.once('data', resolve));
      const seen = { inside: 0, outside: 0, none: 0 };
      const count = (read: { body: Uint8Array } | null): void => {
        const text = read ? Buffer.from(read.body).toString() : null;
        if (text === 'inside') seen.inside++;
        else if (text === null) seen.none++;
        else seen.outside++;
      };
      for (let i = 0; i < 100_000; i++) count(readFileInside(root, 'tarballs/x.tar'));
      expect(seen.outside).toBe(0);
      expect(seen.inside).toBeGreaterThan(0);
      // And FsStore.get, which a server's reads go through (its check and its open are further apart).
      const store = new FsStore(root);
      const before = seen.inside;
      for (let i = 0; i < 5_000; i++) count(await store.get('tarballs/x.tar'));
      expect(seen.outside).toBe(0);
      expect(seen.inside).toBeGreaterThan(before);
    } finally {
      swapper.kill('SIGKILL');
    }
  });

  it.skipIf(process.platform === 'win32')('readFileInside and get read a FIFO in place of a tarball as missing instead of blocking a thread forever', async () => {
    // In a child process (the compiled store, `pnpm build` first): opening a FIFO for reading
    // waits for a writer, and a blocked thread can be stopped by nothing else.
    const root = await tempDir();
    await mkdir(join(root, 'tarballs'));
    execFileSync('mkfifo', [join(root, 'tarballs', 'pipe-1.0.0.tar')]);
    const dist = new URL('../dist/index.js', import.meta.url).href;
    const script = `import(${JSON.stringify(dist)}).then(async (s) => {
      const key = 'tarballs/pipe-1.0.0.tar';
      console.log(JSON.stringify([s.readFileInside(process.argv[1], key), await new s.FsStore(process.argv[1]).get(key)]));
    })`;
    const run = spawnSync(process.execPath, ['-e', script, root], { encoding: 'utf8', timeout: 30_000 });
    expect(run.signal, 'a read blocked until the child was killed').toBeNull();
    expect(run.stdout.trim()).toBe('[null,null]');
  });

  it('leaves no temp or lock files behind', async () => {
    const root = await tempDir();
    const store = new FsStore(root);
    const { etag } = await store.put('packages/foo', new Uint8Array([1]));
    await store.put('packages/foo', new Uint8Array([2]), { ifMatch: etag });
    await store.put('packages/bar', new Uint8Array([3]), { ifNoneMatch: '*' });
    await store.put('packages/bar', new Uint8Array([4]), { ifNoneMatch: '*' }).catch(() => undefined);
    expect((await readdir(join(root, 'packages'))).sort()).toEqual(['bar', 'foo']);
    // A batch stopped by a conflict half-way removes the temp files of the entries it did not place.
    const failed = await store
      .putMany([
        { key: 'packages/baz', body: new Uint8Array([5]) },
        { key: 'packages/foo', body: new Uint8Array([6]), opts: { ifMatch: etag } },
        { key: 'packages/qux', body: new Uint8Array([7]) },
      ])
      .then(
        () => null,
        (err: unknown) => err,
      );
    expect(isHexrepoError(failed, 'STORAGE_CONFLICT')).toBe(true);
    expect((await readdir(join(root, 'packages'))).sort()).toEqual(['bar', 'baz', 'foo']);
  });

  it.each(['1796000000.9996', '1796000000.999999999'])('dates a file touched at @%s to its millisecond, truncated as Erlang does', async (at) => {
    const root = await tempDir();
    const store = new FsStore(root);
    await store.put('tarballs/a-1.0.0.tar', new Uint8Array([1]));
    execFileSync('touch', ['-d', `@${at}`, join(root, 'tarballs', 'a-1.0.0.tar')]);
    const listed = [];
    for await (const o of store.list('tarballs/')) listed.push(o.mtime.getTime());
    const fresh = new FsStore(root);
    const head = (await fresh.head('tarballs/a-1.0.0.tar'))?.mtime.getTime(); // reads the file: no etag memo yet
    const get = (await fresh.get('tarballs/a-1.0.0.tar'))?.mtime.getTime();
    const memoHead = (await fresh.head('tarballs/a-1.0.0.tar'))?.mtime.getTime(); // from the memo
    expect({ listed, head, get, memoHead }).toEqual({ listed: [1796000000999], head: 1796000000999, get: 1796000000999, memoHead: 1796000000999 });
  });
});

describe('FsStore.list mtimes', () => {
  it('truncates every mtime to its millisecond exactly, whichever stat the listing took', async () => {
    const root = await tempDir();
    const store = new FsStore(root, { durable: false });
    // Around whole milliseconds (where the plain stat's double cannot tell), and between them.
    const fractions = ['000000000', '000000001', '000000400', '000999999', '001000000', '001000001', '499999999', '500000000', '998999999', '999000000', '999000001', '999599999', '999999999'];
    for (const ns of [...fractions, ...Array.from({ length: 12 }, (_, i) => String((i * 83_333_337 + 12_345) % 1_000_000_000).padStart(9, '0'))]) {
      const key = `tarballs/a-${ns}.tar`;
      await store.put(key, new Uint8Array([1]));
      execFileSync('touch', ['-d', `@1796000000.${ns}`, join(root, key)]);
    }
    const listed = new Map<string, number>();
    for await (const o of store.list('tarballs/')) listed.set(o.key, o.mtime.getTime());
    expect(listed.size).toBe(25);
    for (const [key, ms] of listed) {
      const ns = BigInt(`1796000000${/a-(\d{9})\.tar$/.exec(key)![1]}`);
      expect(ms, key).toBe(Number(ns / 1_000_000n));
    }
  });
});

describe('CachedStore', () => {
  it('serves from memory until revalidation, then sees changes made behind its back', async () => {
    let now = 0;
    const dir = await tempDir();
    const inner = new FsStore(dir);
    await inner.put('names', new TextEncoder().encode('one'));
    const cached = new CachedStore(inner, { revalidateMs: 1000, now: () => now });
    expect(new TextDecoder().decode((await cached.get('names'))!.body)).toBe('one');
    await writeFile(join(dir, 'names'), 'two');
    now = 500;
    expect(new TextDecoder().decode((await cached.get('names'))!.body)).toBe('one');
    now = 1500;
    expect(new TextDecoder().decode((await cached.get('names'))!.body)).toBe('two');
  });

  it('writes and deletes through it take effect at once; large objects are not kept', async () => {
    const cached = new CachedStore(new MemoryStore(), { maxObjectBytes: 4, revalidateMs: 60_000 });
    await cached.put('a', new Uint8Array([1]));
    expect((await cached.get('a'))!.body).toEqual(new Uint8Array([1]));
    await cached.put('a', new Uint8Array([2]));
    expect((await cached.get('a'))!.body).toEqual(new Uint8Array([2]));
    await cached.delete('a');
    expect(await cached.get('a')).toBeNull();
    await cached.put('big', new Uint8Array(10));
    expect((await cached.get('big'))!.size).toBe(10);
  });

  it('peek: the object get returned, the same instance, only while it is fresh; null for what it does not hold fresh', async () => {
    let now = 0;
    const dir = await tempDir();
    const inner = new FsStore(dir);
    await inner.put('names', new TextEncoder().encode('one'));
    const cached = new CachedStore(inner, { revalidateMs: 1000, now: () => now });
    expect(cached.peek('names')).toBeNull();
    const got = await cached.get('names');
    expect(cached.peek('names')).toBe(got);
    now = 1500;
    // Stale: only get may tell (it revalidates), even when nothing changed.
    expect(cached.peek('names')).toBeNull();
    expect(await cached.get('names')).toBe(got);
    expect(cached.peek('names')).toBe(got);
    await cached.put('names', new TextEncoder().encode('two'));
    expect(cached.peek('names')).toBeNull();
    expect(cached.peek('missing')).toBeNull();
  });

  it('evicts the least recently used objects past maxBytes', async () => {
    const inner = new MemoryStore();
    const cached = new CachedStore(inner, { maxBytes: 10, revalidateMs: 60_000 });
    for (const k of ['a', 'b', 'c']) await inner.put(k, new Uint8Array(4));
    for (const k of ['a', 'b', 'c']) await cached.get(k);
    await inner.delete('a');
    await inner.delete('c');
    expect(await cached.get('a')).toBeNull(); // evicted, so the deletion is seen
    expect(await cached.get('c')).not.toBeNull(); // still cached
  });
});
