import { readFile, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadPrivateKey, fingerprint } from '@hexrepo/registry';
import { FsStore } from '@hexrepo/storage';
import { toHex } from '@hexrepo/core';
import { buildRegistry, type BuildCache, cacheDecodes, loadCache, saveCache } from '../src/index.js';
import { fixturePublic, GOLDEN_KEY, tempDir } from './helpers.js';

const key = loadPrivateKey(await readFile(GOLDEN_KEY, 'utf8'));
const fp = fingerprint(key);

async function build(pub: string, cache?: BuildCache) {
  return buildRegistry({ store: new FsStore(pub), repository: 'acme', privateKey: key, ...(cache ? { cache } : {}) });
}

/** Every fact of a cache as plain data, decoding everything (for equality). */
function plain(cache: BuildCache): unknown {
  return {
    tarballs: [...cache.tarballs]
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([file, t]) => ({
        file,
        size: t.size,
        mtimeMs: t.mtimeMs,
        name: t.facts.name,
        version: t.facts.version,
        innerChecksum: toHex(t.facts.innerChecksum),
        outerChecksum: toHex(t.facts.outerChecksum),
        dependencies: t.facts.dependencies,
      })),
    outputs: [...cache.outputs].sort(([a], [b]) => a.localeCompare(b)),
    stamp: cache.stamp,
  };
}

async function built(): Promise<{ pub: string; path: string; cache: BuildCache }> {
  const pub = await fixturePublic();
  const path = join(await tempDir(), 'cache.bin');
  const { cache } = await build(pub);
  await saveCache(path, cache);
  return { pub, path, cache };
}

