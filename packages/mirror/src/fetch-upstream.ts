/**
 * GETs from the upstream for the eager sync: plain node:http(s) so a proxy agent can be handed in
 * (the CLI builds it from HTTPS_PROXY/NO_PROXY), a body cap, and retries with exponential backoff and
 * jitter on 5xx, 429 and network errors. A 404 is an answer, not a failure to retry.
 */
import { request as httpRequest, type Agent, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { HexrepoError, isHexrepoError } from '@hexrepo/core';

/** What the upstream answered: 200 with a body, 304 (not modified) or 404. */
export interface UpstreamAnswer {
  status: 200 | 304 | 404;
  body: Uint8Array;
  etag: string | null;
}

/** GET an upstream path (no leading slash), optionally conditional on an ETag. */
export type UpstreamGet = (path: string, opts?: { ifNoneMatch?: string | null }) => Promise<UpstreamAnswer>;

export interface HttpUpstreamOptions {
  /** The agent for a URL (a proxy tunnel), or undefined for a direct connection. */
  agentFor?: (url: URL) => Agent | undefined;
  /** @default 60000 — per request, from sending to the last byte */
  timeoutMs?: number;
  /** @default 256 MiB */
  maxBodySize?: number;
  /** @default "hexrepo-mirror" */
  userAgent?: string;
}

/** An UpstreamGet over HTTP(S) to `baseUrl` (no retries: wrap it with `withRetries`). */
export function httpUpstream(baseUrl: string, opts: HttpUpstreamOptions = {}): UpstreamGet {
  const base = baseUrl.replace(/\/+$/, '');
  const maxBody = opts.maxBodySize ?? 256 * 1024 * 1024;
  return (path, { ifNoneMatch } = {}) =>
    new Promise<UpstreamAnswer>((resolve, reject) => {
      const url = new URL(`${base}/${path}`);
      const agent = opts.agentFor?.(url);
      const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
      const headers: Record<string, string> = { 'user-agent': opts.userAgent ?? 'hexrepo-mirror', accept: '*/*' };
      if (ifNoneMatch) headers['if-none-match'] = ifNoneMatch;
      const failed = (why: string): HexrepoError => new HexrepoError('NETWORK_ERROR', `GET ${url.href}: ${why}`, { url: url.href, hint: 'check the upstream URL, the network and HTTPS_PROXY/NO_PROXY; the sync can be run again and resumes' });
      const req = send(url, { method: 'GET', headers, ...(agent ? { agent } : {}), timeout: opts.timeoutMs ?? 60_000 }, (res: IncomingMessage) => {
        const status = res.statusCode ?? 0;
        const etagHeader = res.headers.etag;
        const etag = typeof etagHeader === 'string' && etagHeader !== '' ? etagHeader : null;
        if (status === 304 || status === 404) {
          res.resume();
          res.on('end', () => resolve({ status, body: new Uint8Array(0), etag }));
          res.on('error', (e) => reject(failed(e.message)));
          return;
        }
        if (status !== 200) {
          res.resume();
          const code = status === 429 ? 'RATE_LIMITED' : status >= 500 ? 'SERVER_ERROR' : 'REQUEST_REJECTED';
          reject(new HexrepoError(code, `GET ${url.href}: the upstream answered ${status}`, { url: url.href, status, retryable: status === 429 || status >= 500 }));
          return;
        }
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > maxBody) {
            req.destroy();
            reject(new HexrepoError('TAR_TOO_BIG', `GET ${url.href}: the answer is larger than ${maxBody} bytes`, { url: url.href }));
            return;
          }
          chunks.push(c);
        });
        res.on('end', () => {
          if (!res.complete) reject(failed('the connection closed before the whole answer arrived'));
          else resolve({ status: 200, body: new Uint8Array(Buffer.concat(chunks)), etag });
        });
        res.on('error', (e) => reject(failed(e.message)));
        res.on('aborted', () => reject(failed('the connection closed before the whole answer arrived')));
      });
      req.on('timeout', () => req.destroy(new Error(`no answer within ${opts.timeoutMs ?? 60_000} ms`)));
      req.on('error', (e) => reject(failed(e.message)));
      req.end();
    });
}

/** True for a failure worth retrying: network trouble, 5xx, 429. */
export function isRetryable(err: unknown): boolean {
  if (isHexrepoError(err, 'NETWORK_ERROR')) return true;
  return isHexrepoError(err) && err.details.retryable === true;
}

export interface RetryOptions {
  /** Attempts after the first. @default 5 */
  retries?: number;
  /** First backoff in ms, doubled per attempt (with full jitter), capped at `maxDelayMs`. @default 200 */
  baseDelayMs?: number;
  /** @default 10000 */
  maxDelayMs?: number;
  /** Called before each retry (for logs and counters). */
  onRetry?: (path: string, attempt: number, err: unknown) => void;
}

/** Wrap an UpstreamGet with retries: exponential backoff with jitter, only for retryable failures. */
export function withRetries(get: UpstreamGet, opts: RetryOptions = {}): UpstreamGet {
  const retries = opts.retries ?? 5;
  const base = opts.baseDelayMs ?? 200;
  const cap = opts.maxDelayMs ?? 10_000;
  return async (path, o) => {
    for (let attempt = 0; ; attempt++) {
      try {
        return await get(path, o);
      } catch (err) {
        if (attempt >= retries || !isRetryable(err)) throw err;
        opts.onRetry?.(path, attempt + 1, err);
        // Half fixed, half random: spreads the retries of many workers hitting one failing upstream.
        const delay = Math.min(cap, base * 2 ** attempt);
        await new Promise((r) => setTimeout(r, delay / 2 + Math.random() * (delay / 2)));
      }
    }
  };
}
