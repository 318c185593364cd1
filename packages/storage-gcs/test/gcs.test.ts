import { randomBytes } from 'node:crypto';
import { Storage } from '@google-cloud/storage';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isHexrepoError } from '@hexrepo/core';
import { contentEtag } from '@hexrepo/storage';
import { testDriver } from '@hexrepo/storage/testing';
import { ETAG_METADATA_KEY, GcsStore, parseGcsUrl, type GcsStoreOptions } from '../src/index.js';
import { crc32cBase64, startFakeGcs, type FakeGcs } from '@hexrepo/test-support/fake-gcs';

// The SDK sends the JSON API to STORAGE_EMULATOR_HOST when it is set, whatever apiEndpoint says.
delete process.env.STORAGE_EMULATOR_HOST;

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const text = (b: Uint8Array | undefined): string => new TextDecoder().decode(b);

async function conflictOf(p: Promise<unknown>): Promise<boolean> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  return isHexrepoError(err, 'STORAGE_CONFLICT');
}

async function keysOf(store: GcsStore, prefix = ''): Promise<string[]> {
  const keys: string[] = [];
  for await (const o of store.list(prefix)) keys.push(o.key);
  return keys.sort();
}

describe('parseGcsUrl', () => {
  it('reads bucket, prefix, endpoint and project', () => {
    expect(parseGcsUrl('gs://acme-hex/repos/public/')).toEqual({ bucket: 'acme-hex', prefix: 'repos/public' });
    expect(parseGcsUrl('gs://b?endpoint=http://127.0.0.1:4443&project=my-project')).toEqual({
      bucket: 'b',
      apiEndpoint: 'http://127.0.0.1:4443',
      projectId: 'my-project',
    });
  });

  it('refuses what it cannot use', () => {
    for (const bad of ['s3://b/p', 'gs:///p', 'gs://b/../x', 'gs://b/a/%2e%2e/x', 'gs://b/.git', 'gs://b/p?unknown=1', 'gs://b?endpoint=ftp://x', 'gs://b?project=a', 'gs://key:secret@b/p', 'not a url']) {
      let code: unknown;
      try {
        parseGcsUrl(bad);
      } catch (err) {
        code = isHexrepoError(err) ? err.code : err;
      }
      expect(code, bad).toBe('CONFIG_INVALID');
    }
  });

  it('keeps keys under the prefix and refuses an unsafe one', () => {
    const store = new GcsStore({ bucket: 'b', prefix: '/a/b/', apiEndpoint: 'http://127.0.0.1:1' });
    expect(store.prefix).toBe('a/b/');
    expect(store.url).toBe('gs://b/a/b/');
    expect(() => new GcsStore({ bucket: 'b', prefix: 'a/../..', apiEndpoint: 'http://127.0.0.1:1' })).toThrow(/PATH|\.\./);
  });
});

describe('fake GCS server', () => {
  it('computes GCS crc32c values', () => {
    // The SDK's own documented example: crc32c of 'data' is 'rth90Q=='.
    expect(crc32cBase64(enc('data'))).toBe('rth90Q==');
  });
});

