/** The `requirements` entry of metadata.config, read from any of its shapes and written in Mix's. */
import { HexrepoError, PACKAGE_NAME_RE, type Dependency } from '@hexrepo/core';
import type { Term } from './terms.js';
import { binaryTerm, kindOf, lookup, termPairs, termText } from './term-access.js';
import { preview } from './text.js';

/** A dependency as a caller writes it: `app` defaults to the package, `optional` to false. */
export interface DependencyInput {
  package: string;
  requirement: string;
  optional?: boolean;
  app?: string;
  repository?: string;
}

function bad(message: string, details: Record<string, unknown> = {}): never {
  throw new HexrepoError('METADATA_BAD_REQUIREMENTS', message, details);
}

function readDependency(name: string, fields: Term, index: number): Dependency {
  const where = `requirement ${index + 1} (${preview(name)})`;
  if (!PACKAGE_NAME_RE.test(name)) bad(`${where} names ${preview(name)}, which is not a valid package name; use the dependency's Hex package name`, { dependency: name });
  const pairs = termPairs(fields);
  if (pairs === null) bad(`${where} is ${kindOf(fields)}, expected a list of {<<"key">>, Value} pairs or a map`, { dependency: name });
  const text = (key: string, required: boolean): string | undefined => {
    const term = lookup(pairs, key);
    if (term === undefined) {
      if (required) bad(`${where} has no "${key}"; add {<<"${key}">>, <<"...">>} (for example <<"~> 1.0">>)`, { dependency: name, field: key });
      return undefined;
    }
    const value = termText(term);
    if (value === null || value === '') bad(`${where} has a "${key}" that is ${value === '' ? 'empty' : kindOf(term)}; it must be a non-empty binary`, { dependency: name, field: key });
    return value;
  };
  const requirement = text('requirement', true)!;
  const optional = lookup(pairs, 'optional');
  const dep: Dependency = {
    package: name,
    requirement,
    optional: optional !== undefined && optional.type === 'atom' && optional.value === 'true',
    app: text('app', false) ?? name,
  };
  const repository = text('repository', false);
  if (repository !== undefined) dep.repository = repository;
  return dep;
}

/**
 * Normalise `requirements` from any shape hex_core reads:
 * - Mix's list of proplists, each with a `"name"` key;
 * - rebar3_hex's name-keyed list `[{<<"name">>, [...]}]`;
 * - a map `#{<<"name">> => #{...}}` (or of proplists).
 * Each dependency needs `requirement`. A missing `app` defaults to the package name (hex_core
 * requires it, and `mix hex.registry build` crashes without it, but every real client writes it
 * equal to the package unless renamed). `optional` is true only for exactly the atom `true`.
 * `repository` is kept only when present. Order is kept; a package named twice is refused.
 * Throws METADATA_BAD_REQUIREMENTS.
 */
export function readRequirements(term: Term): Dependency[] {
  const deps: Dependency[] = [];
  if (term.type === 'map') {
    term.entries.forEach(([k, v], i) => {
      const name = termText(k);
      if (name === null) bad(`requirement ${i + 1} has ${kindOf(k)} as its key; the key must be the package name as a binary`);
      deps.push(readDependency(name, v, i));
    });
  } else if (term.type === 'list') {
    term.items.forEach((item, i) => {
      if (item.type === 'tuple' && item.items.length === 2) {
        const name = termText(item.items[0]!);
        if (name === null) bad(`requirement ${i + 1} is a tuple whose first element is ${kindOf(item.items[0]!)}; it must be the package name as a binary`);
        deps.push(readDependency(name, item.items[1]!, i));
        return;
      }
      if (item.type !== 'list' && item.type !== 'map') {
        bad(`requirement ${i + 1} is ${kindOf(item)}; expected [{<<"name">>, ...}, {<<"requirement">>, ...}] or {<<"name">>, [...]}`);
      }
      const pairs = termPairs(item);
      const nameTerm = pairs && lookup(pairs, 'name');
      const name = nameTerm ? termText(nameTerm) : null;
      if (name === null) bad(`requirement ${i + 1} has no "name" binary; add {<<"name">>, <<"package">>}`);
      deps.push(readDependency(name, item, i));
    });
  } else {
    bad(`"requirements" is ${kindOf(term)}; it must be a list (possibly empty) of dependencies`);
  }
  const seen = new Set<string>();
  for (const dep of deps) {
    if (seen.has(dep.package)) bad(`the dependency ${preview(dep.package)} is listed twice; keep one entry`, { dependency: dep.package });
    seen.add(dep.package);
  }
  return deps;
}

/** Requirements in Mix's shape: one proplist per dependency, keys in alphabetical order. */
export function requirementsTerm(deps: readonly DependencyInput[]): Term {
  return {
    type: 'list',
    items: deps.map((dep): Term => {
      const pair = (key: string, value: Term): Term => ({ type: 'tuple', items: [binaryTerm(key), value] });
      const items = [pair('app', binaryTerm(dep.app ?? dep.package)), pair('name', binaryTerm(dep.package)), pair('optional', { type: 'atom', value: dep.optional === true ? 'true' : 'false' })];
      if (dep.repository !== undefined) items.push(pair('repository', binaryTerm(dep.repository)));
      items.push(pair('requirement', binaryTerm(dep.requirement)));
      return { type: 'list', items };
    }),
  };
}
