import { describe, expect, it } from 'vitest';
import { isHexrepoError } from '@hexrepo/core';
import { putMany } from '../batch.js';
import { contentEtag } from '../keys.js';
import type { BlobStore, ObjectInfo } from '../types.js';

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const text = (b: Uint8Array | undefined): string => new TextDecoder().decode(b);

async function collect(it: AsyncIterable<{ key: string }>): Promise<string[]> {
  const keys: string[] = [];
  for await (const o of it) keys.push(o.key);
  return keys.sort();
}

async function listed(it: AsyncIterable<ObjectInfo>): Promise<Map<string, ObjectInfo>> {
  const found = new Map<string, ObjectInfo>();
  for await (const o of it) {
    expect(found.has(o.key), `${o.key} listed twice`).toBe(false);
    found.set(o.key, o);
  }
  return found;
}

/** The chunks of a streamed body, as they came. */
async function chunksOf(body: AsyncIterable<Uint8Array> | Iterable<Uint8Array>): Promise<Uint8Array[]> {
  const chunks: Uint8Array[] = [];
  for await (const c of body) chunks.push(c);
  return chunks;
}

const joined = (chunks: Uint8Array[]): Buffer => Buffer.concat(chunks);

/** Bytes that are not all alike, so a shifted or repeated chunk shows. */
function pattern(size: number): Uint8Array {
  const body = new Uint8Array(size);
  for (let i = 0; i < size; i++) body[i] = (i * 31 + (i >> 12)) % 251;
  return body;
}

async function expectCode(p: Promise<unknown>, code: 'STORAGE_CONFLICT' | 'PATH_UNSAFE'): Promise<unknown> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(isHexrepoError(err, code), `expected ${code}, got ${String(err)}`).toBe(true);
  return err;
}

/** What a driver declares about itself, for the cases that depend on it. */
export interface TestDriverOptions {
  /**
   * `getStream` delivers a large object in several chunks (as bucket drivers do), rather than as one
   * buffer read whole.
   * @default false
   */
  streamsInChunks?: boolean;
}

/**
 * The one contract every BlobStore driver must meet, capability by capability. `make` returns a fresh,
 * empty store. Used by the fs, memory and cached stores here and by the bucket drivers in their own
 * packages; a new driver passes it before it is used anywhere.
 */
