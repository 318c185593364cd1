import { Storage, type File, type FileMetadata, type SaveOptions, type StorageOptions } from '@google-cloud/storage';
import { HexrepoError, isHexrepoError } from '@hexrepo/core';
import { bucketPrefix, endpointParam, parseBucketUrl, type BlobStore, type ObjectInfo, type PutOptions, type PutResult, type StoredObject, type StreamedObject } from '@hexrepo/storage';
import { backendIoError, conflictError, contentEtag, etagFromMetadata, etagsMatch, keyOfObject, prefixedKey, VersionMemo } from '@hexrepo/storage/driver-kit';

/** Custom metadata key (`metadata.metadata.hexrepoEtag`) holding hexrepo's content etag. */
export const ETAG_METADATA_KEY = 'hexrepoEtag';

export interface GcsStoreOptions {
  bucket: string;
  /** Folder inside the bucket that holds the repository (`acme/public`); keys are stored under it. */
  prefix?: string;
  /**
   * Another JSON API endpoint (`http://127.0.0.1:4443`, an emulator, a private endpoint). With one,
   * the SDK sends no credentials unless `useAuthWithCustomEndpoint` is set.
   */
  apiEndpoint?: string;
  /** Send the default chain's credentials to a custom `apiEndpoint` too. */
  useAuthWithCustomEndpoint?: boolean;
  /** Only needed for operations that name a project (none of the store's own); the default chain's otherwise. */
  projectId?: string;
  /** Page size of objects.list (GCS's maximum and default is 1000); small values exercise paging in tests. */
  maxResults?: number;
  /** A ready client to use instead of building one from the settings above. */
  storage?: Storage;
}

/** What the store remembers of an object it wrote or read: hexrepo's etag and GCS's generation. */
interface Version {
  etag: string;
  generation: string;
}

/** How often get retries when the object is replaced between reading its metadata and its bytes. */
const GET_ATTEMPTS = 5;

/**
 * A store in a Google Cloud Storage bucket, through the JSON API of `@google-cloud/storage`.
 *
 * Conditional writes are GCS preconditions, checked atomically by the server: `ifNoneMatch: '*'` is
 * `ifGenerationMatch=0`; an `ifMatch` etag is translated into the generation of the object that has
 * that content etag — remembered from this store's own writes and reads, else looked up — and the
 * upload is conditional on that generation, so a concurrent change between the two still loses (412).
 *
 * ETags: every BlobStore reports the same content etag (`contentEtag`); each put records it in the
 * object's custom metadata (`hexrepoEtag`), and get/head return it (objects other tools wrote fall
 * back to their quoted base64 MD5, or GCS's etag for composite objects, which have no MD5).
 *
 * Uploads are single-request multipart uploads (`resumable: false`): repository files are small, and
 * a resumable session would cost an extra round trip per write.
 */
export class GcsStore implements BlobStore {
  readonly url: string;
  readonly bucket: string;
  /** `''` or a prefix ending in `/`. */
  readonly prefix: string;
  readonly storage: Storage;
  readonly #maxResults: number | undefined;
  readonly #versions = new VersionMemo<Version>();

  constructor(opts: GcsStoreOptions) {
    if (!opts.bucket) throw new HexrepoError('CONFIG_INVALID', 'a GCS store needs a bucket');
    this.bucket = opts.bucket;
    this.prefix = bucketPrefix(opts.prefix);
    this.url = `gs://${opts.bucket}/${this.prefix}`;
    this.#maxResults = opts.maxResults;
    this.storage = opts.storage ?? new Storage(storageOptions(opts));
  }

