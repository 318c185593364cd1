/**
 * Dependency policies (Hex 2.5, `policies/NAME`, HEX_SPEC.md §2.4): the model hexrepo stores and
 * the checks it makes before signing one, so a policy Mix would reject, misread or silently
 * ignore is refused with the reason instead.
 */
import { ADVISORY_SEVERITIES, isAdvisorySeverity, type AdvisorySeverityName } from './advisory.js';
import { HexrepoError } from './errors.js';
import { parseRequirement } from './requirement.js';
import { PACKAGE_NAME_RE } from './semver.js';
import { isRetirementReason, RETIREMENT_REASONS, type RetirementReasonName } from './types.js';

export const POLICY_VISIBILITIES = { private: 0, public: 1 } as const;
export type PolicyVisibility = keyof typeof POLICY_VISIBILITIES;

/** Override actions, with the protobuf values of `OverrideAction`. */
export const OVERRIDE_ACTIONS = { allow: 0, deny: 1, advisory: 2, retirement: 3, cooldown: 4 } as const;
export type OverrideActionName = keyof typeof OVERRIDE_ACTIONS;

export interface PolicyRestriction {
  /** Block releases with an advisory of at least this severity. */
  minSeverity?: AdvisorySeverityName;
  /** Block releases retired for one of these reasons. */
  retirementReasons?: RetirementReasonName[];
  /** Minimum release age: `0`, `Nd`, `Nw` or `Nmo` (Hex's cooldown grammar). */
  cooldown?: string;
}

export interface PolicyOverride {
  action: OverrideActionName;
  package: string;
  /** Absent: every version of the package. */
  requirement?: string;
  /** Required by `advisory`, forbidden otherwise. */
  advisoryId?: string;
  /** Required by `retirement`, forbidden otherwise. */
  retirementReason?: RetirementReasonName;
  comment?: string;
}

export interface RepositoryPolicy {
  /** The repository the rules apply to: `hexpm`, `hexpm:ORG`, this repository or another one. */
  repository: string;
  restriction?: PolicyRestriction;
  overrides: PolicyOverride[];
}

/** A policy as stored in `_hexrepo/policies/NAME.json` and signed into `policies/NAME`. */
export interface PolicyDefinition {
  name: string;
  description?: string;
  visibility: PolicyVisibility;
  repositories: RepositoryPolicy[];
}

/** hexpm/specifications policy.proto: the policy name's pattern and length. */
export const POLICY_NAME_RE = /^[a-z0-9][a-z0-9_.-]*[a-z0-9]$/;
const REPOSITORY_RE = /^(?:hexpm:)?[a-z0-9][a-z0-9_-]*$/;
const COOLDOWN_RE = /^(?:0|\d+(?:d|w|mo))$/;
const COMMENT_MAX = 500;
const DESCRIPTION_MAX = 1000;

function invalid(message: string, where: string, hint?: string): HexrepoError {
  return new HexrepoError('POLICY_INVALID', message, { where, ...(hint ? { hint } : {}) });
}

/** Throws POLICY_INVALID unless `name` is a policy name Hex accepts. */
export function assertPolicyName(name: unknown): asserts name is string {
  if (typeof name !== 'string' || !POLICY_NAME_RE.test(name) || name.length < 3 || name.length > 64) {
    throw invalid(`the policy name ${JSON.stringify(name) ?? 'nothing'} is not valid`, 'name', 'use 3 to 64 characters: lowercase letters, digits, "_", "-" and ".", starting and ending with a letter or digit (e.g. strict-prod)');
  }
}

/** Seconds of a cooldown duration, as Hex's `Hex.Cooldown.duration_to_seconds/1`; null if invalid. */
export function cooldownSeconds(duration: string): number | null {
  if (!COOLDOWN_RE.test(duration)) return null;
  if (duration === '0') return 0;
  const m = /^(\d+)(d|w|mo)$/.exec(duration)!;
  const unit = m[2] === 'd' ? 86_400 : m[2] === 'w' ? 7 * 86_400 : 30 * 86_400;
  return Number(m[1]) * unit;
}

