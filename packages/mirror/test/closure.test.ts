import type { Dependency } from '@hexrepo/core';
import { describe, expect, it } from 'vitest';
import { dependencyClosure, lockfileClosure, type ClosureRelease } from '../src/closure.js';
import { parseMixLock } from '../src/lockfile.js';
import { matchesRequirement, parseRequirement } from '@hexrepo/core';

describe('requirements', () => {
  const m = (v: string, r: string): boolean => {
    const req = parseRequirement(r);
    if (!req) throw new Error(`unparsed ${r}`);
    return matchesRequirement(v, req);
  };
  it('match as Elixir Version.match?/2 does', () => {
    expect(m('1.5.0', '~> 1.2')).toBe(true);
    expect(m('2.0.0', '~> 1.2')).toBe(false);
    expect(m('2.0.0-rc.0', '~> 1.2')).toBe(false);
    expect(m('1.2.9', '~> 1.2.3')).toBe(true);
    expect(m('1.3.0', '~> 1.2.3')).toBe(false);
    expect(m('1.2.2', '~> 1.2.3')).toBe(false);
    expect(m('1.0.0', '1.0.0')).toBe(true);
    expect(m('1.0.1', '== 1.0.0')).toBe(false);
    expect(m('1.5.0', '>= 1.0.0 and < 2.0.0')).toBe(true);
    expect(m('2.0.0', '>= 1.0.0 and < 2.0.0')).toBe(false);
    expect(m('2.1.0', '~> 1.0 or ~> 2.0')).toBe(true);
    expect(m('3.0.0', '~> 1.0 or ~> 2.0')).toBe(false);
    expect(m('1.0.0', '!= 1.0.0')).toBe(false);
    expect(m('1.1.0-beta', '> 1.0.0')).toBe(true);
  });
  it('return null for what is not a requirement', () => {
    expect(parseRequirement('latest')).toBeNull();
    expect(parseRequirement('~> 1')).toBeNull();
    expect(parseRequirement('>= 1.0 nand 2')).toBeNull();
  });
});

const dep = (p: string, requirement: string, extra: Partial<Dependency> = {}): Dependency => ({ package: p, requirement, optional: false, app: p, ...extra });

const REGISTRY: Record<string, ClosureRelease[]> = {
  web: [
    { version: '1.0.0', dependencies: [dep('plug', '~> 1.0')] },
    { version: '2.0.0', dependencies: [dep('plug', '~> 2.0'), dep('never', '~> 1.0', { optional: true }), dep('private', '~> 1.0', { repository: 'hexpm:acme' })] },
  ],
  plug: [
    { version: '1.0.0', dependencies: [dep('mime', '~> 1.0')] },
    { version: '1.1.0', dependencies: [dep('mime', '~> 1.1')] },
    { version: '2.0.0', dependencies: [dep('mime', '~> 2.0'), dep('gone', '>= 0.0.0')] },
    { version: '3.0.0', dependencies: [dep('never', '~> 1.0')] },
  ],
  mime: [
    { version: '1.0.0', dependencies: [] },
    { version: '1.1.0', dependencies: [] },
    { version: '1.6.0', dependencies: [] },
    { version: '2.0.0', dependencies: [dep('json', 'any version')] },
  ],
  json: [{ version: '1.0.0', dependencies: [] }],
  never: [{ version: '1.0.0', dependencies: [] }],
};

describe('dependencyClosure', () => {
  it('keeps every version of a root and the matching versions of each dependency, transitively', async () => {
    const reads: string[] = [];
    const closure = await dependencyClosure(
      ['web'],
      async (name) => {
        reads.push(name);
        return REGISTRY[name] ?? null;
      },
      { repository: 'hexpm' },
    );
    expect(Object.fromEntries([...closure.packages].map(([n, v]) => [n, [...v].sort()]))).toEqual({
      web: ['1.0.0', '2.0.0'],
      plug: ['1.0.0', '1.1.0', '2.0.0'],
      mime: ['1.0.0', '1.1.0', '1.6.0', '2.0.0'],
      json: ['1.0.0'],
    });
    // Each packages/NAME is read once, even when reached by several requirements.
    expect(reads.sort()).toEqual(['gone', 'json', 'mime', 'plug', 'web']);
    expect(closure.notes).toEqual(
      expect.arrayContaining([
        'private (required by web 2.0.0) is in repository "hexpm:acme", not the upstream; left out',
        'gone (required by plug 2.0.0) is not in the upstream registry',
        'json: requirement "any version" (from mime 2.0.0) could not be read; every version is kept',
      ]),
    );
  });

  it('follows optional dependencies when asked', async () => {
    const closure = await dependencyClosure(['web'], async (n) => REGISTRY[n] ?? null, { repository: 'hexpm', includeOptional: true });
    expect([...(closure.packages.get('never') ?? [])]).toEqual(['1.0.0']);
  });
});

describe('lockfileClosure', () => {
  it('is exactly the locked versions of the upstream repository', () => {
    const lock = parseMixLock(`%{
      "a": {:hex, :a, "1.0.0", "x", [:mix], [], "hexpm", "y"},
      "b": {:hex, :b, "2.0.0", "x", [:mix], [], "hexpm:acme", "y"},
      "c": {:git, "https://example.com/c.git", "abc", []},
    }`);
    const closure = lockfileClosure(lock, { repository: 'hexpm' });
    expect([...closure.packages].map(([n, v]) => [n, [...v]])).toEqual([['a', ['1.0.0']]]);
    expect(closure.notes).toEqual(['c: a :git dependency (not from a Hex repository); left out', 'b 2.0.0 is locked to repository "hexpm:acme", not the upstream "hexpm"; left out']);
  });
});
