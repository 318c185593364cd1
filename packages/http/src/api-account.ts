/**
 * The API's account side, beside the publish routes of api.ts: package owners, `GET /auth`, API
 * keys, audit logs and package-level retirement, as hex.pm shapes them (hexpm's OwnerController,
 * AuthController, KeyController, AuditLogView) and Mix and hex_core read them.
 *
 * Who may change owners: an identity with the `admin` scope on the repository (and the package), or
 * a `full` owner of the package whose credential can write it. Owners are host users (or the
 * configured users); ownership does not decide who may publish, grants do.
 */
import { isHexrepoError, validateRetirement, type Retirement } from '@hexrepo/core';
import {
  addOwner,
  AuditLog,
  grantAllows,
  grantsForPermissions,
  isOwnerLevel,
  ownedPackages,
  packageAuditKey,
  permissionsOfGrants,
  readOwners,
  removeOwner,
  userAuditKey,
  type AuditAction,
  type AuditEntry,
  type HexPermission,
  type Owner,
  type RepoService,
  type TokenInfo,
  type TokenStore,
} from '@hexrepo/repo';
import type { BlobStore } from '@hexrepo/storage';
import type { Logger } from 'pino';
import { ApiError, readTermBody, reply, type ApiRoute, type Ctx } from './api.js';
import type { Access, Identity } from './auth.js';
import type { Etf } from './etf.js';
import { SESSION_LABEL } from './web/session.js';

const USERNAME_RE = /^[A-Za-z0-9_.@-]{1,64}$/;
const KEY_NAME_RE = /^[^\u0000-\u001f/]{1,100}$/;
/**
 * API keys one user may hold. Every key lives in the host's credentials file, which each write
 * rewrites and every server re-reads: without a bound, one user's loop of POST /keys slows them all.
 */
export const MAX_KEYS_PER_USER = 100;

export interface AccountDeps {
  access: Access;
  logger?: Logger;
  /** The repository's service (503 without one). */
  service: (ctx: Ctx) => RepoService;
}

/** The name audit logs and ownership use for an identity: the user, or `token:LABEL` for a token of no user. */
export function actorOf(id: Identity | null): string | null {
  if (!id) return null;
  if (id.kind === 'user') return id.username;
  return id.token.user ?? `token:${id.token.label}`;
}

/**
 * The host user an identity manages keys as (a user, or a key created by one); null for a token
 * of no user, and for an OAuth token: it does not manage the user's keys.
 */
function userOf(id: Identity): string | null {
  if (id.kind === 'user') return id.username;
  return id.token.id.startsWith('oauth:') ? null : (id.token.user ?? null);
}

/**
 * The host user an identity acts as on packages (ownership, `GET /users/me`): a user, a key created
 * by one, or an OAuth token of one, as hex.pm's api:write token acts as its user (Hex ≥ 2.4 logs
 * in only that way). What it may write is still decided by its own grants.
 */
function ownerUserOf(id: Identity): string | null {
  return id.kind === 'user' ? id.username : (id.token.user ?? null);
}

/** hex.pm's `Key.unique_name`: NAME while it is free, else NAME-N, N one past the largest in use (at least 2). */
function uniqueKeyName(name: string, taken: readonly string[]): string {
  if (!taken.includes(name)) return name;
  let max = 1;
  for (const t of taken) {
    const rest = t.startsWith(`${name}-`) ? t.slice(name.length + 1) : '';
    if (/^[0-9]{1,9}$/.test(rest)) max = Math.max(max, Number(rest));
  }
  return `${name}-${max + 1}`;
}

function grantsOf(id: Identity): TokenInfo['grants'] {
  return id.kind === 'user' ? id.grants : id.token.grants;
}

export interface Account {
  routes: ApiRoute[];
  /** Append an event to the package's log (when `pkg`) and the actor's; failures are logged, never fail the request. */
  record: (ctx: Ctx, action: AuditAction, params: Record<string, unknown>, pkg?: string) => Promise<void>;
  /** The owners of a package as the package map lists them. */
  ownersList: (ctx: Ctx, name: string) => Promise<Etf[]>;
  /** Make the publisher the first full owner of a package it just created. */
  claimNewPackage: (ctx: Ctx, name: string) => Promise<void>;
}

