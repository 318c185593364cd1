/**
 * The publish API of HEX_SPEC.md §6, under `/api` and `/api/repos/REPO`: what `mix hex.publish`,
 * `mix hex.retire`, `mix hex.publish --revert` and rebar3_hex send. Bodies are ETF
 * (`application/vnd.hex+erlang`) as Hex reads nothing else, or JSON when the client asks for it.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { isHexrepoError, isRetirementReason, RETIREMENT_REASONS, type ErrorCode, type Retirement } from '@hexrepo/core';
import type { ReleaseView, RepoService, Scope } from '@hexrepo/repo';
import { termText, type Metadata } from '@hexrepo/tarball';
import type { Logger } from 'pino';
import type { AccessDecision, Access, Identity } from './auth.js';
import { decodeEtf, encodeEtf, ETF_CONTENT_TYPE, type Etf } from './etf.js';
import { NAME, plausibleRelease, VERSION } from './routes.js';
import { bodyUnread, logPath } from './request.js';

export interface ApiOptions {
  access: Access;
  repository: string;
  /** Absent: the server has no signing key, and every write answers 503. */
  service?: RepoService;
  /** Largest upload accepted (tarballs and docs). */
  maxUploadBytes: number;
  logger?: Logger;
}

export interface ApiRequestContext {
  /** Set once the caller is known, for the access log. */
  identity: Identity | null;
  route: string;
}


interface Route {
  method: string;
  pattern: RegExp;
  label: string;
  handle: (ctx: Ctx, m: string[]) => Promise<void>;
}

interface Ctx {
  req: IncomingMessage;
  res: ServerResponse;
  query: URLSearchParams;
  /** `http://host/api` or `http://host/api/repos/REPO`, for the URLs in responses. */
  base: string;
  state: ApiRequestContext;
  /** The client's address, read when the request arrived (the socket may be gone by the reply). */
  ip: string;
}

class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly errors?: Record<string, Etf>,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

const STATUS_OF: Partial<Record<ErrorCode, number>> = {
  NOT_FOUND: 404,
  ALREADY_EXISTS: 422,
  TAR_TOO_BIG: 413,
  TAR_UNCOMPRESSED_TOO_BIG: 422,
  USAGE: 400,
  CONFIG_INVALID: 400,
  STORAGE_CONFLICT: 409,
};

function toApiError(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  if (!isHexrepoError(err)) return new ApiError(500, 'internal error');
  const status = STATUS_OF[err.code] ?? (/^(TAR|CONTENTS|TERM|METADATA)_|^TARBALL_NAME_MISMATCH$/.test(err.code) ? 422 : 500);
  if (err.code === 'ALREADY_EXISTS') return new ApiError(422, err.message, { inserted_at: 'must include the --replace flag to update an existing release' });
  if (status === 422 || status === 413) return new ApiError(status, err.message, { tar: `[${err.code}] ${err.message}` });
  return new ApiError(status, status === 500 ? 'internal error' : err.message);
}

function wantsJson(req: IncomingMessage): boolean {
  const accept = req.headers.accept ?? '';
  return !accept.includes(ETF_CONTENT_TYPE) && !accept.includes('application/vnd.hex+erlang');
}

function reply(ctx: Ctx, status: number, body?: Etf, headers: Record<string, string> = {}): void {
  const { req, res } = ctx;
  // Headers are set one by one, not passed to writeHead, so the request log can read them back.
  const set = (all: Record<string, string>): void => {
    for (const [k, v] of Object.entries(all)) res.setHeader(k, v);
  };
  // A refusal before the body was read: close instead of reading an upload nobody will use.
  if (status >= 400 && bodyUnread(req)) res.setHeader('connection', 'close');
  if (body === undefined) {
    set({ ...headers, 'content-length': '0', 'cache-control': 'no-store' });
    res.writeHead(status);
    res.end();
    return;
  }
  const json = wantsJson(req);
  const bytes = json ? Buffer.from(`${JSON.stringify(body, (_k, v: unknown) => (typeof v === 'bigint' ? Number(v) : v))}\n`) : encodeEtf(body);
  set({ ...headers, 'content-type': json ? 'application/json; charset=utf-8' : ETF_CONTENT_TYPE, 'content-length': String(bytes.length), 'cache-control': 'no-store' });
  res.writeHead(status);
  res.end(req.method === 'HEAD' ? undefined : bytes);
}

function iso(seconds: number | undefined): string | null {
  return seconds === undefined ? null : new Date(seconds * 1000).toISOString();
}

