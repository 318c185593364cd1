/**
 * The repository endpoint over a BlobStore: GET and HEAD for names, versions, packages/NAME,
 * tarballs/NAME-VERSION.tar, docs/NAME-VERSION.tar.gz and public_key, as Mix and rebar3 expect them
 * (HEX_SPEC.md §1.2): a strong ETag on every 200, 304 only for a non-empty matching If-None-Match,
 * no Content-Encoding, 404 for what is missing. Plus /health and /metrics.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { DEFAULT_LIMITS, formatError } from '@hexrepo/core';
import { looksLikePrivateKey, type BlobStore, type StoredObject } from '@hexrepo/storage';
import type { Logger } from 'pino';
import type { RepoService } from '@hexrepo/repo';
import { createApiHandler, replyApiError, unknownApiPathMessage, type ApiRequestContext } from './api.js';
import { bodyUnread, etagMatches, logPath, requestOrigin } from './request.js';

export { etagMatches };
import { refusal, type Access, type AccessDecision, type Identity } from './auth.js';
import { hostRepositories, resolveMount, type HostedRepository } from './host.js';
import { handleDevicePage } from './device-page.js';
import { Metrics } from './metrics.js';
import { DEVICE_PAGE_PATH, handleOAuth, matchOAuthPath } from './oauth.js';
import { readVisibility } from './policy-route.js';
import { mirrorApiRefusal, mirrorMetricLines, mirrorRouteLabel, serveMirror } from './mirror-route.js';
import { CONTENT_TYPES, cacheControl, routeLabel, routeRepository, type Resource } from './routes.js';
import { createWebHandler } from './web/pages.js';

export interface RepositoryServerOptions {
  store: BlobStore;
  access: Access;
  /** Repository name, shown by /health and checked in `/api/repos/REPO/…`. */
  repository: string;
  /** The write side of the publish API; without it, API writes answer 503. */
  service?: RepoService;
  /** Largest tarball or docs upload. @default 8 MiB */
  maxUploadBytes?: number;
  logger?: Logger;
  metrics?: Metrics;
}

/** A host: several repositories behind one access control (users, tokens, failed-attempt limiter). */
export interface HostServerOptions {
  repositories: readonly HostedRepository[];
  /** Credentials of the host; each repository's visibility is its own. */
  access: Access;
  /** Largest tarball or docs upload. @default 8 MiB */
  maxUploadBytes?: number;
  logger?: Logger;
  metrics?: Metrics;
  /** The web UI (pages under `/-/`, `/` for browsers, hosted docs under `/docs/`). @default true */
  web?: boolean;
  /**
   * Trust `X-Forwarded-Proto` and `X-Forwarded-Host` from a proxy in front: login cookies get `Secure`
   * behind TLS, forms and OAuth's verification URI use the origin the browser sees. @default false
   */
  trustProxy?: boolean;
}

