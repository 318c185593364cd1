import { HexrepoError } from './errors.js';

/** A parsed SemVer 2.0 version, as Elixir's `Version.parse/1` accepts it. */
export interface Version {
  major: number;
  minor: number;
  patch: number;
  pre: (string | number)[];
  build: string | undefined;
}

const VERSION_RE = /^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?(?:\+([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?$/;
/** hex.pm's bound on each numeric component. */
const MAX_COMPONENT = 99_999_999_999_999;

/** Parse a version, or return null when it is not SemVer. */
export function parseVersion(text: string): Version | null {
  const m = VERSION_RE.exec(text);
  if (!m) return null;
  const [major, minor, patch] = [Number(m[1]), Number(m[2]), Number(m[3])];
  if (major > MAX_COMPONENT || minor > MAX_COMPONENT || patch > MAX_COMPONENT) return null;
  const pre: (string | number)[] = [];
  if (m[4] !== undefined) {
    for (const id of m[4].split('.')) {
      if (/^\d+$/.test(id)) {
        if (id.length > 1 && id.startsWith('0')) return null; // SemVer: no leading zeros
        pre.push(Number(id));
      } else pre.push(id);
    }
  }
  return { major, minor, patch, pre, build: m[5] };
}

/**
 * Validate a release version the way hex.pm does: SemVer, no build metadata, pre-release at most
 * 64 characters. Throws METADATA_BAD_VERSION with the reason.
 */
export function assertReleaseVersion(text: string): Version {
  const v = parseVersion(text);
  if (!v) throw new HexrepoError('METADATA_BAD_VERSION', `"${text}" is not a SemVer version (expected MAJOR.MINOR.PATCH[-PRE])`, { version: text });
  if (v.build !== undefined) throw new HexrepoError('METADATA_BAD_VERSION', `"${text}" has build metadata (+${v.build}), which Hex does not allow`, { version: text });
  const preLength = text.includes('-') ? text.slice(text.indexOf('-') + 1).length : 0;
  if (preLength > 64) throw new HexrepoError('METADATA_BAD_VERSION', `"${text}" has a pre-release part longer than 64 characters`, { version: text });
  return v;
}

function comparePre(a: (string | number)[], b: (string | number)[]): number {
  if (a.length === 0 || b.length === 0) return b.length - a.length; // a release sorts after its pre-releases
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    const x = a[i]!;
    const y = b[i]!;
    if (x === y) continue;
    if (typeof x === 'number' && typeof y === 'number') return x < y ? -1 : 1;
    if (typeof x === 'number') return -1;
    if (typeof y === 'number') return 1;
    return x < y ? -1 : 1;
  }
  return a.length - b.length;
}

/** SemVer precedence, as Elixir's `Version.compare/2` (build metadata ignored). Sign of the result only. */
export function compareVersions(a: string | Version, b: string | Version): number {
  const x = typeof a === 'string' ? parseVersion(a) : a;
  const y = typeof b === 'string' ? parseVersion(b) : b;
  if (!x || !y) throw new HexrepoError('METADATA_BAD_VERSION', `cannot compare "${String(a)}" with "${String(b)}": not SemVer`);
  return x.major - y.major || x.minor - y.minor || x.patch - y.patch || comparePre(x.pre, y.pre);
}

/** Package names as hex.pm allows them. */
export const PACKAGE_NAME_RE = /^[a-z][a-z0-9_]*$/;

/** Throws METADATA_BAD_NAME unless the name is a valid Hex package name. */
export function assertPackageName(name: string): void {
  if (!PACKAGE_NAME_RE.test(name) || name.length < 2 || name.length > 128) {
    throw new HexrepoError('METADATA_BAD_NAME', `"${name}" is not a valid package name (lowercase letter first, then a-z, 0-9 or _, at least 2 characters)`, { name });
  }
}
