/**
 * The rule every OAuth token rests on: what deriveGrants gives a session never allows anything the
 * key or user it came from does not (any grants, any requested scopes, any repository root), and
 * the "api" scope asked at the host's /api keeps exactly what the subject has.
 */
import { deriveGrants, grantAllows, SCOPES, type Grant, type Scope } from '@hexrepo/repo';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

const REPOS = ['alpha', 'beta', 'gamma'];
const PACKAGES = ['foo', 'foo_bar', 'bar', 'acme_x'];
const grant = fc.record({
  repository: fc.constantFrom('*', ...REPOS),
  scopes: fc.uniqueArray(fc.constantFrom<Scope>(...SCOPES), { minLength: 1 }),
  packages: fc.uniqueArray(fc.constantFrom('foo*', 'bar', 'acme_*'), { maxLength: 2 }),
});
const scope = fc.constantFrom('api', 'api:read', 'api:write', 'repositories', ...REPOS.map((r) => `repository:${r}`));

const allows = (grants: readonly Grant[], repository: string, s: Scope, pkg: string): boolean => grantAllows(grants, repository, s, pkg);

describe('deriveGrants', () => {
  it('never allows what the subject does not, whatever the scopes and repository root', () => {
    fc.assert(
      fc.property(fc.array(grant, { maxLength: 4 }), fc.uniqueArray(scope, { maxLength: 3 }), fc.option(fc.constantFrom(...REPOS), { nil: null }), (base, scopes, root) => {
        const derived = deriveGrants(base, scopes, root);
        for (const r of REPOS) for (const s of SCOPES) for (const p of PACKAGES) if (allows(derived, r, s, p)) expect(allows(base, r, s, p), `${r} ${s} ${p}`).toBe(true);
      }),
      { numRuns: 500 },
    );
  });

  it('keeps everything for "api" at the host root, reads only for "repositories", one repository at its root', () => {
    const base: Grant[] = [{ repository: '*', scopes: ['read', 'write'], packages: [] }];
    expect(deriveGrants(base, ['api'], null)).toEqual(base);
    expect(deriveGrants(base, ['repositories'], null)).toEqual([{ repository: '*', scopes: ['read'], packages: [] }]);
    expect(deriveGrants(base, ['api', 'repositories'], 'beta')).toEqual([{ repository: 'beta', scopes: ['read', 'write'], packages: [] }]);
    expect(deriveGrants([{ repository: 'alpha', scopes: ['write'], packages: [] }], ['repositories'], null)).toEqual([]);
  });
});