  async get(key: string): Promise<StoredObject | null> {
    const full = this.#key(key);
    // Metadata first, then the bytes of exactly that generation: a GET pinned to a generation that
    // has since been replaced answers 404, and the loop reads the new one.
    for (let attempt = 1; ; attempt++) {
      const meta = await this.#metadata(key, full, 'get');
      if (!meta) return null;
      let body: Buffer;
      try {
        [body] = await this.#file(full, meta.generation).download({ validation: 'crc32c' });
      } catch (err) {
        if (statusOf(err) === 404 && attempt < GET_ATTEMPTS) continue;
        if (statusOf(err) === 404) return this.#versions.forget(full);
        throw ioError('get', key, err);
      }
      const bytes = new Uint8Array(body.buffer, body.byteOffset, body.byteLength);
      return { body: bytes, etag: meta.etag, size: bytes.byteLength, mtime: meta.mtime };
    }
  }

  /** The bytes of the current generation as GCS streams them, with hexrepo's etag. */
  async getStream(key: string): Promise<StreamedObject | null> {
    const full = this.#key(key);
    const meta = await this.#metadata(key, full, 'get');
    if (!meta) return null;
    const body = this.#file(full, meta.generation).createReadStream({ validation: 'crc32c' }) as AsyncIterable<Uint8Array>;
    return { body, etag: meta.etag, size: meta.size, mtime: meta.mtime };
  }

  async head(key: string): Promise<(ObjectInfo & { etag: string }) | null> {
    const meta = await this.#metadata(key, this.#key(key), 'head');
    return meta && { key, size: meta.size, mtime: meta.mtime, etag: meta.etag };
  }

  async #metadata(key: string, full: string, op: string): Promise<(Version & { size: number; mtime: Date }) | null> {
    let meta: FileMetadata;
    try {
      [meta] = await this.#file(full).getMetadata();
    } catch (err) {
      if (statusOf(err) === 404) return this.#versions.forget(full);
      throw ioError(op, key, err);
    }
    const etag = etagOf(meta);
    const generation = meta.generation === undefined ? '' : String(meta.generation);
    if (generation !== '') this.#versions.remember(full, { etag, generation });
    return { etag, generation, size: Number(meta.size ?? 0), mtime: dateOf(meta) };
  }

  async put(key: string, body: Uint8Array, opts: PutOptions = {}): Promise<PutResult> {
    const full = this.#key(key);
    const etag = contentEtag(body);
    if (opts.ifMatch === undefined) return this.#put(key, full, body, etag, opts, opts.ifNoneMatch === '*' ? '0' : undefined);

    // ifMatch: first with the generation this store remembers for that etag, if any; when GCS says
    // no, the memo may be stale (another writer stored the same bytes again), so look it up once.
    const memo = this.#versions.get(full);
    if (memo && memo.etag === opts.ifMatch) {
      try {
        return await this.#put(key, full, body, etag, opts, memo.generation);
      } catch (err) {
        if (!isHexrepoError(err, 'STORAGE_CONFLICT')) throw err;
        if (this.#versions.get(full) === memo) this.#versions.forget(full);
      }
    }
    const current = await this.#metadata(key, full, 'put');
    if (!current) throw conflictError(key, null, opts);
    if (!etagsMatch(current.etag, opts.ifMatch) || current.generation === '') throw conflictError(key, current.etag, opts);
    return this.#put(key, full, body, etag, opts, current.generation);
  }

  async #put(key: string, full: string, body: Uint8Array, etag: string, opts: PutOptions, ifGenerationMatch: string | undefined): Promise<PutResult> {
    const file = this.#file(full);
    const saveOpts: SaveOptions = {
      resumable: false,
      gzip: false,
      validation: 'crc32c',
      metadata: {
        // Without one the SDK guesses from the name (`.tar` → application/x-tar); say what it is.
        contentType: opts.contentType ?? 'application/octet-stream',
        ...(opts.cacheControl !== undefined && { cacheControl: opts.cacheControl }),
        metadata: { [ETAG_METADATA_KEY]: etag },
      },
      ...(ifGenerationMatch !== undefined && { preconditionOpts: { ifGenerationMatch: Number(ifGenerationMatch) } }),
    };
    try {
      await file.save(Buffer.from(body.buffer, body.byteOffset, body.byteLength), saveOpts);
    } catch (err) {
      // 412: the precondition failed. 409: GCS's answer when a concurrent write to the same object wins.
      const status = statusOf(err);
      if (status === 412 || status === 409) throw conflictError(key, undefined, opts, err);
      throw ioError('put', key, err);
    }
    const written = file.metadata;
    if (written.generation !== undefined) this.#versions.remember(full, { etag, generation: String(written.generation) });
    else this.#versions.forget(full);
    return written.updated ? { etag, mtime: new Date(written.updated) } : { etag };
  }

  async delete(key: string): Promise<void> {
    const full = this.#key(key);
    this.#versions.forget(full);
    try {
      await this.#file(full).delete({ ignoreNotFound: true });
    } catch (err) {
      if (statusOf(err) !== 404) throw ioError('delete', key, err);
    }
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    let pageToken: string | undefined;
    do {
      let files: File[];
      let next: { pageToken?: string } | null | undefined;
      try {
        [files, next] = await this.storage.bucket(this.bucket).getFiles({
          prefix: this.prefix + prefix,
          autoPaginate: false,
          ...(pageToken !== undefined && { pageToken }),
          ...(this.#maxResults !== undefined && { maxResults: this.#maxResults }),
        });
      } catch (err) {
        throw ioError('list', prefix || '.', err);
      }
      for (const f of files) {
        const key = keyOfObject(this.prefix, f.name);
        if (key === null) continue;
        yield { key, size: Number(f.metadata.size ?? 0), mtime: dateOf(f.metadata) };
      }
      pageToken = next?.pageToken || undefined;
    } while (pageToken !== undefined);
  }

  #key(key: string): string {
    return prefixedKey(this.prefix, key);
  }

  #file(full: string, generation?: string): File {
    return this.storage.bucket(this.bucket).file(full, generation === undefined ? {} : { generation: Number(generation) });
  }
}

