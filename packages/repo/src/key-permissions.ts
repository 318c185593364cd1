/**
 * Hex API key permissions (`POST /api/keys`, as `mix hex.user key generate` and
 * `rebar3 hex user auth` send them) mapped to and from the host's grants. A key never gets more
 * than the caller holds: each permission is cut down to the caller's own grants.
 *
 * | Hex permission                 | grants of the key (per caller grant that allows it)          |
 * |--------------------------------|--------------------------------------------------------------|
 * | `api` or `api:write`           | where the caller can write: write, and read where it can     |
 * | `api:read`                     | the caller's repositories and packages, read                 |
 * | `repository:REPO`              | REPO, read (the caller's packages there)                     |
 * | `repositories`                 | every repository the caller can read, read                   |
 *
 * `admin` is never passed on to a key: keys publish and read, they do not administer the host.
 */
import { HexrepoError } from '@hexrepo/core';
import { grantAllows, type Grant, type HexPermission, type Scope } from './tokens.js';

/** The caller's grants that hold `needed`, each cut to `needed` plus whichever of `also` it holds. */
function cut(callerGrants: readonly Grant[], needed: Scope, also: readonly Scope[], repository?: string): Grant[] {
  const out: Grant[] = [];
  for (const g of callerGrants) {
    if (repository !== undefined && g.repository !== '*' && g.repository !== repository) continue;
    const holds = (s: Scope): boolean => g.scopes.includes('admin') || g.scopes.includes(s);
    if (!holds(needed)) continue;
    out.push({ repository: repository ?? g.repository, scopes: [...also.filter(holds), needed], packages: [...g.packages] });
  }
  return out;
}

/**
 * The grants a key with `permissions` gets when `callerGrants` create it. USAGE (a 422) for a
 * permission Hex does not define; PERMISSION_DENIED when the caller holds nothing it asks for.
 */
export function grantsForPermissions(permissions: readonly HexPermission[], callerGrants: readonly Grant[]): Grant[] {
  if (permissions.length === 0) throw new HexrepoError('USAGE', 'a key needs at least one permission, e.g. {"domain": "api", "resource": "write"}', { field: 'permissions', problem: "can't be blank" });
  const grants: Grant[] = [];
  for (const p of permissions) {
    const what = `${p.domain}${p.resource !== undefined ? `:${p.resource}` : ''}`;
    let found: Grant[];
    if (p.domain === 'api' && (p.resource === undefined || p.resource === 'write')) found = cut(callerGrants, 'write', ['read']);
    else if (p.domain === 'api' && p.resource === 'read') found = cut(callerGrants, 'read', []);
    else if (p.domain === 'repository' && typeof p.resource === 'string' && /^[a-z][a-z0-9_]*$/.test(p.resource)) found = cut(callerGrants, 'read', [], p.resource);
    else if (p.domain === 'repositories') found = cut(callerGrants, 'read', []);
    else throw new HexrepoError('USAGE', `unknown permission ${what}: use api, api:read, api:write, repository:NAME or repositories`, { field: 'permissions', problem: `invalid permission ${what}` });
    if (found.length === 0) throw new HexrepoError('PERMISSION_DENIED', `you cannot create a key with ${what}: your own credentials do not allow it`);
    grants.push(...found);
  }
  // The same grant asked twice (api:write and api:read on one repository) is kept once.
  const seen = new Set<string>();
  return grants.filter((g) => {
    const k = JSON.stringify([g.repository, [...g.scopes].sort(), [...g.packages].sort()]);
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

/**
 * The Hex permissions a key shows: as it was created through the API, else derived from its grants
 * (a token made with `hexrepo token create`): write anywhere is `api:write`, read on every
 * repository `repositories`, read on one repository `repository:NAME`.
 */
export function permissionsOfGrants(grants: readonly Grant[], asked?: readonly HexPermission[]): HexPermission[] {
  if (asked && asked.length > 0) return asked.map((p) => ({ ...p }));
  const out: HexPermission[] = [];
  const push = (p: HexPermission): void => {
    if (!out.some((q) => q.domain === p.domain && q.resource === p.resource)) out.push(p);
  };
  for (const g of grants) {
    if (grantAllows([g], g.repository, 'write')) push({ domain: 'api', resource: 'write' });
    else if (grantAllows([g], g.repository, 'read')) push(g.repository === '*' ? { domain: 'repositories' } : { domain: 'repository', resource: g.repository });
  }
  return out;
}
