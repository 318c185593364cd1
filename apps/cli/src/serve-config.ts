/**
 * `hexrepo serve` settings, from (strongest first) flags, environment, a JSON config file, and the
 * project's hexrepo.json. The environment names of the Hex self-hosting guide (PORT, AUTH_USERNAME,
 * AUTH_PASSWORD, PUBLIC_DIR) work as they do there; the rest are HEXREPO_*.
 */
import { mkdir, readFile, stat } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { HexrepoError, assertRepoName, isHostConfig, parseHostConfig, PROJECT_FILE, type MirrorConfig } from '@hexrepo/core';
import { LOG_LEVELS, type BasicUser, type LogLevel } from '@hexrepo/http';
import { hostStateLocation, type StateLocation } from './credentials.js';
import { defaultHostStateDir, defaultTokensPath, isInside, storeTokensPath, readProject, resolvePublicDir } from './project.js';

export interface ServeConfig {
  host: string;
  port: number;
  /** The folder to serve; undefined when serving a store. */
  publicDir: string | undefined;
  /**
   * The store to serve instead of a folder (`--store`, HEXREPO_STORE, config "store"): its URL, the
   * folder a plain path in it is relative to, and where local state (build cache) goes.
   */
  store: { url: string; cwd: string; stateBase: string } | undefined;
  /**
   * The host's state store (tokens, users): `--state`, HEXREPO_STATE or config "state"; else the
   * served store (one repository in a store), or a host's root repository's store; else the folder
   * .hexrepo/state/ beside the public folder (of a host: in the folder of its config).
   */
  state: StateLocation;
  name: string | undefined;
  /** `auto`: private when any user or token is configured, public otherwise. */
  access: 'public' | 'private' | 'auto';
  users: BasicUser[];
  /** A format-1 token file to migrate into the state store once. */
  tokensFile: string;
  /** The signing key, for the publish API; absent: publishing disabled. */
  privateKey: string | undefined;
  logLevel: LogLevel;
  /** Trust `X-Forwarded-Proto`/`X-Forwarded-Host` from a proxy in front (`--trust-proxy`, HEXREPO_TRUST_PROXY, config "trustProxy"). @default false */
  trustProxy: boolean;
  /** Worker processes sharing the listening socket; 1: one process, no cluster. @default one per core (serve lowers the default to 1 when it publishes) */
  workers: number;
  /**
   * The host form (a config file or hexrepo.json listing "repositories"): every repository of the
   * host, paths resolved. Absent: one repository, from publicDir or store, name and privateKey.
   */
  repositories?: ServedRepository[];
  /** Where each setting came from, for the start-up line and error messages. */
  sources: Record<string, string>;
}

/** One repository of a host, its paths resolved. */
export interface ServedRepository {
  /** Undefined only for a single repository served without a name (read-only). */
  name: string | undefined;
  publicDir?: string;
  store?: { url: string; cwd: string; stateBase: string };
  privateKey?: string;
  /** The key was named explicitly, so it must load; hexrepo.json's default key is optional. */
  keyRequired: boolean;
  access: 'public' | 'private' | 'auto';
  root: boolean;
  /** A mirror of this upstream (publicKey read into PEM text), kept in publicDir or store. */
  mirror?: MirrorConfig;
}

/** A mirror's "publicKey": PEM text as it is, or a path (relative to the config file) read into PEM text. */
async function mirrorKeyText(key: string, fileDir: string, setting: string, hostFile: string): Promise<string> {
  if (key.trimStart().startsWith('-----BEGIN')) return key;
  const path = resolve(fileDir, key);
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    throw new HexrepoError('CONFIG_INVALID', `${hostFile}: "${setting}" names ${path}, which cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`, {
      setting,
      hint: "give the upstream's public key as PEM text or the path of its public_key file",
    });
  }
}

/** The repositories `serve` opens: those of the host form, or the single one as the root repository. */
export function servedRepositories(config: ServeConfig): ServedRepository[] {
  if (config.repositories) return config.repositories;
  return [
    {
      name: config.name,
      ...(config.publicDir !== undefined ? { publicDir: config.publicDir } : {}),
      ...(config.store ? { store: config.store } : {}),
      ...(config.privateKey ? { privateKey: config.privateKey } : {}),
      keyRequired: config.sources.privateKey !== 'default',
      access: config.access,
      root: true,
    },
  ];
}

