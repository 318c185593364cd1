import { randomBytes } from 'node:crypto';
import { CreateBucketCommand, HeadObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client, DeleteObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { isHexrepoError } from '@hexrepo/core';
import { contentEtag } from '@hexrepo/storage';
import { testDriver } from '@hexrepo/storage/testing';
import { ETAG_METADATA_KEY, S3Store, parseS3Url, type S3StoreOptions } from '../src/index.js';
import { rgwUnavailable, startRgw, type RgwServer } from '@hexrepo/test-support/ceph-rgw';

// The SDK warns once that its 2027 releases will need Node 22; the pinned version supports Node 20.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const text = (b: Uint8Array | undefined): string => new TextDecoder().decode(b);

async function conflictOf(p: Promise<unknown>): Promise<boolean> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  return isHexrepoError(err, 'STORAGE_CONFLICT');
}

async function keysOf(store: S3Store, prefix = ''): Promise<string[]> {
  const keys: string[] = [];
  for await (const o of store.list(prefix)) keys.push(o.key);
  return keys.sort();
}

describe('parseS3Url', () => {
  it('reads bucket, prefix, region and endpoint', () => {
    expect(parseS3Url('s3://acme-hex/repos/public/?region=eu-west-1')).toEqual({ bucket: 'acme-hex', prefix: 'repos/public', region: 'eu-west-1' });
    expect(parseS3Url('s3://b?endpoint=http://127.0.0.1:7480&region=us-east-1')).toEqual({
      bucket: 'b',
      endpoint: 'http://127.0.0.1:7480',
      region: 'us-east-1',
      forcePathStyle: true,
    });
    expect(parseS3Url('s3://b/p?endpoint=https://s3.example.com&forcePathStyle=false')).toEqual({
      bucket: 'b',
      prefix: 'p',
      endpoint: 'https://s3.example.com',
      forcePathStyle: false,
    });
  });

  it('refuses what it cannot use', () => {
    for (const bad of ['http://b/p', 's3:///p', 's3://b/../x', 's3://b/a/%2e%2e/x', 's3://b/.git', 's3://b/p?unknown=1', 's3://b?endpoint=ftp://x', 's3://key:secret@b/p', 'not a url']) {
      let code: unknown;
      try {
        parseS3Url(bad);
      } catch (err) {
        code = isHexrepoError(err) ? err.code : err;
      }
      expect(code, bad).toBe('CONFIG_INVALID');
    }
  });

  it('keeps keys under the prefix and refuses an unsafe one', () => {
    const store = new S3Store({ bucket: 'b', prefix: '/a/b/', region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'y' } });
    expect(store.prefix).toBe('a/b/');
    expect(store.url).toBe('s3://b/a/b/');
    expect(() => new S3Store({ bucket: 'b', prefix: 'a/../..' })).toThrow(/PATH|\.\./);
  });
});

const unavailable = rgwUnavailable();
if (unavailable) console.warn(`skipping the S3 driver tests on Ceph RGW: ${unavailable}`);