export function testDriver(name: string, make: () => Promise<BlobStore>, opts: TestDriverOptions = {}): void {
  describe(`BlobStore contract: ${name}`, () => {
    it('returns null for what is not there', async () => {
      const s = await make();
      expect(await s.get('names')).toBeNull();
      expect(await s.head('packages/nope')).toBeNull();
      await s.delete('packages/nope');
    });

    it('round-trips bytes with a stable strong etag', async () => {
      const s = await make();
      const body = new Uint8Array([0, 1, 2, 255, 0x1f, 0x8b]);
      const { etag } = await s.put('packages/foo', body);
      expect(etag).toMatch(/^"[^"]+"$/);
      const got = await s.get('packages/foo');
      expect(got && Array.from(got.body)).toEqual(Array.from(body));
      expect(got?.etag).toBe(etag);
      expect(got?.size).toBe(body.byteLength);
      const head = await s.head('packages/foo');
      expect(head).toMatchObject({ key: 'packages/foo', size: 6, etag });
      const { etag: same } = await s.put('packages/foo', body);
      expect(same).toBe(etag);
      const { etag: other } = await s.put('packages/foo', enc('changed'));
      expect(other).not.toBe(etag);
    });

    it('lists by prefix, recursively, with sizes', async () => {
      const s = await make();
      await s.put('names', enc('n'));
      await s.put('packages/foo', enc('f'));
      await s.put('packages/bar', enc('bb'));
      await s.put('tarballs/foo-1.0.0.tar', enc('t'));
      expect(await collect(s.list('packages/'))).toEqual(['packages/bar', 'packages/foo']);
      expect(await collect(s.list('tarballs/foo-'))).toEqual(['tarballs/foo-1.0.0.tar']);
      expect(await collect(s.list(''))).toEqual(['names', 'packages/bar', 'packages/foo', 'tarballs/foo-1.0.0.tar']);
      expect(await collect(s.list('docs/'))).toEqual([]);
      for await (const o of s.list('packages/bar')) expect(o.size).toBe(2);
    });

    it('deletes', async () => {
      const s = await make();
      await s.put('packages/foo', enc('f'));
      await s.delete('packages/foo');
      expect(await s.get('packages/foo')).toBeNull();
      expect(await collect(s.list('packages/'))).toEqual([]);
    });

    it('ifNoneMatch "*" creates once and refuses to overwrite', async () => {
      const s = await make();
      await s.put('tarballs/a-1.0.0.tar', enc('one'), { ifNoneMatch: '*' });
      await expectCode(s.put('tarballs/a-1.0.0.tar', enc('two'), { ifNoneMatch: '*' }), 'STORAGE_CONFLICT');
      expect(text((await s.get('tarballs/a-1.0.0.tar'))?.body)).toBe('one');
    });

    it('ifMatch writes only over the expected version', async () => {
      const s = await make();
      const { etag } = await s.put('names', enc('v1'));
      const { etag: e2 } = await s.put('names', enc('v2'), { ifMatch: etag });
      await expectCode(s.put('names', enc('v3'), { ifMatch: etag }), 'STORAGE_CONFLICT');
      expect(text((await s.get('names'))?.body)).toBe('v2');
      await expectCode(s.put('versions', enc('x'), { ifMatch: e2 }), 'STORAGE_CONFLICT');
    });

    it('exactly one of many racing conditional writers wins each round', async () => {
      const s = await make();
      let { etag } = await s.put('versions', enc('0'));
      for (let round = 1; round <= 3; round++) {
        const results = await Promise.allSettled(Array.from({ length: 8 }, (_, i) => s.put('versions', enc(`${round}-${i}`), { ifMatch: etag })));
        const won = results.filter((r) => r.status === 'fulfilled');
        expect(won).toHaveLength(1);
        for (const r of results) if (r.status === 'rejected') expect(isHexrepoError(r.reason, 'STORAGE_CONFLICT')).toBe(true);
        etag = (won[0] as PromiseFulfilledResult<{ etag: string }>).value.etag;
      }
    });

    it('refuses keys that could leave the repository', async () => {
      const s = await make();
      for (const key of ['../x', 'a/../../x', '/etc/passwd', 'a//b', '.hidden', 'packages/.x', 'a\\b', '']) {
        await expectCode(s.put(key, enc('x')), 'PATH_UNSAFE');
        await expectCode(s.get(key), 'PATH_UNSAFE');
      }
    });

    it('reports the same content etag as every other driver, for empty and binary bodies', async () => {
      const s = await make();
      for (const body of [new Uint8Array(0), new Uint8Array([0, 0, 0]), enc('{"a":1}\n')]) {
        const { etag } = await s.put('packages/foo', body);
        expect(etag).toBe(contentEtag(body));
        const got = await s.get('packages/foo');
        expect(got?.body.byteLength).toBe(body.byteLength);
        expect(got?.etag).toBe(etag);
        expect((await s.head('packages/foo'))?.size).toBe(body.byteLength);
      }
    });

    it('head, get and list agree on etag, size and mtime (and so does the put, where it reports one)', async () => {
      const s = await make();
      const body = enc('agreement');
      const put = await s.put('packages/foo', body);
      const head = await s.head('packages/foo');
      const got = await s.get('packages/foo');
      const list = (await listed(s.list('packages/'))).get('packages/foo');
      expect(head).not.toBeNull();
      expect(got).toMatchObject({ etag: head?.etag, size: head?.size, mtime: head?.mtime });
      expect(list).toEqual({ key: 'packages/foo', size: head?.size, mtime: head?.mtime });
      if (put.mtime) expect(put.mtime).toEqual(head?.mtime);
    });

    it('round-trips a large object', async () => {
      const s = await make();
      const body = pattern(4 * 1024 * 1024 + 3);
      const { etag } = await s.put('tarballs/big-1.0.0.tar', body);
      expect(etag).toBe(contentEtag(body));
      const got = await s.get('tarballs/big-1.0.0.tar');
      expect(got && Buffer.from(got.body.buffer, got.body.byteOffset, got.body.byteLength).equals(Buffer.from(body))).toBe(true);
      expect(await s.head('tarballs/big-1.0.0.tar')).toMatchObject({ size: body.byteLength, etag });
    });

    it('getStream gives the bytes of get and the size, etag and mtime of head; null when missing', async (ctx) => {
      const s = await make();
      if (!s.getStream) return ctx.skip('the driver has no getStream; readers fall back to get');
      expect(await s.getStream('tarballs/none-1.0.0.tar')).toBeNull();
      for (const body of [enc('small'), new Uint8Array(0)]) {
        await s.put('tarballs/foo-1.0.0.tar', body);
        const head = await s.head('tarballs/foo-1.0.0.tar');
        const streamed = await s.getStream('tarballs/foo-1.0.0.tar');
        expect(streamed && { etag: streamed.etag, size: streamed.size, mtime: streamed.mtime }).toEqual({ etag: head?.etag, size: head?.size, mtime: head?.mtime });
        expect(joined(await chunksOf(streamed!.body)).equals(Buffer.from(body))).toBe(true);
        // After a get too (a cache in front may answer from memory then).
        const got = await s.get('tarballs/foo-1.0.0.tar');
        const again = await s.getStream('tarballs/foo-1.0.0.tar');
        expect(again?.etag).toBe(got?.etag);
        expect(joined(await chunksOf(again!.body)).equals(Buffer.from(got!.body))).toBe(true);
      }
      await s.delete('tarballs/foo-1.0.0.tar');
      expect(await s.getStream('tarballs/foo-1.0.0.tar')).toBeNull();
    });

    it(`getStream delivers a large object whole${opts.streamsInChunks ? ', in several chunks' : ''}`, async (ctx) => {
      const s = await make();
      if (!s.getStream) return ctx.skip('the driver has no getStream; readers fall back to get');
      const body = pattern(4 * 1024 * 1024 + 3);
      const { etag } = await s.put('tarballs/big-1.0.0.tar', body);
      const streamed = await s.getStream('tarballs/big-1.0.0.tar');
      expect(streamed).toMatchObject({ etag, size: body.byteLength });
      const chunks = await chunksOf(streamed!.body);
      expect(joined(chunks).equals(Buffer.from(body))).toBe(true);
      if (opts.streamsInChunks) expect(chunks.length).toBeGreaterThan(1);
    });

    it('lists every key once, across pages, folders and prefixes that end mid-name', async () => {
      const s = await make();
      const keys = ['names', 'versions', ...Array.from({ length: 9 }, (_, i) => `packages/p${i}`), 'packages/foo', 'packages/foo_bar', 'docs/foo-1.0.0.tar', 'docs/foo-1.0.0/index.html', 'docs/foo-1.0.0/dist/app.js', 'docs/foo-1.1.0.tar'];
      await Promise.all(keys.map((k) => s.put(k, enc(k))));
      const all = await listed(s.list(''));
      expect([...all.keys()].sort()).toEqual([...keys].sort());
      for (const [key, info] of all) expect(info.size, key).toBe(key.length);
      expect(await collect(s.list('packages/'))).toHaveLength(11);
      expect(await collect(s.list('packages'))).toHaveLength(11);
      expect(await collect(s.list('packages/fo'))).toEqual(['packages/foo', 'packages/foo_bar']);
      expect(await collect(s.list('docs/foo-1.0.0'))).toEqual(['docs/foo-1.0.0.tar', 'docs/foo-1.0.0/dist/app.js', 'docs/foo-1.0.0/index.html']);
      expect(await collect(s.list('docs/foo-1.0.0/'))).toEqual(['docs/foo-1.0.0/dist/app.js', 'docs/foo-1.0.0/index.html']);
      expect(await collect(s.list('docs/foo-1.0.0/dist/'))).toEqual(['docs/foo-1.0.0/dist/app.js']);
      expect(await collect(s.list('names'))).toEqual(['names']);
      expect(await collect(s.list('nam'))).toEqual(['names']);
      expect(await collect(s.list('tarballs/'))).toEqual([]);
    });

    it('stores keys with the characters versions and docs use (+, ~, %, space)', async () => {
      const s = await make();
      const keys = ['tarballs/foo-1.0.0-rc.1+build.7.tar', 'docs/foo-1.0.0/api reference.html', 'docs/foo-1.0.0/%41~b.html'];
      for (const key of keys) {
        await s.put(key, enc(key));
        expect(text((await s.get(key))?.body), key).toBe(key);
        expect((await s.head(key))?.size, key).toBe(key.length);
      }
      expect(await collect(s.list(''))).toEqual([...keys].sort());
      for (const key of keys) await s.delete(key);
      expect(await collect(s.list(''))).toEqual([]);
    });

    it('deleting a missing key is not an error and touches nothing else', async () => {
      const s = await make();
      await s.put('packages/foo', enc('f'));
      await s.delete('packages/bar');
      await s.delete('packages/foo');
      await s.delete('packages/foo');
      expect(await s.head('packages/foo')).toBeNull();
      await s.put('packages/foo', enc('again'), { ifNoneMatch: '*' });
      expect(text((await s.get('packages/foo'))?.body)).toBe('again');
    });

    it('refuses a conditional write against a missing object or an etag it never had', async () => {
      const s = await make();
      await expectCode(s.put('names', enc('x'), { ifMatch: contentEtag(enc('x')) }), 'STORAGE_CONFLICT');
      expect(await s.head('names')).toBeNull();
      const { etag } = await s.put('names', enc('v1'));
      for (const wrong of ['"not-an-etag"', etag.slice(1, -1), `W/${etag}`, '*']) {
        await expectCode(s.put('names', enc('v2'), { ifMatch: wrong }), 'STORAGE_CONFLICT');
      }
      expect(text((await s.get('names'))?.body)).toBe('v1');
    });

    it('exactly one of many racing creators wins, and its bytes are stored', async () => {
      const s = await make();
      const results = await Promise.allSettled(Array.from({ length: 8 }, (_, i) => s.put('tarballs/race-1.0.0.tar', enc(`writer ${i}`), { ifNoneMatch: '*' })));
      const won = results.flatMap((r, i) => (r.status === 'fulfilled' ? [{ i, etag: r.value.etag }] : []));
      expect(won).toHaveLength(1);
      for (const r of results) if (r.status === 'rejected') expect(isHexrepoError(r.reason, 'STORAGE_CONFLICT'), String(r.reason)).toBe(true);
      const got = await s.get('tarballs/race-1.0.0.tar');
      expect(text(got?.body)).toBe(`writer ${won[0]!.i}`);
      expect(got?.etag).toBe(won[0]!.etag);
    });

    it('refuses unsafe keys on every operation, and stores nothing', async () => {
      const s = await make();
      for (const key of ['../x', 'a/./b', 'a/', 'x\0y', 'a'.repeat(1025)]) {
        await expectCode(s.put(key, enc('x')), 'PATH_UNSAFE');
        await expectCode(s.put(key, enc('x'), { ifNoneMatch: '*' }), 'PATH_UNSAFE');
        await expectCode(s.get(key), 'PATH_UNSAFE');
        await expectCode(s.head(key), 'PATH_UNSAFE');
        await expectCode(s.delete(key), 'PATH_UNSAFE');
        if (s.getStream) await expectCode(s.getStream(key), 'PATH_UNSAFE');
      }
      expect(await collect(s.list(''))).toEqual([]);
    });

    // Batches: the store's own putMany where it has one (fs: fsync waves), sequential puts otherwise.
    it('putMany stores every entry across folders and reports what head reports for each', async () => {
      const s = await make();
      const keys = ['tarballs/foo-1.0.0.tar', '_hexrepo/releases/foo.json', 'packages/foo', 'versions', 'names'];
      const results = await putMany(
        s,
        keys.map((key) => ({ key, body: enc(`bytes of ${key}`) })),
      );
      expect(results).toHaveLength(keys.length);
      for (const [i, key] of keys.entries()) {
        const head = await s.head(key);
        expect(text((await s.get(key))?.body), key).toBe(`bytes of ${key}`);
        expect(results[i]?.etag, key).toBe(contentEtag(enc(`bytes of ${key}`)));
        expect(head?.etag, key).toBe(results[i]?.etag);
        if (results[i]?.mtime) expect(results[i]?.mtime, key).toEqual(head?.mtime);
      }
      expect(await putMany(s, [])).toEqual([]);
    });

    it("putMany checks each entry's conditions; the first failure stops the batch: entries before it are stored, the rest are not", async () => {
      const s = await make();
      const { etag: v1 } = await s.put('names', enc('names v1'));
      await s.put('versions', enc('versions v1'));
      const err = await expectCode(
        putMany(s, [
          { key: 'tarballs/a-1.0.0.tar', body: enc('a'), opts: { ifNoneMatch: '*' } },
          { key: 'packages/a', body: enc('package a') },
          { key: 'names', body: enc('names v2'), opts: { ifMatch: contentEtag(enc('names v0')) } },
          { key: 'versions', body: enc('versions v2') },
          { key: 'packages/z', body: enc('package z') },
        ]),
        'STORAGE_CONFLICT',
      );
      expect((err as { details?: { key?: string } }).details?.key).toBe('names');
      expect(text((await s.get('tarballs/a-1.0.0.tar'))?.body)).toBe('a');
      expect(text((await s.get('packages/a'))?.body)).toBe('package a');
      expect(text((await s.get('names'))?.body)).toBe('names v1');
      expect(text((await s.get('versions'))?.body)).toBe('versions v1');
      expect(await s.head('packages/z')).toBeNull();

      // A conflict on the first entry stores nothing.
      await expectCode(
        putMany(s, [
          { key: 'tarballs/a-1.0.0.tar', body: enc('again'), opts: { ifNoneMatch: '*' } },
          { key: 'packages/b', body: enc('b') },
        ]),
        'STORAGE_CONFLICT',
      );
      expect(text((await s.get('tarballs/a-1.0.0.tar'))?.body)).toBe('a');
      expect(await s.head('packages/b')).toBeNull();

      // Conditions that hold: every entry is written.
      const ok = await putMany(s, [
        { key: 'tarballs/b-1.0.0.tar', body: enc('b'), opts: { ifNoneMatch: '*' } },
        { key: 'names', body: enc('names v2'), opts: { ifMatch: v1 } },
      ]);
      expect(ok.map((r) => r.etag)).toEqual([contentEtag(enc('b')), contentEtag(enc('names v2'))]);
      expect(text((await s.get('names'))?.body)).toBe('names v2');
    });

    it('putMany stores nothing when any key is unsafe', async () => {
      const s = await make();
      await expectCode(
        putMany(s, [
          { key: 'packages/ok', body: enc('ok') },
          { key: '../escape', body: enc('x') },
        ]),
        'PATH_UNSAFE',
      );
      expect(await collect(s.list(''))).toEqual([]);
      if (s.putMany) {
        await expectCode(
          s.putMany([
            { key: 'packages/ok', body: enc('ok') },
            { key: 'a//b', body: enc('x') },
          ]),
          'PATH_UNSAFE',
        );
        expect(await collect(s.list(''))).toEqual([]);
      }
    });

    it('exactly one of many racing batches with the same conditions is stored whole', async () => {
      const s = await make();
      let versions = (await s.put('versions', enc('0'))).etag;
      let names = (await s.put('names', enc('0'))).etag;
      for (let round = 1; round <= 3; round++) {
        const results = await Promise.allSettled(
          Array.from({ length: 6 }, (_, i) =>
            putMany(s, [
              { key: `packages/p${round}-${i}`, body: enc(`${round}-${i}`) },
              { key: 'versions', body: enc(`${round}-${i}`), opts: { ifMatch: versions } },
              { key: 'names', body: enc(`${round}-${i}`), opts: { ifMatch: names } },
            ]),
          ),
        );
        const won = results.flatMap((r, i) => (r.status === 'fulfilled' ? [{ i, results: r.value }] : []));
        expect(won).toHaveLength(1);
        for (const r of results) if (r.status === 'rejected') expect(isHexrepoError(r.reason, 'STORAGE_CONFLICT'), String(r.reason)).toBe(true);
        expect(text((await s.get('versions'))?.body)).toBe(`${round}-${won[0]!.i}`);
        expect(text((await s.get('names'))?.body)).toBe(`${round}-${won[0]!.i}`);
        versions = won[0]!.results[1]!.etag;
        names = won[0]!.results[2]!.etag;
      }
    });
  });
}
