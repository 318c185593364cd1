/**
 * Build and unpack the three registry resources, `names`, `versions` and `packages/NAME`
 * (HEX_SPEC.md §2). Building emits exactly what `mix hex.registry build` emits (§2.5, §5.1), so
 * a registry built from the same tarballs, key and mtimes is byte-identical to mix's, except the
 * order of entries mix takes from an Erlang map of more than 32 keys (hash order; sorted here). Unpacking
 * verifies the signature and the origin as Mix and rebar3 do (§2.7).
 */
import type { KeyObject } from 'node:crypto';
import { ADVISORY_SEVERITIES, compareVersions, HexrepoError, RETIREMENT_REASONS, type Advisory, type AdvisorySeverityName, type Dependency, type RegistryRelease, type RetirementReasonName } from '@hexrepo/core';
import protobuf from 'protobufjs/minimal.js';
import { hexrepo } from './generated/registry.js';
import { signAndWrap, unwrapAndVerify } from './signed.js';

const { Writer } = protobuf;

/** A protobuf Timestamp. Mix writes `nanos: 0` explicitly; so does hexrepo. */
export interface Timestamp {
  seconds: number;
  nanos: number;
}

/** One entry of `names`. */
export interface NamesEntry {
  name: string;
  updatedAt?: Timestamp;
}

/** One entry of `versions`. */
export interface VersionsEntry {
  name: string;
  /** Ascending by SemVer. */
  versions: string[];
  /** Indexes into `versions` of retired releases. */
  retired: number[];
  /** Indexes into `versions` of releases with security advisories (field 5, packed). */
  withAdvisories?: number[];
}

/** A release as read back from `packages/NAME`: `outer_checksum` may be missing in old registries. */
export type UnpackedRelease = Omit<RegistryRelease, 'outerChecksum'> & { outerChecksum?: Uint8Array };

export interface UnpackedNames {
  repository: string;
  packages: NamesEntry[];
}

export interface UnpackedVersions {
  repository: string;
  packages: VersionsEntry[];
}

export interface UnpackedPackage {
  repository: string;
  name: string;
  releases: UnpackedRelease[];
  /** `Package.advisories`, in the order of the file (releases point into it by index). */
  advisories: Advisory[];
}

/** What the reader expects: the key to verify with and the repository (and package) name. */
export interface UnpackOptions {
  publicKey: KeyObject;
  repository: string;
}

const FIELD_PACKAGES = (1 << 3) | 2; // field 1, length-delimited
const FIELD_REPOSITORY = (2 << 3) | 2; // field 2, length-delimited

/** The encoded `packages` field record of one `names` entry, ready to be concatenated. */
export function encodeNamesEntry(entry: NamesEntry): Uint8Array {
  return hexrepo.names.Package.encode(entry, Writer.create().uint32(FIELD_PACKAGES).fork()).ldelim().finish();
}

/** The encoded `packages` field record of one `versions` entry, ready to be concatenated. */
export function encodeVersionsEntry(entry: VersionsEntry): Uint8Array {
  return hexrepo.versions.Package.encode(entry, Writer.create().uint32(FIELD_PACKAGES).fork()).ldelim().finish();
}

/**
 * The `Names`/`Versions` payload from pre-encoded entries: the entries' records, then the
 * repository field. Long-running processes keep each package's entry and re-encode only what
 * changed, so adding a release to a 2,000-package index costs a concatenation, not an encode.
 */
function assemblePayload(entries: readonly Uint8Array[], repository: string): Uint8Array {
  const tail = Writer.create().uint32(FIELD_REPOSITORY).string(repository).finish();
  let size = tail.byteLength;
  for (const e of entries) size += e.byteLength;
  const out = new Uint8Array(size);
  let at = 0;
  for (const e of entries) {
    out.set(e, at);
    at += e.byteLength;
  }
  out.set(tail, at);
  return out;
}

export const assembleNamesPayload: (entries: readonly Uint8Array[], repository: string) => Uint8Array = assemblePayload;
export const assembleVersionsPayload: (entries: readonly Uint8Array[], repository: string) => Uint8Array = assemblePayload;

/** The signed, gzipped `names` file. Entries are written in the order given (sort them by name). */
export function buildNames(input: { repository: string; packages: readonly NamesEntry[] }, privateKey: KeyObject): Uint8Array {
  return signAndWrap(assembleNamesPayload(input.packages.map(encodeNamesEntry), input.repository), privateKey);
}

/** The signed, gzipped `versions` file. Entries are written in the order given (sort them by name). */
export function buildVersions(input: { repository: string; packages: readonly VersionsEntry[] }, privateKey: KeyObject): Uint8Array {
  return signAndWrap(assembleVersionsPayload(input.packages.map(encodeVersionsEntry), input.repository), privateKey);
}

