import { describe, expect, it } from 'vitest';
import { isHexrepoError } from '@hexrepo/core';
import type { BlobStore } from '../types.js';

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const text = (b: Uint8Array | undefined): string => new TextDecoder().decode(b);

async function collect(it: AsyncIterable<{ key: string }>): Promise<string[]> {
  const keys: string[] = [];
  for await (const o of it) keys.push(o.key);
  return keys.sort();
}

async function expectCode(p: Promise<unknown>, code: 'STORAGE_CONFLICT' | 'PATH_UNSAFE'): Promise<void> {
  const err = await p.then(() => null, (e: unknown) => e);
  expect(isHexrepoError(err, code), `expected ${code}, got ${String(err)}`).toBe(true);
}

/**
 * The one contract every BlobStore driver must meet. `make` returns a fresh, empty store.
 * Used by the fs and memory drivers here and by the cloud drivers in their own packages.
 */
export function testDriver(name: string, make: () => Promise<BlobStore>): void {
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
        const results = await Promise.allSettled(
          Array.from({ length: 8 }, (_, i) => s.put('versions', enc(`${round}-${i}`), { ifMatch: etag })),
        );
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
  });
}
