/**
 * Where the host's credentials live, for the commands that use them (token, user, serve): the
 * state store. A folder project keeps it in DIR/.hexrepo/state/ (beside the public folder, never in
 * it); a repository in a store keeps it in that store under _hexrepo/host/, unless a `state` URL
 * names another store. Opening them also migrates a format-1 .hexrepo/tokens.json once.
 */
import { mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { HexrepoError } from '@hexrepo/core';
import { defaultHostStateDir, defaultTokensPath, openCredentials, SCOPES, type Grant, type MigrationResult, type Scope, type TokenStore } from '@hexrepo/repo';
import { FsStore, type BlobStore } from '@hexrepo/storage';
import { str, usage, type Io } from './command.js';
import { readProject, resolvePublicDir } from './project.js';
import { openStore } from './stores.js';

/** The state store: a `state` URL, else the repository's own store, else the folder project's .hexrepo/state/. */
export async function openStateStore(where: { state?: { url: string; cwd: string }; repositoryStore?: BlobStore; publicDir?: string }): Promise<BlobStore> {
  if (where.state) return openStore(where.state.url, { cwd: where.state.cwd });
  if (where.repositoryStore) return where.repositoryStore;
  if (where.publicDir === undefined) throw new HexrepoError('CONFIG_INVALID', 'no state store: give a state URL, a store or a public folder');
  const dir = defaultHostStateDir(where.publicDir);
  // Password hashes are in there: readable by the owner only, like the signing key. A server on a
  // read-only volume still starts (with no credentials there is nothing to read); a write says why it failed.
  await mkdir(dir, { recursive: true, mode: 0o700 }).catch(() => undefined);
  return new FsStore(dir);
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
export async function openCommandCredentials(cmd: string, io: Io, positional: string | undefined, values: Record<string, unknown>): Promise<{ tokens: TokenStore; repository: string | undefined }> {
  const stateUrl = str(values, 'state') ?? (io.env.HEXREPO_STATE || undefined);
  const storeUrl = str(values, 'store') ?? (io.env.HEXREPO_STORE || undefined);
  let store: BlobStore;
  let repository = str(values, 'name');
  let legacyFile: string;
  if (stateUrl !== undefined || storeUrl !== undefined) {
    const project = await readProject(positional !== undefined ? resolve(io.cwd, positional) : io.cwd);
    if (positional !== undefined && !project) throw usage(cmd, `with --store or --state, DIR must be a folder holding hexrepo.json (${positional} has none)`);
    repository ??= project?.config.name;
    legacyFile = join(project?.root ?? io.cwd, '.hexrepo', 'tokens.json');
    store = await openStateStore({
      ...(stateUrl !== undefined ? { state: { url: stateUrl, cwd: io.cwd } } : {}),
      ...(storeUrl !== undefined ? { repositoryStore: await openStore(storeUrl, { cwd: io.cwd }) } : {}),
    });
  } else {
    const { publicDir, project } = await resolvePublicDir(cmd, io.cwd, positional);
    repository ??= project?.config.name;
    legacyFile = defaultTokensPath(publicDir);
    store = await openStateStore({ publicDir });
  }
  const tokensFlag = str(values, 'tokens');
  if (tokensFlag !== undefined) legacyFile = resolve(io.cwd, tokensFlag);
  const { tokens, migration } = await openCredentials({ store, legacyFile, ...(repository !== undefined ? { repository } : {}) });
  const note = migrationNote(migration, legacyFile, tokens);
  if (note) io.err(`note: ${note}\n`);
  return { tokens, repository };
}

/** Grants from --repo (repeatable; '*' for every repository; default: the project's), --scope and --package. */
export function grantsFromFlags(cmd: string, values: Record<string, unknown>, defaultRepository: string | undefined): Grant[] {
  const repos = (values.repo as string[] | undefined) ?? (defaultRepository !== undefined ? [defaultRepository] : []);
  if (repos.length === 0) throw usage(cmd, 'pass --repo NAME (repeatable; "*" for every repository of the host), or run it where hexrepo.json is');
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
