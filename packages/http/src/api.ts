/**
 * The publish API of HEX_SPEC.md §6, under `/api` and `/api/repos/REPO`: what `mix hex.publish`,
 * `mix hex.retire`, `mix hex.publish --revert` and rebar3_hex send. Bodies are ETF
 * (`application/vnd.hex+erlang`) as Hex reads nothing else, or JSON when the client asks for it.
 */
import { createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { isHexrepoError, validateRetirement, type ErrorCode, type Retirement } from '@hexrepo/core';
import { SEARCH_SORTS, SearchIndex, type PackageSummary, type ReleaseView, type RepoService, type Scope, type SearchSort } from '@hexrepo/repo';
import { termText, type Metadata } from '@hexrepo/tarball';
import Router from 'find-my-way';
import type { Logger } from 'pino';
import { createAccount } from './api-account.js';
import { refusal, type Access, type AccessDecision, type Identity } from './auth.js';
import { decodeEtf, encodeEtf, ETF_CONTENT_TYPE, type Etf } from './etf.js';
import { advisoryViewMap, policyRoutes } from './api-policies.js';
import { NAME, plausibleRelease, VERSION } from './routes.js';
import { bodyUnread, etagMatches, logPath, requestOrigin } from './request.js';

/** One repository of the host, as the API serves it. */
export interface ApiRepository {
  name: string;
  /** `public`: reads (package and release GETs) need no credentials. */
  visibility: 'public' | 'private';
  /** Absent: the server has no signing key for it, and every write answers 503. */
  service?: RepoService;
}

export interface ApiOptions {
  access: Access;
  /** Largest upload accepted (tarballs and docs). */
  maxUploadBytes: number;
  logger?: Logger;
  /** Build the URLs in answers (`url`, `html_url`) from `X-Forwarded-Proto`/`-Host` (requestOrigin). @default false */
  trustProxy?: boolean;
}

export interface ApiRequestContext {
  /** Set once the caller is known, for the access log. */
  identity: Identity | null;
  route: string;
}

/** Where a request to the API goes, as the host resolved it from the path. */
export interface ApiTarget {
  repo: ApiRepository;
  /** The path below the repository's API root (`/packages/foo`), without the query. */
  path: string;
  query: URLSearchParams;
  /** `/api` or `/api/repos/REPO`: the repository's API root on this host. */
  apiRoot: string;
  /** `` or `/repos/REPO`: the repository endpoint's root on this host (docs URLs). */
  repoRoot: string;
}

/**
 * How a route is authorised, checked by the dispatcher before the handler runs: any valid
 * credential ('authenticated'), or `scope` on the request's repository, on the package the `:name`
 * parameter names when `pkg` says so.
 */
export type RouteAuth = 'authenticated' | { scope: Scope; pkg?: 'name' };

const METHODS = ['GET', 'POST', 'PUT', 'DELETE'] as const;
type Method = (typeof METHODS)[number];

export interface ApiRoute {
  method: Method;
  /** Below the repository's API root, with named parameters (`:name`, `:version`). */
  path: string;
  auth: RouteAuth;
  handle: (ctx: Ctx) => Promise<void>;
}

export interface Ctx {
  req: IncomingMessage;
  res: ServerResponse;
  query: URLSearchParams;
  /** `http://host/api` or `http://host/api/repos/REPO`, for the URLs in responses. */
  base: string;
  /** `http://host` or `http://host/repos/REPO`: the repository endpoint (docs tarballs). */
  site: string;
  repo: ApiRepository;
  /** The route's named parameters, validated as Hex names and versions. */
  name: string;
  version: string;
  /** Other named parameters (`:username`, `:key`), percent-decoded, checked by their handlers. */
  params: Record<string, string | undefined>;
  state: ApiRequestContext;
  /** The client's address, read when the request arrived (the socket may be gone by the reply). */
  ip: string;
}

const NAME_RE = new RegExp(`^${NAME}$`);
const VERSION_RE = new RegExp(`^${VERSION}$`);

export class ApiError extends Error {
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
  STORAGE_FULL: 507,
  STORAGE_LOCKED: 503,
  RETIREMENT_INVALID: 422,
  OWNERSHIP_INVALID: 422,
  PERMISSION_DENIED: 403,
  ADVISORY_INVALID: 422,
  POLICY_INVALID: 422,
  REQUIREMENT_INVALID: 422,
};

function toApiError(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  if (!isHexrepoError(err)) return new ApiError(500, 'internal error');
  const status = STATUS_OF[err.code] ?? (/^(TAR|CONTENTS|TERM|METADATA)_|^TARBALL_NAME_MISMATCH$/.test(err.code) ? 422 : 500);
  if (err.code === 'ALREADY_EXISTS') return new ApiError(422, err.message, { inserted_at: 'must include the --replace flag to update an existing release' });
  // hex.pm's changeset error: { field: problem }, e.g. { message: 'should be at most 140 character(s)' }.
  if (err.code === 'RETIREMENT_INVALID' || (err.code === 'OWNERSHIP_INVALID' && err.details.field !== undefined)) return new ApiError(422, err.message, { [String(err.details.field)]: String(err.details.problem) });
  if (status === 422 || status === 413) return new ApiError(status, err.message, { tar: `[${err.code}] ${err.message}` });
  // A failing disk is the server's trouble, not the client's request: retry later, nothing was applied.
  if (err.code === 'STORAGE_IO' && err.details.errno === 'EIO') return new ApiError(503, 'the server could not write to its storage (EIO, an I/O error); nothing was applied, retry later');
  return new ApiError(status, status === 500 ? 'internal error' : err.message);
}

function wantsJson(req: IncomingMessage): boolean {
  const accept = req.headers.accept ?? '';
  return !accept.includes(ETF_CONTENT_TYPE) && !accept.includes('application/vnd.hex+erlang');
}

export function reply(ctx: Pick<Ctx, 'req' | 'res'>, status: number, body?: Etf, headers: Record<string, string> = {}): void {
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

export function iso(seconds: number | undefined): string | null {
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
export async function readTermBody(ctx: Ctx): Promise<Record<string, Etf>> {
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
export function configsOf(repository: string, name: string, app: string, version: string): Record<string, string> {
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

/** An API error outside any repository's routes (an unknown repository), in ETF or JSON as the client asks. */
/**
 * A read answer with a strong ETag of its bytes (JSON and ETF differ, so each has its own), 304 to a
 * matching If-None-Match. A public repository's answer is the same for everyone (`public,
 * no-cache`: kept, revalidated); a private one's depends on the credential, so no cache keeps it.
 */
export function replyCached(ctx: Pick<Ctx, 'req' | 'res'>, body: Etf, visibility: 'public' | 'private'): void {
  const { req, res } = ctx;
  const json = wantsJson(req);
  const bytes = json ? Buffer.from(`${JSON.stringify(body, (_k, v: unknown) => (typeof v === 'bigint' ? Number(v) : v))}\n`) : encodeEtf(body);
  const headers: Record<string, string> = {
    etag: `"${createHash('sha256').update(bytes).digest('base64url').slice(0, 27)}"`,
    'cache-control': visibility === 'public' ? 'public, no-cache' : 'private, no-store',
    vary: visibility === 'public' ? 'accept' : 'accept, authorization',
  };
  for (const [k, v] of Object.entries(headers)) res.setHeader(k, v);
  if (etagMatches(req.headers['if-none-match'], headers.etag!)) {
    res.writeHead(304);
    res.end();
    return;
  }
  res.setHeader('content-type', json ? 'application/json; charset=utf-8' : ETF_CONTENT_TYPE);
  res.setHeader('content-length', String(bytes.length));
  res.writeHead(200);
  res.end(req.method === 'HEAD' ? undefined : bytes);
}

/**
 * The message of the 404 for an API path nothing serves, below `/api` or a repository's API root.
 * hex.pm's organization routes (`/orgs/ORG/keys`: `mix hex.organization key ORG generate|list|revoke`)
 * get one that says why, since Mix prints it after "Generation of key failed".
 */
export function unknownApiPathMessage(path: string): string {
  if (/^\/orgs(\/|$)/.test(path))
    return 'this server has no organizations: each repository of the host is its own (the /orgs API of hex.pm is not served here); make a key for one with POST /keys and the permission repository:NAME (mix hex.organization auth NAME, or hexrepo token create)';
  return 'no such API endpoint';
}

export function replyApiError(req: IncomingMessage, res: ServerResponse, status: number, message: string): void {
  reply({ req, res }, status, { status, message });
}

/**
 * The publish API of every repository of a host: routes grouped per resource, with named
 * parameters matched by find-my-way, and authorisation as one step the dispatcher takes for the
 * route before its handler runs. The host resolves the repository from the path first.
 */
export function createApiHandler(opts: ApiOptions): (req: IncomingMessage, res: ServerResponse, target: ApiTarget, state: ApiRequestContext) => Promise<void> {
  const authorize = async (ctx: Ctx, scope: Scope, pkg?: string): Promise<void> => {
    refuseUnless(ctx, await opts.access.check(ctx.ip, ctx.req.headers.authorization, scope, pkg, { repository: ctx.repo.name, visibility: ctx.repo.visibility }));
  };
  const refuseUnless = (ctx: Ctx, decision: AccessDecision): void => {
    if (!decision.ok) {
      if (decision.identity) ctx.state.identity = decision.identity;
      const r = refusal(decision);
      throw new ApiError(r.status, r.message, undefined, r.headers);
    }
    ctx.state.identity = decision.identity ?? ctx.state.identity;
  };
  const service = (ctx: Ctx): RepoService => {
    if (!ctx.repo.service) throw new ApiError(503, `publishing is disabled for ${ctx.repo.name} on this server: start "hexrepo serve" with the repository's private key (--private-key, or "privateKey" in its hexrepo.json entry)`);
    return ctx.repo.service;
  };
  const releaseUrl = (ctx: Ctx, name: string, version: string): string => `${ctx.base}/packages/${name}/releases/${version}`;
  // Where the web UI hosts unpacked docs (`/docs/NAME/VSN/`, `/docs/NAME/` for the latest).
  const docsHtmlUrl = (ctx: Ctx, name: string, version?: string): string => `${ctx.site}/docs/${name}/${version !== undefined ? `${version}/` : ''}`;
  const account = createAccount({ access: opts.access, ...(opts.logger ? { logger: opts.logger } : {}), service: (ctx) => service(ctx) });
  const packageParams = (ctx: Ctx, name: string, version?: string): Record<string, unknown> => ({ package: { name, repository: ctx.repo.name }, ...(version !== undefined ? { release: { version } } : {}) });
  const docsUrl = (ctx: Ctx): string => `${ctx.site}/docs/${ctx.name}-${ctx.version}.tar.gz`;
  const releaseMap = async (ctx: Ctx, r: ReleaseView, meta: Metadata | null): Promise<Record<string, Etf>> => {
    const hasDocs = await service(ctx).hasDocs(r.name, r.version);
    return {
      version: r.version,
      checksum: r.checksum,
      inner_checksum: r.innerChecksum,
      url: releaseUrl(ctx, r.name, r.version),
      html_url: releaseUrl(ctx, r.name, r.version),
      package_url: `${ctx.base}/packages/${r.name}`,
      docs_html_url: hasDocs ? docsHtmlUrl(ctx, r.name, r.version) : null,
      has_docs: hasDocs,
      inserted_at: iso(r.publishedAt),
      updated_at: iso(r.publishedAt),
      retirement: retirementOf(r.retired),
      requirements: requirementsOf(r.dependencies),
      configs: configsOf(ctx.repo.name, r.name, meta?.app ?? r.name, r.version),
      meta: meta ? { app: meta.app, build_tools: [...new Set(meta.buildTools)], elixir: meta.elixir ?? null } : {},
      // hexrepo counts no downloads; hex.pm's shape for a release is an integer.
      downloads: 0,
      // A user name or a token's label, recorded from this version of hexrepo on; nil for older releases (hex.pm answers nil when it has none either).
      publisher: r.publisher !== undefined ? { username: r.publisher, email: null } : null,
    };
  };
  const findRelease = (ctx: Ctx, name: string, version: string): ReleaseView => {
    const releases = service(ctx).releases(name);
    const r = releases.find((x) => x.version === version);
    if (!r) throw new ApiError(404, releases.length ? `${name} has no release ${version}` : `no package ${name}`);
    return r;
  };

  const publish = async (ctx: Ctx, urlName?: string): Promise<void> => {
    const svc = service(ctx);
    const type = (ctx.req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    if (type !== 'application/octet-stream') throw new ApiError(415, `publish the tarball as application/octet-stream, not ${type || 'nothing'}`);
    const body = await readBody(ctx, opts.maxUploadBytes);
    const replace = ctx.query.get('replace') === 'true';
    // On /publish the package is only known once the tarball is read: the token's package
    // patterns are checked then, before anything is stored.
    const id = ctx.state.identity;
    const publisher = id === null ? null : id.kind === 'user' ? id.username : (id.token.user ?? id.token.label);
    const result = await svc.publish(body, {
      replace,
      ...(urlName ? { name: urlName } : {}),
      ...(publisher !== null ? { publisher } : {}),
      authorize: (name) => refuseUnless(ctx, opts.access.authorize(ctx.state.identity!, 'write', name, ctx.repo.name)),
    });
    // The first publisher of a package becomes its full owner, as on hex.pm.
    if (result.created && svc.releaseCount(result.name) === 1)
      await account.claimNewPackage(ctx, result.name).catch((err: unknown) => opts.logger?.warn({ err: String(err), package: result.name }, 'could not record the owner of a new package'));
    await account.record(ctx, 'release.publish', packageParams(ctx, result.name, result.version), result.name);
    // One lookup, not a view of every release of the package (400 releases: a sort per publish).
    const view = svc.release(result.name, result.version);
    if (!view) throw new ApiError(404, `${result.name} ${result.version} was reverted while it was being published`);
    const map = await releaseMap(ctx, view, result.metadata);
    const who = ctx.state.identity?.kind === 'token' ? `token:${ctx.state.identity.token.id}` : ctx.state.identity?.kind === 'user' ? `user:${ctx.state.identity.username}` : undefined;
    opts.logger?.info({ repository: ctx.repo.name, package: result.name, version: result.version, replaced: !result.created, who }, 'published');
    reply(ctx, result.created ? 201 : 200, map, { location: releaseUrl(ctx, result.name, result.version) });
  };

  const releases: ApiRoute[] = [
    // Hex < 2.3 and rebar3_hex: the package is named by the tarball only.
    { method: 'POST', path: '/publish', auth: { scope: 'write' }, handle: (ctx) => publish(ctx) },
    { method: 'POST', path: '/packages/:name/releases', auth: { scope: 'write', pkg: 'name' }, handle: (ctx) => publish(ctx, ctx.name) },
    {
      method: 'GET',
      path: '/packages/:name/releases/:version',
      auth: { scope: 'read', pkg: 'name' },
      handle: async (ctx) => {
        const r = findRelease(ctx, ctx.name, ctx.version);
        reply(ctx, 200, await releaseMap(ctx, r, await service(ctx).metadata(ctx.name, ctx.version)));
      },
    },
    {
      method: 'DELETE',
      path: '/packages/:name/releases/:version',
      auth: { scope: 'write', pkg: 'name' },
      handle: async (ctx) => {
        await service(ctx).revert(ctx.name, ctx.version);
        await account.record(ctx, 'release.revert', packageParams(ctx, ctx.name, ctx.version), ctx.name);
        opts.logger?.info({ repository: ctx.repo.name, package: ctx.name, version: ctx.version }, 'reverted');
        reply(ctx, 204);
      },
    },
  ];

  const packages: ApiRoute[] = [
    {
      method: 'GET',
      path: '/packages/:name',
      auth: { scope: 'read', pkg: 'name' },
      handle: async (ctx) => {
        const { name } = ctx;
        const svc = service(ctx);
        const all = svc.releases(name);
        if (all.length === 0) throw new ApiError(404, `no package ${name}`);
        const newest = [...all].reverse();
        const stable = newest.find((r) => !r.version.includes('-'));
        // hex.pm's snippet points at the latest stable release (else the latest); the package's
        // meta is that of the latest release.
        const shown = stable ?? newest[0]!;
        const meta = await svc.metadata(name, newest[0]!.version);
        const shownApp = shown === newest[0] ? meta.app : (await svc.metadata(name, shown.version)).app;
        const docs = await Promise.all(newest.map((r) => svc.hasDocs(name, r.version)));
        const retirements: Record<string, Etf> = {};
        for (const r of all) if (r.retired) retirements[r.version] = retirementOf(r.retired);
        replyCached(
          ctx,
          {
            name,
            repository: ctx.repo.name,
            url: `${ctx.base}/packages/${name}`,
            html_url: `${ctx.base}/packages/${name}`,
            docs_html_url: docs.some(Boolean) ? docsHtmlUrl(ctx, name) : null,
            latest_version: newest[0]!.version,
            latest_stable_version: stable?.version ?? null,
            releases: newest.map((r, i) => ({ version: r.version, url: releaseUrl(ctx, name, r.version), has_docs: docs[i]!, inserted_at: iso(r.publishedAt), updated_at: iso(r.publishedAt) })),
            retirements,
            configs: configsOf(ctx.repo.name, name, shownApp, shown.version),
            meta: { description: meta.description ?? null, licenses: meta.licenses, links: Object.fromEntries(meta.links), maintainers: maintainersOf(meta) },
            inserted_at: iso(all.map((r) => r.publishedAt).find((t) => t !== undefined)),
            updated_at: iso(Math.max(0, ...all.map((r) => r.publishedAt ?? 0)) || undefined),
            // hex.pm's download views, each a count; hexrepo counts none, so every view is 0 (a client
            // reading downloads["all"] gets a number, not nil).
            downloads: { all: 0, recent: 0, week: 0, day: 0 },
            owners: await account.ownersList(ctx, name),
            advisories: svc.advisories(name).map(advisoryViewMap),
          },
          ctx.repo.visibility,
        );
      },
    },
  ];

  // hex.pm's list and search (`mix hex.package search`, `rebar3 hex search`): 100 packages a page.
  // Sorts hex.pm has and hexrepo cannot (download counts) fall back to the best match first.
  const summaryMap = (ctx: Ctx, p: PackageSummary): Record<string, Etf> => ({
    name: p.name,
    repository: ctx.repo.name,
    url: `${ctx.base}/packages/${p.name}`,
    html_url: `${new URL(ctx.base).origin}/-/packages/${ctx.repo.name}/${p.name}`,
    docs_html_url: null,
    meta: { description: p.description, licenses: p.licenses, links: Object.fromEntries(p.links), maintainers: p.maintainers },
    releases: p.versions.map((version) => ({ version, url: releaseUrl(ctx, p.name, version) })),
    latest_version: p.latestVersion,
    latest_stable_version: p.latestStableVersion,
    inserted_at: iso(p.insertedAt ?? undefined),
    updated_at: iso(p.updatedAt ?? undefined),
    downloads: {},
  });
  const search: ApiRoute[] = [
    {
      method: 'GET',
      path: '/packages',
      auth: { scope: 'read' },
      handle: async (ctx) => {
        const sortParam = ctx.query.get('sort') ?? 'name';
        const sort: SearchSort = (SEARCH_SORTS as readonly string[]).includes(sortParam) ? (sortParam as SearchSort) : sortParam === 'updated_at' ? 'recent_updated' : 'relevance';
        const pageParam = ctx.query.get('page') ?? '1';
        if (!/^[1-9][0-9]{0,5}$/.test(pageParam)) throw new ApiError(400, `page must be a whole number from 1, not ${JSON.stringify(pageParam.slice(0, 20))}`);
        const id = ctx.state.identity;
        // A token limited to some packages lists only those; on a public repository everyone sees every package.
        const visible = ctx.repo.visibility === 'private' && id ? (name: string) => opts.access.authorize(id, 'read', name, ctx.repo.name).ok : undefined;
        const result = await SearchIndex.of(service(ctx)).search({ term: ctx.query.get('search') ?? '', sort, page: Number(pageParam), ...(visible ? { visible } : {}) });
        replyCached(
          ctx,
          result.packages.map((p) => summaryMap(ctx, p)),
          ctx.repo.visibility,
        );
      },
    },
  ];

  const retirements: ApiRoute[] = [
    {
      method: 'POST',
      path: '/packages/:name/releases/:version/retire',
      auth: { scope: 'write', pkg: 'name' },
      handle: async (ctx) => {
        const body = await readTermBody(ctx);
        // The rule is core's (the service checks it too); RETIREMENT_INVALID becomes hex.pm's 422 in toApiError.
        const retirement = validateRetirement({ reason: body.reason, message: body.message });
        await service(ctx).retire(ctx.name, ctx.version, retirement);
        await account.record(ctx, 'release.retire', { ...packageParams(ctx, ctx.name, ctx.version), retirement: { reason: retirement.reason, message: retirement.message ?? null } }, ctx.name);
        opts.logger?.info({ repository: ctx.repo.name, package: ctx.name, version: ctx.version, reason: retirement.reason }, 'retired');
        reply(ctx, 204);
      },
    },
    {
      method: 'DELETE',
      path: '/packages/:name/releases/:version/retire',
      auth: { scope: 'write', pkg: 'name' },
      handle: async (ctx) => {
        await service(ctx).unretire(ctx.name, ctx.version);
        await account.record(ctx, 'release.unretire', packageParams(ctx, ctx.name, ctx.version), ctx.name);
        opts.logger?.info({ repository: ctx.repo.name, package: ctx.name, version: ctx.version }, 'unretired');
        reply(ctx, 204);
      },
    },
  ];

  const docs: ApiRoute[] = [
    {
      method: 'POST',
      path: '/packages/:name/releases/:version/docs',
      auth: { scope: 'write', pkg: 'name' },
      handle: async (ctx) => {
        findRelease(ctx, ctx.name, ctx.version);
        const body = await readBody(ctx, opts.maxUploadBytes);
        await service(ctx).putDocs(ctx.name, ctx.version, body);
        await account.record(ctx, 'docs.publish', packageParams(ctx, ctx.name, ctx.version), ctx.name);
        reply(ctx, 201, undefined, { location: docsUrl(ctx) });
      },
    },
    {
      method: 'DELETE',
      path: '/packages/:name/releases/:version/docs',
      auth: { scope: 'write', pkg: 'name' },
      handle: async (ctx) => {
        await service(ctx).deleteDocs(ctx.name, ctx.version);
        await account.record(ctx, 'docs.revert', packageParams(ctx, ctx.name, ctx.version), ctx.name);
        reply(ctx, 204);
      },
    },
    {
      method: 'GET',
      path: '/packages/:name/releases/:version/docs',
      auth: { scope: 'read', pkg: 'name' },
      handle: async (ctx) => {
        if (!(await service(ctx).hasDocs(ctx.name, ctx.version))) throw new ApiError(404, `no docs for ${ctx.name} ${ctx.version}`);
        reply(ctx, 302, undefined, { location: docsUrl(ctx) });
      },
    },
  ];

  // Parameters are checked against Hex's rules by the dispatcher, so their length is not capped here.
  const router = Router({ caseSensitive: true, ignoreTrailingSlash: false, ignoreDuplicateSlashes: false, maxParamLength: 100_000 });
  const policies: ApiRoute[] = policyRoutes<Ctx>({
    service,
    reply,
    readTermBody,
    error: (status, message) => new ApiError(status, message),
    log: (fields, message) => opts.logger?.info(fields, message),
    readPrivate: async (ctx) => refuseUnless(ctx, await opts.access.check(ctx.ip, ctx.req.headers.authorization, 'read', undefined, { repository: ctx.repo.name, visibility: 'private' })),
  });
  for (const route of [...releases, ...packages, ...search, ...retirements, ...docs, ...account.routes, ...policies]) router.on(route.method, route.path, () => undefined, route);
  const find = (method: string, path: string): { route: ApiRoute; params: Record<string, string | undefined> } | null => {
    let found;
    try {
      found = (METHODS as readonly string[]).includes(method) ? router.find(method as Method, path) : null;
    } catch {
      return null; // a malformed percent-escape
    }
    if (!found) return null;
    // Percent-escapes only in a user or key name, the last segment (Mix encodes "a@b" as "a%40b").
    if (path.includes('%') && (path.slice(0, path.lastIndexOf('/')).includes('%') || (found.params.username === undefined && found.params.key === undefined))) return null;
    return { route: found.store as ApiRoute, params: found.params };
  };

  return async (req, res, target, state) => {
    const origin = requestOrigin(req, opts.trustProxy === true);
    const ctx: Ctx = {
      req,
      res,
      query: target.query,
      base: `${origin}${target.apiRoot}`,
      site: `${origin}${target.repoRoot}`,
      repo: target.repo,
      name: '',
      version: '',
      params: {},
      state,
      ip: req.socket.remoteAddress ?? 'unknown',
    };
    try {
      const found = find(req.method ?? 'GET', target.path);
      if (!found) {
        const allowed = METHODS.filter((m) => find(m, target.path) !== null);
        state.route = allowed.length > 0 ? `/api${find(allowed[0]!, target.path)!.route.path}` : '/api/other';
        if (allowed.length > 0) throw new ApiError(405, `${req.method} is not allowed here`, undefined, { allow: allowed.join(', ') });
        throw new ApiError(404, unknownApiPathMessage(target.path));
      }
      const { route, params } = found;
      ctx.params = params;
      state.route = `/api${route.path}`;
      if (params.name !== undefined) {
        const name = params.name;
        if (!NAME_RE.test(name) || (params.version !== undefined && !VERSION_RE.test(params.version))) throw new ApiError(404, 'no such API endpoint');
        // A name or version Hex would refuse names nothing here; it never reaches the store.
        if (!plausibleRelease(name, params.version)) throw new ApiError(404, `no package ${name.slice(0, 64)}${name.length > 64 ? '…' : ''}`);
        ctx.name = name;
        ctx.version = params.version ?? '';
      }
      if (route.auth === 'authenticated') {
        // The same limiter as every other credential check: this answer tells whether a password is right.
        const decision = await opts.access.authenticate(ctx.ip, req.headers.authorization);
        if (!decision.ok) {
          const r = refusal(decision);
          throw new ApiError(r.status, req.headers.authorization === undefined ? 'missing authentication information' : r.message, undefined, r.headers);
        }
        state.identity = decision.identity;
      } else await authorize(ctx, route.auth.scope, route.auth.pkg === 'name' ? ctx.name : undefined);
      await route.handle(ctx);
    } catch (err) {
      const e = toApiError(err);
      if (e.status >= 500) opts.logger?.error({ err: err instanceof Error ? err.message : String(err), path: logPath(target.path) }, 'API request failed');
      if (res.headersSent) {
        res.destroy();
        return;
      }
      reply(ctx, e.status, { status: e.status, message: e.message, ...(e.errors ? { errors: e.errors } : {}) }, e.headers);
    }
  };
}
