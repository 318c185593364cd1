/**
 * Elixir version requirements (`Version.parse_requirement/1`, what Mix and Hex read in a
 * dependency or a policy override): `~> 1.2`, `>= 1.0.0 and < 2.0.0`, `== 1.0.0 or ~> 2.0`, a bare
 * version meaning `==`. Only `~>` takes a two-part version; every other operator needs three parts.
 */
import { HexrepoError } from './errors.js';
import { compareVersions, parseVersion, type Version } from './semver.js';

export type RequirementOperator = '==' | '!=' | '>' | '>=' | '<' | '<=' | '~>';

/** One condition: an operator and the version it compares with (`~> 1.2` keeps `parts: 2`). */
export interface RequirementCondition {
  op: RequirementOperator;
  version: Version;
  parts: 2 | 3;
}

/** A parsed requirement: alternatives (`or`), each a conjunction (`and`) of conditions. */
export interface Requirement {
  text: string;
  any: RequirementCondition[][];
}

const OPERATORS: readonly RequirementOperator[] = ['==', '!=', '>=', '<=', '~>', '>', '<'];

function parseCondition(token: string, op: RequirementOperator): RequirementCondition | null {
  const full = parseVersion(token);
  if (full) return full.build === undefined ? { op, version: full, parts: 3 } : null;
  if (op !== '~>') return null;
  // `~> MAJOR.MINOR`, with an optional pre-release as Elixir allows.
  const m = /^(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z.-]+)?$/.exec(token);
  if (!m) return null;
  const v = parseVersion(`${m[1]}.${m[2]}.0${m[3] ?? ''}`);
  return v ? { op, version: v, parts: 2 } : null;
}

/** Parse a requirement; null when Elixir's `Version.parse_requirement/1` would return `:error`. */
export function parseRequirement(text: string): Requirement | null {
  // Elixir's lexer splits operators from versions, so `>=1.0.0` and `>= 1.0.0` are the same.
  const tokens = text
    .trim()
    .replace(/(==|!=|>=|<=|~>|>|<)/g, ' $1 ')
    .split(/\s+/)
    .filter((t) => t !== '');
  if (tokens.length === 0) return null;
  const any: RequirementCondition[][] = [[]];
  let expectCondition = true;
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i]!;
    if (!expectCondition) {
      if (t === 'or') any.push([]);
      else if (t !== 'and') return null;
      expectCondition = true;
      continue;
    }
    let op: RequirementOperator = '==';
    let versionText = t;
    if ((OPERATORS as readonly string[]).includes(t)) {
      op = t as RequirementOperator;
      versionText = tokens[++i] ?? '';
    }
    const condition = parseCondition(versionText, op);
    if (!condition) return null;
    any[any.length - 1]!.push(condition);
    expectCondition = false;
  }
  return expectCondition ? null : { text: text.trim(), any };
}

/** Parse a requirement or throw REQUIREMENT_INVALID saying what is accepted. */
export function assertRequirement(text: string, where = 'requirement'): Requirement {
  const r = parseRequirement(text);
  if (!r) {
    throw new HexrepoError('REQUIREMENT_INVALID', `${where} ${JSON.stringify(text)} is not a valid Elixir version requirement`, {
      requirement: text,
      hint: 'write it as Mix does: "~> 1.4", "~> 1.4.2", ">= 1.0.0 and < 2.0.0", "== 1.2.3" or "1.2.3" (versions need MAJOR.MINOR.PATCH except after ~>)',
    });
  }
  return r;
}

function bump(v: Version, parts: 2 | 3): Version {
  // `~> 1.2` means < 2.0.0, `~> 1.2.3` means < 1.3.0; the bound excludes the next version's
  // pre-releases too (Elixir compares with `-0`).
  return parts === 2 ? { major: v.major + 1, minor: 0, patch: 0, pre: [0], build: undefined } : { major: v.major, minor: v.minor + 1, patch: 0, pre: [0], build: undefined };
}

function holds(v: Version, c: RequirementCondition): boolean {
  const cmp = compareVersions(v, c.version);
  switch (c.op) {
    case '==':
      return cmp === 0;
    case '!=':
      return cmp !== 0;
    case '>':
      return cmp > 0;
    case '>=':
      return cmp >= 0;
    case '<':
      return cmp < 0;
    case '<=':
      return cmp <= 0;
    case '~>':
      return cmp >= 0 && compareVersions(v, bump(c.version, c.parts)) < 0;
  }
}

/** True when `version` satisfies the requirement (false for a version that is not SemVer). */
export function matchesRequirement(version: string, requirement: Requirement): boolean {
  const v = parseVersion(version);
  if (!v) return false;
  return requirement.any.some((all) => all.every((c) => holds(v, c)));
}
