import { DeleteObjectCommand, GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client, type PutObjectCommandInput, type S3ClientConfig } from '@aws-sdk/client-s3';
import { HexrepoError, isHexrepoError } from '@hexrepo/core';
import { bucketPrefix, endpointParam, parseBucketUrl, type BlobStore, type ObjectInfo, type PutOptions, type PutResult, type StoredObject, type StreamedObject } from '@hexrepo/storage';
import { backendIoError, conflictError, contentEtag, etagFromMetadata, etagsMatch, keyOfObject, prefixedKey, unquoteEtag, VersionMemo } from '@hexrepo/storage/driver-kit';

/** Object metadata key holding hexrepo's content etag (sent as `x-amz-meta-hexrepo-etag`). */
export const ETAG_METADATA_KEY = 'hexrepo-etag';

export interface S3Credentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

export interface S3StoreOptions {
  bucket: string;
  /** Folder inside the bucket that holds the repository (`acme/public`); keys are stored under it. */
  prefix?: string;
  /** For S3-compatible servers (`http://127.0.0.1:7480`); AWS when omitted. */
  endpoint?: string;
  /** @default 'us-east-1' unless the SDK's default chain finds one */
  region?: string;
  /** Path-style addressing (`endpoint/bucket/key`), which most S3-compatible servers need. */
  forcePathStyle?: boolean;
  /** Static credentials; the SDK's default chain (environment, profile, instance role) when omitted. */
  credentials?: S3Credentials;
  /** Page size of ListObjectsV2 (S3's maximum and default is 1000); small values exercise paging in tests. */
  maxKeys?: number;
  /** A ready client to use instead of building one from the settings above. */
  client?: S3Client;
}

/** What the store remembers of an object it wrote or read: hexrepo's etag and S3's own. */
interface EtagPair {
  etag: string;
  s3Etag: string;
}

/**
 * A store in an S3 bucket (AWS or compatible: Ceph RGW, MinIO, R2...). Conditional writes use S3's
 * own conditional PutObject (`If-None-Match: *`, `If-Match`), so they are atomic on the server.
 *
 * ETags: every BlobStore reports the same content etag (`contentEtag`, a SHA-256 prefix), while S3's
 * ETag is an MD5 (or something else entirely for multipart or KMS-encrypted objects). So each put
 * records hexrepo's etag in the object's metadata, and get/head return it (objects written by other
 * tools fall back to S3's ETag). An `ifMatch` is translated into the current object's S3 ETag —
 * remembered from this store's own puts and reads, else looked up with a HEAD — and the PUT is then
 * conditional on that S3 ETag, so a concurrent change between the two still loses with 412.
 */
export class S3Store implements BlobStore {
  readonly url: string;
  readonly bucket: string;
  /** `''` or a prefix ending in `/`. */
  readonly prefix: string;
  readonly client: S3Client;
  readonly #maxKeys: number | undefined;
  readonly #etags = new VersionMemo<EtagPair>();

  constructor(opts: S3StoreOptions) {
    if (!opts.bucket) throw new HexrepoError('CONFIG_INVALID', 'an S3 store needs a bucket');
    this.bucket = opts.bucket;
    this.prefix = bucketPrefix(opts.prefix);
    this.url = `s3://${opts.bucket}/${this.prefix}`;
    this.#maxKeys = opts.maxKeys;
    this.client = opts.client ?? new S3Client(clientConfig(opts));
  }