/** Read the request body up to `max` bytes; 411 without Content-Length, 413 above the limit. */
async function readBody(ctx: Ctx, max: number): Promise<Buffer> {
  const { req, res } = ctx;
  const declared = req.headers['content-length'];
  if (declared === undefined && req.headers['transfer-encoding'] === undefined) throw new ApiError(411, 'Content-Length is required');
  if (declared !== undefined && Number(declared) > max) throw new ApiError(413, `the upload is ${declared} bytes; the limit is ${max}`, { tar: `too big (limit ${max} bytes)` }, { connection: 'close' });
  // Accept the body only now that auth and size are checked (Hex ≥ 2.3 waits for this).
  if (/100-continue/i.test(req.headers.expect ?? '')) res.writeContinue();
  // Listeners rather than for-await: leaving a for-await loop destroys the request and its socket,
  // and the 413 must still reach the client (then Connection: close ends the connection).
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const settle = (err: Error | null): void => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', settle);
      req.off('close', onClose);
      if (!err) return resolve(Buffer.concat(chunks));
      req.pause();
      reject(err);
    };
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > max) return settle(new ApiError(413, `the upload is over the limit of ${max} bytes`, { tar: `too big (limit ${max} bytes)` }, { connection: 'close' }));
      chunks.push(chunk);
    };
    const onEnd = (): void => settle(null);
    const onClose = (): void => settle(new ApiError(400, 'the connection closed before the whole body arrived'));
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', settle);
    req.on('close', onClose);
  });
}