describe('the build cache log', () => {
  it('round-trips every fact and output', async () => {
    const { path, cache } = await built();
    const loaded = await loadCache(path, 'acme', fp);
    expect(loaded.reason).toBeNull();
    expect(plain(loaded.cache)).toEqual(plain(cache));
    // Dependencies with an optional flag and a repository survive too (the fixtures have both kinds or not: build one).
    const deps = [
      { package: 'a', requirement: '~> 1.0', optional: true, app: 'a' },
      { package: 'b', requirement: '>= 0.0.0', optional: false, app: 'b_app', repository: 'hexpm' },
    ];
    const facts = { name: 'x', version: '1.0.0', innerChecksum: new Uint8Array(32).fill(1), outerChecksum: new Uint8Array(32).fill(2), dependencies: deps };
    loaded.cache.tarballs.set('x-1.0.0.tar', { size: 7, mtimeMs: 1234.5, facts });
    await saveCache(path, loaded.cache);
    const again = await loadCache(path, 'acme', fp);
    expect(again.cache.tarballs.get('x-1.0.0.tar')?.facts.dependencies).toEqual(deps);
    expect(plain(again.cache)).toEqual(plain(loaded.cache));
  });

  it('decodes only the facts a build touches', async () => {
    const { pub, path } = await built();
    const loaded = await loadCache(path, 'acme', fp);
    const noChange = await build(pub, loaded.cache);
    expect(noChange.summary).toMatchObject({ read: 0, written: [] });
    expect(cacheDecodes(loaded.cache)).toBe(0);
    // Removing foo's second release re-signs packages/foo: the facts of foo's other release are decoded, nothing else.
    const foo = loaded.cache.tarballs.get('foo-0.1.0.tar')!;
    await rm(join(pub, 'tarballs/foo-0.2.0.tar'));
    const removed = await build(pub, loaded.cache);
    expect(removed.summary.written).toContain('packages/foo');
    expect(cacheDecodes(loaded.cache)).toBe(1);
    // What it signed from the lazily decoded facts is what a build from the tarballs alone signs.
    const fresh = await fixturePublic(['foo-0.1.0.tar']);
    await build(fresh);
    expect(await readFile(join(pub, 'packages/foo'))).toEqual(await readFile(join(fresh, 'packages/foo')));
    expect(toHex(foo.facts.outerChecksum)).toMatch(/^[0-9a-f]{64}$/);
    expect(cacheDecodes(loaded.cache)).toBe(1);
  });

  it('appends what changed instead of rewriting, and compacts when mostly stale', async () => {
    const { pub, path } = await built();
    const size0 = (await stat(path)).size;
    const loaded = await loadCache(path, 'acme', fp);
    await rm(join(pub, 'tarballs/foo-0.2.0.tar'));
    const { cache } = await build(pub, loaded.cache);
    const ino = (await stat(path)).ino;
    await saveCache(path, cache);
    const after = await stat(path);
    expect(after.ino).toBe(ino);
    expect(after.size).toBeGreaterThan(size0);
    expect(after.size - size0).toBeLessThan(size0 / 2);
    expect(plain((await loadCache(path, 'acme', fp)).cache)).toEqual(plain(cache));
    // Rewrite one output many times: the log is compacted (a new file) and still says the same.
    const out = [...cache.outputs.keys()][0]!;
    for (let i = 0; i < 2000; i++) {
      cache.outputs.set(out, { ...cache.outputs.get(out)!, inputs: `v${i}` });
      await saveCache(path, cache);
    }
    // 2,000 appended records would be far larger than the bound: compaction kept it there.
    const compacted = await stat(path);
    expect(compacted.size).toBeLessThan(2 * after.size + 64 * 1024);
    expect(plain((await loadCache(path, 'acme', fp)).cache)).toEqual(plain(cache));
  });

  it('a torn tail is ignored at any cut: the records before it load, the rest is read again', async () => {
    const { pub, path } = await built();
    const full = await readFile(path);
    const base = await loadCache(path, 'acme', fp);
    // Append a second generation (one removed tarball), then cut the file at every byte of it.
    await rm(join(pub, 'tarballs/foo-0.2.0.tar'));
    const { cache } = await build(pub, base.cache);
    await saveCache(path, cache);
    const grown = await readFile(path);
    expect(grown.length).toBeGreaterThan(full.length);
    let boundaries = 0;
    for (let cut = full.length + 1; cut < grown.length; cut++) {
      await writeFile(path, grown.subarray(0, cut));
      const torn = await loadCache(path, 'acme', fp);
      // A cut between two records leaves a shorter, valid log; any other cut is reported.
      if (torn.reason !== null) expect(torn.reason, `cut at ${cut}`).toMatch(/torn record at byte|bad checksum/);
      else boundaries++;
      // Everything before the cut is there: at least the whole first generation but foo-0.2.0.
      expect(torn.cache.tarballs.size).toBeGreaterThanOrEqual(8);
      if (cut % 11 !== 0) continue;
      const rebuilt = await build(pub, torn.cache);
      expect(rebuilt.summary).toMatchObject({ releases: 8, read: 0 });
      // The next save rewrites the file whole; it then loads cleanly and says what the build saw.
      await saveCache(path, rebuilt.cache);
      const healed = await loadCache(path, 'acme', fp);
      expect(healed.reason).toBeNull();
      expect(plain(healed.cache)).toEqual(plain(cache));
    }
    expect(boundaries).toBeLessThan((grown.length - full.length) / 20);
    // Cuts inside the first generation: whatever loads is a prefix, and a build from it is correct.
    for (const cut of [9, 40, Math.floor(full.length / 2), full.length - 1]) {
      await writeFile(path, full.subarray(0, cut));
      const torn = await loadCache(path, 'acme', fp);
      const rebuilt = await build(pub, torn.cache);
      expect(rebuilt.summary.releases).toBe(8);
      expect(rebuilt.summary.read + rebuilt.summary.reused).toBe(8);
    }
    // A flipped byte fails the checksum of its record.
    const flipped = Buffer.from(grown);
    flipped[full.length + 20] = flipped[full.length + 20]! ^ 0xff;
    await writeFile(path, flipped);
    expect((await loadCache(path, 'acme', fp)).reason).toMatch(/checksum|torn/);
  });

  it('a format-2 JSON cache is read once and converted to the log', async () => {
    const { pub, cache } = await built();
    const path = join(await tempDir(), 'build-cache-public.json');
    const tarballs = Object.fromEntries(
      [...cache.tarballs].map(([f, t]) => [f, { size: t.size, mtimeMs: t.mtimeMs, name: t.facts.name, version: t.facts.version, inner: toHex(t.facts.innerChecksum), outer: toHex(t.facts.outerChecksum), deps: t.facts.dependencies }]),
    );
    await writeFile(path, JSON.stringify({ format: 2, repository: 'acme', keyFingerprint: fp, tarballs, outputs: Object.fromEntries(cache.outputs), stamp: cache.stamp }));
    const legacy = await loadCache(path, 'acme', fp);
    expect(legacy.reason).toBeNull();
    expect(plain(legacy.cache)).toEqual(plain(cache));
    expect((await build(pub, legacy.cache)).summary).toMatchObject({ read: 0, written: [] });
    await saveCache(path, legacy.cache);
    expect((await readFile(path)).subarray(0, 4).toString()).toBe('HXRC');
    expect(plain((await loadCache(path, 'acme', fp)).cache)).toEqual(plain(cache));
    // Format 1 and foreign caches are discarded: a full read.
    await writeFile(path, JSON.stringify({ format: 1, repository: 'acme', keyFingerprint: fp, tarballs: {}, outputs: {} }));
    expect((await loadCache(path, 'acme', fp)).reason).toMatch(/format 1/);
    await saveCache(path, cache);
    expect((await loadCache(path, 'other', fp)).reason).toMatch(/repository name or key changed/);
  });

  it('keeps the stamp, forgets it, and a torn tail drops it: the next build checks every output', async () => {
    const { pub, path, cache } = await built();
    expect(cache.stamp).toMatch(/^[A-Za-z0-9+/]+=*$/);
    expect((await loadCache(path, 'acme', fp)).cache.stamp).toBe(cache.stamp);
    const loaded = (await loadCache(path, 'acme', fp)).cache;
    delete loaded.stamp;
    await saveCache(path, loaded);
    expect((await loadCache(path, 'acme', fp)).cache.stamp).toBeUndefined();
    loaded.stamp = cache.stamp!;
    await saveCache(path, loaded);
    // Cut into the last record: what precedes it loads, but not the stamp that vouched for all of it.
    await truncate(path, (await stat(path)).size - 3);
    const torn = await loadCache(path, 'acme', fp);
    expect(torn.reason).toMatch(/torn record/);
    expect(torn.cache.tarballs.size).toBe(9);
    expect(torn.cache.stamp).toBeUndefined();
    const rebuilt = await build(pub, torn.cache);
    expect(rebuilt.summary).toMatchObject({ upToDate: false, read: 0, written: [] });
  });

  it('a log another process appended to since this one loaded it is replaced whole, not appended to', async () => {
    const { path } = await built();
    const a = (await loadCache(path, 'acme', fp)).cache;
    const b = (await loadCache(path, 'acme', fp)).cache;
    a.tarballs.delete('foo-0.1.0.tar');
    await saveCache(path, a);
    b.tarballs.delete('bar-1.0.0.tar');
    await saveCache(path, b);
    // Had b appended its difference, the log would lack both files; it holds b's view exactly.
    const now = (await loadCache(path, 'acme', fp)).cache;
    expect(plain(now)).toEqual(plain(b));
    expect(now.tarballs.has('foo-0.1.0.tar')).toBe(true);
  });

  it('a file of another format, of another program, or empty is a full read, with the reason', async () => {
    const { path } = await built();
    const bytes = await readFile(path);
    const future = Buffer.from(bytes);
    future.writeUInt32LE(4, 4);
    await writeFile(path, future);
    expect(await loadCache(path, 'acme', fp)).toMatchObject({ reason: 'cache format 4 is not 3' });
    expect((await loadCache(path, 'acme', fp)).cache.tarballs.size).toBe(0);
    await writeFile(path, 'PK\x03\x04 a zip file');
    expect((await loadCache(path, 'acme', fp)).reason).toBe('not a hexrepo build cache');
    await writeFile(path, bytes.subarray(0, 8));
    expect((await loadCache(path, 'acme', fp)).reason).toMatch(/empty or torn before its repository record/);
    await writeFile(path, '{"format": 2, "repository": ');
    expect((await loadCache(path, 'acme', fp)).reason).toMatch(/cache unreadable/);
  });

  it("keeps each package's names/versions entries: a rebuild re-encodes only the packages that changed", async () => {
    const { pub, path } = await built();
    const loaded = (await loadCache(path, 'acme', fp)).cache;
    expect(loaded.memos?.size).toBe(8);
    const before = new Map(loaded.memos);
    await rm(join(pub, 'tarballs/foo-0.2.0.tar'));
    // bar retired behind the cache's back: its entries (retired releases) must be made again.
    const states = new Map([['bar', new Map([['1.0.0', { retired: { reason: 'security' as const } }]])]]);
    const { cache, summary } = await buildRegistry({ store: new FsStore(pub), repository: 'acme', privateKey: key, cache: loaded, releaseState: (n, v) => states.get(n)?.get(v) });
    expect(summary.written).toEqual(expect.arrayContaining(['packages/foo', 'packages/bar', 'versions', 'names']));
    for (const [name, memo] of cache.memos ?? []) {
      if (name === 'foo' || name === 'bar') expect(memo, name).not.toBe(before.get(name));
      else expect(memo, name).toBe(before.get(name));
    }
    // The same bytes as a build that computed every entry afresh.
    const fresh = await fixturePublic();
    await rm(join(fresh, 'tarballs/foo-0.2.0.tar'));
    await buildRegistry({ store: new FsStore(fresh), repository: 'acme', privateKey: key, releaseState: (n, v) => states.get(n)?.get(v) });
    for (const file of ['names', 'versions', 'packages/foo', 'packages/bar']) expect(await readFile(join(pub, file)), file).toEqual(await readFile(join(fresh, file)));
    // Saved, loaded again: the memos round-trip, and a package gone takes its memo with it.
    await saveCache(path, cache);
    const again = (await loadCache(path, 'acme', fp)).cache;
    expect([...(again.memos?.keys() ?? [])].sort()).toEqual([...(cache.memos?.keys() ?? [])].sort());
    expect(again.memos?.get('bar')?.versions).toEqual(cache.memos?.get('bar')?.versions);
    await rm(join(pub, 'tarballs/baz-1.0.0.tar'));
    const gone = await build(pub, again);
    await saveCache(path, gone.cache);
    expect((await loadCache(path, 'acme', fp)).cache.memos?.has('baz')).toBe(false);
  });
});
