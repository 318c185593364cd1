/**
 * The HTTP client of a mirror's upstream: GET with connect and first-byte timeouts, conditional
 * requests (If-None-Match), an HTTP(S) proxy, and a size cap. Failures are HexrepoErrors with the
 * codes UPSTREAM_UNAVAILABLE and UPSTREAM_TIMEOUT; a 404 is an answer, not a failure.
 */
import { HexrepoError } from '@hexrepo/core';
import { EnvHttpProxyAgent, errors as undiciErrors, request, type Dispatcher } from 'undici';
import type { Upstream } from './layout.js';

/** Proxy settings; the app reads them from HTTPS_PROXY / HTTP_PROXY / NO_PROXY and passes them here. */
export interface ProxySettings {
  /** Proxy for http:// upstreams. */
  httpProxy?: string;
  /** Proxy for https:// upstreams. @default httpProxy */
  httpsProxy?: string;
  /** Hosts reached directly, comma-separated, as curl reads NO_PROXY. */
  noProxy?: string;
}

/** Options of the upstream client. */
export interface UpstreamClientOptions {
  /** Time to establish the connection (TCP and TLS). @default 10000 */
  connectTimeoutMs?: number;
  /** Time from the request to the response headers (the first byte). @default 15000 */
  firstByteTimeoutMs?: number;
  /** Longest pause between two chunks of the body. @default 30000 */
  bodyTimeoutMs?: number;
  /** Largest response body accepted. @default 512 MiB */
  maxBytes?: number;
  proxy?: ProxySettings;
  /** @default "hexrepo-mirror" */
  userAgent?: string;
}

/** What the upstream answered: the object, "unchanged since that ETag", or "no such object". */
export type UpstreamAnswer = { status: 'ok'; body: Uint8Array; etag: string | null } | { status: 'not-modified'; etag: string | null } | { status: 'not-found' };

const TIMEOUT_CODES = new Set(['UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'ETIMEDOUT']);

function errorCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** A client of one upstream; `close()` releases its connections. */
export class UpstreamClient {
  readonly #upstream: Upstream;
  readonly #dispatcher: Dispatcher & { close(): Promise<void> };
  readonly #firstByteTimeoutMs: number;
  readonly #bodyTimeoutMs: number;
  readonly #maxBytes: number;
  readonly #userAgent: string;
  /** Requests sent, for tests and status. */
  requests = 0;

  constructor(upstream: Upstream, opts: UpstreamClientOptions = {}) {
    this.#upstream = upstream;
    this.#firstByteTimeoutMs = opts.firstByteTimeoutMs ?? 15_000;
    this.#bodyTimeoutMs = opts.bodyTimeoutMs ?? 30_000;
    this.#maxBytes = opts.maxBytes ?? 512 * 1024 * 1024;
    this.#userAgent = opts.userAgent ?? 'hexrepo-mirror';
    // Empty strings, not undefined: undici would otherwise read the process environment itself,
    // and only apps decide what the environment means.
    this.#dispatcher = new EnvHttpProxyAgent({
      httpProxy: opts.proxy?.httpProxy ?? '',
      httpsProxy: opts.proxy?.httpsProxy ?? opts.proxy?.httpProxy ?? '',
      noProxy: opts.proxy?.noProxy ?? '',
      connect: { timeout: opts.connectTimeoutMs ?? 10_000 },
      headersTimeout: this.#firstByteTimeoutMs,
      bodyTimeout: this.#bodyTimeoutMs,
    });
  }

  /** The upstream this client fetches from. */
  get upstream(): Upstream {
    return this.#upstream;
  }

  /** GET `path` (an upstream path such as `packages/foo`), conditional on `etag` when given. */
  async get(path: string, opts: { etag?: string | null } = {}): Promise<UpstreamAnswer> {
    const url = `${this.#upstream.url}/${path}`;
    this.requests++;
    let res: Dispatcher.ResponseData;
    try {
      res = await request(url, {
        method: 'GET',
        dispatcher: this.#dispatcher,
        headers: { 'user-agent': this.#userAgent, ...(opts.etag ? { 'if-none-match': opts.etag } : {}) },
        headersTimeout: this.#firstByteTimeoutMs,
        bodyTimeout: this.#bodyTimeoutMs,
      });
    } catch (err) {
      throw this.#failure(err, url);
    }
    const etagHeader = res.headers.etag;
    const etag = typeof etagHeader === 'string' ? etagHeader : null;
    if (res.statusCode === 304) {
      await res.body.dump();
      return { status: 'not-modified', etag };
    }
    if (res.statusCode === 404) {
      await res.body.dump();
      return { status: 'not-found' };
    }
    if (res.statusCode !== 200) {
      await res.body.dump().catch(() => undefined);
      throw new HexrepoError('UPSTREAM_UNAVAILABLE', `the upstream answered ${res.statusCode} for ${url}`, {
        hint: 'the upstream is failing; the mirror serves what it has cached, try again later for the rest',
        url,
        status: res.statusCode,
      });
    }
    const declared = Number(res.headers['content-length'] ?? NaN);
    // Abandoning the body aborts it: the abort is expected, not an error to report.
    res.body.on('error', () => undefined);
    if (declared > this.#maxBytes) {
      res.body.destroy();
      throw new HexrepoError('UPSTREAM_UNAVAILABLE', `the upstream answered ${declared} bytes for ${url}, more than the ${this.#maxBytes} the mirror accepts`, { url });
    }
    const chunks: Buffer[] = [];
    let size = 0;
    try {
      for await (const chunk of res.body as AsyncIterable<Buffer>) {
        size += chunk.byteLength;
        if (size > this.#maxBytes) {
          res.body.destroy();
          throw new HexrepoError('UPSTREAM_UNAVAILABLE', `the upstream answer for ${url} exceeds the ${this.#maxBytes} bytes the mirror accepts`, { url });
        }
        chunks.push(chunk);
      }
    } catch (err) {
      throw this.#failure(err, url);
    }
    return { status: 'ok', body: chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks), etag };
  }

  #failure(err: unknown, url: string): HexrepoError {
    if (err instanceof HexrepoError) return err;
    const code = errorCode(err);
    const message = (err as Error).message;
    if (code && TIMEOUT_CODES.has(code)) {
      const which = code === 'UND_ERR_CONNECT_TIMEOUT' ? 'connecting' : code === 'UND_ERR_HEADERS_TIMEOUT' ? 'waiting for the first byte' : 'reading the answer';
      return new HexrepoError('UPSTREAM_TIMEOUT', `the upstream timed out ${which} for ${url}`, { hint: "the upstream is slow or unreachable; raise the mirror's timeouts if it is only slow", url, cause: code }, { cause: err });
    }
    const aborted = err instanceof undiciErrors.RequestAbortedError;
    const why = code && !message.includes(code) ? `${code} ${message}` : aborted && !code ? `aborted: ${message}` : message;
    return new HexrepoError(
      'UPSTREAM_UNAVAILABLE',
      `the upstream could not be reached for ${url}: ${why}`,
      {
        hint: 'check that the upstream URL is right and reachable from this server (and the proxy settings, HTTPS_PROXY / NO_PROXY)',
        url,
        ...(code ? { cause: code } : {}),
      },
      { cause: err },
    );
  }

  /** Close the connections. */
  async close(): Promise<void> {
    await this.#dispatcher.close();
  }
}