function text(value: unknown, where: string, max: number, what: string): string {
  if (typeof value !== 'string') throw invalid(`${where}: the ${what} must be text`, where);
  const points = [...value];
  if (points.length > max) throw invalid(`${where}: the ${what} is ${points.length} characters; at most ${max} are allowed`, where);
  // Clients print it as is: control, format and line/paragraph separators are refused (policy.proto).
  if (/[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/u.test(value)) throw invalid(`${where}: the ${what} contains a control, format or line-separator character`, where, 'write it on one line without control characters');
  return value;
}

function restrictionOf(input: unknown, where: string): PolicyRestriction | undefined {
  if (input === undefined || input === null) return undefined;
  if (typeof input !== 'object' || Array.isArray(input)) throw invalid(`${where}: the restriction must be an object`, where);
  const r = input as Record<string, unknown>;
  for (const k of Object.keys(r)) if (!['minSeverity', 'retirementReasons', 'cooldown'].includes(k)) throw invalid(`${where}: unknown restriction field ${JSON.stringify(k)}`, where, 'use minSeverity, retirementReasons and cooldown');
  const out: PolicyRestriction = {};
  if (r.minSeverity !== undefined) {
    if (!isAdvisorySeverity(r.minSeverity)) throw invalid(`${where}: the minimum severity ${JSON.stringify(r.minSeverity)} is not one of ${Object.keys(ADVISORY_SEVERITIES).join(', ')}`, where);
    out.minSeverity = r.minSeverity;
  }
  if (r.retirementReasons !== undefined) {
    if (!Array.isArray(r.retirementReasons)) throw invalid(`${where}: retirementReasons must be a list`, where);
    const reasons: RetirementReasonName[] = [];
    for (const reason of r.retirementReasons as unknown[]) {
      if (!isRetirementReason(reason)) throw invalid(`${where}: the retirement reason ${JSON.stringify(reason)} is not one of ${Object.keys(RETIREMENT_REASONS).join(', ')}`, where);
      if (!reasons.includes(reason)) reasons.push(reason);
    }
    if (reasons.length > 0) out.retirementReasons = reasons;
  }
  if (r.cooldown !== undefined) {
    if (typeof r.cooldown !== 'string' || cooldownSeconds(r.cooldown) === null) {
      throw invalid(`${where}: the cooldown ${JSON.stringify(r.cooldown)} is not a duration Hex understands`, where, 'write "0" or a whole number followed by d (days), w (weeks) or mo (30-day months): 7d, 2w, 1mo');
    }
    out.cooldown = r.cooldown;
  }
  return Object.keys(out).length > 0 ? out : undefined;
}

function overrideOf(input: unknown, where: string): PolicyOverride {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) throw invalid(`${where}: an override must be an object`, where);
  const o = input as Record<string, unknown>;
  for (const k of Object.keys(o)) if (!['action', 'package', 'requirement', 'advisoryId', 'retirementReason', 'comment'].includes(k)) throw invalid(`${where}: unknown override field ${JSON.stringify(k)}`, where);
  if (typeof o.action !== 'string' || !Object.hasOwn(OVERRIDE_ACTIONS, o.action)) throw invalid(`${where}: the action ${JSON.stringify(o.action)} is not one of ${Object.keys(OVERRIDE_ACTIONS).join(', ')}`, where);
  const action = o.action as OverrideActionName;
  if (typeof o.package !== 'string' || !PACKAGE_NAME_RE.test(o.package)) throw invalid(`${where}: ${JSON.stringify(o.package) ?? 'nothing'} is not a Hex package name`, where, 'lowercase letter first, then a-z, 0-9 or _');
  const out: PolicyOverride = { action, package: o.package };
  if (o.requirement !== undefined && o.requirement !== '') {
    // Mix treats an unparsable requirement as matching nothing: the override would silently do nothing.
    if (typeof o.requirement !== 'string' || !parseRequirement(o.requirement)) {
      throw invalid(`${where}: the requirement ${JSON.stringify(o.requirement)} of ${o.package} is not a valid Elixir requirement (Mix would never match it)`, where, 'write it as in mix.exs: "~> 1.4", ">= 1.0.0 and < 2.0.0", "1.2.3"');
    }
    out.requirement = o.requirement.trim();
  }
  if (action === 'advisory') {
    if (typeof o.advisoryId !== 'string' || o.advisoryId.trim() === '') throw invalid(`${where}: an advisory override needs the advisoryId it accepts`, where);
    out.advisoryId = o.advisoryId.trim();
  } else if (o.advisoryId !== undefined) throw invalid(`${where}: only an advisory override takes an advisoryId`, where);
  if (action === 'retirement') {
    if (!isRetirementReason(o.retirementReason)) throw invalid(`${where}: a retirement override needs the retirementReason it accepts (one of ${Object.keys(RETIREMENT_REASONS).join(', ')})`, where);
    out.retirementReason = o.retirementReason;
  } else if (o.retirementReason !== undefined) throw invalid(`${where}: only a retirement override takes a retirementReason`, where);
  if (o.comment !== undefined && o.comment !== '') out.comment = text(o.comment, where, COMMENT_MAX, 'comment');
  return out;
}