describe.skipIf(unavailable)('S3Store on Ceph RADOS Gateway', () => {
  let rgw: RgwServer | undefined;
  let raw: S3Client;
  const bucket = `hexrepo-test-${randomBytes(4).toString('hex')}`;
  let n = 0;

  beforeAll(async () => {
    rgw = await startRgw();
    console.log(`Ceph RGW started in ${rgw.startMs} ms at ${rgw.endpoint}`);
    raw = new S3Client({ ...conn(), requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED' });
    await raw.send(new CreateBucketCommand({ Bucket: bucket }));
  }, 180_000);

  afterAll(async () => {
    raw?.destroy();
    await rgw?.stop();
  }, 60_000);

  /** Where and as whom to connect. */
  function conn(): Pick<S3StoreOptions, 'endpoint' | 'region' | 'forcePathStyle' | 'credentials'> {
    if (!rgw) throw new Error('RGW did not start');
    return {
      endpoint: rgw.endpoint,
      region: rgw.region,
      forcePathStyle: true,
      credentials: { accessKeyId: rgw.accessKeyId, secretAccessKey: rgw.secretAccessKey },
    };
  }

  /** A store on a fresh prefix of the test bucket; `maxKeys: 2` so every listing pages. */
  function store(extra: Partial<S3StoreOptions> = {}): S3Store {
    return new S3Store({ bucket, prefix: `run/${++n}`, ...conn(), maxKeys: 2, ...extra });
  }

  testDriver('s3 (Ceph RADOS Gateway)', async () => store(), { streamsInChunks: true });

  describe('S3 specifics', () => {
    it('pages through ListObjectsV2 with continuation tokens', async () => {
      const s = store();
      const keys = Array.from({ length: 7 }, (_, i) => `tarballs/p${i}-1.0.0.tar`);
      await Promise.all(keys.map((k) => s.put(k, enc(k))));
      await s.put('names', enc('n'));
      const send = vi.spyOn(s.client, 'send');
      expect(await keysOf(s, 'tarballs/')).toEqual(keys.sort());
      const lists = send.mock.calls.filter(([cmd]) => cmd instanceof ListObjectsV2Command);
      expect(lists).toHaveLength(4); // 2 + 2 + 2 + 1
      expect(lists.slice(1).every(([cmd]) => typeof (cmd as ListObjectsV2Command).input.ContinuationToken === 'string')).toBe(true);
      send.mockRestore();
      expect(await keysOf(s)).toHaveLength(8);
    });

    it('stores keys under the prefix and lists nothing outside it', async () => {
      const a = store({ prefix: 'tenant/a' });
      const b = store({ prefix: 'tenant/ab' });
      await a.put('packages/foo', enc('a'));
      await b.put('packages/foo', enc('b'));
      const res = await raw.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: 'tenant/' }));
      expect((res.Contents ?? []).map((o) => o.Key).sort()).toEqual(['tenant/a/packages/foo', 'tenant/ab/packages/foo']);
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

    it('If-Match with a stale etag conflicts, across stores too (remembered and looked-up S3 ETags)', async () => {
      const prefix = `shared/${++n}`;
      const a = store({ prefix });
      const b = store({ prefix });
      const { etag: v1 } = await a.put('names', enc('v1'));
      const { etag: v2 } = await b.put('names', enc('v2'), { ifMatch: v1 }); // b looks the S3 ETag up
      expect(await conflictOf(a.put('names', enc('v3'), { ifMatch: v1 }))).toBe(true); // a's memo is stale
      expect(await conflictOf(b.put('names', enc('v3'), { ifMatch: v1 }))).toBe(true);
      expect(await conflictOf(a.put('names', enc('v3'), { ifMatch: '"not-an-etag"' }))).toBe(true);
      const { etag: v3 } = await a.put('names', enc('v3'), { ifMatch: v2 });
      expect(v3).toBe(contentEtag(enc('v3')));
      await b.delete('names');
      expect(await conflictOf(a.put('names', enc('v4'), { ifMatch: v3 }))).toBe(true); // absent key
      expect(await a.get('names')).toBeNull();
    });

    it('records Content-Type and Cache-Control, never a Content-Encoding, and the content etag in metadata', async () => {
      const s = store();
      const body = new Uint8Array([0x1f, 0x8b, 8, 0, 1, 2, 3]);
      const { etag } = await s.put('packages/foo', body, { contentType: 'application/octet-stream', cacheControl: 'public, max-age=60' });
      expect(etag).toBe(contentEtag(body));
      const res = await raw.send(new HeadObjectCommand({ Bucket: bucket, Key: `${s.prefix}packages/foo` }));
      expect(res.ContentType).toBe('application/octet-stream');
      expect(res.CacheControl).toBe('public, max-age=60');
      expect(res.ContentEncoding).toBeUndefined();
      expect(res.Metadata?.[ETAG_METADATA_KEY]).toBe(contentEtag(body));
      expect(res.ETag).not.toBe(etag); // S3's own is an MD5
      expect((await s.head('packages/foo'))?.etag).toBe(etag);
      expect((await s.get('packages/foo'))?.etag).toBe(etag);
    });

    it("uses S3's ETag for objects other tools wrote, and If-Match works on it", async () => {
      const s = store();
      await raw.send(new PutObjectCommand({ Bucket: bucket, Key: `${s.prefix}names`, Body: enc('foreign') }));
      const got = await s.get('names');
      expect(got?.etag).toMatch(/^"[0-9a-f]{32}"$/);
      expect(await conflictOf(s.put('names', enc('mine'), { ifMatch: contentEtag(enc('foreign')) }))).toBe(true);
      const fresh = store({ prefix: s.prefix });
      const { etag } = await fresh.put('names', enc('mine'), { ifMatch: got!.etag });
      expect(etag).toBe(contentEtag(enc('mine')));
    });

    it('skips objects no hexrepo key can name when listing, and deleting a missing key is fine', async () => {
      const s = store();
      for (const key of ['a//b', '.hidden', 'dir/']) await raw.send(new PutObjectCommand({ Bucket: bucket, Key: `${s.prefix}${key}`, Body: enc('x') }));
      await s.put('names', enc('n'));
      expect(await keysOf(s)).toEqual(['names']);
      await s.delete('nope');
      await raw.send(new DeleteObjectCommand({ Bucket: bucket, Key: `${s.prefix}names` }));
      expect(await s.head('names')).toBeNull();
    });
  });
});

// The same contract against real AWS S3 when a bucket and credentials are in the environment.
const awsBucket = process.env.HEXREPO_TEST_S3_BUCKET;
const awsReason = !process.env.AWS_ACCESS_KEY_ID || !awsBucket ? 'set AWS_ACCESS_KEY_ID (and the secret) and HEXREPO_TEST_S3_BUCKET to run it' : null;
if (awsReason) console.warn(`skipping the S3 driver contract on AWS S3: ${awsReason}`);

describe.skipIf(awsReason)('S3Store on AWS S3', () => {
  const runPrefix = `hexrepo-test/${Date.now()}-${randomBytes(4).toString('hex')}`;
  const stores: S3Store[] = [];
  let n = 0;
  afterAll(async () => {
    for (const s of stores) {
      for await (const o of s.list('')) await s.delete(o.key);
      s.client.destroy();
    }
  }, 120_000);
  testDriver(
    's3 (AWS)',
    async () => {
      const s = new S3Store({ bucket: awsBucket!, prefix: `${runPrefix}/${++n}`, ...(process.env.AWS_REGION && { region: process.env.AWS_REGION }), maxKeys: 2 });
      stores.push(s);
      return s;
    },
    { streamsInChunks: true },
  );
});
