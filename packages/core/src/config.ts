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
    throw new HexrepoError('CONFIG_INVALID', `${setting} ${JSON.stringify(name)} is not a usable repository name: use lowercase letters, digits, "-" and "_", and not "hexpm" (that name always means hex.pm to the clients)`, {
      setting,
      value: name,
    });
  }
}

/** Parse and validate a project file's JSON; every problem names the setting. */
export function parseProjectConfig(raw: unknown, source: string): ProjectConfig {
  const bad = (setting: string, why: string): never => {
    throw new HexrepoError('CONFIG_INVALID', `${source}: "${setting}" ${why}`, { source, setting });
  };
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) bad('(root)', 'must be a JSON object');
  const obj = raw as Record<string, unknown>;
  if ('repositories' in obj)
    bad(
      'repositories',
      'makes this the config of a host of several repositories, which only "hexrepo serve" and "hexrepo repo" read: run other commands with a repository\'s folder (its public folder, or --store URL --name NAME --private-key KEY)',
    );
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

/** The upstream of a mirror repository; every field optional, defaults are hex.pm's. */
export interface MirrorConfig {
  /** @default "https://repo.hex.pm" */
  url?: string;
  /** The repository name the upstream signs into its registry. @default "hexpm" */
  repository?: string;
  /** The upstream's public key: PEM text, or a path to it (relative to the config file). @default hex.pm's key, for hex.pm only */
  publicKey?: string;
  /** Seconds before names, versions and packages/NAME are revalidated with the upstream. @default 60 */
  maxAge: number;
  /** Seconds to connect to the upstream. @default 10 */
  connectTimeout: number;
  /** Seconds from a request to the upstream's first byte; past it, a cached copy is served stale. @default 15 */
  firstByteTimeout: number;
}

/** One repository of a host, as the host form of hexrepo.json lists it. Paths are relative to the file's folder. */
export interface HostRepositoryConfig {
  name: string;
  /** The served folder; exactly one of publicDir and store. */
  publicDir?: string;
  /** A store URL (s3://…, gs://…, file://…) to serve instead of a folder. */
  store?: string;
  /** The signing key (outside any served folder); without it the repository is served read-only. */
  privateKey?: string;
  /** `auto`: private when any user or token exists, public otherwise. @default "auto" */
  access: 'public' | 'private' | 'auto';
  /** Also mounted at `/` and `/api`. @default false */
  root: boolean;
  limits: TarballLimits;
  /** A read-only mirror of this upstream, cached in publicDir or store (no privateKey). */
  mirror?: MirrorConfig;
}

const MIRROR_KEYS = ['url', 'repository', 'publicKey', 'maxAge', 'connectTimeout', 'firstByteTimeout'];

function parseMirror(raw: unknown, bad: (setting: string, why: string) => never, at: string): MirrorConfig {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return bad(`${at}.mirror`, 'must be an object: {} mirrors hex.pm, or {"url", "repository", "publicKey"} another upstream');
  const obj = raw as Record<string, unknown>;
  for (const k of Object.keys(obj)) if (!MIRROR_KEYS.includes(k)) bad(`${at}.mirror.${k}`, `is not a known setting (known: ${MIRROR_KEYS.join(', ')})`);
  const str = (k: string): string | undefined => {
    if (obj[k] === undefined) return undefined;
    if (typeof obj[k] !== 'string' || obj[k] === '') bad(`${at}.mirror.${k}`, 'must be a non-empty string');
    return obj[k] as string;
  };
  const seconds = (k: string, dflt: number): number => {
    const v = obj[k] ?? dflt;
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) bad(`${at}.mirror.${k}`, 'must be a number of seconds (0 or more)');
    return v as number;
  };
  const url = str('url');
  const repository = str('repository');
  const publicKey = str('publicKey');
  if (url !== undefined && !/^https?:\/\/[^/]/.test(url)) bad(`${at}.mirror.url`, `must be an http:// or https:// URL, got ${JSON.stringify(url)}`);
  if (repository !== undefined && !REPO_NAME_RE.test(repository)) bad(`${at}.mirror.repository`, 'must be the repository name the upstream signs (e.g. "hexpm")');
  if (url !== undefined && url.replace(/\/+$/, '') !== 'https://repo.hex.pm' && publicKey === undefined)
    bad(`${at}.mirror.publicKey`, `is required for the upstream ${url}: give its public_key (PEM text or a path); only hex.pm's key is built in`);
  return {
    ...(url !== undefined ? { url } : {}),
    ...(repository !== undefined ? { repository } : {}),
    ...(publicKey !== undefined ? { publicKey } : {}),
    maxAge: seconds('maxAge', 60),
    connectTimeout: seconds('connectTimeout', 10),
    firstByteTimeout: seconds('firstByteTimeout', 15),
  };
}

/** The host form of hexrepo.json: several repositories behind one server. */
export interface HostConfig {
  repositories: HostRepositoryConfig[];
  /** Where host state (credentials) lives: a store URL. @default the root repository's store */
  state?: string;
}

