import { existsSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Access, createLogger, createRepositoryHandler, listen } from '@hexrepo/http';
import { formatError, HexrepoError } from '@hexrepo/core';
import { fingerprint } from '@hexrepo/registry';
import { loadCache, openCredentials, RepoService, saveCache } from '@hexrepo/repo';
import { CachedStore, FsStore } from '@hexrepo/storage';
import type { Command } from '../command.js';
import { migrationNote, openStateStore } from '../credentials.js';
import { defaultCachePath, loadSigningKey } from '../project.js';
import { CONFIG_KEYS, resolveServeConfig, SERVE_ENV } from '../serve-config.js';
import { loadStoreSigningKey, openStore, storeCachePath } from '../stores.js';

/** How often a server re-reads the host's credentials (a revocation applies everywhere within this plus a request). */
const CREDENTIALS_REFRESH_MS = 2_000;

/** Files in the public folder's top level that look like a private key (never served; warned about). */
async function strayKeys(publicDir: string): Promise<string[]> {
  const entries = await readdir(publicDir).catch(() => []);
  return entries.filter((f) => /\.(pem|key)$/i.test(f) || /private/i.test(f)).map((f) => join(publicDir, f));
}

export const serve: Command = {
  name: 'serve',
  summary: 'Serve the repository over HTTP, with access control, logs and metrics.',
  usage: 'hexrepo serve [DIR|PUBLIC] [--port N] [--host ADDR] [--public-dir DIR] [--config FILE] [options]\n       hexrepo serve [DIR] --store URL [options]',
  help: `
Serves names, versions, packages/NAME, tarballs/NAME-VERSION.tar, docs/NAME-VERSION.tar.gz and
public_key as Mix and rebar3 expect them: a strong ETag on every response, 304 for a matching
If-None-Match, no Content-Encoding on registry files, Cache-Control per resource (tarballs
immutable, indexes 60 s). Only those paths are ever served: a private key or any other file left
in the folder is not reachable, whatever the encoding of the request path.

Access: "private" needs credentials for every read; "public" serves reads to anyone (writes, with
the publish API, always need credentials). By default the repository is private as soon as a user
or a token exists, public otherwise. Credentials: Basic auth (AUTH_USERNAME/AUTH_PASSWORD, as in
the Hex self-hosting guide: clients put user:password in the repository URL, or use ~/.netrc;
or users from "hexrepo user add"), and tokens from "hexrepo token create" (Mix --auth-key, rebar3
repo_key, "Bearer TOKEN", or Basic with the token as password); each stored user and token is
limited to its grants (repositories, scopes, packages). Failed attempts are rate-limited per
client address (10 a minute).

Tokens and users are the host's state, kept in its state store: DIR/.hexrepo/state/ for a folder,
the served store itself (under _hexrepo/host/, never served) with --store, or the --state store.
Every server on that store re-reads them every two seconds, so a token created or revoked through
any of them (or with "hexrepo token") applies to all. A token file of an older hexrepo
(.hexrepo/tokens.json) is moved there once, and renamed tokens.json.migrated.

With the repository's private key (--private-key, or the one hexrepo.json names) it also serves
the publish API under /api, so HEX_API_URL=URL/api HEX_API_KEY=TOKEN mix hex.publish works, as do
mix hex.retire, mix hex.publish --revert, docs uploads and rebar3_hex (tokens need the write
scope). Retirements and publish times are kept in _hexrepo/releases/ and survive "hexrepo build".
See docs/publish.md.

Also serves /health (JSON) and /metrics (Prometheus). Logs one JSON line per request on stdout
(pino; credentials never logged). SIGTERM or SIGINT: stop accepting, let requests in flight
finish (up to 10 s), exit 0.

Options (strongest first: flag, environment, config file, hexrepo.json):
  --public-dir DIR     the folder to serve; env PUBLIC_DIR (default: DIR argument or ./hexrepo.json)
  --store URL          env HEXREPO_STORE: serve the repository in this store instead of a folder
                       (s3://BUCKET/PREFIX?region=R[&endpoint=URL], gs://BUCKET/PREFIX,
                       file:///PATH or a folder path; S3 credentials from the AWS environment,
                       profile or instance role, GCS from Application Default Credentials). Hot
                       files are cached in memory and revalidated every second. Not together with
                       --public-dir/PUBLIC_DIR; DIR (or ./hexrepo.json) then only gives --name and
                       --private-key, and the build cache stays in DIR/.hexrepo/
  --state URL          env HEXREPO_STATE: keep tokens and users in this store (e.g.
                       s3://BUCKET/_state?region=R) instead of the default above
  --port N             env PORT or HEXREPO_PORT (default 4000; 0 picks a free port)
  --host ADDR          env HEXREPO_HOST (default 127.0.0.1; 0.0.0.0 to listen on every interface)
  --name NAME          env HEXREPO_NAME: the repository name, shown by /health (default: hexrepo.json)
  --access MODE        env HEXREPO_ACCESS: private or public (default: see above)
  --tokens FILE        env HEXREPO_TOKENS: a token file of an older hexrepo (format 1) to move
                       into the state store once (default: .hexrepo/tokens.json beside the
                       public folder)
  --private-key FILE   env HEXREPO_PRIVATE_KEY: the signing key, enables the publish API
                       (default: the key hexrepo.json names, when it exists; never inside PUBLIC)
  --log-level LEVEL    env HEXREPO_LOG_LEVEL: fatal, error, warn, info, debug, trace, silent
  --config FILE        env HEXREPO_CONFIG: a JSON file with any of
                       ${CONFIG_KEYS.join(', ')}
                       ("users": [{"username": …, "password": …}]; paths relative to the file)

Environment only (never flags, which other users of the machine can see):
${Object.entries(SERVE_ENV)
  .filter(([k]) => k.startsWith('AUTH'))
  .map(([k, v]) => `  ${k.padEnd(19)}  ${v}`)
  .join('\n')}`,
  options: {
    'public-dir': { type: 'string' },
    store: { type: 'string' },
    state: { type: 'string' },
    port: { type: 'string' },
    host: { type: 'string' },
    name: { type: 'string' },
    access: { type: 'string' },
    tokens: { type: 'string' },
    'private-key': { type: 'string' },
    'log-level': { type: 'string' },
    config: { type: 'string' },
  },
  async run({ values, positionals }, io) {
    const config = await resolveServeConfig({ values, positional: positionals[0], env: io.env, cwd: io.cwd });
    const logger = createLogger({ level: config.logLevel });
    // Hot registry files are served from memory, revalidated against the folder every second.
    const inner = config.store ? await openStore(config.store.url, { cwd: config.store.cwd }) : new FsStore(config.publicDir!);
    const store = new CachedStore(inner);
    // Tokens and users are the host's, in its state store (never the memory-cached view: another
    // server's change must be seen), shared by every server on that store.
    const stateStore = await openStateStore({ ...(config.state ? { state: config.state } : {}), ...(config.store ? { repositoryStore: inner } : { publicDir: config.publicDir! }) });
    const { tokens, migration } = await openCredentials({ store: stateStore, legacyFile: config.tokensFile, ...(config.name ? { repository: config.name } : {}) });
    const migrated = migrationNote(migration, config.tokensFile, tokens);
    if (migrated && migration.status === 'imported') logger.info({ credentials: tokens.where }, migrated);
    else if (migrated) logger.warn({ credentials: tokens.where }, migrated);
    const visibility = config.access === 'auto' ? (config.users.length > 0 || tokens.size > 0 ? 'private' : 'public') : config.access;
    const access = new Access({ repository: config.name ?? 'unnamed', visibility, users: config.users, tokens });
    const where = config.publicDir ?? inner.url;

    // The publish API needs the signing key. The one named by hexrepo.json is optional (a server
    // may only read); one given explicitly must load.
    let service: RepoService | undefined;
    let saveState: (() => Promise<void>) | undefined;
    const keyGiven = config.sources.privateKey !== 'default';
    if (config.privateKey && (keyGiven || existsSync(config.privateKey))) {
      if (!config.name) throw new HexrepoError('CONFIG_INVALID', 'the publish API needs the repository name: pass --name or set HEXREPO_NAME (or run where hexrepo.json is)', { setting: 'name' });
      const privateKey = config.store ? await loadStoreSigningKey(config.privateKey, inner) : await loadSigningKey(config.privateKey, config.publicDir!);
      const cachePath = config.store ? storeCachePath(config.store.stateBase, inner) : defaultCachePath(config.publicDir!);
      const { cache } = await loadCache(cachePath, config.name, fingerprint(privateKey));
      const opened = await RepoService.open({ store, repository: config.name, privateKey, cache });
      service = opened.service;
      const { summary } = opened;
      for (const p of summary.skipped) logger.warn({ file: `tarballs/${p.file}`, code: p.code }, `left out of the registry: ${p.message}`);
      logger.info({ packages: summary.packages, releases: summary.releases, read: summary.read, written: summary.written.length, ms: summary.durationMs }, 'registry up to date; publishing enabled');
      saveState = () => saveCache(cachePath, opened.service.cache);
      await saveState();
    } else {
      logger.info('publishing disabled: no private key (pass --private-key to enable the publish API)');
    }

    const handler = createRepositoryHandler({ store, access, repository: config.name ?? 'unnamed', logger, ...(service ? { service } : {}) });
    const server = await listen(handler, { host: config.host, port: config.port });

    for (const file of config.publicDir !== undefined ? await strayKeys(config.publicDir) : []) {
      logger.warn({ file }, 'a file that looks like a private key is inside the public folder; it is never served, but move it out before syncing the folder anywhere');
    }
    if (visibility === 'private' && access.open) logger.warn('access is private but no user or token exists yet: every request will be refused; create a token with "hexrepo token create"');
    if (visibility === 'public') logger.info('access is public: anyone who can reach this address can read the repository');
    // Tokens and users created or revoked through any server (or the CLI) on the same state store
    // take effect here within two seconds: one HEAD of the credentials object per interval.
    let refreshing = false;
    const refresher = setInterval(() => {
      if (refreshing) return;
      refreshing = true;
      tokens
        .refresh()
        .then(
          (changed) => changed && logger.info({ credentials: tokens.where, size: tokens.size }, 'credentials reloaded'),
          (err: unknown) => logger.error({ err: formatError(err) }, 'credentials reload failed; keeping the previous tokens and users'),
        )
        .finally(() => (refreshing = false));
    }, CREDENTIALS_REFRESH_MS);
    // Last resort only: request handling never throws out of an event handler, but should a bug
    // ever do so, one bad request must not stop the repository for everyone. Writes are atomic
    // (temp file, then rename), so what the failed request left is never half-visible.
    const onUncaught = (err: unknown): void => logger.error({ err: formatError(err) }, 'uncaught error; still serving (please report it)');
    process.on('uncaughtException', onUncaught);
    process.on('unhandledRejection', onUncaught);
    logger.info({ url: server.url, repository: config.name ?? null, publicDir: config.publicDir ?? null, store: config.store ? inner.url : null, credentials: tokens.where, access: visibility, users: config.users.length + tokens.users().length, tokens: tokens.list().length }, 'listening');
    io.err(`hexrepo serve: ${server.url} (${visibility}; ${where})\n`);

    await new Promise<void>((resolveStop) => {
      const stop = (signal: string): void => {
        logger.info({ signal }, 'shutting down: finishing requests in flight');
        process.off('SIGTERM', onTerm);
        process.off('SIGINT', onInt);
        process.off('uncaughtException', onUncaught);
        process.off('unhandledRejection', onUncaught);
        clearInterval(refresher);
        server
          .close(10_000)
          .then(() => service?.flushed())
          .then(() => saveState?.())
          .catch((err: unknown) => logger.error({ err: (err as Error).message }, 'shutdown: could not save the build cache'))
          .finally(resolveStop);
      };
      const onTerm = (): void => stop('SIGTERM');
      const onInt = (): void => stop('SIGINT');
      process.on('SIGTERM', onTerm);
      process.on('SIGINT', onInt);
    });
    logger.info('stopped');
    logger.flush();
    return 0;
  },
};