  async get(key: string): Promise<StoredObject | null> {
    const full = this.#key(key);
    try {
      const res = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: full }));
      const body = res.Body ? await res.Body.transformToByteArray() : new Uint8Array(0);
      const etag = this.#remember(full, res.Metadata, res.ETag);
      return { body, etag, size: body.byteLength, mtime: res.LastModified ?? new Date(0) };
    } catch (err) {
      if (statusOf(err) === 404) return this.#etags.forget(full);
      throw ioError('get', key, err);
    }
  }

  /** The object's bytes as S3 streams them, with hexrepo's etag from the metadata. */
  async getStream(key: string): Promise<StreamedObject | null> {
    const full = this.#key(key);
    try {
      const res = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: full }));
      const etag = this.#remember(full, res.Metadata, res.ETag);
      const body: AsyncIterable<Uint8Array> | Iterable<Uint8Array> = (res.Body as AsyncIterable<Uint8Array> | undefined) ?? [];
      return { body, etag, size: res.ContentLength ?? 0, mtime: res.LastModified ?? new Date(0) };
    } catch (err) {
      if (statusOf(err) === 404) return this.#etags.forget(full);
      throw ioError('get', key, err);
    }
  }

  async head(key: string): Promise<(ObjectInfo & { etag: string }) | null> {
    const found = await this.#head(key);
    return found && { key, size: found.size, mtime: found.mtime, etag: found.etag };
  }

  async #head(key: string): Promise<(EtagPair & { size: number; mtime: Date }) | null> {
    const full = this.#key(key);
    try {
      const res = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: full }));
      const etag = this.#remember(full, res.Metadata, res.ETag);
      return { etag, s3Etag: res.ETag ?? '', size: res.ContentLength ?? 0, mtime: res.LastModified ?? new Date(0) };
    } catch (err) {
      if (statusOf(err) === 404) return this.#etags.forget(full);
      throw ioError('head', key, err);
    }
  }

  async put(key: string, body: Uint8Array, opts: PutOptions = {}): Promise<PutResult> {
    const full = this.#key(key);
    const etag = contentEtag(body);
    const input: PutObjectCommandInput = {
      Bucket: this.bucket,
      Key: full,
      Body: body,
      ContentLength: body.byteLength,
      Metadata: { [ETAG_METADATA_KEY]: etag },
    };
    if (opts.contentType !== undefined) input.ContentType = opts.contentType;
    if (opts.cacheControl !== undefined) input.CacheControl = opts.cacheControl;
    if (opts.ifNoneMatch === '*') input.IfNoneMatch = '*';

    if (opts.ifMatch === undefined) return this.#put(key, input, etag, opts);

    // If-Match: first with the S3 ETag this store remembers for that content, if any; when S3 says
    // no, the memo may be stale (another tool rewrote the same bytes), so look the object up once.
    const memo = this.#etags.get(full);
    if (memo && memo.etag === opts.ifMatch) {
      try {
        return await this.#put(key, { ...input, IfMatch: unquoteEtag(memo.s3Etag) }, etag, opts);
      } catch (err) {
        if (!isHexrepoError(err, 'STORAGE_CONFLICT')) throw err;
        if (this.#etags.get(full) === memo) this.#etags.forget(full);
      }
    }
    const current = await this.#head(key);
    if (!current) throw conflictError(key, null, opts);
    if (!etagsMatch(current.etag, opts.ifMatch) || current.s3Etag === '') throw conflictError(key, current.etag, opts);
    return this.#put(key, { ...input, IfMatch: unquoteEtag(current.s3Etag) }, etag, opts);
  }

  async #put(key: string, input: PutObjectCommandInput, etag: string, opts: PutOptions): Promise<PutResult> {
    const full = input.Key!;
    try {
      const res = await this.client.send(new PutObjectCommand(input));
      if (res.ETag) this.#etags.remember(full, { etag, s3Etag: res.ETag });
      else this.#etags.forget(full);
      return { etag };
    } catch (err) {
      const status = statusOf(err);
      // 412: the condition failed. 409: AWS's answer to a conditional write racing another one.
      // 404 on If-Match: AWS's answer when there is no object (Ceph says 412).
      if (status === 412 || status === 409 || (status === 404 && input.IfMatch !== undefined)) {
        throw conflictError(key, undefined, opts, err);
      }
      throw ioError('put', key, err);
    }
  }

  async delete(key: string): Promise<void> {
    const full = this.#key(key);
    this.#etags.forget(full);
    try {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: full }));
    } catch (err) {
      if (statusOf(err) !== 404) throw ioError('delete', key, err);
    }
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    let token: string | undefined;
    do {
      let res;
      try {
        res = await this.client.send(
          new ListObjectsV2Command({
            Bucket: this.bucket,
            Prefix: this.prefix + prefix,
            ...(token !== undefined && { ContinuationToken: token }),
            ...(this.#maxKeys !== undefined && { MaxKeys: this.#maxKeys }),
          }),
        );
      } catch (err) {
        throw ioError('list', prefix || '.', err);
      }
      for (const obj of res.Contents ?? []) {
        const key = obj.Key === undefined ? null : keyOfObject(this.prefix, obj.Key);
        if (key === null) continue;
        // ListObjectsV2 reports milliseconds where HEAD and GET report whole seconds
        // (Last-Modified is an HTTP date): round down so one object has one mtime everywhere.
        yield { key, size: obj.Size ?? 0, mtime: wholeSeconds(obj.LastModified) };
      }
      token = res.IsTruncated ? res.NextContinuationToken : undefined;
    } while (token !== undefined);
  }

  #key(key: string): string {
    return prefixedKey(this.prefix, key);
  }

  /** hexrepo's etag of a fetched object (S3's own for objects other tools wrote), remembered with S3's. */
  #remember(full: string, metadata: Record<string, string> | undefined, s3Etag: string | undefined): string {
    const etag = etagFromMetadata(metadata?.[ETAG_METADATA_KEY], s3Etag);
    if (s3Etag) this.#etags.remember(full, { etag, s3Etag });
    return etag;
  }
}