/** The account routes and the audit recorder of one API handler. */
export function createAccount(deps: AccountDeps): Account {
  const { access } = deps;
  const tokens = (): TokenStore => {
    const t = access.options.tokens;
    if (!t) throw new ApiError(503, 'this server has no host credentials to keep keys in: start it with a state store (hexrepo serve in a project folder)');
    return t;
  };
  const logs = new WeakMap<BlobStore, AuditLog>();
  const logOf = (store: BlobStore): AuditLog => {
    let log = logs.get(store);
    if (!log) logs.set(store, (log = new AuditLog(store)));
    return log;
  };

  const record = async (ctx: Ctx, action: AuditAction, params: Record<string, unknown>, pkg?: string): Promise<void> => {
    const entry: AuditEntry = { action, params, user_agent: ctx.req.headers['user-agent'] ?? null, inserted_at: new Date().toISOString(), user: actorOf(ctx.state.identity) };
    const writes: Promise<void>[] = [];
    if (pkg !== undefined && ctx.repo.service) writes.push(logOf(ctx.repo.service.store).append(packageAuditKey(pkg), entry));
    const hostStore = access.options.tokens?.store;
    if (entry.user !== null && hostStore) writes.push(logOf(hostStore).append(userAuditKey(entry.user), entry));
    const failed = (await Promise.allSettled(writes)).filter((r) => r.status === 'rejected');
    for (const f of failed) deps.logger?.warn({ err: String((f as PromiseRejectedResult).reason), action }, 'could not append to the audit log');
  };

  const knownUser = (username: string): boolean => access.options.users.some((u) => u.username === username) || (access.options.tokens?.hasUser(username) ?? false);
  const userUrl = (ctx: Ctx, username: string): string => `${ctx.base}/users/${encodeURIComponent(username)}`;
  // hexrepo's users have no email address: `email` carries the user name, so `mix hex.owner list`
  // (which prints only email and level) names the owners.
  const ownerMap = (ctx: Ctx, o: Owner): Record<string, Etf> => ({ username: o.username, email: o.username, level: o.level, url: userUrl(ctx, o.username), inserted_at: o.addedAt, updated_at: o.addedAt });
  const requirePackage = (ctx: Ctx): void => {
    if (deps.service(ctx).releases(ctx.name).length === 0) throw new ApiError(404, `no package ${ctx.name}`);
  };
  const usernameParam = (ctx: Ctx): string => {
    const u = ctx.params.username ?? '';
    if (!USERNAME_RE.test(u)) throw new ApiError(404, `no user ${u.slice(0, 64)}`);
    return u;
  };
  /** Read access on the package before anything else: whether it exists is not for others to learn (403, not 404). */
  const requireReadable = (ctx: Ctx): void => {
    if (!access.authorize(ctx.state.identity!, 'read', ctx.name, ctx.repo.name).ok) throw new ApiError(403, `only a full owner of ${ctx.name} (with write access) or an admin of repository ${ctx.repo.name} can change its owners`);
  };
  /** Admin scope on the package, or a full owner with write on it; 403 otherwise. */
  const requireOwnerAdmin = async (ctx: Ctx): Promise<void> => {
    const id = ctx.state.identity!;
    if (access.authorize(id, 'admin', ctx.name, ctx.repo.name).ok) return;
    const user = ownerUserOf(id);
    const full = user !== null && (await readOwners(deps.service(ctx).store, ctx.name)).some((o) => o.username === user && o.level === 'full');
    if (full && access.authorize(id, 'write', ctx.name, ctx.repo.name).ok) return;
    throw new ApiError(403, `only a full owner of ${ctx.name} (with write access) or an admin of repository ${ctx.repo.name} can change its owners`);
  };

  const owners: ApiRoute[] = [
    {
      method: 'GET',
      path: '/packages/:name/owners',
      auth: { scope: 'read', pkg: 'name' },
      handle: async (ctx) => {
        requirePackage(ctx);
        reply(
          ctx,
          200,
          (await readOwners(deps.service(ctx).store, ctx.name)).map((o) => ownerMap(ctx, o)),
        );
      },
    },
    {
      method: 'GET',
      path: '/packages/:name/owners/:username',
      auth: { scope: 'read', pkg: 'name' },
      handle: async (ctx) => {
        requirePackage(ctx);
        const username = usernameParam(ctx);
        const owner = (await readOwners(deps.service(ctx).store, ctx.name)).find((o) => o.username === username);
        if (!owner) throw new ApiError(404, `${username} is not an owner of ${ctx.name}`);
        reply(ctx, 200, ownerMap(ctx, owner));
      },
    },
    {
      method: 'PUT',
      path: '/packages/:name/owners/:username',
      auth: 'authenticated',
      handle: async (ctx) => {
        requireReadable(ctx);
        requirePackage(ctx);
        const username = usernameParam(ctx);
        await requireOwnerAdmin(ctx);
        // Mix sends {level, transfer}; an empty body is hex.pm's default (full, no transfer).
        const body = ctx.req.headers['content-length'] === '0' || (ctx.req.headers['content-length'] === undefined && ctx.req.headers['transfer-encoding'] === undefined) ? {} : await readTermBody(ctx);
        const level = body.level ?? 'full';
        if (!isOwnerLevel(level)) throw new ApiError(422, `level must be "full" or "maintainer", not ${JSON.stringify(level)}`, { level: 'is invalid' });
        const transfer = body.transfer === true || body.transfer === 'true';
        if (!knownUser(username)) throw new ApiError(404, `no user ${username} on this host: add one with "hexrepo user add ${username}"`);
        await addOwner(deps.service(ctx).store, ctx.name, username, level, { transfer });
        await record(ctx, transfer ? 'owner.transfer' : 'owner.add', { package: { name: ctx.name, repository: ctx.repo.name }, user: { username }, level }, ctx.name);
        deps.logger?.info({ repository: ctx.repo.name, package: ctx.name, owner: username, level, transfer }, 'owner added');
        reply(ctx, 204);
      },
    },
    {
      method: 'DELETE',
      path: '/packages/:name/owners/:username',
      auth: 'authenticated',
      handle: async (ctx) => {
        requireReadable(ctx);
        requirePackage(ctx);
        const username = usernameParam(ctx);
        await requireOwnerAdmin(ctx);
        await removeOwner(deps.service(ctx).store, ctx.name, username);
        await record(ctx, 'owner.remove', { package: { name: ctx.name, repository: ctx.repo.name }, user: { username } }, ctx.name);
        deps.logger?.info({ repository: ctx.repo.name, package: ctx.name, owner: username }, 'owner removed');
        reply(ctx, 204);
      },
    },
  ];

  const auth: ApiRoute[] = [
    {
      method: 'GET',
      path: '/auth',
      auth: 'authenticated',
      handle: async (ctx) => {
        const domain = ctx.query.get('domain');
        const resource = ctx.query.get('resource') ?? undefined;
        if (!domain) throw new ApiError(400, 'the domain parameter is required (api, repository, repositories or package)');
        const grants = grantsOf(ctx.state.identity!);
        let ok: boolean;
        if (domain === 'api') ok = resource === 'read' ? grantAllows(grants, ctx.repo.name, 'read') : (resource === undefined || resource === 'write') && grantAllows(grants, ctx.repo.name, 'write');
        else if (domain === 'repository') ok = resource !== undefined && grantAllows(grants, resource, 'read');
        else if (domain === 'repositories') ok = grantAllows(grants, '*', 'read');
        else if (domain === 'package') ok = resource !== undefined && grantAllows(grants, ctx.repo.name, 'write', resource);
        else ok = false;
        if (!ok) throw new ApiError(403, `the credential does not grant ${domain}${resource !== undefined ? `:${resource}` : ''}`);
        reply(ctx, 204);
      },
    },
  ];

  /** The keys the caller may see: a user's keys (not their web UI sessions), or (a token of no user) itself alone. */
  const keysOf = (id: Identity): TokenInfo[] => {
    const user = userOf(id);
    if (user !== null)
      return tokens()
        .list()
        .filter((t) => t.user === user && t.label !== SESSION_LABEL);
    return id.kind === 'token'
      ? tokens()
          .list()
          .filter((t) => t.id === id.token.id)
      : [];
  };
  const keyMap = (ctx: Ctx, t: TokenInfo, opts: { secret?: string; revokedAt?: string } = {}): Record<string, Etf> => ({
    name: t.label,
    authing_key: ctx.state.identity?.kind === 'token' && ctx.state.identity.token.id === t.id,
    secret: opts.secret ?? null,
    permissions: permissionsOfGrants(t.grants, t.permissions).map((p) => ({ domain: p.domain, resource: p.resource ?? null })),
    revoke_at: t.expiresAt ?? null,
    revoked_at: opts.revokedAt ?? null,
    inserted_at: t.createdAt,
    updated_at: t.createdAt,
    url: `${ctx.base}/keys/${encodeURIComponent(t.label)}`,
  });
  const keyParam = (ctx: Ctx): string => {
    const k = ctx.params.key ?? '';
    if (!KEY_NAME_RE.test(k)) throw new ApiError(404, 'no such key');
    return k;
  };
  const requireUser = (ctx: Ctx): string => {
    const id = ctx.state.identity!;
    const user = userOf(id);
    // Mix ≥ 2.4 sends its OAuth token here (mix hex.organization auth): say why that cannot work.
    if (user === null && id.kind === 'token' && id.token.id.startsWith('oauth:'))
      throw new ApiError(403, 'an OAuth token cannot create or revoke API keys: use your password (user:password, Basic auth) or an API key of yours, or ask an admin for a token ("hexrepo token create")');
    if (user === null) throw new ApiError(403, 'API keys belong to host users and this token belongs to none: authenticate as a user (user:password), or manage tokens with "hexrepo token"');
    return user;
  };
  /** A key managing keys needs write somewhere (hex.pm: api:write), so a leaked read key cannot revoke the others; a password always may. */
  const requireKeyWrite = (id: Identity, what: string): void => {
    if (id.kind === 'token' && !id.token.grants.some((g) => grantAllows([g], g.repository, 'write'))) throw new ApiError(403, `${what} a key needs a credential with write access (api:write)`);
  };
  const permissionsFrom = (value: Etf | undefined): HexPermission[] => {
    if (!Array.isArray(value)) throw new ApiError(422, 'permissions must be a list of {domain, resource}', { permissions: 'is invalid' });
    return value.map((p) => {
      const m = p as Record<string, Etf> | null;
      if (typeof m !== 'object' || m === null || Array.isArray(m) || typeof m.domain !== 'string') throw new ApiError(422, 'each permission is a map with a domain (and a resource)', { permissions: 'is invalid' });
      return { domain: m.domain, ...(typeof m.resource === 'string' ? { resource: m.resource } : {}) };
    });
  };

  const keys: ApiRoute[] = [
    {
      method: 'GET',
      path: '/keys',
      auth: 'authenticated',
      handle: async (ctx) =>
        reply(
          ctx,
          200,
          keysOf(ctx.state.identity!).map((t) => keyMap(ctx, t)),
        ),
    },
    {
      method: 'GET',
      path: '/keys/:key',
      auth: 'authenticated',
      handle: async (ctx) => {
        const name = keyParam(ctx);
        const key = keysOf(ctx.state.identity!).find((t) => t.label === name);
        if (!key) throw new ApiError(404, `no key named ${name}`);
        reply(ctx, 200, keyMap(ctx, key));
      },
    },
    {
      method: 'POST',
      path: '/keys',
      auth: 'authenticated',
      handle: async (ctx) => {
        const id = ctx.state.identity!;
        const user = requireUser(ctx);
        requireKeyWrite(id, 'creating');
        const body = await readTermBody(ctx);
        if (typeof body.name !== 'string' || !KEY_NAME_RE.test(body.name)) throw new ApiError(422, 'name must be 1 to 100 characters, without "/" or control characters', { name: "can't be blank" });
        const permissions = permissionsFrom(body.permissions);
        let revokeAt: Date | undefined;
        if (body.revoke_at !== undefined && body.revoke_at !== null) {
          revokeAt = typeof body.revoke_at === 'string' ? new Date(body.revoke_at) : new Date(NaN);
          if (Number.isNaN(revokeAt.getTime()) || revokeAt.getTime() <= Date.now()) throw new ApiError(422, 'revoke_at must be an ISO-8601 instant in the future', { revoke_at: 'is invalid' });
        }
        // A key made by a short-lived key is revoked with it at the latest: no credential outlives its maker.
        const makerExpires = id.kind === 'token' && id.token.expiresAt !== undefined ? new Date(id.token.expiresAt) : undefined;
        if (makerExpires && (revokeAt === undefined || revokeAt > makerExpires)) revokeAt = makerExpires;
        if (body.name === SESSION_LABEL) throw new ApiError(422, `"${SESSION_LABEL}" names the web UI's login sessions: pick another key name`, { name: 'is reserved' });
        // A taken name gets hex.pm's next free "-N": `mix hex.user auth` run again (deauth leaves
        // the keys on the server) asks for the same names and must not be refused.
        const name = uniqueKeyName(
          body.name,
          tokens()
            .list()
            .filter((t) => t.user === user)
            .map((t) => t.label),
        );
        if (keysOf(id).length >= MAX_KEYS_PER_USER)
          throw new ApiError(422, `you have ${MAX_KEYS_PER_USER} API keys, the most a user may hold: revoke unused ones first (DELETE /keys/NAME)`, { name: `you have ${MAX_KEYS_PER_USER} keys already` });
        let grants;
        try {
          grants = grantsForPermissions(permissions, grantsOf(id));
        } catch (err) {
          if (isHexrepoError(err, 'USAGE')) throw new ApiError(422, err.message, { permissions: String(err.details.problem ?? 'is invalid') });
          throw err;
        }
        const created = await tokens().create({ label: name, grants, user, permissions, ...(revokeAt ? { expiresAt: revokeAt } : {}) });
        await record(ctx, 'key.generate', { name, permissions: permissions.map((p) => ({ domain: p.domain, resource: p.resource ?? null })) });
        deps.logger?.info({ user, key: name, id: created.info.id }, 'key created');
        reply(ctx, 201, keyMap(ctx, created.info, { secret: created.token }), { location: `${ctx.base}/keys/${encodeURIComponent(name)}` });
      },
    },
    {
      method: 'DELETE',
      path: '/keys/:key',
      auth: 'authenticated',
      handle: async (ctx) => {
        const user = requireUser(ctx);
        requireKeyWrite(ctx.state.identity!, 'revoking');
        const name = keyParam(ctx);
        const [gone] = await tokens().revokeWhere((t) => t.user === user && t.label === name);
        if (!gone) throw new ApiError(404, `no key named ${name}`);
        await record(ctx, 'key.remove', { name });
        reply(ctx, 200, keyMap(ctx, gone, { revokedAt: new Date().toISOString() }));
      },
    },
    {
      method: 'DELETE',
      path: '/keys',
      auth: 'authenticated',
      handle: async (ctx) => {
        const user = requireUser(ctx);
        requireKeyWrite(ctx.state.identity!, 'revoking');
        const gone = await tokens().revokeWhere((t) => t.user === user);
        for (const k of gone) await record(ctx, 'key.remove', { name: k.label });
        const id = ctx.state.identity!;
        const authing = id.kind === 'token' ? gone.find((t) => t.id === id.token.id) : undefined;
        // hex.pm answers with the key that authenticated the request (now revoked too).
        if (authing) reply(ctx, 200, keyMap(ctx, authing, { revokedAt: new Date().toISOString() }));
        else reply(ctx, 204);
      },
    },
  ];

  const auditMap = (e: AuditEntry): Record<string, Etf> => ({ action: e.action, params: e.params as Etf, user_agent: e.user_agent, inserted_at: e.inserted_at, user: e.user });
  const pageOf = (ctx: Ctx): number => {
    const page = Number(ctx.query.get('page') ?? '1');
    if (!Number.isInteger(page) || page < 1) throw new ApiError(400, 'page must be a positive integer');
    return page;
  };
  const audit: ApiRoute[] = [
    {
      method: 'GET',
      path: '/packages/:name/audit-logs',
      auth: { scope: 'read', pkg: 'name' },
      handle: async (ctx) => {
        const store = deps.service(ctx).store;
        const entries = await logOf(store).read(packageAuditKey(ctx.name), { page: pageOf(ctx) });
        if (entries.length === 0 && deps.service(ctx).releases(ctx.name).length === 0) throw new ApiError(404, `no package ${ctx.name}`);
        reply(ctx, 200, entries.map(auditMap));
      },
    },
    {
      method: 'GET',
      path: '/users/me',
      auth: 'authenticated',
      handle: async (ctx) => {
        const id = ctx.state.identity!;
        // The user a key or an OAuth token acts for (`mix hex.user whoami` prints `username`; a
        // key's label names the key, not the caller); a token of no user has only its label.
        const user = ownerUserOf(id);
        const username = user ?? (id.kind === 'token' ? id.token.label : '');
        // `mix hex.owner packages` prints each of `packages` (and fails on a missing list): the
        // packages of this repository the caller's user owns and the credential may read.
        const store = ctx.repo.service?.store;
        const owned = user !== null && store ? (await ownedPackages(store, user)).filter((p) => access.authorize(id, 'read', p.name, ctx.repo.name).ok) : [];
        const packages = owned.map((p) => ({
          name: p.name,
          repository: ctx.repo.name,
          url: `${ctx.base}/packages/${p.name}`,
          html_url: `${new URL(ctx.base).origin}/-/packages/${ctx.repo.name}/${p.name}`,
        }));
        reply(ctx, 200, { username, email: null, organizations: [], packages, url: `${ctx.base}/users/me` });
      },
    },
    {
      method: 'GET',
      path: '/users/me/audit-logs',
      auth: 'authenticated',
      handle: async (ctx) => {
        const actor = actorOf(ctx.state.identity)!;
        const store = access.options.tokens?.store;
        reply(ctx, 200, store ? (await logOf(store).read(userAuditKey(actor), { page: pageOf(ctx) })).map(auditMap) : []);
      },
    },
  ];

  const setAll = async (ctx: Ctx, retirement: Retirement | undefined): Promise<void> => {
    requirePackage(ctx);
    const versions = await deps.service(ctx).retireAll(ctx.name, retirement);
    await record(
      ctx,
      retirement ? 'release.retire' : 'release.unretire',
      { package: { name: ctx.name, repository: ctx.repo.name }, releases: versions, ...(retirement ? { retirement: { reason: retirement.reason, message: retirement.message ?? null } } : {}) },
      ctx.name,
    );
    deps.logger?.info({ repository: ctx.repo.name, package: ctx.name, versions: versions.length, reason: retirement?.reason }, retirement ? 'retired every release' : 'unretired every release');
    reply(ctx, 204);
  };
  const retireAll: ApiRoute[] = [
    {
      method: 'POST',
      path: '/packages/:name/retire',
      auth: { scope: 'write', pkg: 'name' },
      handle: async (ctx) => {
        const body = await readTermBody(ctx);
        await setAll(ctx, validateRetirement({ reason: body.reason, message: body.message }));
      },
    },
    { method: 'DELETE', path: '/packages/:name/retire', auth: { scope: 'write', pkg: 'name' }, handle: (ctx) => setAll(ctx, undefined) },
  ];

  const ownersList = async (ctx: Ctx, name: string): Promise<Etf[]> => (await readOwners(deps.service(ctx).store, name)).map((o) => ({ username: o.username, email: o.username, url: userUrl(ctx, o.username) }));
  const claimNewPackage = async (ctx: Ctx, name: string): Promise<void> => {
    const user = ctx.state.identity ? ownerUserOf(ctx.state.identity) : null;
    if (user === null) return;
    const store = deps.service(ctx).store;
    if ((await readOwners(store, name)).length === 0) await addOwner(store, name, user, 'full');
  };

  return { routes: [...owners, ...auth, ...keys, ...audit, ...retireAll], record, ownersList, claimNewPackage };
}
