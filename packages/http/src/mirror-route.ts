/**
 * A mirror repository of the host (HostedRepository.mirror): the repository endpoint answered by
 * the pull-through cache, read-only, with the cache's outcome in `X-Hexrepo-Cache` and upstream
 * failures as 502 (refused by verification), 503 (unreachable or failing) and 504 (timed out).
 * Organization paths of the upstream (`/repos/ORG/…`) are refused, never fetched: they are private
 * to the organization's members and a shared cache would hand them to everyone.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { formatError, isHexrepoError, type ErrorCode } from '@hexrepo/core';
import type { MirrorCache, MirrorEvent } from '@hexrepo/mirror';
import type { Logger } from 'pino';
import { refusal, type Access } from './auth.js';
import type { HostedRepository } from './host.js';
import { bodyUnread, logPath } from './request.js';
import { cacheControl, CONTENT_TYPES, routeLabel, routeRepository, type ResourceKind } from './routes.js';

/** The response header naming how the mirror served the object: hit, revalidated, miss, refreshed or stale. */
export const MIRROR_CACHE_HEADER = 'x-hexrepo-cache';

const INSTALLS = '/installs/hex-1.x.csv';

/** Statuses of the mirror's upstream failures. */
const STATUS_OF: Partial<Record<ErrorCode, number>> = {
  UPSTREAM_TIMEOUT: 504,
  UPSTREAM_UNAVAILABLE: 503,
  REGISTRY_BAD_SIGNATURE: 502,
  REGISTRY_BAD_REPO_NAME: 502,
  REGISTRY_BAD_PACKAGE_NAME: 502,
  REGISTRY_CORRUPT: 502,
  REGISTRY_CHECKSUM_MISMATCH: 502,
};

function send(res: ServerResponse, status: number, body: string, headers: Record<string, string> = {}): void {
  const bytes = Buffer.from(body);
  for (const [k, v] of Object.entries({ 'content-type': 'text/plain; charset=utf-8', 'content-length': String(bytes.length), 'cache-control': 'no-store', ...(bodyUnread(res.req) ? { connection: 'close' } : {}), ...headers }))
    res.setHeader(k, v);
  res.writeHead(status);
  res.end(res.req.method === 'HEAD' ? undefined : bytes);
}

/** The answer of a mirror's API mount: reads name no API resource, writes are refused (the mirror is read-only). */
export function mirrorApiRefusal(req: IncomingMessage, repo: HostedRepository): { status: number; message: string } {
  const upstream = repo.mirror!.upstream.url;
  if (req.method === 'GET' || req.method === 'HEAD') return { status: 404, message: `${repo.name} is a mirror of ${upstream}: it serves the repository endpoint (registry files and tarballs) only, not the API` };
  return { status: 405, message: `[MIRROR_READ_ONLY] ${repo.name} is a read-only mirror of ${upstream}: publish to the upstream, or to a repository of this server that is not a mirror` };
}

/** The `/metrics` lines of the mirrors of a host, one series per mirror repository. */
export function mirrorMetricLines(repositories: readonly HostedRepository[]): string[] {
  const mirrors = repositories.filter((r) => r.mirror);
  if (mirrors.length === 0) return [];
  const families: [string, string, keyof MirrorCache['stats']][] = [
    ['hexrepo_mirror_hits_total', 'Objects a mirror served from its cache (fresh, or revalidated with a 304).', 'hits'],
    ['hexrepo_mirror_misses_total', 'Objects a mirror fetched from its upstream (absent or changed).', 'misses'],
    ['hexrepo_mirror_stale_total', 'Objects a mirror served stale from its cache because the upstream failed.', 'staleServes'],
    ['hexrepo_mirror_upstream_errors_total', 'Upstream requests that failed (unreachable, error status, timeout, or refused by verification).', 'upstreamErrors'],
    ['hexrepo_mirror_refused_total', 'Upstream answers refused by verification (signature, repository or package name, checksum).', 'refused'],
    ['hexrepo_mirror_upstream_bytes_total', 'Bytes a mirror received from its upstream.', 'bytesFromUpstream'],
  ];
  return families.flatMap(([name, help, key]) => [`# HELP ${name} ${help}`, `# TYPE ${name} counter`, ...mirrors.map((r) => `${name}{repository="${r.name}"} ${r.mirror!.stats[key]}`)]);
}