function clientConfig(opts: S3StoreOptions): S3ClientConfig {
  return {
    region: opts.region ?? 'us-east-1',
    ...(opts.endpoint !== undefined && { endpoint: opts.endpoint }),
    ...(opts.forcePathStyle !== undefined && { forcePathStyle: opts.forcePathStyle }),
    ...(opts.credentials !== undefined && { credentials: opts.credentials }),
    // Checksums only where S3 requires them: the default (a trailing CRC32 in aws-chunked encoding)
    // is refused by several S3-compatible servers (Ceph RGW Pacific: 411 MissingContentLength).
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  };
}

/**
 * Store options from `s3://BUCKET/PREFIX?region=R&endpoint=URL&forcePathStyle=true|false`.
 * With an endpoint, path-style addressing is the default (S3-compatible servers mostly need it).
 */
export function parseS3Url(url: string): S3StoreOptions {
  const { bucket, prefix, params } = parseBucketUrl(url, 's3', ['region', 'endpoint', 'forcePathStyle'], 'use the environment or a profile');
  const opts: S3StoreOptions = { bucket, ...(prefix !== '' && { prefix }) };
  const region = params.get('region');
  if (region !== undefined) opts.region = region;
  const endpoint = params.get('endpoint');
  if (endpoint !== undefined) opts.endpoint = endpointParam(endpoint, url);
  const pathStyle = params.get('forcePathStyle');
  if (pathStyle !== undefined) {
    if (pathStyle !== 'true' && pathStyle !== 'false') throw new HexrepoError('CONFIG_INVALID', `forcePathStyle must be true or false, got ${JSON.stringify(pathStyle)}`, { url });
    opts.forcePathStyle = pathStyle === 'true';
  }
  // With an endpoint, path-style addressing is the default (S3-compatible servers mostly need it).
  if (opts.endpoint !== undefined && opts.forcePathStyle === undefined) opts.forcePathStyle = true;
  return opts;
}

function statusOf(err: unknown): number | undefined {
  const meta = (err as { $metadata?: { httpStatusCode?: number } } | null)?.$metadata;
  if (meta?.httpStatusCode !== undefined) return meta.httpStatusCode;
  const name = (err as { name?: string } | null)?.name;
  if (name === 'NoSuchKey' || name === 'NotFound') return 404;
  if (name === 'PreconditionFailed') return 412;
  return undefined;
}

function ioError(op: string, key: string, err: unknown): HexrepoError {
  return backendIoError('S3', op, key, err, statusOf(err));
}

function wholeSeconds(date: Date | undefined): Date {
  return new Date(Math.floor((date?.getTime() ?? 0) / 1000) * 1000);
}
