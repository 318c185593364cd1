/**
 * The repository endpoint's resources, as a whitelist: a request path either names exactly one of
 * them or is refused. Nothing else in the public folder (a stray private key, dotfiles, temp files)
 * can ever be served, whatever the encoding of the path.
 */
import { assertPackageName, assertReleaseVersion } from '@hexrepo/core';
import { docsKey, NAMES_KEY, packageKey, policyKey, PUBLIC_KEY_KEY, tarballKey, VERSIONS_KEY } from '@hexrepo/repo';

export type ResourceKind = 'names' | 'versions' | 'public_key' | 'package' | 'tarball' | 'docs' | 'policy';

export interface Resource {
  kind: ResourceKind;
  /** Storage key. */
  key: string;
  /** The package the resource belongs to (for per-package token patterns). */
  pkg?: string;
  /** The policy a `policy` resource names (`policies/NAME`, Hex 2.5). */
  policy?: string;
}

export type RouteResult = { ok: true; resource: Resource } | { ok: false; status: 400 | 404; reason: string };

/** A package name, captured (regular-expression source). */
export const NAME = '([a-z][a-z0-9_]*)';
/** A release version as Hex allows it (SemVer without build metadata), captured. */
export const VERSION = '(\\d+\\.\\d+\\.\\d+(?:-[0-9A-Za-z-]+(?:\\.[0-9A-Za-z-]+)*)?)';
const PACKAGE_RE = new RegExp(`^/packages/${NAME}$`);
const TARBALL_RE = new RegExp(`^/tarballs/${NAME}-${VERSION}\\.tar$`);
const DOCS_RE = new RegExp(`^/docs/${NAME}-${VERSION}\\.tar\\.gz$`);
/** A policy name as policy.proto allows it: 3 to 64 characters. */
const POLICY_RE = /^\/policies\/([a-z0-9][a-z0-9_.-]{1,62}[a-z0-9])$/;

/**
 * True when Hex could have published `name` (and `version`): at most 128 characters, a SemVer with
 * a pre-release of at most 64. Anything else names nothing, and stays far from the file system's
 * 255-byte limit on a file name (NAME-VERSION.tar.gz is at most 245 bytes).
 */
export function plausibleRelease(name: string, version?: string): boolean {
  try {
    assertPackageName(name);
    if (version !== undefined) assertReleaseVersion(version);
    return true;
  } catch {
    return false;
  }
}

/** Percent-escapes that could smuggle a separator, a dot segment or a NUL past a later decoder. */
const DANGEROUS_ESCAPE = /%(2f|5c|2e|00|25)/i;

/** Map the path of a request (`req.url`, query included) to a resource. */
export function routeRepository(rawUrl: string): RouteResult {
  const q = rawUrl.indexOf('?');
  const raw = q === -1 ? rawUrl : rawUrl.slice(0, q);
  if (!raw.startsWith('/')) return { ok: false, status: 400, reason: 'the path must start with /' };
  if (DANGEROUS_ESCAPE.test(raw)) return { ok: false, status: 400, reason: 'encoded separators, dots or percent signs are not allowed in paths' };
  let path: string;
  try {
    path = decodeURIComponent(raw);
  } catch {
    return { ok: false, status: 400, reason: 'malformed percent-encoding' };
  }
  if (path.includes('\\') || path.split('/').some((seg) => seg === '..' || seg === '.')) return { ok: false, status: 400, reason: 'dot segments are not allowed in paths' };

  if (path === '/names') return { ok: true, resource: { kind: 'names', key: NAMES_KEY } };
  if (path === '/versions') return { ok: true, resource: { kind: 'versions', key: VERSIONS_KEY } };
  if (path === '/public_key') return { ok: true, resource: { kind: 'public_key', key: PUBLIC_KEY_KEY } };
  const tooLong = { ok: false, status: 404, reason: 'not a package name or version Hex allows' } as const;
  let m = PACKAGE_RE.exec(path);
  if (m && !plausibleRelease(m[1]!)) return tooLong;
  if (m) return { ok: true, resource: { kind: 'package', key: packageKey(m[1]!), pkg: m[1]! } };
  m = TARBALL_RE.exec(path) ?? DOCS_RE.exec(path);
  if (m && !plausibleRelease(m[1]!, m[2]!)) return tooLong;
  m = TARBALL_RE.exec(path);
  if (m) return { ok: true, resource: { kind: 'tarball', key: tarballKey(m[1]!, m[2]!), pkg: m[1]! } };
  m = DOCS_RE.exec(path);
  if (m) return { ok: true, resource: { kind: 'docs', key: docsKey(m[1]!, m[2]!), pkg: m[1]! } };
  m = POLICY_RE.exec(path);
  if (m) return { ok: true, resource: { kind: 'policy', key: policyKey(m[1]!), policy: m[1]! } };
  return { ok: false, status: 404, reason: 'not a repository resource' };
}

/** Route label for metrics and logs (bounded cardinality: never the package name). */
export function routeLabel(kind: ResourceKind | 'health' | 'metrics' | 'other'): string {
  switch (kind) {
    case 'package':
      return '/packages/:name';
    case 'tarball':
      return '/tarballs/:file';
    case 'docs':
      return '/docs/:file';
    case 'policy':
      return '/policies/:name';
    case 'other':
      return 'other';
    default:
      return `/${kind}`;
  }
}

/** Content-Type per resource. Registry files are opaque gzip files: never labelled Content-Encoding. */
export const CONTENT_TYPES: Record<ResourceKind, string> = {
  names: 'application/octet-stream',
  versions: 'application/octet-stream',
  package: 'application/octet-stream',
  tarball: 'application/octet-stream',
  docs: 'application/gzip',
  public_key: 'text/plain; charset=utf-8',
  policy: 'application/octet-stream',
};

/** Cache-Control per resource: tarballs are immutable, indexes short-lived (publishes show at once). */
export function cacheControl(kind: ResourceKind, visibility: 'public' | 'private'): string {
  switch (kind) {
    case 'tarball':
      return `${visibility}, max-age=31536000, immutable`;
    case 'docs':
    case 'public_key':
      return `${visibility}, max-age=3600`;
    default:
      return `${visibility}, max-age=60`;
  }
}