function dependencyMessage(dep: Dependency, repository: string): hexrepo.pkg.IDependency {
  // As `mix hex.registry build`: `optional` and `app` always written, `repository` only when it
  // names another repository than this one (absent means "this repository" to every client).
  return {
    package: dep.package,
    requirement: dep.requirement,
    optional: dep.optional,
    app: dep.app,
    ...(dep.repository !== undefined && dep.repository !== repository ? { repository: dep.repository } : {}),
  };
}

/**
 * Dependencies in the order mix writes them: hex_core reads `requirements` into a map keyed by
 * package name and `mix hex.registry build` iterates it, which is byte order of the names (Erlang
 * sorts the keys of a map of up to 32 entries), whatever their order in metadata.config.
 */
function byPackageName(deps: readonly Dependency[]): Dependency[] {
  return [...deps].sort((a, b) => Buffer.compare(Buffer.from(a.package), Buffer.from(b.package)));
}

/** The advisories of a package's releases, once each, sorted by id: the order of `Package.advisories`. */
export function packageAdvisories(releases: readonly RegistryRelease[]): Advisory[] {
  const byId = new Map<string, Advisory>();
  for (const r of releases) for (const a of r.advisories ?? []) if (!byId.has(a.id)) byId.set(a.id, a);
  return [...byId.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

function advisoryMessage(a: Advisory): hexrepo.pkg.ISecurityAdvisory {
  return {
    id: a.id,
    summary: a.summary,
    htmlUrl: a.htmlUrl,
    ...(a.severity !== undefined ? { severity: ADVISORY_SEVERITIES[a.severity] } : {}),
    ...(a.cvssScore !== undefined ? { cvssScore: a.cvssScore } : {}),
    apiUrl: a.apiUrl,
    aliases: a.aliases,
  };
}

/**
 * The `Package` payload of `packages/NAME` (unsigned); releases sorted ascending by SemVer, dependencies by package name.
 * Advisories go once into `Package.advisories` (sorted by id) and each release lists the indexes of its own
 * in `advisory_indexes` (unpacked, as proto2 writes a repeated scalar without `packed`).
 */
export function encodePackagePayload(input: { repository: string; name: string; releases: readonly RegistryRelease[] }): Uint8Array {
  const releases = [...input.releases].sort((a, b) => compareVersions(a.version, b.version));
  const advisories = packageAdvisories(releases);
  const indexOf = new Map(advisories.map((a, i) => [a.id, i]));
  return hexrepo.pkg.Package.encode({
    name: input.name,
    repository: input.repository,
    ...(advisories.length > 0 ? { advisories: advisories.map(advisoryMessage) } : {}),
    releases: releases.map((r) => ({
      version: r.version,
      innerChecksum: r.innerChecksum,
      dependencies: byPackageName(r.dependencies).map((d) => dependencyMessage(d, input.repository)),
      ...(r.retired ? { retired: { reason: RETIREMENT_REASONS[r.retired.reason], ...(r.retired.message !== undefined ? { message: r.retired.message } : {}) } } : {}),
      outerChecksum: r.outerChecksum,
      ...(r.advisories && r.advisories.length > 0 ? { advisoryIndexes: [...new Set(r.advisories.map((a) => indexOf.get(a.id)!))].sort((x, y) => x - y) } : {}),
      ...(r.publishedAt !== undefined ? { publishedAt: { seconds: r.publishedAt, nanos: 0 } } : {}),
    })),
  }).finish();
}

/** The signed, gzipped `packages/NAME` file. */
export function buildPackage(input: { repository: string; name: string; releases: readonly RegistryRelease[] }, privateKey: KeyObject): Uint8Array {
  return signAndWrap(encodePackagePayload(input), privateKey);
}

function decode<T>(what: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    throw new HexrepoError('REGISTRY_CORRUPT', `${what} has a signed payload that is not a valid message: ${(err as Error).message}`, { hint: 'rebuild it with "hexrepo build"' }, { cause: err });
  }
}

function checkRepository(what: string, actual: string, expected: string): void {
  if (actual !== expected) {
    throw new HexrepoError('REGISTRY_BAD_REPO_NAME', `${what} was built for repository "${actual}", not "${expected}"`, {
      hint: `clients must use exactly the name the registry was built with: "mix hex.repo add ${actual} …", or rebuild with --name ${expected}`,
      actual,
      expected,
    });
  }
}

/** Gunzip, verify and decode `names`, and check its repository name. */
export function unpackNames(file: Uint8Array, opts: UnpackOptions): UnpackedNames {
  const payload = unwrapAndVerify(file, opts.publicKey, 'names');
  const names = decode('names', () => hexrepo.names.Names.decode(payload));
  checkRepository('names', names.repository, opts.repository);
  return {
    repository: names.repository,
    packages: names.packages.map((p) => ({ name: p.name, ...(p.updatedAt ? { updatedAt: { seconds: Number(p.updatedAt.seconds), nanos: p.updatedAt.nanos } } : {}) })),
  };
}

/** Gunzip, verify and decode `versions`, and check its repository name. */
export function unpackVersions(file: Uint8Array, opts: UnpackOptions): UnpackedVersions {
  const payload = unwrapAndVerify(file, opts.publicKey, 'versions');
  const versions = decode('versions', () => hexrepo.versions.Versions.decode(payload));
  checkRepository('versions', versions.repository, opts.repository);
  return {
    repository: versions.repository,
    packages: versions.packages.map((p) => ({ name: p.name, versions: p.versions ?? [], retired: p.retired ?? [], ...(p.withAdvisories && p.withAdvisories.length > 0 ? { withAdvisories: p.withAdvisories } : {}) })),
  };
}

const REASON_NAMES = Object.fromEntries(Object.entries(RETIREMENT_REASONS).map(([k, v]) => [v, k])) as Record<number, RetirementReasonName>;

const SEVERITY_NAMES = Object.fromEntries(Object.entries(ADVISORY_SEVERITIES).map(([k, v]) => [v, k])) as Record<number, AdvisorySeverityName>;

function advisoryOf(a: hexrepo.pkg.ISecurityAdvisory): Advisory {
  // A severity added after this reader reads as "critical": never lower than it may be (as Hex ranks it).
  const severity = a.severity === undefined || a.severity === null || !Object.hasOwn(a, 'severity') ? undefined : (SEVERITY_NAMES[a.severity] ?? 'critical');
  return {
    id: a.id,
    summary: a.summary,
    htmlUrl: a.htmlUrl,
    apiUrl: a.apiUrl,
    ...(severity !== undefined ? { severity } : {}),
    // A float32 on the wire: 9.8 comes back as 9.800000190734863; scores have one decimal.
    ...(Object.hasOwn(a, 'cvssScore') && typeof a.cvssScore === 'number' ? { cvssScore: Math.round(a.cvssScore * 10) / 10 } : {}),
    aliases: a.aliases ?? [],
  };
}

function releaseOf(r: hexrepo.pkg.IRelease, repository: string, advisories: readonly Advisory[]): UnpackedRelease {
  const own = (r.advisoryIndexes ?? []).flatMap((i) => (advisories[i] ? [advisories[i]] : []));
  return {
    name: '',
    version: r.version,
    innerChecksum: r.innerChecksum,
    ...(r.outerChecksum && r.outerChecksum.byteLength > 0 ? { outerChecksum: r.outerChecksum } : {}),
    dependencies: (r.dependencies ?? []).map((d) => ({
      package: d.package,
      requirement: d.requirement,
      optional: d.optional === true,
      app: d.app || d.package,
      ...(d.repository && d.repository !== repository ? { repository: d.repository } : {}),
    })),
    // Clients must tolerate reasons added later: an unknown one reads as "other".
    ...(r.retired ? { retired: { reason: REASON_NAMES[r.retired.reason] ?? 'other', ...(Object.hasOwn(r.retired, 'message') && r.retired.message != null ? { message: r.retired.message } : {}) } } : {}),
    ...(r.publishedAt ? { publishedAt: Number(r.publishedAt.seconds) } : {}),
    ...(own.length > 0 ? { advisories: own } : {}),
  };
}

/** Gunzip, verify and decode `packages/NAME`, and check its repository and package name. */
export function unpackPackage(file: Uint8Array, opts: UnpackOptions & { name: string }): UnpackedPackage {
  const what = `packages/${opts.name}`;
  const payload = unwrapAndVerify(file, opts.publicKey, what);
  const pkg = decode(what, () => hexrepo.pkg.Package.decode(payload));
  checkRepository(what, pkg.repository, opts.repository);
  if (pkg.name !== opts.name) {
    throw new HexrepoError('REGISTRY_BAD_PACKAGE_NAME', `${what} holds the releases of package "${pkg.name}"`, { hint: 'rebuild the registry with "hexrepo build"', actual: pkg.name, expected: opts.name });
  }
  const advisories = (pkg.advisories ?? []).map(advisoryOf);
  return { repository: pkg.repository, name: pkg.name, releases: pkg.releases.map((r) => ({ ...releaseOf(r, pkg.repository, advisories), name: pkg.name })), advisories };
}
