/**
 * Elixir version requirements (`~> 1.2`, `>= 1.0.0 and < 2.0.0`, `== 1.0.0 or ~> 2.0`), as Hex
 * dependencies state them, matched the way `Version.match?/2` does with pre-releases allowed: a
 * mirror would rather hold a release a client never picks than miss one it does.
 */
import { compareVersions, parseVersion, type Version } from '@hexrepo/core';

type Op = '==' | '!=' | '>' | '>=' | '<' | '<=' | '~>';
interface Term {
  op: Op;
  version: Version;
  /** For `~>`: how many components were written (2 or 3). */
  parts: number;
}

/** A requirement: alternatives (`or`), each a conjunction (`and`) of terms. */
export type Requirement = Term[][];

const TERM_RE = /^(==|!=|>=|<=|~>|>|<)?\s*(\d+)(?:\.(\d+))?(?:\.(\d+))?(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$/;

/** Parse a requirement, or return null when it is not one (the caller then keeps every version). */
export function parseRequirement(text: string): Requirement | null {
  const alternatives: Requirement = [];
  for (const alt of text.trim().split(/\s+or\s+/)) {
    const terms: Term[] = [];
    for (const raw of alt.split(/\s+and\s+/)) {
      const m = TERM_RE.exec(raw.trim());
      if (!m) return null;
      const parts = m[4] !== undefined ? 3 : m[3] !== undefined ? 2 : 1;
      const version = parseVersion(`${m[2]}.${m[3] ?? '0'}.${m[4] ?? '0'}${m[5] ?? ''}${m[6] ?? ''}`);
      if (!version) return null;
      const op = (m[1] ?? '==') as Op;
      if (op === '~>' && parts < 2) return null;
      terms.push({ op, version, parts });
    }
    alternatives.push(terms);
  }
  return alternatives;
}

function matchesTerm(v: Version, t: Term): boolean {
  const c = compareVersions(v, t.version);
  switch (t.op) {
    case '==':
      return c === 0;
    case '!=':
      return c !== 0;
    case '>':
      return c > 0;
    case '>=':
      return c >= 0;
    case '<':
      return c < 0;
    case '<=':
      return c <= 0;
    case '~>': {
      // ~> 2.1 means >= 2.1.0 and < 3.0.0-0; ~> 2.1.3 means >= 2.1.3 and < 2.2.0-0.
      const upper: Version = t.parts === 2 ? { major: t.version.major + 1, minor: 0, patch: 0, pre: [0], build: undefined } : { major: t.version.major, minor: t.version.minor + 1, patch: 0, pre: [0], build: undefined };
      return c >= 0 && compareVersions(v, upper) < 0;
    }
  }
}

/** True when `version` satisfies `requirement` (pre-releases allowed). */
export function matchesRequirement(version: string, requirement: Requirement): boolean {
  const v = parseVersion(version);
  if (!v) return false;
  return requirement.some((terms) => terms.every((t) => matchesTerm(v, t)));
}