/** The settings a config file may hold. */
export const CONFIG_KEYS = ['host', 'port', 'publicDir', 'store', 'name', 'access', 'users', 'tokensFile', 'privateKey', 'logLevel', 'repositories', 'state', 'workers', 'trustProxy'] as const;

/** Settings of one repository: in the host form they belong to each entry of "repositories". */
const PER_REPOSITORY = [
  ['publicDir', 'public-dir', ['PUBLIC_DIR', 'HEXREPO_PUBLIC_DIR']],
  ['store', 'store', ['HEXREPO_STORE']],
  ['name', 'name', ['HEXREPO_NAME']],
  ['privateKey', 'private-key', ['HEXREPO_PRIVATE_KEY']],
  ['access', 'access', ['HEXREPO_ACCESS']],
] as const;

export const SERVE_ENV = {
  PORT: 'port (also HEXREPO_PORT)',
  PUBLIC_DIR: 'public folder (also HEXREPO_PUBLIC_DIR)',
  HEXREPO_STORE: 'store URL to serve instead of a folder (s3://…, file://…)',
  HEXREPO_STATE: "store URL for the host's tokens and users",
  AUTH_USERNAME: 'Basic-auth user name (with AUTH_PASSWORD)',
  AUTH_PASSWORD: 'Basic-auth password',
  HEXREPO_HOST: 'address to listen on',
  HEXREPO_NAME: 'repository name',
  HEXREPO_ACCESS: 'private or public',
  HEXREPO_TOKENS: 'format-1 token file to migrate',
  HEXREPO_PRIVATE_KEY: 'signing key file, for the publish API',
  HEXREPO_LOG_LEVEL: `log level (${LOG_LEVELS.join(', ')})`,
  HEXREPO_TRUST_PROXY: 'true: trust X-Forwarded-Proto and X-Forwarded-Host from the proxy in front',
  HEXREPO_WORKERS: 'worker processes (default: one per core when read-only, 1 with the publish API)',
  HEXREPO_CONFIG: 'config file',
} as const;

/** More workers than this is a typo, not a machine. */
const MAX_WORKERS = 256;

function bad(setting: string, source: string, why: string): never {
  throw new HexrepoError('CONFIG_INVALID', `${setting} (from ${source}) ${why}`, { setting, source, hint: 'run "hexrepo serve --help" for every setting and its sources' });
}