/** A log line per mirror event: refusals as errors, stale serves and upstream failures as warnings. */
export function logMirrorEvent(logger: Logger): (event: MirrorEvent) => void {
  return (event) => {
    switch (event.type) {
      case 'refused':
        logger.error({ path: logPath(event.path), code: event.error.code, err: formatError(event.error) }, 'mirror: refused an upstream answer that does not verify; nothing stored');
        break;
      case 'upstream-error':
        logger.warn({ path: logPath(event.path), code: event.error.code, err: event.error.message }, 'mirror: upstream request failed');
        break;
      case 'stale':
        logger.warn({ path: logPath(event.path), code: event.error.code }, 'mirror: upstream failed, serving the cached copy (stale)');
        break;
      case 'stored':
        logger.debug({ path: logPath(event.path), bytes: event.bytes }, 'mirror: fetched, verified and stored');
        break;
      case 'store-failed':
        logger.error({ path: logPath(event.path), err: formatError(event.error) }, 'mirror: served a verified upstream answer but could not store it; the next request fetches it again');
        break;
    }
  };
}

/** Route label of a mirror path, for metrics and logs. */
export function mirrorRouteLabel(rest: string): string {
  if (rest === INSTALLS) return INSTALLS;
  const routed = routeRepository(rest);
  return routed.ok ? routeLabel(routed.resource.kind) : 'other';
}

/**
 * Serve a GET or HEAD at `rest` (the path under the mirror's mount) from the mirror of `repo`,
 * after the access check every repository of the host makes.
 */
export async function serveMirror(
  req: IncomingMessage,
  res: ServerResponse,
  ctx: { repo: HostedRepository; rest: string; access: Access; ip: string; logger?: Logger | undefined; onIdentity: (decision: Awaited<ReturnType<Access['check']>>) => void },
): Promise<void> {
  const { repo, rest } = ctx;
  const mirror = repo.mirror!;
  const q = rest.indexOf('?');
  const bare = q === -1 ? rest : rest.slice(0, q);
  let path: string;
  let kind: ResourceKind | 'installs';
  let pkg: string | undefined;
  if (bare === INSTALLS) {
    path = INSTALLS.slice(1);
    kind = 'installs';
  } else if (bare.startsWith('/repos/')) {
    return send(
      res,
      404,
      `organization repositories of ${mirror.upstream.url} are not mirrored: they are private to their members, and this cache is shared; configure the organization with its own URL and key (mix hex.organization auth)\n`,
    );
  } else {
    const routed = routeRepository(rest);
    if (!routed.ok) return send(res, routed.status, `${routed.status === 404 ? 'not found' : `bad request: ${routed.reason}`}\n`);
    path = routed.resource.key;
    kind = routed.resource.kind;
    pkg = routed.resource.pkg;
  }
  const decision = await ctx.access.check(ctx.ip, req.headers.authorization, 'read', pkg, { repository: repo.name, visibility: repo.visibility });
  ctx.onIdentity(decision);
  if (!decision.ok) {
    const r = refusal(decision);
    return send(res, r.status, `${r.message}\n`, r.headers);
  }
  let obj;
  try {
    obj = await mirror.get(path);
  } catch (err) {
    const status = isHexrepoError(err) ? STATUS_OF[err.code] : undefined;
    if (status === undefined) throw err;
    // No Retry-After: Erlang's httpc (rebar3) waits that long and retries for ever on a 503 that has one.
    return send(res, status, `${formatError(err)}\n`);
  }
  if (!obj) return send(res, 404, `not found: the upstream ${mirror.upstream.url} has no ${path}\n`);
  const headers: Record<string, string> = {
    'content-type': kind === 'installs' ? 'text/csv; charset=utf-8' : CONTENT_TYPES[kind],
    // A stale copy must not be kept by caches in between: the next request may get a fresh one.
    'cache-control': obj.outcome === 'stale' ? 'no-cache' : kind === 'installs' ? `${repo.visibility}, max-age=60` : cacheControl(kind, repo.visibility),
    etag: obj.etag,
    [MIRROR_CACHE_HEADER]: obj.outcome,
    ...(repo.visibility === 'private' ? { vary: 'authorization' } : {}),
  };
  for (const [k, v] of Object.entries(headers)) res.setHeader(k, v);
  const inm = req.headers['if-none-match'];
  if (inm !== undefined && inm.split(',').some((t) => t.trim().replace(/^W\//, '') === obj.etag)) {
    res.writeHead(304);
    res.end();
    return;
  }
  res.setHeader('content-length', String(obj.body.byteLength));
  res.writeHead(200);
  res.end(req.method === 'HEAD' ? undefined : obj.body);
}
