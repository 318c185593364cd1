/**
 * The policy flags users type, turned into the policy JSON core's validatePolicy checks:
 *   --rule  'REPO:min-severity=high,retired=security+invalid,cooldown=7d'
 *   --allow 'REPO:PACKAGE[@REQUIREMENT]'   --deny 'REPO:PACKAGE[@REQUIREMENT]'
 *   --remove 'REPO:PACKAGE[@REQUIREMENT]'  --drop-repo REPO
 * REPO may itself hold a colon (hexpm:ORG): the last colon before the rules or the package splits.
 */
import { HexrepoError, type PolicyDefinition, type PolicyOverride, type RepositoryPolicy } from '@hexrepo/core';

function bad(flag: string, value: string, message: string, hint: string): HexrepoError {
  return new HexrepoError('USAGE', `hexrepo policy: --${flag} ${JSON.stringify(value)}: ${message}`, { hint });
}

function splitRepo(flag: string, value: string, stop: number): [string, string] {
  const colon = value.lastIndexOf(':', stop === -1 ? undefined : stop);
  if (colon <= 0) throw bad(flag, value, 'expected REPO: first', `write it as "hexpm:${flag === 'rule' ? 'min-severity=high' : 'plug'}" (REPO is hexpm, hexpm:ORG or a repository name)`);
  return [value.slice(0, colon), value.slice(colon + 1)];
}

/** `REPO:min-severity=S,retired=R+R,cooldown=D` → [REPO, restriction]; `REPO:` clears it. */
export function parseRule(value: string): [string, Record<string, unknown> | undefined] {
  const [repo, rest] = splitRepo('rule', value, value.indexOf('='));
  if (rest.trim() === '') return [repo, undefined];
  const restriction: Record<string, unknown> = {};
  for (const part of rest.split(',')) {
    const eq = part.indexOf('=');
    const key = part.slice(0, eq).trim();
    const v = part.slice(eq + 1).trim();
    if (eq === -1 || v === '') throw bad('rule', value, `"${part}" is not KEY=VALUE`, 'keys: min-severity=none|low|medium|high|critical, retired=REASON[+REASON…], cooldown=0|Nd|Nw|Nmo');
    if (key === 'min-severity') restriction.minSeverity = v;
    else if (key === 'retired') restriction.retirementReasons = v.split('+').map((r) => r.trim());
    else if (key === 'cooldown') restriction.cooldown = v;
    else throw bad('rule', value, `unknown key "${key}"`, 'keys: min-severity, retired, cooldown');
  }
  return [repo, restriction];
}

/** `REPO:PACKAGE[@REQUIREMENT]` → [REPO, package, requirement?]. */
export function parseRef(flag: string, value: string): [string, string, string | undefined] {
  const at = value.indexOf('@');
  const [repo, pkg] = splitRepo(flag, at === -1 ? value : value.slice(0, at), -1);
  const requirement = at === -1 ? undefined : value.slice(at + 1).trim();
  if (pkg.trim() === '') throw bad(flag, value, 'no package', 'write it as "hexpm:plug" or "hexpm:plug@~> 1.14"');
  return [repo, pkg.trim(), requirement === '' ? undefined : requirement];
}

export interface PolicyFlags {
  description?: string;
  visibility?: string;
  rule: string[];
  allow: string[];
  deny: string[];
  remove: string[];
  dropRepo: string[];
}

/** Apply the flags to a policy (a new one, or the stored one for edit); validation comes after. */
export function applyPolicyFlags(base: PolicyDefinition | { name: string; repositories: RepositoryPolicy[] }, f: PolicyFlags): Record<string, unknown> {
  const repositories: { repository: string; restriction?: Record<string, unknown>; overrides: PolicyOverride[] }[] = base.repositories.map((r) => ({
    repository: r.repository,
    ...(r.restriction ? { restriction: { ...r.restriction } } : {}),
    overrides: r.overrides.map((o) => ({ ...o })),
  }));
  const entry = (repo: string) => {
    let e = repositories.find((r) => r.repository === repo);
    if (!e) {
      e = { repository: repo, overrides: [] };
      repositories.push(e);
    }
    return e;
  };
  for (const repo of f.dropRepo) {
    const i = repositories.findIndex((r) => r.repository === repo);
    if (i === -1) throw new HexrepoError('USAGE', `hexrepo policy: --drop-repo ${repo}: the policy has no rules for ${repo}`, { hint: `it has: ${repositories.map((r) => r.repository).join(', ') || 'none'}` });
    repositories.splice(i, 1);
  }
  for (const value of f.rule) {
    const [repo, restriction] = parseRule(value);
    const e = entry(repo);
    if (restriction) e.restriction = restriction;
    else delete e.restriction;
  }
  const same = (o: PolicyOverride, pkg: string, req: string | undefined) => o.package === pkg && (o.requirement ?? undefined) === req;
  for (const value of f.remove) {
    const [repo, pkg, req] = parseRef('remove', value);
    const e = repositories.find((r) => r.repository === repo);
    const before = e?.overrides.length ?? 0;
    if (e) e.overrides = e.overrides.filter((o) => !same(o, pkg, req));
    if (!e || e.overrides.length === before) throw new HexrepoError('USAGE', `hexrepo policy: --remove ${value}: no override of ${pkg}${req ? `@${req}` : ''} in ${repo}`, { hint: 'see them with "hexrepo policy show NAME"' });
  }
  for (const [action, values] of [
    ['allow', f.allow],
    ['deny', f.deny],
  ] as const) {
    for (const value of values) {
      const [repo, pkg, req] = parseRef(action, value);
      const e = entry(repo);
      // A new allow/deny of the same package and requirement replaces the old one.
      e.overrides = e.overrides.filter((o) => !((o.action === 'allow' || o.action === 'deny') && same(o, pkg, req)));
      e.overrides.push({ action, package: pkg, ...(req !== undefined ? { requirement: req } : {}) });
    }
  }
  const description = f.description ?? ('description' in base ? base.description : undefined);
  const visibility = f.visibility ?? ('visibility' in base ? base.visibility : undefined);
  return { name: base.name, ...(description !== undefined ? { description } : {}), ...(visibility !== undefined ? { visibility } : {}), repositories };
}