async function readConfigFile(path: string): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new HexrepoError('CONFIG_INVALID', `cannot read the config file ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { setting: 'config' });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new HexrepoError('CONFIG_INVALID', `the config file ${path} is not valid JSON: ${(err as Error).message}`, { setting: 'config' });
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) bad('config', path, 'must hold a JSON object');
  for (const key of Object.keys(json)) if (!(CONFIG_KEYS as readonly string[]).includes(key)) bad(key, path, `is not a known setting (known: ${CONFIG_KEYS.join(', ')})`);
  return json as Record<string, unknown>;
}

export async function resolveServeConfig(args: { values: Record<string, unknown>; positional: string | undefined; env: Readonly<Record<string, string | undefined>>; cwd: string }): Promise<ServeConfig> {
  const { values, env, cwd } = args;
  const sources: Record<string, string> = {};
  const flag = (k: string): string | boolean | undefined => (typeof values[k] === 'string' || values[k] === true ? (values[k] as string | true) : undefined);
  const envOf = (...names: string[]): [string, string] | undefined => {
    for (const n of names) if (env[n] !== undefined && env[n] !== '') return [env[n]!, n];
    return undefined;
  };

  const configFlag = typeof values.config === 'string' ? values.config : undefined;
  const configEnv = envOf('HEXREPO_CONFIG');
  let configPath = configFlag ? resolve(cwd, configFlag) : configEnv ? resolve(cwd, configEnv[0]) : undefined;
  let file = configPath ? await readConfigFile(configPath) : {};
  // Without a config file, a hexrepo.json in the host form (DIR's or the current folder's) is one.
  if (!configPath) {
    const projectFile = join(args.positional !== undefined ? resolve(cwd, args.positional) : cwd, PROJECT_FILE);
    const raw = await readFile(projectFile, 'utf8').then(
      (t) => JSON.parse(t) as unknown,
      () => null,
    );
    if (isHostConfig(raw)) {
      configPath = projectFile;
      file = await readConfigFile(projectFile);
    }
  }
  const fileDir = configPath ? dirname(configPath) : cwd;

  /** The first of flag, env names, config-file key; with its source. */
  const pick = (setting: string, flagName: string | undefined, envNames: string[], key: string): [unknown, string] | undefined => {
    const f = flagName ? flag(flagName) : undefined;
    if (f !== undefined) return [f, `--${flagName}`];
    const e = envOf(...envNames);
    if (e) return [e[0], e[1]];
    if (file[key] !== undefined) return [file[key], `${configPath} "${key}"`];
    void setting;
    return undefined;
  };
  const record = <T>(setting: string, found: [unknown, string] | undefined, dflt: T, parse: (v: unknown, source: string) => T): T => {
    if (!found) {
      sources[setting] = 'default';
      return dflt;
    }
    sources[setting] = found[1];
    return parse(found[0], found[1]);
  };

  let repositories: ServedRepository[] | undefined;
  if (file.repositories !== undefined) {
    const hostFile = configPath!;
    for (const [key, flagName, envNames] of PER_REPOSITORY) {
      const found = pick(key, flagName, [...envNames], key);
      if (!found) continue;
      const fromEnv = (envNames as readonly string[]).includes(found[1]);
      throw new HexrepoError('CONFIG_INVALID', `${key} (from ${found[1]}) cannot be used with the host config ${hostFile}: each repository there has its own`, {
        setting: key,
        source: found[1],
        hint: fromEnv ? `unset ${found[1]}${found[1] === 'PUBLIC_DIR' ? ' (the Docker image sets PUBLIC_DIR; pass -e PUBLIC_DIR= to clear it)' : ''}` : `set it on the repository's entry in ${hostFile} instead`,
      });
    }
    const host = parseHostConfig(file, hostFile);
    repositories = [];
    for (const r of host.repositories) {
      const served: ServedRepository = { name: r.name, keyRequired: true, access: r.access, root: r.root };
      if (r.privateKey !== undefined) served.privateKey = resolve(fileDir, r.privateKey);
      if (r.mirror) served.mirror = r.mirror.publicKey === undefined ? r.mirror : { ...r.mirror, publicKey: await mirrorKeyText(r.mirror.publicKey, fileDir, `repositories.${r.name}.mirror.publicKey`, hostFile) };
      if (r.store !== undefined) served.store = { url: r.store, cwd: fileDir, stateBase: fileDir };
      else if (r.mirror) {
        // A mirror's folder is only its cache: made on first start, filled on demand.
        served.publicDir = resolve(fileDir, r.publicDir!);
        await mkdir(served.publicDir, { recursive: true });
      } else {
        const dir = resolve(fileDir, r.publicDir!);
        if (!(await stat(dir).catch(() => null))?.isDirectory()) bad(`repositories.${r.name}.publicDir`, hostFile, `${dir} is not a folder; create the repository with "hexrepo repo add ${r.name}"`);
        served.publicDir = dir;
        if (served.privateKey && isInside(served.privateKey, dir)) bad(`repositories.${r.name}.privateKey`, hostFile, `${served.privateKey} is inside the public folder ${dir}; move it out of the served folder`);
      }
      repositories.push(served);
    }
    sources.repositories = hostFile;
  }

  // Public folder: flag, PUBLIC_DIR, config file (relative to it), then the DIR positional / project.
  const publicFound = pick('publicDir', 'public-dir', ['PUBLIC_DIR', 'HEXREPO_PUBLIC_DIR'], 'publicDir');
  // Or a store: flag, HEXREPO_STORE, config file. Never both: which one is served must be clear.
  const storeFound = pick('store', 'store', ['HEXREPO_STORE'], 'store');
  let publicDir: string | undefined;
  let store: ServeConfig['store'];
  let projectName: string | undefined;
  let projectKey: string | undefined;
  let stateBase: string | undefined;
  if (storeFound && publicFound) {
    throw new HexrepoError('CONFIG_INVALID', `store (from ${storeFound[1]}) and publicDir (from ${publicFound[1]}) cannot be used together: serve either a store or a folder`, {
      setting: 'store',
      source: storeFound[1],
      hint: publicFound[1] === 'PUBLIC_DIR' || publicFound[1] === 'HEXREPO_PUBLIC_DIR' ? `unset ${publicFound[1]} (the Docker image sets PUBLIC_DIR; pass -e PUBLIC_DIR= to clear it)` : 'drop one of the two settings',
    });
  }
  if (repositories) {
    stateBase = fileDir;
  } else if (storeFound) {
    if (typeof storeFound[0] !== 'string' || storeFound[0] === '') bad('store', storeFound[1], 'must be a store URL (s3://BUCKET/PREFIX?region=R&endpoint=URL, file:///PATH or a folder path)');
    // Name and key come from hexrepo.json of DIR, or of the current folder; its publicDir is not used.
    const project = args.positional !== undefined ? await readProject(resolve(cwd, args.positional)) : await readProject(cwd);
    if (args.positional !== undefined && !project) bad('store', storeFound[1], `is set, so DIR must be a folder holding hexrepo.json (${args.positional} has none)`);
    projectName = project?.config.name;
    if (project) projectKey = resolve(project.root, project.config.privateKey);
    stateBase = project?.root ?? cwd;
    store = { url: storeFound[0], cwd: storeFound[1].startsWith(configPath ?? '\0') ? fileDir : cwd, stateBase };
    sources.store = storeFound[1];
  } else if (publicFound) {
    if (typeof publicFound[0] !== 'string' || publicFound[0] === '') bad('publicDir', publicFound[1], 'must be a folder path');
    const base = publicFound[1].startsWith(configPath ?? '\0') ? fileDir : cwd;
    ({ publicDir } = await resolvePublicDir('serve', base, publicFound[0]).catch((err: unknown) => {
      throw err instanceof HexrepoError ? new HexrepoError(err.code, `public folder (from ${publicFound[1]}): ${err.message}`, err.details) : err;
    }));
    sources.publicDir = publicFound[1];
  } else {
    const resolved = await resolvePublicDir('serve', cwd, args.positional);
    publicDir = resolved.publicDir;
    projectName = resolved.project?.config.name;
    if (resolved.project) projectKey = resolve(resolved.project.root, resolved.project.config.privateKey);
    sources.publicDir = args.positional ? 'DIR argument' : 'hexrepo.json';
  }

  const host = record('host', pick('host', 'host', ['HEXREPO_HOST'], 'host'), '127.0.0.1', (v, src) => {
    if (typeof v !== 'string' || v === '' || /\s/.test(v)) bad('host', src, 'must be an address such as 127.0.0.1, 0.0.0.0 or ::');
    return v;
  });
  const port = record('port', pick('port', 'port', ['PORT', 'HEXREPO_PORT'], 'port'), 4000, (v, src) => {
    const n = typeof v === 'number' ? v : typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : NaN;
    if (!Number.isInteger(n) || n < 0 || n > 65535) bad('port', src, `must be a port number 0-65535, got ${JSON.stringify(v)}`);
    return n;
  });
  const name = record('name', pick('name', 'name', ['HEXREPO_NAME'], 'name'), projectName, (v, src) => {
    if (typeof v !== 'string') bad('name', src, 'must be a string');
    try {
      assertRepoName(v, 'name');
    } catch (err) {
      bad('name', src, (err as Error).message);
    }
    return v;
  });
  const logLevel = record('logLevel', pick('logLevel', 'log-level', ['HEXREPO_LOG_LEVEL'], 'logLevel'), 'info' as LogLevel, (v, src) => {
    if (!(LOG_LEVELS as readonly unknown[]).includes(v)) bad('logLevel', src, `must be one of ${LOG_LEVELS.join(', ')}, got ${JSON.stringify(v)}`);
    return v as LogLevel;
  });
  const trustProxy = record('trustProxy', pick('trustProxy', 'trust-proxy', ['HEXREPO_TRUST_PROXY'], 'trustProxy'), false, (v, src) => {
    if (v === true || v === 'true' || v === '1') return true;
    if (v === false || v === 'false' || v === '0') return false;
    bad('trustProxy', src, `must be true or false, got ${JSON.stringify(v)}`);
  });
  const workers = record('workers', pick('workers', 'workers', ['HEXREPO_WORKERS'], 'workers'), availableParallelism(), (v, src) => {
    const n = typeof v === 'number' ? v : typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : NaN;
    if (!Number.isInteger(n) || n < 1 || n > MAX_WORKERS) bad('workers', src, `must be a whole number of worker processes, 1-${MAX_WORKERS} (1: a single process), got ${JSON.stringify(v)}`);
    return n;
  });
  const defaultTokens = publicDir !== undefined ? defaultTokensPath(publicDir) : storeTokensPath(stateBase!);
  const tokensFile = record('tokensFile', pick('tokensFile', 'tokens', ['HEXREPO_TOKENS'], 'tokensFile'), defaultTokens, (v, src) => {
    if (typeof v !== 'string' || v === '') bad('tokensFile', src, 'must be a file path');
    return resolve(src.startsWith(configPath ?? '\0') ? fileDir : cwd, v);
  });
  const stateFound = pick('state', 'state', ['HEXREPO_STATE'], 'state');
  if (stateFound && (typeof stateFound[0] !== 'string' || stateFound[0] === '')) bad('state', stateFound[1], 'must be a store URL (s3://BUCKET/PREFIX?region=R, file:///PATH or a folder path)');
  if (stateFound) sources.state = stateFound[1];
  const state: StateLocation = stateFound
    ? { url: stateFound[0] as string, cwd: stateFound[1].startsWith(configPath ?? '\0') ? fileDir : cwd }
    : repositories
      ? hostStateLocation(fileDir, repositories)
      : store
        ? { url: store.url, cwd: store.cwd }
        : { dir: defaultHostStateDir(publicDir!) };
  sources.state ??= 'default';
  const privateKey = record('privateKey', pick('privateKey', 'private-key', ['HEXREPO_PRIVATE_KEY'], 'privateKey'), projectKey, (v, src) => {
    if (typeof v !== 'string' || v === '') bad('privateKey', src, 'must be a file path');
    return resolve(src.startsWith(configPath ?? '\0') ? fileDir : cwd, v);
  });
  if (publicDir !== undefined && privateKey && isInside(privateKey, publicDir)) bad('privateKey', sources.privateKey!, `${privateKey} is inside the public folder ${publicDir}; move it out of the served folder`);
  for (const r of repositories ?? []) {
    if (r.publicDir !== undefined && isInside(tokensFile, r.publicDir)) bad('tokensFile', sources.tokensFile!, `${tokensFile} is inside the public folder ${r.publicDir} of ${r.name}; keep it beside the folder, never in it`);
  }
  if (publicDir !== undefined && isInside(tokensFile, publicDir)) bad('tokensFile', sources.tokensFile!, `${tokensFile} is inside the public folder ${publicDir}; keep it beside the folder, never in it`);

  // Users: AUTH_USERNAME + AUTH_PASSWORD (the guide), or "users" in the config file. Never flags:
  // a password on the command line is visible to every user of the machine.
  const users: BasicUser[] = [];
  const envUser = env.AUTH_USERNAME;
  const envPass = env.AUTH_PASSWORD;
  if ((envUser ? 1 : 0) + (envPass ? 1 : 0) === 1) bad(envUser ? 'AUTH_PASSWORD' : 'AUTH_USERNAME', 'environment', `must be set together with ${envUser ? 'AUTH_USERNAME' : 'AUTH_PASSWORD'}`);
  if (envUser && envPass) {
    users.push({ username: envUser, password: envPass });
    sources.users = 'AUTH_USERNAME/AUTH_PASSWORD';
  } else if (file.users !== undefined) {
    const list = file.users;
    if (!Array.isArray(list)) bad('users', `${configPath}`, 'must be a list of {"username", "password"}');
    for (const [i, u] of list.entries()) {
      const user = u as Record<string, unknown>;
      if (typeof user?.username !== 'string' || user.username === '' || user.username.includes(':') || typeof user.password !== 'string' || user.password.length < 8) {
        bad(`users[${i}]`, `${configPath}`, 'must be {"username": NAME without ":", "password": at least 8 characters}');
      }
      users.push({ username: user.username, password: user.password });
    }
    sources.users = `${configPath} "users"`;
  }

  const access = record('access', pick('access', 'access', ['HEXREPO_ACCESS'], 'access'), 'auto' as 'public' | 'private' | 'auto', (v, src) => {
    if (v !== 'public' && v !== 'private') bad('access', src, `must be "private" (every read needs credentials) or "public" (reads open, writes need credentials), got ${JSON.stringify(v)}`);
    return v;
  });
  return { host, port, publicDir, store, state, name, access, users, tokensFile, privateKey, logLevel, trustProxy, workers, ...(repositories ? { repositories } : {}), sources };
}