function storageOptions(opts: GcsStoreOptions): StorageOptions {
  return {
    ...(opts.apiEndpoint !== undefined && { apiEndpoint: opts.apiEndpoint }),
    ...(opts.useAuthWithCustomEndpoint !== undefined && { useAuthWithCustomEndpoint: opts.useAuthWithCustomEndpoint }),
    ...(opts.projectId !== undefined && { projectId: opts.projectId }),
  };
}

/** hexrepo's etag of an object, or a content-derived stand-in for objects other tools wrote. */
function etagOf(meta: FileMetadata): string {
  return etagFromMetadata(meta.metadata?.[ETAG_METADATA_KEY], meta.md5Hash ?? meta.etag);
}

function dateOf(meta: FileMetadata): Date {
  const when = meta.updated ?? meta.timeCreated;
  return when ? new Date(when) : new Date(0);
}

/**
 * Store options from `gs://BUCKET/PREFIX?endpoint=URL&project=ID`.
 */
export function parseGcsUrl(url: string): GcsStoreOptions {
  const { bucket, prefix, params } = parseBucketUrl(url, 'gs', ['endpoint', 'project'], 'use GOOGLE_APPLICATION_CREDENTIALS or the metadata server');
  const opts: GcsStoreOptions = { bucket, ...(prefix !== '' && { prefix }) };
  const endpoint = params.get('endpoint');
  if (endpoint !== undefined) opts.apiEndpoint = endpointParam(endpoint, url);
  const project = params.get('project');
  if (project !== undefined) {
    if (!/^[a-z][-a-z0-9:.]{3,}[a-z0-9]$/i.test(project)) throw new HexrepoError('CONFIG_INVALID', `not a project id: ${JSON.stringify(project)}`, { url });
    opts.projectId = project;
  }
  return opts;
}

function statusOf(err: unknown): number | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === 'number') return code;
  if (typeof code === 'string' && /^\d{3}$/.test(code)) return Number(code);
  return undefined;
}

function ioError(op: string, key: string, err: unknown): HexrepoError {
  return backendIoError('GCS', op, key, err, statusOf(err));
}
