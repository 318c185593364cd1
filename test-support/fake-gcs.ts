/**
 * Test support: a small in-memory Google Cloud Storage server speaking the part of the JSON API that
 * `@google-cloud/storage` uses for single-request uploads, reads, deletes and listings. On loopback,
 * on a free port, no credentials (the SDK sends none to a custom `apiEndpoint`).
 *
 *   const gcs = await startFakeGcs();           // gcs.endpoint = 'http://127.0.0.1:PORT'
 *   gcs.createBucket('b');
 *   new Storage({ apiEndpoint: gcs.endpoint }) // or GcsStore({ bucket: 'b', apiEndpoint: gcs.endpoint })
 *   await gcs.stop();
 *
 * Implemented: buckets insert/get; objects insert (uploadType=multipart and media), get (metadata and
 * alt=media, optionally of a given generation), delete, list (prefix, pageToken, maxResults). Every
 * write gets a new, larger generation. Preconditions ifGenerationMatch / ifGenerationNotMatch /
 * ifMetagenerationMatch / ifMetagenerationNotMatch answer 412; missing buckets and objects 404. Each
 * request is handled in one synchronous step once its body has arrived, so a condition is checked and
 * the write applied atomically, as on GCS. Not implemented: resumable uploads, compose, copy/rewrite,
 * patch, ACLs, versioning (old generations are gone), delimiter listings; those answer 501.
 */
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';

export interface FakeGcsRequest {
  method: string;
  /** Path without the query. */
  path: string;
  query: Record<string, string>;
  status: number;
}

export interface FakeGcsObject {
  name: string;
  body: Buffer;
  generation: bigint;
  metageneration: number;
  contentType: string;
  contentEncoding?: string;
  cacheControl?: string;
  metadata?: Record<string, string>;
  created: Date;
  updated: Date;
}

export interface FakeGcs {
  /** `http://127.0.0.1:PORT`, for the SDK's `apiEndpoint`. */
  endpoint: string;
  createBucket(name: string): void;
  /** The live object, or undefined. */
  object(bucket: string, name: string): FakeGcsObject | undefined;
  /** Every request answered so far, in order. */
  requests: FakeGcsRequest[];
  stop(): Promise<void>;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly reason: string,
  ) {
    super(message);
  }
}

const CRC32C_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

/** GCS's crc32c field: the big-endian CRC-32C, base64. */
export function crc32cBase64(data: Uint8Array): string {
  let crc = 0xffffffff;
  for (const byte of data) crc = CRC32C_TABLE[(crc ^ byte) & 0xff]! ^ (crc >>> 8);
  const out = Buffer.alloc(4);
  out.writeUInt32BE((crc ^ 0xffffffff) >>> 0);
  return out.toString('base64');
}

const md5Base64 = (data: Uint8Array): string => createHash('md5').update(data).digest('base64');

