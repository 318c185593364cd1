/**
 * What a mirror must hold so a project builds with the upstream unplugged: the dependency closure of
 * some packages, read from the verified registry (`packages/NAME` of each package reached), or exactly
 * what a lockfile pins.
 */
import { matchesRequirement, parseRequirement, type Dependency } from '@hexrepo/core';
import type { Lockfile } from './lockfile.js';

/** A release as a verified `packages/NAME` holds it (what the closure needs of it). */
export interface ClosureRelease {
  version: string;
  dependencies: readonly Dependency[];
}

/** The verified releases of a package, or null when the upstream has no such package. */
export type ReleasesOf = (name: string) => Promise<readonly ClosureRelease[] | null>;

/** The objects a closure needs: `packages/NAME` of every key, and the tarballs of the listed versions. */
export interface Closure {
  /** Package name → versions whose tarballs are needed (ascending in insertion order of discovery). */
  packages: Map<string, Set<string>>;
  /** What was left out, and why (unknown packages, other repositories, unreadable requirements). */
  notes: string[];
}

export interface ClosureOptions {
  /** The upstream's repository name: dependencies on other repositories are left out with a note. */
  repository: string;
  /**
   * Follow optional dependencies too. Off by default: a client fetches an optional dependency only when
   * the project asks for it itself, and then it is one of the named packages.
   * @default false
   */
  includeOptional?: boolean;
}

/**
 * Every version of each of `roots`, plus, transitively, every version of every dependency that matches
 * a requirement of a release already in the closure. A requirement that cannot be parsed keeps every
 * version of its package (with a note): over-fetching is safe, a missing release breaks a build.
 */
export async function dependencyClosure(roots: readonly string[], releasesOf: ReleasesOf, opts: ClosureOptions): Promise<Closure> {
  const packages = new Map<string, Set<string>>();
  const notes: string[] = [];
  const known = new Map<string, readonly ClosureRelease[] | null>();
  /** Requirements already applied per package ('*' = every version). */
  const applied = new Map<string, Set<string>>();
  let wave: { name: string; requirement: string; from: string }[] = roots.map((name) => ({ name, requirement: '*', from: 'the command line' }));
  while (wave.length > 0) {
    const fresh = wave.filter(({ name, requirement }) => {
      const seen = applied.get(name) ?? new Set<string>();
      applied.set(name, seen);
      if (seen.has(requirement) || seen.has('*')) return false;
      seen.add(requirement);
      return true;
    });
    // One wave's packages/NAME reads run together; the caller's fetcher bounds the concurrency.
    await Promise.all(
      [...new Set(fresh.map((w) => w.name))]
        .filter((n) => !known.has(n))
        .map(async (n) => {
          known.set(n, null);
          known.set(n, await releasesOf(n));
        }),
    );
    const next: typeof wave = [];
    for (const { name, requirement, from } of fresh) {
      const releases = known.get(name) ?? null;
      if (releases === null) {
        notes.push(`${name} (required by ${from}) is not in the upstream registry`);
        continue;
      }
      const parsed = requirement === '*' ? null : parseRequirement(requirement);
      if (requirement !== '*' && parsed === null) notes.push(`${name}: requirement "${requirement}" (from ${from}) could not be read; every version is kept`);
      const selected = packages.get(name) ?? new Set<string>();
      packages.set(name, selected);
      for (const r of releases) {
        if (selected.has(r.version) || (parsed !== null && !matchesRequirement(r.version, parsed))) continue;
        selected.add(r.version);
        for (const d of r.dependencies) {
          if (d.optional && !opts.includeOptional) continue;
          if (d.repository !== undefined && d.repository !== opts.repository) {
            notes.push(`${d.package} (required by ${name} ${r.version}) is in repository "${d.repository}", not the upstream; left out`);
            continue;
          }
          next.push({ name: d.package, requirement: d.requirement, from: `${name} ${r.version}` });
        }
      }
    }
    wave = next;
  }
  return { packages, notes: [...new Set(notes)] };
}

/** Exactly what a lockfile pins from the upstream repository: its packages and versions. */
export function lockfileClosure(lock: Lockfile, opts: { repository: string }): Closure {
  const packages = new Map<string, Set<string>>();
  const notes = lock.skipped.map((s) => `${s.name}: ${s.reason}; left out`);
  for (const p of lock.packages) {
    if (p.repository !== opts.repository) {
      notes.push(`${p.name} ${p.version} is locked to repository "${p.repository}", not the upstream "${opts.repository}"; left out`);
      continue;
    }
    const set = packages.get(p.name) ?? new Set<string>();
    set.add(p.version);
    packages.set(p.name, set);
  }
  return { packages, notes };
}
