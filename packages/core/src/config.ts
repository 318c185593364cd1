import { HexrepoError } from './errors.js';
import { DEFAULT_LIMITS, parseSize, type TarballLimits } from './limits.js';

/**
 * The project file `hexrepo.json` that `hexrepo init` writes, so later commands need no flags.
 * Paths are relative to the file's folder.
 */
export interface ProjectConfig {
  /** Repository name signed into the registry; clients must use the same name. */
  name: string;
  /** The served folder. @default "public" */
  publicDir: string;
  /** The signing key, kept outside publicDir. @default "private_key.pem" */
  privateKey: string;
  limits: TarballLimits;
}

export const PROJECT_FILE = 'hexrepo.json';

/** Repository names: what `mix hex.repo add NAME` and rebar3's `name` accept and the payload carries. */
export const REPO_NAME_RE = /^[a-z0-9][a-z0-9_-]*$/;

/** Throws CONFIG_INVALID unless `name` is a usable repository name. */
export function assertRepoName(name: string, setting = '--name'): void {
  if (!REPO_NAME_RE.test(name) || name.length > 64 || name === 'hexpm') {
    throw new HexrepoError('CONFIG_INVALID', `${setting} ${JSON.stringify(name)} is not a usable repository name: use lowercase letters, digits, "-" and "_", and not "hexpm" (that name always means hex.pm to the clients)`, { setting, value: name });
  }
}

/** Parse and validate a project file's JSON; every problem names the setting. */
export function parseProjectConfig(raw: unknown, source: string): ProjectConfig {
  const bad = (setting: string, why: string): never => {
    throw new HexrepoError('CONFIG_INVALID', `${source}: "${setting}" ${why}`, { source, setting });
  };
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) bad('(root)', 'must be a JSON object');
  const obj = raw as Record<string, unknown>;
  const known = new Set(['name', 'publicDir', 'privateKey', 'limits']);
  for (const k of Object.keys(obj)) if (!known.has(k)) bad(k, `is not a known setting (known: ${[...known].join(', ')})`);
  if (typeof obj.name !== 'string') bad('name', 'must be a string');
  assertRepoName(obj.name as string, `${source}: "name"`);
  const str = (k: string, dflt: string): string => {
    const v = obj[k] ?? dflt;
    if (typeof v !== 'string' || v === '') bad(k, 'must be a non-empty string');
    return v as string;
  };
  const limits: TarballLimits = { ...DEFAULT_LIMITS };
  if (obj.limits !== undefined) {
    if (typeof obj.limits !== 'object' || obj.limits === null) bad('limits', 'must be an object');
    for (const [k, v] of Object.entries(obj.limits as Record<string, unknown>)) {
      if (!(k in limits)) bad(`limits.${k}`, `is not a known limit (known: ${Object.keys(limits).join(', ')})`);
      const n = typeof v === 'number' ? v : typeof v === 'string' ? parseSize(v) : null;
      if (n === null || !Number.isInteger(n) || n <= 0) bad(`limits.${k}`, 'must be a positive integer or a size such as "8MiB"');
      limits[k as keyof TarballLimits] = n as number;
    }
  }
  return { name: obj.name as string, publicDir: str('publicDir', 'public'), privateKey: str('privateKey', 'private_key.pem'), limits };
}