export async function startFakeGcs(): Promise<FakeGcs> {
  const buckets = new Map<string, Map<string, FakeGcsObject>>();
  const requests: FakeGcsRequest[] = [];
  // Generations are microsecond timestamps on GCS; here a counter that starts at one and only grows.
  let lastGeneration = BigInt(Date.now()) * 1000n;
  const nextGeneration = (): bigint => {
    const now = BigInt(Date.now()) * 1000n;
    lastGeneration = now > lastGeneration ? now : lastGeneration + 1n;
    return lastGeneration;
  };

  let endpoint = '';

  const resource = (bucket: string, o: FakeGcsObject): Record<string, unknown> => {
    const id = `${bucket}/${o.name}/${o.generation}`;
    const path = `/b/${encodeURIComponent(bucket)}/o/${encodeURIComponent(o.name)}`;
    return {
      kind: 'storage#object',
      id,
      selfLink: `${endpoint}/storage/v1${path}`,
      mediaLink: `${endpoint}/download/storage/v1${path}?generation=${o.generation}&alt=media`,
      name: o.name,
      bucket,
      generation: String(o.generation),
      metageneration: String(o.metageneration),
      contentType: o.contentType,
      ...(o.contentEncoding !== undefined && { contentEncoding: o.contentEncoding }),
      ...(o.cacheControl !== undefined && { cacheControl: o.cacheControl }),
      storageClass: 'STANDARD',
      size: String(o.body.byteLength),
      md5Hash: md5Base64(o.body),
      crc32c: crc32cBase64(o.body),
      etag: Buffer.from(`${o.generation}/${o.metageneration}`).toString('base64'),
      timeCreated: o.created.toISOString(),
      updated: o.updated.toISOString(),
      ...(o.metadata !== undefined && { metadata: o.metadata }),
    };
  };

  const bucketOf = (name: string): Map<string, FakeGcsObject> => {
    const b = buckets.get(name);
    if (!b) throw new HttpError(404, `The specified bucket does not exist.`, 'notFound');
    return b;
  };

  /** Checks the request's preconditions against the live object (undefined when there is none). */
  const checkPreconditions = (query: Record<string, string>, o: FakeGcsObject | undefined): void => {
    const gen = o ? o.generation : 0n;
    const fail = (what: string): never => {
      throw new HttpError(412, `At least one of the pre-conditions you specified did not hold. (${what})`, 'conditionNotMet');
    };
    const number = (name: string): bigint | undefined => {
      const v = query[name];
      if (v === undefined) return undefined;
      if (!/^-?\d+$/.test(v)) throw new HttpError(400, `Invalid argument for ${name}: ${v}`, 'invalid');
      return BigInt(v);
    };
    const ifGen = number('ifGenerationMatch');
    if (ifGen !== undefined && ifGen !== gen) fail('ifGenerationMatch');
    const ifNotGen = number('ifGenerationNotMatch');
    if (ifNotGen !== undefined && ifNotGen === gen) fail('ifGenerationNotMatch');
    const ifMeta = number('ifMetagenerationMatch');
    if (ifMeta !== undefined && (!o || BigInt(o.metageneration) !== ifMeta)) fail('ifMetagenerationMatch');
    const ifNotMeta = number('ifMetagenerationNotMatch');
    if (ifNotMeta !== undefined && o && BigInt(o.metageneration) === ifNotMeta) fail('ifMetagenerationNotMatch');
  };

  /** The live object, of the requested generation if the query names one; 404 otherwise. */
  const liveObject = (bucket: string, name: string, query: Record<string, string>): FakeGcsObject => {
    const o = bucketOf(bucket).get(name);
    if (!o || (query.generation !== undefined && String(o.generation) !== query.generation)) {
      throw new HttpError(404, `No such object: ${bucket}/${name}`, 'notFound');
    }
    return o;
  };

  const sendJson = (res: ServerResponse, status: number, value: unknown): void => {
    const body = Buffer.from(JSON.stringify(value));
    res.writeHead(status, { 'content-type': 'application/json; charset=UTF-8', 'content-length': body.byteLength });
    res.end(body);
  };

  const insert = (bucket: string, query: Record<string, string>, req: IncomingMessage, raw: Buffer): Record<string, unknown> => {
    const objects = bucketOf(bucket);
    let meta: Record<string, unknown> = {};
    let body: Buffer;
    let mediaType: string | undefined;
    const type = req.headers['content-type'] ?? '';
    if (query.uploadType === 'multipart') {
      const parts = parseMultipart(type, raw);
      if (parts.length !== 2) throw new HttpError(400, 'a multipart upload needs a metadata part and a media part', 'invalid');
      meta = JSON.parse(parts[0]!.body.toString('utf8')) as Record<string, unknown>;
      body = parts[1]!.body;
      mediaType = parts[1]!.headers['content-type'];
    } else if (query.uploadType === 'media') {
      body = raw;
      mediaType = type || undefined;
    } else {
      throw new HttpError(501, `uploadType ${query.uploadType ?? '(none)'} is not implemented by the fake`, 'notImplemented');
    }
    const name = query.name ?? (typeof meta.name === 'string' ? meta.name : undefined);
    if (!name) throw new HttpError(400, 'Required object name', 'required');
    if (meta.metadata !== undefined && (typeof meta.metadata !== 'object' || meta.metadata === null)) {
      throw new HttpError(400, 'metadata must be an object', 'invalid');
    }
    const existing = objects.get(name);
    checkPreconditions(query, existing);
    const now = new Date();
    const o: FakeGcsObject = {
      name,
      body,
      generation: nextGeneration(),
      metageneration: 1,
      contentType: typeof meta.contentType === 'string' ? meta.contentType : (mediaType ?? 'application/octet-stream'),
      created: now,
      updated: now,
    };
    if (typeof meta.contentEncoding === 'string') o.contentEncoding = meta.contentEncoding;
    if (typeof meta.cacheControl === 'string') o.cacheControl = meta.cacheControl;
    if (meta.metadata) {
      o.metadata = Object.fromEntries(
        Object.entries(meta.metadata as Record<string, unknown>)
          .filter(([, v]) => v !== null)
          .map(([k, v]) => [k, String(v)]),
      );
    }
    objects.set(name, o);
    return resource(bucket, o);
  };

  const handle = (req: IncomingMessage, res: ServerResponse, raw: Buffer, record: (status: number) => void): void => {
    const url = new URL(req.url ?? '/', 'http://fake');
    const query = Object.fromEntries(url.searchParams);
    const method = req.method ?? 'GET';
    // Object names are one %-encoded path segment (slashes as %2F).
    const segments = url.pathname
      .split('/')
      .filter((s) => s !== '')
      .map((s) => decodeURIComponent(s));
    const path = segments.join('/');
    try {
      if (method === 'POST' && path === 'storage/v1/b') {
        const meta = JSON.parse(raw.toString('utf8') || '{}') as { name?: string };
        if (!meta.name) throw new HttpError(400, 'Required bucket name', 'required');
        if (buckets.has(meta.name)) throw new HttpError(409, 'Your previous request to create the named bucket succeeded and you already own it.', 'conflict');
        buckets.set(meta.name, new Map());
        record(200);
        return sendJson(res, 200, { kind: 'storage#bucket', id: meta.name, name: meta.name });
      }
      if (segments.length === 4 && segments.slice(0, 3).join('/') === 'storage/v1/b' && method === 'GET') {
        const name = segments[3]!;
        bucketOf(name);
        record(200);
        return sendJson(res, 200, { kind: 'storage#bucket', id: name, name });
      }
      if (segments.length === 6 && segments.slice(0, 4).join('/') === 'upload/storage/v1/b' && segments[5] === 'o' && method === 'POST') {
        const out = insert(segments[4]!, query, req, raw);
        record(200);
        return sendJson(res, 200, out);
      }
      if (segments.length === 5 && segments.slice(0, 3).join('/') === 'storage/v1/b' && segments[4] === 'o' && method === 'GET') {
        if (query.delimiter !== undefined) throw new HttpError(501, 'delimiter listings are not implemented by the fake', 'notImplemented');
        const objects = bucketOf(segments[3]!);
        const prefix = query.prefix ?? '';
        const max = Math.min(1000, Math.max(1, Number(query.maxResults ?? 1000) || 1000));
        const names = [...objects.keys()].filter((n) => n.startsWith(prefix) && (query.pageToken === undefined || n > query.pageToken)).sort();
        const page = names.slice(0, max);
        const more = names.length > max;
        record(200);
        return sendJson(res, 200, {
          kind: 'storage#objects',
          items: page.map((n) => resource(segments[3]!, objects.get(n)!)),
          ...(more && { nextPageToken: page[page.length - 1] }),
        });
      }
      if (segments.length === 6 && segments.slice(0, 3).join('/') === 'storage/v1/b' && segments[4] === 'o') {
        const [bucket, name] = [segments[3]!, segments[5]!];
        if (method === 'GET') {
          const o = liveObject(bucket, name, query);
          checkPreconditions(query, o);
          if (query.alt === 'media') {
            record(200);
            res.writeHead(200, {
              'content-type': o.contentType,
              'content-length': o.body.byteLength,
              ...(o.cacheControl !== undefined && { 'cache-control': o.cacheControl }),
              ...(o.contentEncoding !== undefined && { 'content-encoding': o.contentEncoding }),
              'last-modified': o.updated.toUTCString(),
              'x-goog-generation': String(o.generation),
              'x-goog-metageneration': String(o.metageneration),
              'x-goog-hash': `crc32c=${crc32cBase64(o.body)},md5=${md5Base64(o.body)}`,
              'x-goog-stored-content-encoding': o.contentEncoding ?? 'identity',
              'x-goog-stored-content-length': String(o.body.byteLength),
              ...Object.fromEntries(Object.entries(o.metadata ?? {}).map(([k, v]) => [`x-goog-meta-${k}`, v])),
            });
            res.end(o.body);
            return;
          }
          record(200);
          return sendJson(res, 200, resource(bucket, o));
        }
        if (method === 'DELETE') {
          const o = liveObject(bucket, name, query);
          checkPreconditions(query, o);
          bucketOf(bucket).delete(name);
          record(204);
          res.writeHead(204);
          res.end();
          return;
        }
      }
      throw new HttpError(501, `${method} ${url.pathname} is not implemented by the fake`, 'notImplemented');
    } catch (err) {
      const e = err instanceof HttpError ? err : new HttpError(400, err instanceof Error ? err.message : String(err), 'invalid');
      record(e.status);
      sendJson(res, e.status, { error: { code: e.status, message: e.message, errors: [{ domain: 'global', reason: e.reason, message: e.message }] } });
    }
  };

  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://fake');
      const record = (status: number): void => {
        requests.push({ method: req.method ?? 'GET', path: url.pathname, query: Object.fromEntries(url.searchParams), status });
      };
      handle(req, res, Buffer.concat(chunks), record);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('fake GCS: no TCP address');
  endpoint = `http://127.0.0.1:${address.port}`;

  return {
    endpoint,
    createBucket(name) {
      if (!buckets.has(name)) buckets.set(name, new Map());
    },
    object: (bucket, name) => buckets.get(bucket)?.get(name),
    requests,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

interface Part {
  headers: Record<string, string>;
  body: Buffer;
}

/** Splits a `multipart/related` body into its parts (headers lower-cased). */
function parseMultipart(contentType: string, raw: Buffer): Part[] {
  const m = /boundary=(?:"([^"]+)"|([^;\s]+))/i.exec(contentType);
  if (!/^multipart\//i.test(contentType) || !m) throw new HttpError(400, `expected a multipart body, got ${contentType || 'no content type'}`, 'invalid');
  const delimiter = Buffer.from(`--${m[1] ?? m[2]}`);
  const parts: Part[] = [];
  let pos = raw.indexOf(delimiter);
  if (pos < 0) throw new HttpError(400, 'multipart body without its boundary', 'invalid');
  for (;;) {
    pos += delimiter.byteLength;
    if (raw.subarray(pos, pos + 2).toString() === '--') break; // closing delimiter
    if (raw.subarray(pos, pos + 2).toString() === '\r\n') pos += 2;
    const next = raw.indexOf(delimiter, pos);
    if (next < 0) throw new HttpError(400, 'unterminated multipart body', 'invalid');
    // The CRLF before a delimiter belongs to the delimiter.
    const part = raw.subarray(pos, raw.subarray(next - 2, next).toString() === '\r\n' ? next - 2 : next);
    const headerEnd = part.indexOf('\r\n\r\n');
    const headerText = headerEnd < 0 ? '' : part.subarray(0, headerEnd).toString('latin1');
    const headers: Record<string, string> = {};
    for (const line of headerText.split('\r\n')) {
      const i = line.indexOf(':');
      if (i > 0) headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
    }
    parts.push({ headers, body: Buffer.from(part.subarray(headerEnd < 0 ? 0 : headerEnd + 4)) });
    pos = next;
  }
  return parts;
}