/** Keys of the host form besides the server settings (host, port, users, …) the caller reads. */
export const HOST_CONFIG_KEYS = ['repositories', 'state'] as const;

/** True when a project file's JSON is the host form (it lists repositories). */
export function isHostConfig(raw: unknown): boolean {
  return typeof raw === 'object' && raw !== null && !Array.isArray(raw) && 'repositories' in raw;
}

function parseLimits(raw: unknown, bad: (setting: string, why: string) => never, prefix: string): TarballLimits {
  const limits: TarballLimits = { ...DEFAULT_LIMITS };
  if (raw === undefined) return limits;
  if (typeof raw !== 'object' || raw === null) bad(`${prefix}limits`, 'must be an object');
  for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
    if (!(k in limits)) bad(`${prefix}limits.${k}`, `is not a known limit (known: ${Object.keys(limits).join(', ')})`);
    const n = typeof v === 'number' ? v : typeof v === 'string' ? parseSize(v) : null;
    if (n === null || !Number.isInteger(n) || n <= 0) bad(`${prefix}limits.${k}`, 'must be a positive integer or a size such as "8MiB"');
    limits[k as keyof TarballLimits] = n as number;
  }
  return limits;
}

/**
 * Parse the repositories and state of a host config (hexrepo.json's host form, or a serve config
 * file); other keys are left to the caller. Every problem names the setting.
 */
export function parseHostConfig(raw: Record<string, unknown>, source: string): HostConfig {
  const bad = (setting: string, why: string): never => {
    throw new HexrepoError('CONFIG_INVALID', `${source}: "${setting}" ${why}`, { source, setting });
  };
  const list = raw.repositories;
  if (!Array.isArray(list) || list.length === 0) bad('repositories', 'must be a non-empty list of {"name", "publicDir" or "store", "privateKey" or "mirror", "access", "root"}');
  const known = new Set(['name', 'publicDir', 'store', 'privateKey', 'access', 'root', 'limits', 'mirror']);
  const repositories = (list as unknown[]).map((entry, i): HostRepositoryConfig => {
    const at = `repositories[${i}]`;
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) bad(at, 'must be an object');
    const obj = entry as Record<string, unknown>;
    for (const k of Object.keys(obj)) if (!known.has(k)) bad(`${at}.${k}`, `is not a known setting (known: ${[...known].join(', ')})`);
    if (typeof obj.name !== 'string') bad(`${at}.name`, 'must be a string');
    // A mirror of hex.pm may take hex.pm's name: clients reach it as "hexpm" (HEX_MIRROR, HEX_CDN).
    if (!(obj.mirror !== undefined && obj.name === 'hexpm')) assertRepoName(obj.name as string, `${source}: "${at}.name"`);
    const mirror = obj.mirror === undefined ? undefined : parseMirror(obj.mirror, bad, at);
    if (mirror && obj.privateKey !== undefined) bad(`${at}.privateKey`, `cannot be used with "mirror": a mirror serves its upstream's files as signed upstream and is read-only`);
    const str = (k: string): string | undefined => {
      const v = obj[k];
      if (v === undefined) return undefined;
      if (typeof v !== 'string' || v === '') bad(`${at}.${k}`, 'must be a non-empty string');
      return v as string;
    };
    const publicDir = str('publicDir');
    const store = str('store');
    const privateKey = str('privateKey');
    if ((publicDir === undefined) === (store === undefined)) bad(at, `must name exactly one of "publicDir" (a folder) and "store" (a store URL) for ${obj.name as string}${mirror ? ': where the mirror keeps what it fetched' : ''}`);
    const access = obj.access ?? 'auto';
    if (access !== 'public' && access !== 'private' && access !== 'auto') bad(`${at}.access`, `must be "private" or "public", got ${JSON.stringify(access)}`);
    if (obj.root !== undefined && typeof obj.root !== 'boolean') bad(`${at}.root`, 'must be true or false');
    return {
      name: obj.name as string,
      ...(publicDir !== undefined ? { publicDir } : {}),
      ...(store !== undefined ? { store } : {}),
      ...(privateKey !== undefined ? { privateKey } : {}),
      access: access as HostRepositoryConfig['access'],
      root: obj.root === true,
      limits: parseLimits(obj.limits, bad, `${at}.`),
      ...(mirror ? { mirror } : {}),
    };
  });
  const names = new Set<string>();
  for (const r of repositories) {
    if (names.has(r.name)) bad('repositories', `lists ${r.name} twice; give each repository its own name`);
    names.add(r.name);
  }
  const roots = repositories.filter((r) => r.root).map((r) => r.name);
  if (roots.length > 1) bad('repositories', `mounts ${roots.join(' and ')} at /; only one repository can be the root`);
  if (raw.state !== undefined && (typeof raw.state !== 'string' || raw.state === '')) bad('state', 'must be a store URL');
  return { repositories, ...(typeof raw.state === 'string' ? { state: raw.state } : {}) };
}