/**
 * Check a policy (as typed or read from JSON) against what Hex's policy.proto and its client
 * accept, and return it normalised. `ownRepository` is the repository that serves it: Mix refuses
 * `hexpm` there (HEX_POLICY=hexpm/NAME is rejected), so it is refused here too.
 */
export function validatePolicy(input: unknown, ownRepository: string): PolicyDefinition {
  if (ownRepository === 'hexpm') throw invalid('policies cannot be served by a repository named "hexpm": Mix refuses HEX_POLICY=hexpm/NAME', 'repository');
  if (typeof input !== 'object' || input === null || Array.isArray(input)) throw invalid('a policy must be a JSON object', 'policy');
  const p = input as Record<string, unknown>;
  for (const k of Object.keys(p)) if (!['name', 'description', 'visibility', 'repositories'].includes(k)) throw invalid(`unknown policy field ${JSON.stringify(k)}`, 'policy', 'use name, description, visibility and repositories');
  assertPolicyName(p.name);
  const visibility = p.visibility ?? 'private';
  if (typeof visibility !== 'string' || !Object.hasOwn(POLICY_VISIBILITIES, visibility)) throw invalid(`the visibility ${JSON.stringify(visibility)} is not private or public`, 'visibility');
  const out: PolicyDefinition = { name: p.name, visibility: visibility as PolicyVisibility, repositories: [] };
  if (p.description !== undefined && p.description !== '') out.description = text(p.description, 'description', DESCRIPTION_MAX, 'description');
  const repos = p.repositories ?? [];
  if (!Array.isArray(repos)) throw invalid('repositories must be a list', 'repositories');
  for (const [i, entry] of (repos as unknown[]).entries()) {
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) throw invalid(`repositories[${i}] must be an object`, `repositories[${i}]`);
    const e = entry as Record<string, unknown>;
    for (const k of Object.keys(e)) if (!['repository', 'restriction', 'overrides'].includes(k)) throw invalid(`repositories[${i}]: unknown field ${JSON.stringify(k)}`, `repositories[${i}]`);
    if (typeof e.repository !== 'string' || !REPOSITORY_RE.test(e.repository) || e.repository.length > 64) {
      throw invalid(
        `repositories[${i}]: ${JSON.stringify(e.repository) ?? 'nothing'} is not a repository name`,
        `repositories[${i}]`,
        'use hexpm, hexpm:ORG or the name a repository is configured under in Mix (lowercase letters, digits, "-", "_")',
      );
    }
    const where = e.repository;
    // Hex takes the first entry of a repository; a second one would be silently ignored.
    if (out.repositories.some((r) => r.repository === where)) throw invalid(`the repository ${where} has two entries; Mix would ignore the second`, where, 'merge their rules into one entry');
    const restriction = restrictionOf(e.restriction, where);
    if (e.overrides !== undefined && !Array.isArray(e.overrides)) throw invalid(`${where}: overrides must be a list`, where);
    const overrides = ((e.overrides as unknown[] | undefined) ?? []).map((o, j) => overrideOf(o, `${where} override ${j + 1}`));
    const seen = new Map<string, OverrideActionName>();
    for (const o of overrides) {
      if (o.action !== 'allow' && o.action !== 'deny') continue;
      // Among equally specific ALLOW/DENY overrides Mix takes the first; a contradiction is refused.
      const key = `${o.package} ${o.requirement ?? ''}`;
      const before = seen.get(key);
      if (before && before !== o.action) throw invalid(`${where}: ${o.package}${o.requirement ? ` ${o.requirement}` : ''} is both allowed and denied`, where, 'keep one of the two overrides');
      if (before) throw invalid(`${where}: ${o.package}${o.requirement ? ` ${o.requirement}` : ''} is ${o.action === 'allow' ? 'allowed' : 'denied'} twice`, where);
      seen.set(key, o.action);
    }
    out.repositories.push({ repository: where, ...(restriction ? { restriction } : {}), overrides });
  }
  return out;
}
