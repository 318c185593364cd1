/**
 * What the terminal UI reads and writes, as a small interface: a local repository folder
 * (`local.ts`), a running `hexrepo serve` (`remote.ts`), or an in-memory fake in tests.
 */
import { compareVersions, type Retirement } from '@hexrepo/core';
import type { ReleaseView } from '@hexrepo/repo';

/** One row of the package list. */
export interface PackageSummary {
  name: string;
  /** The newest version (SemVer order), if any. */
  latest: string | undefined;
  releases: number;
  /** How many releases are retired. */
  retired: number;
  /** True when the newest release is retired. */
  latestRetired: boolean;
  /** How many releases have security advisories. */
  advisories: number;
}

export type { Retirement } from '@hexrepo/core';

/** A release as the registry (packages/NAME) holds it: the repository service's view, per package. */
export type Release = Omit<ReleaseView, 'name'>;

/** The metadata of a release, read from its tarball. */
export interface ReleaseMetadata {
  description?: string;
  licenses: string[];
  links: [string, string][];
  buildTools: string[];
  /** Where the fields come from, when not exactly this release's tarball (remote: some fields are the newest release's). */
  note?: string;
}

export interface PublishOutcome {
  created: boolean;
  name: string;
  version: string;
  checksum: string;
}

export interface SourceInfo {
  kind: 'local' | 'remote';
  repository: string;
  /** SHA256:… of the repository's public key. */
  fingerprint: string;
  /** Public folder or URL. */
  location: string;
  /** Why writes are off (no signing key, no token), or undefined when they are on. */
  readOnly?: string;
}

export interface DataSource {
  readonly info: SourceInfo;
  /** Every package, sorted by name. */
  listPackages(): Promise<PackageSummary[]>;
  /** Releases of one package, ascending by SemVer. */
  releases(name: string): Promise<Release[]>;
  metadata(name: string, version: string): Promise<ReleaseMetadata>;
  publish(bytes: Uint8Array): Promise<PublishOutcome>;
  retire(name: string, version: string, retirement: Retirement): Promise<void>;
  unretire(name: string, version: string): Promise<void>;
  close(): Promise<void>;
}

/** A summary row from a name and its versions (any order) with the retired ones and those with advisories. */
export function summarize(name: string, versions: readonly string[], retired: ReadonlySet<string>, withAdvisories: ReadonlySet<string> = new Set()): PackageSummary {
  let latest: string | undefined;
  for (const v of versions) if (latest === undefined || compareVersions(v, latest) > 0) latest = v;
  let count = 0;
  let advised = 0;
  for (const v of versions) {
    if (retired.has(v)) count++;
    if (withAdvisories.has(v)) advised++;
  }
  return { name, latest, releases: versions.length, retired: count, latestRetired: latest !== undefined && retired.has(latest), advisories: advised };
}

export function byName(a: { name: string }, b: { name: string }): number {
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}