describe('GcsStore on a fake GCS JSON API server', () => {
  let fake: FakeGcs;
  let raw: Storage;
  const bucket = 'hexrepo-test';
  let n = 0;

  beforeAll(async () => {
    fake = await startFakeGcs();
    raw = new Storage({ apiEndpoint: fake.endpoint, projectId: 'hexrepo-test' });
    fake.createBucket(bucket);
  });

  afterAll(async () => {
    await fake?.stop();
  });

  /** A store on a fresh prefix of the test bucket; `maxResults: 2` so every listing pages. */
  function store(extra: Partial<GcsStoreOptions> = {}): GcsStore {
    return new GcsStore({ bucket, prefix: `run/${++n}`, apiEndpoint: fake.endpoint, maxResults: 2, ...extra });
  }

  testDriver('gcs (fake JSON API server)', async () => store(), { streamsInChunks: true });

  describe('GCS specifics', () => {
    it('uploads in one multipart request, no credentials sent', async () => {
      const s = store();
      const before = fake.requests.length;
      await s.put('names', enc('n'));
      const reqs = fake.requests.slice(before);
      expect(reqs).toHaveLength(1);
      expect(reqs[0]).toMatchObject({ method: 'POST', path: `/upload/storage/v1/b/${bucket}/o`, query: { uploadType: 'multipart', name: `${s.prefix}names` }, status: 200 });
    });

    it('pages through objects.list with page tokens', async () => {
      const s = store();
      const keys = Array.from({ length: 7 }, (_, i) => `tarballs/p${i}-1.0.0.tar`);
      await Promise.all(keys.map((k) => s.put(k, enc(k))));
      await s.put('names', enc('n'));
      const before = fake.requests.length;
      expect(await keysOf(s, 'tarballs/')).toEqual(keys.sort());
      const lists = fake.requests.slice(before).filter((r) => r.method === 'GET' && r.path === `/storage/v1/b/${bucket}/o`);
      expect(lists).toHaveLength(4); // 2 + 2 + 2 + 1
      expect(lists.every((r) => r.query.maxResults === '2' && r.query.prefix === `${s.prefix}tarballs/`)).toBe(true);
      expect(lists.slice(1).every((r) => typeof r.query.pageToken === 'string')).toBe(true);
      expect(await keysOf(s)).toHaveLength(8);
    });

    it('stores keys under the prefix and lists nothing outside it', async () => {
      const a = store({ prefix: 'tenant/a' });
      const b = store({ prefix: 'tenant/ab' });
      await a.put('packages/foo', enc('a'));
      await b.put('packages/foo', enc('b'));
      const [files] = await raw.bucket(bucket).getFiles({ prefix: 'tenant/' });
      expect(files.map((f) => f.name).sort()).toEqual(['tenant/a/packages/foo', 'tenant/ab/packages/foo']);
      expect(await keysOf(a)).toEqual(['packages/foo']);
      expect(text((await a.get('packages/foo'))?.body)).toBe('a');
    });

    it('of 8 concurrent ifNoneMatch "*" creators exactly one wins', async () => {
      const s = store();
      const results = await Promise.allSettled(Array.from({ length: 8 }, (_, i) => s.put('tarballs/x-1.0.0.tar', enc(`w${i}`), { ifNoneMatch: '*' })));
      const won = results.flatMap((r, i) => (r.status === 'fulfilled' ? [i] : []));
      expect(won).toHaveLength(1);
      for (const r of results) if (r.status === 'rejected') expect(isHexrepoError(r.reason, 'STORAGE_CONFLICT')).toBe(true);
      expect(text((await s.get('tarballs/x-1.0.0.tar'))?.body)).toBe(`w${won[0]}`);
    });

    it('ifMatch with a stale etag conflicts, across stores too (remembered and looked-up generations)', async () => {
      const prefix = `shared/${++n}`;
      const a = store({ prefix });
      const b = store({ prefix });
      const { etag: v1 } = await a.put('names', enc('v1'));
      const { etag: v2 } = await b.put('names', enc('v2'), { ifMatch: v1 }); // b looks the generation up
      expect(await conflictOf(a.put('names', enc('v3'), { ifMatch: v1 }))).toBe(true); // a's memo is stale
      expect(await conflictOf(b.put('names', enc('v3'), { ifMatch: v1 }))).toBe(true);
      expect(await conflictOf(a.put('names', enc('v3'), { ifMatch: '"not-an-etag"' }))).toBe(true);
      const { etag: v3 } = await a.put('names', enc('v3'), { ifMatch: v2 });
      expect(v3).toBe(contentEtag(enc('v3')));
      await b.delete('names');
      expect(await conflictOf(a.put('names', enc('v4'), { ifMatch: v3 }))).toBe(true); // absent key
      expect(await a.get('names')).toBeNull();
    });

    it('an ifMatch on the same bytes rewritten by someone else still conflicts at the generation', async () => {
      const s = store();
      const { etag } = await s.put('names', enc('same'));
      const gen1 = fake.object(bucket, `${s.prefix}names`)!.generation;
      // Another writer stores identical bytes: same content etag, new generation.
      await raw
        .bucket(bucket)
        .file(`${s.prefix}names`)
        .save(Buffer.from('same'), { resumable: false, metadata: { metadata: { [ETAG_METADATA_KEY]: etag } } });
      const gen2 = fake.object(bucket, `${s.prefix}names`)!.generation;
      expect(gen2 > gen1).toBe(true);
      // The memo (gen1) fails with 412; the store looks the object up, finds the etag still matches, and writes.
      const before = fake.requests.length;
      await s.put('names', enc('next'), { ifMatch: etag });
      const uploads = fake.requests.slice(before).filter((r) => r.method === 'POST');
      expect(uploads.map((r) => [r.query.ifGenerationMatch, r.status])).toEqual([
        [String(gen1), 412],
        [String(gen2), 200],
      ]);
      expect(text((await s.get('names'))?.body)).toBe('next');
    });

    it('records Content-Type and Cache-Control, never a Content-Encoding, and the content etag in metadata', async () => {
      const s = store();
      const body = new Uint8Array([0x1f, 0x8b, 8, 0, 1, 2, 3]);
      const { etag, mtime } = await s.put('packages/foo', body, { contentType: 'application/octet-stream', cacheControl: 'public, max-age=60' });
      expect(etag).toBe(contentEtag(body));
      expect(mtime).toBeInstanceOf(Date);
      const [meta] = await raw.bucket(bucket).file(`${s.prefix}packages/foo`).getMetadata();
      expect(meta.contentType).toBe('application/octet-stream');
      expect(meta.cacheControl).toBe('public, max-age=60');
      expect(meta.contentEncoding).toBeUndefined();
      expect(meta.metadata?.[ETAG_METADATA_KEY]).toBe(etag);
      expect((await s.head('packages/foo'))?.etag).toBe(etag);
      expect((await s.get('packages/foo'))?.etag).toBe(etag);
      // A .tar without a content type is not guessed (the SDK would say application/x-tar).
      await s.put('tarballs/foo-1.0.0.tar', enc('t'));
      expect(fake.object(bucket, `${s.prefix}tarballs/foo-1.0.0.tar`)?.contentType).toBe('application/octet-stream');
      expect(fake.object(bucket, `${s.prefix}tarballs/foo-1.0.0.tar`)?.contentEncoding).toBeUndefined();
    });

    it('uses the MD5 for objects other tools wrote, and ifMatch works on it', async () => {
      const s = store();
      await raw.bucket(bucket).file(`${s.prefix}names`).save(Buffer.from('foreign'), { resumable: false });
      const got = await s.get('names');
      expect(got?.etag).toMatch(/^"[A-Za-z0-9+/]{22}=="$/);
      expect((await s.head('names'))?.etag).toBe(got?.etag);
      expect(await conflictOf(s.put('names', enc('mine'), { ifMatch: contentEtag(enc('foreign')) }))).toBe(true);
      const fresh = store({ prefix: s.prefix });
      const { etag } = await fresh.put('names', enc('mine'), { ifMatch: got!.etag });
      expect(etag).toBe(contentEtag(enc('mine')));
    });

    it('get reads the bytes of the generation whose metadata it read', async () => {
      const s = store();
      await s.put('names', enc('v1'));
      const before = fake.requests.length;
      await s.get('names');
      const [metaReq, mediaReq] = fake.requests.slice(before);
      expect(metaReq?.query.alt).toBeUndefined();
      expect(mediaReq?.query).toMatchObject({ alt: 'media', generation: String(fake.object(bucket, `${s.prefix}names`)!.generation) });
    });

    it('skips objects no hexrepo key can name when listing, and deleting a missing key is fine', async () => {
      const s = store();
      for (const key of ['a//b', '.hidden', 'dir/']) await raw.bucket(bucket).file(`${s.prefix}${key}`).save(Buffer.from('x'), { resumable: false });
      await s.put('names', enc('n'));
      expect(await keysOf(s)).toEqual(['names']);
      await s.delete('nope');
      await raw.bucket(bucket).file(`${s.prefix}names`).delete();
      expect(await s.head('names')).toBeNull();
    });

    it('reports a write to a missing bucket as STORAGE_IO', async () => {
      const s = store({ bucket: 'no-such-bucket' });
      const err = await s.put('names', enc('n')).then(
        () => null,
        (e: unknown) => e,
      );
      expect(isHexrepoError(err, 'STORAGE_IO')).toBe(true);
      expect(String(err)).toMatch(/HTTP 404/);
    });
  });
});

// The same contract against real GCS when credentials and a bucket are in the environment.
const gcsBucket = process.env.HEXREPO_TEST_GCS_BUCKET;
const gcsReason = !process.env.GOOGLE_APPLICATION_CREDENTIALS || !gcsBucket ? 'set GOOGLE_APPLICATION_CREDENTIALS and HEXREPO_TEST_GCS_BUCKET to run it' : null;
if (gcsReason) console.warn(`skipping the GCS driver contract on Google Cloud Storage: ${gcsReason}`);

describe.skipIf(gcsReason)('GcsStore on Google Cloud Storage', () => {
  const runPrefix = `hexrepo-test/${Date.now()}-${randomBytes(4).toString('hex')}`;
  const stores: GcsStore[] = [];
  let n = 0;
  afterAll(async () => {
    for (const s of stores) for await (const o of s.list('')) await s.delete(o.key);
  }, 120_000);
  testDriver(
    'gcs (Google Cloud Storage)',
    async () => {
      const s = new GcsStore({ bucket: gcsBucket!, prefix: `${runPrefix}/${++n}`, maxResults: 2 });
      stores.push(s);
      return s;
    },
    { streamsInChunks: true },
  );
});