/** The kind of client, from its User-Agent, for logs. */
export function clientKind(userAgent: string | undefined): 'mix' | 'rebar3' | 'curl' | 'other' {
  const ua = userAgent ?? '';
  // Hex ≤ 2.0: "Hex/2.0.6 (Elixir/…)"; Hex ≥ 2.1: "hex_core/0.19.0 hex/2.5.2 (elixir/…)".
  if (/^Hex\//.test(ua) || /(^|\s)hex\/\d/.test(ua)) return 'mix';
  if (/rebar3?\//i.test(ua)) return 'rebar3';
  if (/^curl\//.test(ua)) return 'curl';
  return 'other';
}

/**
 * `compute`, remembered per key for keys a client chooses (a header, a path): bounded in entries
 * (all dropped once full) and in bytes (long keys are computed every time).
 */
function boundedMemo<V>(compute: (key: string) => V, maxEntries: number, maxKeyLength: number): (key: string) => V {
  const memo = new Map<string, V>();
  return (key) => {
    let v = memo.get(key);
    if (v === undefined) {
      v = compute(key);
      if (memo.size >= maxEntries) memo.clear();
      if (key.length <= maxKeyLength) memo.set(key, v);
    }
    return v;
  };
}

/** clientKind, remembered per User-Agent (a client sends the same one on every request). */
const clientKindMemo = boundedMemo(clientKind, 1000, 256);
const clientKindOf = (userAgent: string | undefined): ReturnType<typeof clientKind> => (userAgent === undefined ? 'other' : clientKindMemo(userAgent));

/** What the access log reads when a response is finished. */
type RequestState = ApiRequestContext & {
  /** Body bytes sent, when the headers went out as a list (getHeader cannot read them back). */
  bytes?: number;
};

function identityLabel(id: Identity | null): string | undefined {
  if (!id) return undefined;
  return id.kind === 'user' ? `user:${id.username}` : `token:${id.token.id}`;
}

/** Set headers one by one (so logs can read them back with getHeader) and write the status line. */
function writeHead(res: ServerResponse, status: number, headers: Record<string, string>): void {
  for (const [k, v] of Object.entries(headers)) res.setHeader(k, v);
  res.writeHead(status);
}

function send(res: ServerResponse, status: number, body: string, headers: Record<string, string> = {}): void {
  const bytes = Buffer.from(body);
  writeHead(res, status, { 'content-type': 'text/plain; charset=utf-8', 'content-length': String(bytes.length), 'cache-control': 'no-store', ...(bodyUnread(res.req) ? { connection: 'close' } : {}), ...headers });
  res.end(res.req.method === 'HEAD' ? undefined : bytes);
}

/**
 * The handler of one repository at `/` (and `/repos/NAME/`): a host of that repository alone, with
 * the access control's visibility. `handle.metrics` is what /metrics renders.
 */
export function createRepositoryHandler(opts: RepositoryServerOptions): ((req: IncomingMessage, res: ServerResponse) => void) & { metrics: Metrics } {
  return createHostHandler({
    repositories: [{ name: opts.repository, store: opts.store, visibility: opts.access.options.visibility, root: true, ...(opts.service ? { service: opts.service } : {}) }],
    access: opts.access,
    ...(opts.maxUploadBytes !== undefined ? { maxUploadBytes: opts.maxUploadBytes } : {}),
    ...(opts.logger ? { logger: opts.logger } : {}),
    ...(opts.metrics ? { metrics: opts.metrics } : {}),
  });
}

/**
 * The request handler of a host, composed once for `serve` and `dev`: the repository named by the
 * path first (hostRepositories, resolveMount), then its resource whitelist or its API. Every
 * repository is checked against the credential's grants for that repository.
 */
export function createHostHandler(opts: HostServerOptions): ((req: IncomingMessage, res: ServerResponse) => void) & { metrics: Metrics } {
  const metrics = opts.metrics ?? new Metrics();
  const host = hostRepositories(opts.repositories);
  if (opts.repositories.some((r) => r.mirror)) metrics.addSource(() => mirrorMetricLines(opts.repositories));
  const api = createApiHandler({
    access: opts.access,
    maxUploadBytes: opts.maxUploadBytes ?? DEFAULT_LIMITS.maxTarballSize,
    ...(opts.trustProxy ? { trustProxy: true } : {}),
    ...(opts.logger ? { logger: opts.logger } : {}),
  });
  const web =
    opts.web === false ? null : createWebHandler({ repositories: opts.repositories, access: opts.access, ...(opts.logger ? { logger: opts.logger } : {}), ...(opts.trustProxy !== undefined ? { trustProxy: opts.trustProxy } : {}) });
  // The repository /health names: the root one, else the only one.
  const shown = host.root ?? (opts.repositories.length === 1 ? opts.repositories[0] : undefined);

  // Headers per object version: a cached object is the same instance on every hit, so its headers
  // (and the date formatting) are computed once.
  const headerMemo = new WeakMap<object, Record<string, string>>();
  const headersOf = (repo: HostedRepository, resource: Resource, info: { etag: string; mtime: Date }): Record<string, string> => {
    let headers = headerMemo.get(info);
    if (!headers) {
      // Whether a policy needs credentials depends on the policy, not the repository: never shared caches.
      const visibility = resource.kind === 'policy' ? 'private' : repo.visibility;
      headers = {
        'content-type': CONTENT_TYPES[resource.kind],
        'cache-control': cacheControl(resource.kind, visibility),
        etag: info.etag,
        'last-modified': info.mtime.toUTCString(),
        ...(visibility === 'private' ? { vary: 'authorization' } : {}),
      };
      headerMemo.set(info, headers);
    }
    return headers;
  };

  // The whole header list of a 200 for a cached object (Content-Length included), in the form
  // writeHead takes without copying into setHeader's map; null for bytes that look like a private
  // key (the full path refuses them, with its log line). Once per object version, as headersOf.
  const replyMemo = new WeakMap<StoredObject, string[] | null>();
  const replyHeaders = (repo: HostedRepository, resource: Resource, obj: StoredObject): string[] | null => {
    let list = replyMemo.get(obj);
    if (list === undefined) {
      list = looksLikePrivateKey(obj.body) ? null : [...Object.entries(headersOf(repo, resource, obj)).flat(), 'content-length', String(obj.body.byteLength)];
      replyMemo.set(obj, list);
    }
    return list;
  };

  /**
   * A plain GET of an object the read cache holds fresh, by a caller whose credentials were
   * verified moments ago (or a public read), answered at once: no promise, one writeHead, one end.
   * The same answer the full path gives (readAllowed, serveResource), which runs whenever this
   * returns false.
   */
  const servedAtOnce = (req: IncomingMessage, res: ServerResponse, repo: HostedRepository, resource: Resource, ip: string, state: RequestState): boolean => {
    if (req.method !== 'GET' || resource.kind === 'policy' || !repo.store.peek) return false;
    const ifNoneMatch = req.headers['if-none-match'];
    if (ifNoneMatch !== undefined && ifNoneMatch.trim() !== '') return false;
    const decision = opts.access.checkVerified(ip, req.headers.authorization, 'read', resource.pkg, { repository: repo.name, visibility: repo.visibility });
    if (!decision?.ok) return false;
    const obj = repo.store.peek(resource.key);
    const headers = obj && replyHeaders(repo, resource, obj);
    if (!obj || !headers) return false;
    state.identity = decision.identity;
    state.bytes = obj.body.byteLength;
    res.writeHead(200, headers);
    res.end(obj.body);
    return true;
  };

  // The access log: the same lines without the redaction pass, which looks for credentials under
  // keys a request line never has (its fields are the fixed ones below, none of them a secret).
  const accessLog = opts.logger?.child({}, { redact: [] });

  // Routes of the paths asked lately: clients ask for the same few files over and over.
  const routeOf = boundedMemo(routeRepository, 4096, 512);

  // Defence in depth for every store: whatever put a private key under a repository path (a link,
  // a copy, a sync), its bytes never leave the server.
  const refusePrivateKey = (res: ServerResponse, resource: Resource): void => {
    opts.logger?.warn({ path: logPath(resource.key) }, 'refused to serve a private key found under a repository path; remove it');
    send(res, 404, 'not found\n');
  };

  async function serveResource(req: IncomingMessage, res: ServerResponse, repo: HostedRepository, resource: Resource): Promise<void> {
    const { store } = repo;
    const ifNoneMatch = req.headers['if-none-match'];
    // HEAD, and a conditional GET, need only the metadata; a plain GET reads the object at once.
    if (req.method === 'HEAD' || (ifNoneMatch !== undefined && ifNoneMatch.trim() !== '')) {
      const head = await store.head(resource.key);
      if (!head) return send(res, 404, 'not found\n');
      if (etagMatches(ifNoneMatch, head.etag)) {
        writeHead(res, 304, headersOf(repo, resource, head));
        res.end();
        return;
      }
      if (req.method === 'HEAD') {
        writeHead(res, 200, { ...headersOf(repo, resource, head), 'content-length': String(head.size) });
        res.end();
        return;
      }
    }
    // Tarballs and docs from a store that streams (a bucket) are passed through, never held whole.
    if ((resource.kind === 'tarball' || resource.kind === 'docs') && store.getStream) {
      const streamed = await store.getStream(resource.key);
      if (!streamed) return send(res, 404, 'not found\n');
      // Bytes already in memory (the read cache, a folder) go out in one write; a stream is piped.
      if (Array.isArray(streamed.body)) {
        const body = streamed.body.length === 1 ? streamed.body[0]! : Buffer.concat(streamed.body as Uint8Array[]);
        if (looksLikePrivateKey(body)) return refusePrivateKey(res, resource);
        writeHead(res, 200, { ...headersOf(repo, resource, streamed), 'content-length': String(streamed.size) });
        res.end(body);
      } else {
        writeHead(res, 200, { ...headersOf(repo, resource, streamed), 'content-length': String(streamed.size) });
        await pipeline(Readable.from(streamed.body), res);
      }
      return;
    }
    const obj = await store.get(resource.key);
    if (!obj) return send(res, 404, 'not found\n');
    if (looksLikePrivateKey(obj.body)) return refusePrivateKey(res, resource);
    writeHead(res, 200, { ...headersOf(repo, resource, obj), 'content-length': String(obj.body.byteLength) });
    res.end(obj.body);
  }

  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    const started = performance.now();
    // Read now: once a response ends with Connection: close, req.socket is null by 'finish'.
    const ip = req.socket.remoteAddress ?? 'unknown';
    // Filled in as the request is understood; read when the response is finished.
    const state: RequestState = { identity: null, route: 'other' };
    res.on('finish', () => {
      // An exception here would escape to the event loop and stop the whole server.
      try {
        const seconds = (performance.now() - started) / 1000;
        const { route, identity } = state;
        metrics.observe(req.method ?? 'GET', route, res.statusCode, seconds);
        // Built only when it is written: at warn or quieter the line would be thrown away.
        if (accessLog?.isLevelEnabled('info') !== true) return;
        const q = (req.url ?? '').indexOf('?');
        accessLog.info(
          {
            method: req.method,
            // the query string is dropped: clients never need one here, and it may carry secrets
            path: logPath(q === -1 ? (req.url ?? '') : req.url!.slice(0, q)),
            status: res.statusCode,
            ms: Math.round(seconds * 1e5) / 100,
            bytes: req.method === 'HEAD' || res.statusCode === 304 ? 0 : (state.bytes ?? Number(res.getHeader('content-length') ?? 0)),
            client: clientKindOf(req.headers['user-agent']),
            ip,
            ...(identity ? { who: identityLabel(identity) } : {}),
          },
          'request',
        );
      } catch {
        // A log line that cannot be written is lost; the server goes on (this runs outside any request).
      }
    });

    try {
      route(req, res, ip, state);
    } catch (err) {
      // A request must never stop the server: what throws here answers 500 (or drops this one connection).
      opts.logger?.error({ err: formatError(err), path: logPath(req.url ?? '') }, 'request failed');
      if (!res.headersSent) send(res, 500, 'internal error\n');
      else res.destroy();
    }
  };

  const route = (req: IncomingMessage, res: ServerResponse, ip: string, state: RequestState): void => {
    const url = req.url ?? '/';
    if (url === '/health' || url.startsWith('/health?')) {
      state.route = '/health';
      // Where the repositories live is for their operators: shown only to a caller who authenticates.
      const who = req.headers.authorization === undefined ? Promise.resolve(null) : opts.access.authenticate(ip, req.headers.authorization);
      who
        .then((decision) => {
          const details = decision?.ok
            ? shown && opts.repositories.length === 1
              ? { store: shown.store.url }
              : { repositories: opts.repositories.map((r) => ({ name: r.name, store: r.store.url, ...(r.root ? { root: true } : {}) })) }
            : {};
          send(res, 200, `${JSON.stringify({ status: 'ok', repository: shown?.name ?? null, ...details })}\n`, { 'content-type': 'application/json' });
        })
        .catch((err: unknown) => failed(res, err, '/health'));
      return;
    }
    if (url === '/metrics') {
      state.route = '/metrics';
      return send(res, 200, metrics.render(), { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' });
    }
    const oauth = opts.access.options.oauth;
    const queryAt = url.indexOf('?');
    const pathOnly = queryAt === -1 ? url : url.slice(0, queryAt);
    const oauthPath = oauth ? matchOAuthPath(pathOnly) : null;
    // The OAuth endpoints are the host's (its sessions span its repositories), so they answer at
    // /api without a root repository; a repository's root serves them limited to that repository.
    if (oauth && (oauthPath || pathOnly === DEVICE_PAGE_PATH) && (oauthPath?.repository == null || host.byName.has(oauthPath.repository))) {
      state.route = oauthPath ? `/api/oauth/${oauthPath.endpoint}` : DEVICE_PAGE_PATH;
      const origin = requestOrigin(req, opts.trustProxy === true);
      const done = oauthPath
        ? handleOAuth(req, res, { access: opts.access, oauth, endpoint: oauthPath.endpoint, repository: oauthPath.repository, origin, ip })
        : handleDevicePage(req, res, { access: opts.access, oauth, origin, ip, query: new URLSearchParams(queryAt === -1 ? '' : url.slice(queryAt + 1)) });
      done.catch((err: unknown) => failed(res, err, pathOnly));
      return;
    }
    // Pages live under /-/ and docs under /docs/NAME/ (no repository or API path looks like either);
    // `/` is a page only for a browser (Accept: text/html), which no Hex client sends.
    if (web?.matches(req)) {
      web.handle(req, res, state).catch((err: unknown) => failed(res, err, url));
      return;
    }
    const mount = resolveMount(url, host);
    if (mount?.kind === 'unknown') {
      state.route = mount.api ? '/api/repos/:repo' : '/repos/:repo';
      const message = `no repository ${mount.name.slice(0, 64)} here (this server has ${[...host.byName.keys()].join(', ') || 'none'})`;
      return mount.api ? replyApiError(req, res, 404, message) : send(res, 404, `${message}\n`);
    }
    if (!mount && (url === '/api' || url.startsWith('/api/') || url.startsWith('/api?'))) {
      state.route = '/api/other';
      return replyApiError(req, res, 404, unknownApiPathMessage(pathOnly.slice('/api'.length)));
    }
    if (mount?.kind === 'api' && mount.repo.mirror) {
      state.route = '/api';
      const r = mirrorApiRefusal(req, mount.repo);
      return replyApiError(req, res, r.status, r.message);
    }
    if (mount?.kind === 'api') {
      state.route = '/api';
      const q = mount.rest.indexOf('?');
      const target = { repo: mount.repo, path: q === -1 ? mount.rest : mount.rest.slice(0, q), query: new URLSearchParams(q === -1 ? '' : mount.rest.slice(q + 1)), apiRoot: mount.apiRoot, repoRoot: mount.repoRoot };
      api(req, res, target, state).catch((err: unknown) => {
        opts.logger?.error({ err: formatError(err) }, 'API request failed');
        if (!res.headersSent) send(res, 500, 'internal error\n');
        else res.destroy();
      });
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      return send(res, 405, 'method not allowed\n', { allow: 'GET, HEAD' });
    }
    if (!mount) return send(res, 404, 'not found\n');
    const { repo } = mount;
    if (repo.mirror) {
      state.route = mirrorRouteLabel(mount.rest);
      const onIdentity = (d: AccessDecision): void => void (d.identity && (state.identity = d.identity));
      serveMirror(req, res, { repo, rest: mount.rest, access: opts.access, ip, logger: opts.logger, onIdentity }).catch((err: unknown) => failed(res, err, mount.rest));
      return;
    }
    const routed = routeOf(mount.rest);
    if (!routed.ok) return send(res, routed.status, `${routed.status === 404 ? 'not found' : `bad request: ${routed.reason}`}\n`);
    state.route = routeLabel(routed.resource.kind);
    if (servedAtOnce(req, res, repo, routed.resource, ip, state)) return;
    readVisibility(repo, routed.resource)
      .then((visibility) => opts.access.check(ip, req.headers.authorization, 'read', routed.resource.pkg, { repository: repo.name, visibility }))
      .then((decision) => readAllowed(req, res, repo, routed.resource, state, decision))
      .catch((err: unknown) => failed(res, err, routed.resource.key));
  };

  const failed = (res: ServerResponse, err: unknown, path: string): void => {
    opts.logger?.error({ err: formatError(err), path: logPath(path) }, 'request failed');
    if (!res.headersSent) send(res, 500, 'internal error\n');
    else res.destroy();
  };

  const readAllowed = (req: IncomingMessage, res: ServerResponse, repo: HostedRepository, resource: Resource, state: ApiRequestContext, decision: AccessDecision): void => {
    if (!decision.ok) {
      if (decision.identity) state.identity = decision.identity;
      const r = refusal(decision);
      return send(res, r.status, `${r.message}\n`, r.headers);
    }
    state.identity = decision.identity;
    serveResource(req, res, repo, resource).catch((err: unknown) => failed(res, err, resource.key));
  };
  return Object.assign(handler, { metrics });
}

export interface RunningServer {
  server: Server;
  url: string;
  port: number;
  /** Stop accepting, let in-flight requests finish (up to `graceMs`), then close everything. */
  close(graceMs?: number): Promise<void>;
}

/** Listen on host:port (port 0: any free port) with keep-alive settings fit for Hex clients. */
export async function listen(handler: (req: IncomingMessage, res: ServerResponse) => void, opts: { host: string; port: number }): Promise<RunningServer> {
  const server = createServer({ keepAliveTimeout: 65_000, headersTimeout: 66_000, requestTimeout: 120_000 }, handler);
  // `Expect: 100-continue` (Hex ≥ 2.3 uploads): the handler checks auth and size first and sends
  // 100 Continue only when it is ready to read the body.
  server.on('checkContinue', handler);
  let inFlight = 0;
  let drained: (() => void) | null = null;
  const track = (_req: IncomingMessage, res: ServerResponse): void => {
    inFlight++;
    res.on('close', () => {
      inFlight--;
      if (inFlight === 0 && drained) drained();
    });
  };
  server.on('request', track);
  // An upload that asked for 100 Continue comes as this event, not 'request': it is in flight too.
  server.on('checkContinue', track);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const host = opts.host.includes(':') ? `[${opts.host}]` : opts.host;
  return {
    server,
    port,
    url: `http://${host === '0.0.0.0' || host === '[::]' ? '127.0.0.1' : host}:${port}`,
    async close(graceMs = 10_000) {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      if (inFlight > 0) {
        await Promise.race([new Promise<void>((resolve) => (drained = resolve)), new Promise<void>((resolve) => setTimeout(resolve, graceMs).unref())]);
      }
      server.closeAllConnections();
      await closed;
    },
  };
}
