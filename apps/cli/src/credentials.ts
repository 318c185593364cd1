/**
 * Where the host's credentials live, for the commands that use them (token, user, serve): the
 * state store. A folder project keeps it in DIR/.hexrepo/state/ (beside the public folder, never in
 * it); a repository in a store keeps it in that store under _hexrepo/host/, unless a `state` URL
 * names another store. Opening them also migrates a format-1 .hexrepo/tokens.json once.
 */
import { mkdir, readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { isHostConfig, parseHostConfig, PROJECT_FILE, type HostConfig } from '@hexrepo/core';
import { defaultHostStateDir, defaultTokensPath, hostStateDir, openCredentials, SCOPES, type Grant, type MigrationResult, type Scope, type TokenStore } from '@hexrepo/repo';
import { FsStore, type BlobStore } from '@hexrepo/storage';
import { str, usage, type Io } from './command.js';
import { readProject, resolvePublicDir } from './project.js';
import { openStore } from './stores.js';

/**
 * Where the host's state store is: a store URL (relative paths from `cwd`), or a folder (created,
 * readable by its owner only). Plain data, so a config can carry it and every process opens it.
 */
export type StateLocation = { url: string; cwd: string } | { dir: string };

/** Open the state store at `where`. */
export async function openStateStore(where: StateLocation): Promise<BlobStore> {
  if ('url' in where) return openStore(where.url, { cwd: where.cwd });
  // Password hashes are in there: readable by the owner only, like the signing key. A server on a
  // read-only volume still starts (with no credentials there is nothing to read); a write says why it failed.
  await mkdir(where.dir, { recursive: true, mode: 0o700 }).catch(() => undefined);
  return new FsStore(where.dir);
}

/**
 * The default state store of a host whose config is in `dir`: the root repository's store when it
 * is in one (under _hexrepo/host/, never served), else DIR/.hexrepo/state/ (beside the public
 * folders, never in one).
 */
export function hostStateLocation(dir: string, repositories: readonly { root: boolean; store?: { url: string; cwd: string } }[]): StateLocation {
  const root = repositories.find((r) => r.root);
  return root?.store ? { url: root.store.url, cwd: root.store.cwd } : { dir: hostStateDir(dir) };
}

/** The host form of DIR's hexrepo.json, or null when DIR holds none (or the single form). */
async function readHost(dir: string): Promise<{ dir: string; config: HostConfig } | null> {
  const path = join(dir, PROJECT_FILE);
  const raw = await readFile(path, 'utf8').then(
    (t) => JSON.parse(t) as unknown,
    () => null,
  );
  return isHostConfig(raw) ? { dir, config: parseHostConfig(raw as Record<string, unknown>, path) } : null;
}

/** One line about a migration that happened (or was refused), or null when there was none. */
export function migrationNote(m: MigrationResult, legacyFile: string, tokens: TokenStore): string | null {
  if (m.status === 'imported') return `moved ${m.tokens} token(s) from ${legacyFile} to ${tokens.where} (the old file is kept as ${m.renamedTo})`;
  if (m.status === 'skipped') return `${legacyFile} was not imported: ${tokens.where} already holds credentials, so its ${m.tokens} token(s) do not work; recreate them with "hexrepo token create" and remove the file`;
  return null;
}

/**
 * For `hexrepo token` and `hexrepo user`: the credentials of the project DIR (or PUBLIC folder, or
 * ./hexrepo.json), or of `--store URL` / `--state URL` (also HEXREPO_STORE / HEXREPO_STATE), and the
 * project's repository name (the default for --repo).
 */
export async function openCommandCredentials(cmd: string, io: Io, positional: string | undefined, values: Record<string, unknown>): Promise<{ tokens: TokenStore; repository: string | undefined; repositories?: string[] }> {
  const stateUrl = str(values, 'state') ?? (io.env.HEXREPO_STATE || undefined);
  const storeUrl = str(values, 'store') ?? (io.env.HEXREPO_STORE || undefined);
  let store: BlobStore;
  let repository = str(values, 'name');
  let legacyFile: string;
  // A host of several repositories: its state store, and no default for --repo. A format-1 token
  // file there belonged to the single repository the host grew from, its root repository.
  const host = (positional !== undefined ? await readHost(resolve(io.cwd, positional)) : null) ?? (await readHost(io.cwd));
  const hostRoot = host?.config.repositories.find((r) => r.root)?.name;
  let migrateAs: string | undefined;
  if (stateUrl !== undefined || storeUrl !== undefined) {
    const project = host ? null : await readProject(positional !== undefined ? resolve(io.cwd, positional) : io.cwd);
    if (positional !== undefined && !host && !project) throw usage(cmd, `with --store or --state, DIR must be a folder holding hexrepo.json (${positional} has none)`);
    repository ??= project?.config.name;
    migrateAs = repository ?? hostRoot;
    legacyFile = join(host?.dir ?? project?.root ?? io.cwd, '.hexrepo', 'tokens.json');
    store = await openStateStore({ url: (stateUrl ?? storeUrl)!, cwd: io.cwd });
  } else if (host) {
    migrateAs = repository ?? hostRoot;
    legacyFile = join(host.dir, '.hexrepo', 'tokens.json');
    const stores = host.config.repositories.map((r) => ({ root: r.root, ...(r.store !== undefined ? { store: { url: r.store, cwd: host.dir } } : {}) }));
    store = await openStateStore(host.config.state !== undefined ? { url: host.config.state, cwd: host.dir } : hostStateLocation(host.dir, stores));
  } else {
    const { publicDir, project } = await resolvePublicDir(cmd, io.cwd, positional);
    repository ??= project?.config.name;
    migrateAs = repository;
    legacyFile = defaultTokensPath(publicDir);
    store = await openStateStore({ dir: defaultHostStateDir(publicDir) });
  }
  const tokensFlag = str(values, 'tokens');
  if (tokensFlag !== undefined) legacyFile = resolve(io.cwd, tokensFlag);
  const { tokens, migration } = await openCredentials({ store, legacyFile, ...(migrateAs !== undefined ? { repository: migrateAs } : {}) });
  const note = migrationNote(migration, legacyFile, tokens);
  if (note) io.err(`note: ${note}\n`);
  return { tokens, repository, ...(host ? { repositories: host.config.repositories.map((r) => r.name) } : {}) };
}

/**
 * Grants from --repo (repeatable; '*' for every repository; default: the project's), --scope and
 * --package. `known`: the repositories of a host, when it lists them (a name not among them is a typo).
 */
export function grantsFromFlags(cmd: string, values: Record<string, unknown>, defaultRepository: string | undefined, known?: readonly string[]): Grant[] {
  const repos = (values.repo as string[] | undefined) ?? (defaultRepository !== undefined ? [defaultRepository] : []);
  if (repos.length === 0)
    throw usage(cmd, known ? `pass --repo NAME (repeatable; "*" for every repository of the host: ${known.join(', ')})` : 'pass --repo NAME (repeatable; "*" for every repository of the host), or run it where hexrepo.json is');
  for (const r of repos) if (known && r !== '*' && !known.includes(r)) throw usage(cmd, `--repo ${r}: the host has no repository ${r} (it has ${known.join(', ')}; see "hexrepo repo list")`);
  const scopes = (values.scope as string[] | undefined) ?? [];
  if (scopes.length === 0) throw usage(cmd, `pass --scope (${SCOPES.join(', ')}; repeatable)`);
  for (const s of scopes) if (!(SCOPES as readonly string[]).includes(s)) throw usage(cmd, `unknown scope "${s}"; use ${SCOPES.join(', ')}`);
  const packages = (values.package as string[] | undefined) ?? [];
  return repos.map((repository) => ({ repository, scopes: scopes as Scope[], packages }));
}

/** Grants as one short line: `acme:read,write[acme_*] *:read`. */
export function formatGrants(grants: readonly Grant[]): string {
  return grants.map((g) => `${g.repository}:${g.scopes.join(',')}${g.packages.length ? `[${g.packages.join(',')}]` : ''}`).join(' ');
}

/** The options every credentials command takes to find the state store. */
export const STATE_OPTIONS = {
  store: { type: 'string' },
  state: { type: 'string' },
  name: { type: 'string' },
  tokens: { type: 'string' },
} as const;

export const STATE_HELP = `  --store URL         the repository is in this store (env HEXREPO_STORE): credentials are kept
                      in it under _hexrepo/host/ (never served, never deployed)
  --state URL         keep the host's credentials in this store instead (env HEXREPO_STATE), e.g.
                      s3://BUCKET/_state?region=R; default: DIR/.hexrepo/state/ for a folder project
  --name NAME         the repository name (default: hexrepo.json's), for --repo and the migration
  --tokens FILE       a token file of hexrepo before host credentials (format 1) to import once
                      (default: .hexrepo/tokens.json; renamed tokens.json.migrated afterwards)`;

/** `--expires`: `30d`, `12h`, `2w`, or a date (`2027-01-31`, an ISO time); the instant it ends. */
export function parseExpiry(cmd: string, text: string, now = Date.now()): Date {
  const m = /^(\d+)(h|d|w)$/.exec(text);
  if (m) return new Date(now + Number(m[1]) * { h: 3_600_000, d: 86_400_000, w: 604_800_000 }[m[2] as 'h' | 'd' | 'w']);
  const at = /^\d{4}-\d{2}-\d{2}/.test(text) ? Date.parse(text) : NaN;
  if (Number.isNaN(at)) throw usage(cmd, `--expires ${JSON.stringify(text)} is not a duration or a date (examples: 30d, 12h, 2w, 2027-01-31)`);
  if (at <= now) throw usage(cmd, `--expires ${text} is in the past`);
  return new Date(at);
}
