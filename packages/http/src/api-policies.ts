/**
 * Admin API for advisories and dependency policies, per repository (`/api[/repos/REPO]`):
 *   GET    /packages/:name/advisories            read scope
 *   POST   /packages/:name/advisories            write scope on the package: {advisory…, versions: [REQ|VSN…]}
 *   DELETE /packages/:name/advisories/:id        write scope on the package
 *   GET    /policies, /policies/:policy          read scope; a private policy needs read access also in a public repository
 *   POST   /policies                             admin scope: create
 *   POST   /policies/:policy                     admin scope: create or replace
 *   DELETE /policies/:policy                     admin scope
 * A policy changes what every user of the repository may resolve, so writing one needs admin.
 * The routes are declared here and mounted by api.ts; errors go through its one status mapping.
 */
import type { Advisory, PolicyDefinition } from '@hexrepo/core';
import type { AdvisoryView, RepoService, Scope } from '@hexrepo/repo';
import type { Etf } from './etf.js';

/** What a route handler gets: the request's validated names and its parameters. */
export interface PolicyRouteCtx {
  name: string;
  params: Record<string, string | undefined>;
}

/** The helpers of api.ts the routes use (its reply, body reader, service lookup and error). */
export interface PolicyRouteKit<C extends PolicyRouteCtx> {
  service(ctx: C): RepoService;
  reply(ctx: C, status: number, body?: Etf): void;
  readTermBody(ctx: C): Promise<Record<string, Etf>>;
  error(status: number, message: string): Error;
  log(fields: Record<string, unknown>, message: string): void;
  /**
   * Resolves when the caller may read the repository as if it were private; throws the access
   * refusal otherwise. A private policy needs that also in a public repository, as `policies/NAME` does.
   */
  readPrivate(ctx: C): Promise<void>;
}

export interface PolicyRoute<C> {
  method: 'GET' | 'POST' | 'DELETE';
  path: string;
  auth: { scope: Scope; pkg?: 'name' };
  handle: (ctx: C) => Promise<void>;
}

function advisoryMap(a: Advisory): Record<string, Etf> {
  return { id: a.id, summary: a.summary, html_url: a.htmlUrl, api_url: a.apiUrl, severity: a.severity ?? null, cvss_score: a.cvssScore ?? null, aliases: a.aliases };
}

/** The API shape of an advisory and the versions it is attached to (also used in the package map). */
export function advisoryViewMap(v: AdvisoryView): Record<string, Etf> {
  return { ...advisoryMap(v.advisory), versions: v.versions };
}

/** JSON and ETF maps carry plain data: a policy definition is already that. */
const policyMap = (p: PolicyDefinition): Etf => JSON.parse(JSON.stringify(p)) as Etf;

const text = (v: Etf | undefined): string | undefined => (typeof v === 'string' ? v : v instanceof Uint8Array ? Buffer.from(v).toString('utf8') : undefined);

/** The routes, for api.ts's router. */
export function policyRoutes<C extends PolicyRouteCtx>(kit: PolicyRouteKit<C>): PolicyRoute<C>[] {
  const policyName = (ctx: C): string => ctx.params.policy ?? '';
  return [
    {
      method: 'GET',
      path: '/packages/:name/advisories',
      auth: { scope: 'read', pkg: 'name' },
      handle: async (ctx) => {
        const svc = kit.service(ctx);
        if (svc.releases(ctx.name).length === 0) throw kit.error(404, `no package ${ctx.name}`);
        kit.reply(ctx, 200, svc.advisories(ctx.name).map(advisoryViewMap));
      },
    },
    {
      method: 'POST',
      path: '/packages/:name/advisories',
      auth: { scope: 'write', pkg: 'name' },
      handle: async (ctx) => {
        const body = await kit.readTermBody(ctx);
        const versions = Array.isArray(body.versions) ? body.versions.map(text).filter((v): v is string => v !== undefined) : [];
        const aliases = Array.isArray(body.aliases) ? body.aliases.map(text) : body.aliases;
        const svc = kit.service(ctx);
        await svc.addAdvisory(ctx.name, { id: text(body.id), summary: text(body.summary), htmlUrl: text(body.html_url), apiUrl: text(body.api_url), severity: text(body.severity), cvssScore: body.cvss_score, aliases }, versions);
        const view = svc.advisories(ctx.name).find((a) => a.advisory.id === text(body.id))!;
        kit.log({ package: ctx.name, advisory: view.advisory.id, versions: view.versions }, 'advisory added');
        kit.reply(ctx, 201, advisoryViewMap(view));
      },
    },
    {
      method: 'DELETE',
      path: '/packages/:name/advisories/:id',
      auth: { scope: 'write', pkg: 'name' },
      handle: async (ctx) => {
        await kit.service(ctx).removeAdvisory(ctx.name, ctx.params.id ?? '');
        kit.log({ package: ctx.name, advisory: ctx.params.id }, 'advisory removed');
        kit.reply(ctx, 204);
      },
    },
    {
      method: 'GET',
      path: '/policies',
      auth: { scope: 'read' },
      handle: async (ctx) => {
        const all = await kit.service(ctx).listPolicies();
        const privateOk = all.some((p) => p.visibility !== 'public')
          ? await kit.readPrivate(ctx).then(
              () => true,
              () => false,
            )
          : false;
        kit.reply(ctx, 200, all.filter((p) => privateOk || p.visibility === 'public').map(policyMap));
      },
    },
    {
      method: 'GET',
      path: '/policies/:policy',
      auth: { scope: 'read' },
      handle: async (ctx) => {
        const p = await kit.service(ctx).getPolicy(policyName(ctx));
        if (p?.visibility !== 'public') await kit.readPrivate(ctx);
        if (!p) throw kit.error(404, `no policy ${policyName(ctx)}`);
        kit.reply(ctx, 200, policyMap(p));
      },
    },
    {
      method: 'POST',
      path: '/policies',
      auth: { scope: 'admin' },
      handle: async (ctx) => {
        const stored = await kit.service(ctx).putPolicy(await kit.readTermBody(ctx), 'create');
        kit.log({ policy: stored.name }, 'policy created');
        kit.reply(ctx, 201, policyMap(stored));
      },
    },
    {
      method: 'POST',
      path: '/policies/:policy',
      auth: { scope: 'admin' },
      handle: async (ctx) => {
        const body = await kit.readTermBody(ctx);
        if (body.name !== undefined && text(body.name) !== policyName(ctx)) throw kit.error(422, `the body names policy ${JSON.stringify(text(body.name))}, the URL ${policyName(ctx)}`);
        const stored = await kit.service(ctx).putPolicy({ ...body, name: policyName(ctx) }, 'upsert');
        kit.log({ policy: stored.name }, 'policy stored');
        kit.reply(ctx, 200, policyMap(stored));
      },
    },
    {
      method: 'DELETE',
      path: '/policies/:policy',
      auth: { scope: 'admin' },
      handle: async (ctx) => {
        await kit.service(ctx).deletePolicy(policyName(ctx));
        kit.log({ policy: policyName(ctx) }, 'policy deleted');
        kit.reply(ctx, 204);
      },
    },
  ];
}