/** A term body (retire): ETF as Hex sends it, or JSON. */
async function readTermBody(ctx: Ctx): Promise<Record<string, Etf>> {
  const type = (ctx.req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  const body = await readBody(ctx, 64 * 1024);
  let value: Etf;
  if (type === ETF_CONTENT_TYPE) value = decodeEtf(body);
  else if (type === 'application/json') {
    try {
      value = JSON.parse(body.toString('utf8')) as Etf;
    } catch {
      throw new ApiError(400, 'the body is not valid JSON');
    }
  } else throw new ApiError(415, `send ${ETF_CONTENT_TYPE} or application/json, not ${type || 'nothing'}`);
  if (typeof value !== 'object' || value === null || Array.isArray(value) || value instanceof Uint8Array) throw new ApiError(400, 'the body must be a map');
  return value as Record<string, Etf>;
}

function requirementsOf(deps: ReleaseView['dependencies']): Record<string, Etf> {
  return Object.fromEntries(deps.map((d) => [d.package, { app: d.app, requirement: d.requirement, optional: d.optional, ...(d.repository ? { repository: d.repository } : {}) }]));
}

function retirementOf(r: Retirement | undefined): Etf {
  return r ? { reason: r.reason, message: r.message ?? null } : null;
}

/**
 * The dependency snippets hex.pm shows (`PackageView.dep_snippet`), pointing at this repository:
 * Mix selects a self-hosted repository with `repo:` (hex.pm writes `organization:` for its own
 * organizations, which Mix would look up on hex.pm). rebar3 and erlang.mk have no per-dependency
 * repository option, so theirs are hex.pm's. `mix hex.info` prints `configs["mix.exs"]` as is.
 */
function configsOf(repository: string, name: string, app: string, version: string): Record<string, string> {
  // Versions are validated SemVer without build metadata: MAJOR.MINOR.PATCH[-PRE].
  const [major, minor, patch] = version.split('-', 1)[0]!.split('.');
  const mixVersion = version.includes('-') ? `~> ${version}` : major === '0' ? `~> 0.${minor}.${patch}` : `~> ${major}.${minor}`;
  const repo = repository === 'hexpm' ? '' : `, repo: ${JSON.stringify(repository)}`;
  const mixApp = /^[a-zA-Z_][a-zA-Z_0-9]*$/.test(app) ? `:${app}` : `:${JSON.stringify(app)}`;
  const rebarApp = /^[a-z][a-zA-Z_0-9]*$/.test(app) ? app : `'${app}'`;
  return {
    'mix.exs': app === name ? `{:${name}, "${mixVersion}"${repo}}` : `{${mixApp}, "${mixVersion}", hex: :${name}${repo}}`,
    'rebar.config': app === name ? `{${name}, "${version}"}` : `{${rebarApp}, "${version}", {pkg, ${name}}}`,
    'erlang.mk': `dep_${name} = hex ${version}`,
  };
}

/** `maintainers` from metadata.config, when the package lists them (hex.pm shows them in `meta`). */
function maintainersOf(meta: Metadata): string[] {
  const term = meta.other.maintainers;
  if (term?.type !== 'list') return [];
  return term.items.map(termText).filter((t): t is string => t !== null);
}

export function createApiHandler(opts: ApiOptions): (req: IncomingMessage, res: ServerResponse, path: string, state: ApiRequestContext) => Promise<void> {
  const auth = async (ctx: Ctx, scope: Scope, pkg?: string): Promise<Identity | null> => refuseUnless(ctx, await opts.access.check(ctx.ip, ctx.req.headers.authorization, scope, pkg));
  const refuseUnless = (ctx: Ctx, decision: AccessDecision): Identity | null => {
    if (!decision.ok) {
      if (decision.identity) ctx.state.identity = decision.identity;
      const headers: Record<string, string> = {};
      if (decision.status === 401) headers['www-authenticate'] = 'Basic realm="hexrepo"';
      if (decision.retryAfterSeconds !== undefined) headers['retry-after'] = String(decision.retryAfterSeconds);
      throw new ApiError(decision.status, decision.message, undefined, headers);
    }
    ctx.state.identity = decision.identity ?? ctx.state.identity;
    return decision.identity;
  };
  const service = (): RepoService => {
    if (!opts.service) throw new ApiError(503, 'publishing is disabled on this server: start "hexrepo serve" with the repository\'s private key (--private-key)');
    return opts.service;
  };
  const releaseUrl = (ctx: Ctx, name: string, version: string): string => `${ctx.base}/packages/${name}/releases/${version}`;
  const releaseMap = async (ctx: Ctx, r: ReleaseView, meta: Metadata | null): Promise<Record<string, Etf>> => ({
    version: r.version,
    checksum: r.checksum,
    inner_checksum: r.innerChecksum,
    url: releaseUrl(ctx, r.name, r.version),
    html_url: releaseUrl(ctx, r.name, r.version),
    package_url: `${ctx.base}/packages/${r.name}`,
    docs_html_url: null,
    has_docs: await service().hasDocs(r.name, r.version),
    inserted_at: iso(r.publishedAt),
    updated_at: iso(r.publishedAt),
    retirement: retirementOf(r.retired),
    requirements: requirementsOf(r.dependencies),
    configs: configsOf(opts.repository, r.name, meta?.app ?? r.name, r.version),
    meta: meta ? { app: meta.app, build_tools: [...new Set(meta.buildTools)], elixir: meta.elixir ?? null } : {},
    // hexrepo counts no downloads; hex.pm's shape for a release is an integer.
    downloads: 0,
    // Who published is not recorded; hex.pm answers nil for such releases too.
    publisher: null,
  });
  const findRelease = (name: string, version: string): ReleaseView => {
    const r = service().releases(name).find((x) => x.version === version);
    if (!r) throw new ApiError(404, service().releases(name).length ? `${name} has no release ${version}` : `no package ${name}`);
    return r;
  };

  const publish = async (ctx: Ctx, urlName?: string): Promise<void> => {
    const who = await auth(ctx, 'write', urlName);
    const svc = service();
    const type = (ctx.req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    if (type !== 'application/octet-stream') throw new ApiError(415, `publish the tarball as application/octet-stream, not ${type || 'nothing'}`);
    const body = await readBody(ctx, opts.maxUploadBytes);
    const replace = ctx.query.get('replace') === 'true';
    // On /publish the package is only known once the tarball is read: the token's package
    // patterns are checked then, before anything is stored.
    const result = await svc.publish(body, { replace, ...(urlName ? { name: urlName } : {}), authorize: (name) => void refuseUnless(ctx, opts.access.authorize(who!, 'write', name)) });
    const view = findRelease(result.name, result.version);
    const map = await releaseMap(ctx, view, result.metadata);
    opts.logger?.info({ package: result.name, version: result.version, replaced: !result.created, who: ctx.state.identity?.kind === 'token' ? `token:${ctx.state.identity.token.id}` : ctx.state.identity?.kind === 'user' ? `user:${ctx.state.identity.username}` : undefined }, 'published');
    reply(ctx, result.created ? 201 : 200, map, { location: releaseUrl(ctx, result.name, result.version) });
  };

  const routes: Route[] = [
    {
      method: 'GET',
      pattern: /^\/users\/me$/,
      label: '/api/users/me',
      handle: async (ctx) => {
        // The same limiter as every other credential check: this answer tells whether a password is right.
        const decision = await opts.access.authenticate(ctx.ip, ctx.req.headers.authorization);
        if (!decision.ok) {
          const headers: Record<string, string> = decision.status === 401 ? { 'www-authenticate': 'Basic realm="hexrepo"' } : {};
          if (decision.retryAfterSeconds !== undefined) headers['retry-after'] = String(decision.retryAfterSeconds);
          throw new ApiError(decision.status, ctx.req.headers.authorization === undefined ? 'missing authentication information' : decision.message, undefined, headers);
        }
        const id = decision.identity!;
        ctx.state.identity = id;
        const username = id.kind === 'user' ? id.username : id.token.label;
        reply(ctx, 200, { username, email: null, organizations: [], url: `${ctx.base}/users/me` });
      },
    },
    { method: 'POST', pattern: /^\/publish$/, label: '/api/publish', handle: (ctx) => publish(ctx) },
    { method: 'POST', pattern: new RegExp(`^/packages/${NAME}/releases$`), label: '/api/packages/:name/releases', handle: (ctx, m) => publish(ctx, m[1]) },
    {
      method: 'GET',
      pattern: new RegExp(`^/packages/${NAME}$`),
      label: '/api/packages/:name',
      handle: async (ctx, m) => {
        const name = m[1]!;
        await auth(ctx, 'read', name);
        const releases = service().releases(name);
        if (releases.length === 0) throw new ApiError(404, `no package ${name}`);
        const newest = [...releases].reverse();
        const stable = newest.find((r) => !r.version.includes('-'));
        // hex.pm's snippet points at the latest stable release (else the latest); the package's
        // meta is that of the latest release.
        const shown = stable ?? newest[0]!;
        const meta = await service().metadata(name, newest[0]!.version);
        const shownApp = shown === newest[0] ? meta.app : (await service().metadata(name, shown.version)).app;
        const retirements: Record<string, Etf> = {};
        for (const r of releases) if (r.retired) retirements[r.version] = retirementOf(r.retired);
        reply(ctx, 200, {
          name,
          repository: opts.repository,
          url: `${ctx.base}/packages/${name}`,
          html_url: `${ctx.base}/packages/${name}`,
          docs_html_url: null,
          latest_version: newest[0]!.version,
          latest_stable_version: stable?.version ?? null,
          releases: await Promise.all(newest.map(async (r) => ({ version: r.version, url: releaseUrl(ctx, name, r.version), has_docs: await service().hasDocs(name, r.version), inserted_at: iso(r.publishedAt) }))),
          retirements,
          configs: configsOf(opts.repository, name, shownApp, shown.version),
          meta: { description: meta.description ?? null, licenses: meta.licenses, links: Object.fromEntries(meta.links), maintainers: maintainersOf(meta) },
          inserted_at: iso(releases.map((r) => r.publishedAt).find((t) => t !== undefined)),
          updated_at: iso(Math.max(0, ...releases.map((r) => r.publishedAt ?? 0)) || undefined),
          // hex.pm merges its download views ("all", "recent", …) into one map; hexrepo counts none.
          downloads: {},
          // No owners are kept: access is per token and user, not per package.
          owners: [],
        });
      },
    },
    {
      method: 'GET',
      pattern: new RegExp(`^/packages/${NAME}/releases/${VERSION}$`),
      label: '/api/packages/:name/releases/:version',
      handle: async (ctx, m) => {
        await auth(ctx, 'read', m[1]);
        const r = findRelease(m[1]!, m[2]!);
        reply(ctx, 200, await releaseMap(ctx, r, await service().metadata(m[1]!, m[2]!)));
      },
    },
    {
      method: 'DELETE',
      pattern: new RegExp(`^/packages/${NAME}/releases/${VERSION}$`),
      label: '/api/packages/:name/releases/:version',
      handle: async (ctx, m) => {
        await auth(ctx, 'write', m[1]);
        await service().revert(m[1]!, m[2]!);
        opts.logger?.info({ package: m[1], version: m[2] }, 'reverted');
        reply(ctx, 204);
      },
    },
    {
      method: 'POST',
      pattern: new RegExp(`^/packages/${NAME}/releases/${VERSION}/retire$`),
      label: '/api/packages/:name/releases/:version/retire',
      handle: async (ctx, m) => {
        await auth(ctx, 'write', m[1]);
        const body = await readTermBody(ctx);
        const reason = body.reason;
        if (!isRetirementReason(reason)) {
          throw new ApiError(422, `reason must be one of ${Object.keys(RETIREMENT_REASONS).join(', ')}`, { reason: 'is invalid' });
        }
        const message = body.message;
        if (message !== undefined && message !== null && typeof message !== 'string') throw new ApiError(422, 'message must be a string', { message: 'is invalid' });
        if (typeof message === 'string' && message.length > 140) throw new ApiError(422, 'message must be at most 140 characters', { message: 'should be at most 140 character(s)' });
        await service().retire(m[1]!, m[2]!, { reason, ...(typeof message === 'string' && message !== '' ? { message } : {}) });
        opts.logger?.info({ package: m[1], version: m[2], reason }, 'retired');
        reply(ctx, 204);
      },
    },
    {
      method: 'DELETE',
      pattern: new RegExp(`^/packages/${NAME}/releases/${VERSION}/retire$`),
      label: '/api/packages/:name/releases/:version/retire',
      handle: async (ctx, m) => {
        await auth(ctx, 'write', m[1]);
        await service().unretire(m[1]!, m[2]!);
        opts.logger?.info({ package: m[1], version: m[2] }, 'unretired');
        reply(ctx, 204);
      },
    },
    {
      method: 'POST',
      pattern: new RegExp(`^/packages/${NAME}/releases/${VERSION}/docs$`),
      label: '/api/packages/:name/releases/:version/docs',
      handle: async (ctx, m) => {
        await auth(ctx, 'write', m[1]);
        findRelease(m[1]!, m[2]!);
        const body = await readBody(ctx, opts.maxUploadBytes);
        await service().putDocs(m[1]!, m[2]!, body);
        const location = `${ctx.base.replace(/\/api(\/repos\/[^/]+)?$/, '')}/docs/${m[1]}-${m[2]}.tar.gz`;
        reply(ctx, 201, undefined, { location });
      },
    },
    {
      method: 'DELETE',
      pattern: new RegExp(`^/packages/${NAME}/releases/${VERSION}/docs$`),
      label: '/api/packages/:name/releases/:version/docs',
      handle: async (ctx, m) => {
        await auth(ctx, 'write', m[1]);
        await service().deleteDocs(m[1]!, m[2]!);
        reply(ctx, 204);
      },
    },
    {
      method: 'GET',
      pattern: new RegExp(`^/packages/${NAME}/releases/${VERSION}/docs$`),
      label: '/api/packages/:name/releases/:version/docs',
      handle: async (ctx, m) => {
        await auth(ctx, 'read', m[1]);
        if (!(await service().hasDocs(m[1]!, m[2]!))) throw new ApiError(404, `no docs for ${m[1]} ${m[2]}`);
        reply(ctx, 302, undefined, { location: `${ctx.base.replace(/\/api(\/repos\/[^/]+)?$/, '')}/docs/${m[1]}-${m[2]}.tar.gz` });
      },
    },
  ];

  return async (req, res, path, state) => {
    const url = new URL(path, 'http://localhost');
    let rest = url.pathname.slice('/api'.length);
    let base = '/api';
    const repoPrefix = /^\/repos\/([^/]+)(\/.*)$/.exec(rest);
    if (repoPrefix) {
      if (repoPrefix[1] !== opts.repository) {
        state.route = '/api/repos/:repo';
        return reply({ req, res, query: url.searchParams, base, state, ip: '' }, 404, { status: 404, message: `no repository ${repoPrefix[1]} here (this server is ${opts.repository})` });
      }
      rest = repoPrefix[2]!;
      base = `/api/repos/${opts.repository}`;
    }
    const host = req.headers.host ?? 'localhost';
    const ctx: Ctx = { req, res, query: url.searchParams, base: `http://${host}${base}`, state, ip: req.socket.remoteAddress ?? 'unknown' };
    const matching = routes.filter((r) => r.pattern.test(rest));
    const route = matching.find((r) => r.method === req.method);
    try {
      if (!route) {
        state.route = matching[0]?.label ?? '/api/other';
        if (matching.length > 0) throw new ApiError(405, `${req.method} is not allowed here`, undefined, { allow: [...new Set(matching.map((r) => r.method))].join(', ') });
        throw new ApiError(404, 'no such API endpoint');
      }
      state.route = route.label;
      const m = route.pattern.exec(rest)!.slice(0);
      // A name or version Hex would refuse names nothing here; it never reaches the store.
      if (m[1] !== undefined && !plausibleRelease(m[1], m[2])) throw new ApiError(404, `no package ${m[1].slice(0, 64)}${m[1].length > 64 ? '…' : ''}`);
      await route.handle(ctx, m);
    } catch (err) {
      const e = toApiError(err);
      if (e.status >= 500) opts.logger?.error({ err: err instanceof Error ? err.message : String(err), path: logPath(url.pathname) }, 'API request failed');
      if (res.headersSent) {
        res.destroy();
        return;
      }
      reply(ctx, e.status, { status: e.status, message: e.message, ...(e.errors ? { errors: e.errors } : {}) }, e.headers);
    }
  };
}
