import { existsSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Access, createHostHandler, createLogger, listen, type HostedRepository } from '@hexrepo/http';
import { formatError } from '@hexrepo/core';
import { listPolicies, OAuthStore, openCredentials, policySetupLine } from '@hexrepo/repo';
import { apiCatchUp, isServeWorker, joinPrimary, startWorkers, workerHandler, workerId, WorkerMetrics } from '../cluster.js';
import type { Command } from '../command.js';
import { migrationNote, openStateStore } from '../credentials.js';
import { openHost, proxyFromEnv } from '../host.js';
import { mirrorSetupLines } from '@hexrepo/mirror';
import { CONFIG_KEYS, resolveServeConfig, servedRepositories, SERVE_ENV, type ServeConfig } from '../serve-config.js';

/** How the primary tells its workers the access it decided for "auto" (internal, not a setting). */
const RESOLVED_ACCESS_ENV = 'HEXREPO_WORKER_ACCESS';

/** Files in the public folder's top level that look like a private key (never served; warned about). */
async function strayKeys(publicDir: string): Promise<string[]> {
  const entries = await readdir(publicDir).catch(() => []);
  return entries.filter((f) => /\.(pem|key)$/i.test(f) || /private/i.test(f)).map((f) => join(publicDir, f));
}

/**
 * Which repository a format-1 token file belonged to: the one served, or the root repository of a
 * host (the single repository the host grew from). None: the file, if there is one, cannot move.
 */
function migrationRepository(config: ServeConfig): { repository?: string } {
  const name = config.repositories ? config.repositories.find((r) => r.root)?.name : config.name;
  return name !== undefined ? { repository: name } : {};
}

/** SIGTERM/SIGINT: how long requests in flight and pending registry writes may take. */
const SHUTDOWN_GRACE_MS = 10_000;

/** How often a server re-reads the host's credentials (a revocation applies everywhere within this plus a request). */
const CREDENTIALS_REFRESH_MS = 2_000;

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

Tokens and users are the host's state, kept in its state store: DIR/.hexrepo/state/ for a folder
(a host's: beside its hexrepo.json), the served store itself (under _hexrepo/host/, never served)
with --store or a host whose root repository is in a store, or the --state store (a host's
"state"). Every server on that store re-reads them every two seconds, so a token created or
revoked through any of them (or with "hexrepo token") applies to all. A token file of an older
hexrepo (.hexrepo/tokens.json) is moved there once, and renamed tokens.json.migrated.

With the repository's private key (--private-key, or the one hexrepo.json names) it also serves
the publish API under /api, so HEX_API_URL=URL/api HEX_API_KEY=TOKEN mix hex.publish works, as do
mix hex.retire, mix hex.publish --revert, docs uploads and rebar3_hex (tokens need the write
scope). Retirements and publish times are kept in _hexrepo/releases/ and survive "hexrepo build".
See docs/publish.md.

Several repositories: when hexrepo.json (of DIR or the current folder) or the config file lists
"repositories" (see "hexrepo repo add"), one server serves each of them under /repos/NAME/ with
its publish API under /api/repos/NAME/, the root one also at / and /api, each with its own store,
key and access; a token granted one repository is refused on the others. Settings of one
repository (--public-dir, --store, --name, --private-key, --access) then belong to each entry.
See docs/serve.md.

Mirrors: an entry with "mirror": {} (hex.pm; or {"url", "repository", "publicKey"} of another
upstream) and a "publicDir" or "store" for its cache serves the upstream's files read-only,
verified and stored verbatim on first request; Mix and rebar3 use it with HEX_MIRROR=URL and
HEX_CDN=URL (printed at start). HTTPS_PROXY, HTTP_PROXY and NO_PROXY apply to its upstream.
See docs/mirror.md.

Web UI: pages for people under /-/ (and / for a browser): the repositories you may read, search,
package pages with the README, docs uploaded with the releases at /docs/NAME/ (sandboxed), login
with the host's users and a page to create and revoke tokens. The search also answers
GET /api/packages?search= (mix hex.package search, rebar3 hex search). See docs/web.md.

Also serves /health (JSON) and /metrics (Prometheus). Logs one JSON line per request on stdout
(pino; credentials never logged). SIGTERM or SIGINT: stop accepting, let requests in flight
and pending registry writes finish (up to 10 s in all), exit 0. At start, temp files and locks
left in the folder by a process that died are removed.

Workers: a read-only server (no signing key) runs one process per core by default, sharing the
port, each with its own read cache; a server with the publish API runs one process unless
--workers asks for more (writers in several processes contend). A publish through one worker is
served by all within a second; a token created or revoked is seen by all
within two. A worker that dies is restarted; SIGTERM/SIGINT to the primary stops them all as
above. Log lines carry "worker" (0: the primary); /metrics sums every worker. --workers 1 serves
from a single process. See docs/serve.md.

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
  --trust-proxy        env HEXREPO_TRUST_PROXY=true: behind a proxy that sets X-Forwarded-Proto and
                       X-Forwarded-Host (and strips them from clients), build links and check
                       forms with the origin browsers use; login cookies get Secure behind TLS
  --workers N          env HEXREPO_WORKERS: worker processes (default: one per core when read-only,
                       1 with the publish API; 1: a single process, no cluster)
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
    'trust-proxy': { type: 'boolean' },
    workers: { type: 'string' },
    config: { type: 'string' },
  },
  async run({ values, positionals }, io) {
    const config = await resolveServeConfig({ values, positional: positionals[0], env: io.env, cwd: io.cwd });
    // With workers, this command runs in the primary and again in each worker. Start-up work that
    // must happen once per server (updating the registry, saving the cache, sweeping leftovers)
    // runs only where !isServeWorker: in the primary, before it forks, or in the single process.
    // Writers on one store contend: each worker's flush must catch up with the others' (a resync)
    // before it can write, and under many concurrent publishes that costs more than it gains. So a
    // server that publishes runs as one process unless --workers asks otherwise; a read-only one
    // (no signing key) uses every core.
    const publishes = servedRepositories(config).some((s) => s.privateKey !== undefined && (s.keyRequired || existsSync(s.privateKey)));
    const workers = config.sources.workers === 'default' && publishes ? 1 : config.workers;
    const clustered = workers > 1;
    const logger = clustered ? createLogger({ level: config.logLevel }).child({ worker: workerId() }) : createLogger({ level: config.logLevel });
    // Tokens and users are the host's, in its state store (never a memory-cached view: another
    // server's change must be seen), opened once per process. A format-1 token file is moved in
    // once per server, before any worker starts.
    const stateStore = await openStateStore(config.state);
    const { tokens, migration } = await openCredentials({ store: stateStore, ...(isServeWorker ? {} : { legacyFile: config.tokensFile }), ...migrationRepository(config) });
    const migrated = migrationNote(migration, config.tokensFile, tokens);
    if (migrated && migration.status === 'imported') logger.info({ credentials: tokens.where }, migrated);
    else if (migrated) logger.warn({ credentials: tokens.where }, migrated);
    // "auto" is decided once per server, by the primary: a worker started later (a replacement after
    // a crash) must not turn private because a token was created meanwhile while the others stay public.
    const decided = isServeWorker ? io.env[RESOLVED_ACCESS_ENV] : undefined;
    const visibility = decided === 'public' || decided === 'private' ? decided : config.access === 'auto' ? (config.users.length > 0 || tokens.size > 0 ? 'private' : 'public') : config.access;
    // OAuth sessions (exchanged keys, device logins) live beside the credentials, in their own object.
    const oauth = await OAuthStore.open(stateStore);
    const access = new Access({ visibility, users: config.users, tokens, oauth });
    const specs = servedRepositories(config);
    // Once per server (in the primary, before it forks, or in the single process): temp files and
    // locks a killed process left are swept, registries brought up to date, build caches saved.
    const opened = await openHost(specs, { logger, visibilityOf: (a) => (a === 'auto' ? visibility : a), startUp: !isServeWorker, proxy: proxyFromEnv(io.env) });
    const services = opened.repositories.flatMap((r) => (r.service ? [r.service] : []));
    const metrics = clustered ? new WorkerMetrics() : undefined;
    const handler = createHostHandler({ repositories: opened.repositories, access, logger, trustProxy: config.trustProxy, ...(metrics ? { metrics } : {}) });
    let server: { url: string; close(graceMs?: number): Promise<void> };
    if (clustered && !isServeWorker) {
      // The primary serves nothing: the workers open the repositories from the caches saved above.
      const started = await startWorkers({ count: workers, logger, afterWorkerDied: () => opened.sweep(), env: { [RESOLVED_ACCESS_ENV]: visibility } });
      if ('failed' in started) return started.failed;
      server = started;
    } else {
      server = await listen(metrics ? workerHandler(handler, { services, metrics, logger }) : apiCatchUp(handler, { services, logger }), { host: config.host, port: config.port });
    }
    // What the primary opened only to bring the registries up to date; its workers write.
    const writes = clustered && !isServeWorker ? null : opened;

    if (!isServeWorker) {
      for (const spec of specs) {
        for (const file of spec.publicDir !== undefined ? await strayKeys(spec.publicDir) : []) {
          logger.warn({ file }, 'a file that looks like a private key is inside the public folder; it is never served, but move it out before syncing the folder anywhere');
        }
      }
      const privateOnes = opened.repositories.filter((r) => r.visibility === 'private');
      if (privateOnes.length > 0 && access.open) logger.warn({ repositories: privateOnes.map((r) => r.name) }, 'access is private but no user or token exists yet: every request will be refused; create a token with "hexrepo token create"');
      for (const r of opened.repositories.filter((x) => x.visibility === 'public')) logger.info(config.repositories ? { repository: r.name } : {}, 'access is public: anyone who can reach this address can read the repository');
    }
    // Tokens and users created or revoked through any server (or the CLI) on the same state store
    // take effect here within two seconds: one read of the credentials' etag per interval, in every
    // process that answers requests (each worker; not a primary, which serves nothing).
    let refreshing = false;
    const refresher =
      clustered && !isServeWorker
        ? undefined
        : setInterval(() => {
            if (refreshing) return;
            refreshing = true;
            // A revoked OAuth session ends on every server within the same bound as a revoked token.
            Promise.all([tokens.refresh(), oauth.refresh()])
              .then(([changed]) => changed)
              .then(
                (changed) => changed && logger.info({ credentials: tokens.where, tokens: tokens.size, users: tokens.users().length }, 'credentials reloaded'),
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
    const workersNote = clustered ? `; ${workers} workers` : '';
    if (config.repositories) {
      logger.info(
        {
          url: server.url,
          repositories: opened.repositories.map((r) => ({ name: r.name, access: r.visibility, where: opened.where.get(r.name), ...(r.root ? { root: true } : {}) })),
          credentials: tokens.where,
          users: config.users.length + tokens.users().length,
          tokens: tokens.list().length,
          workers,
        },
        'listening',
      );
      if (!isServeWorker) {
        const policies = await policyLines(opened.repositories);
        io.err(
          `hexrepo serve: ${server.url}${clustered ? ` (${workers} workers)` : ''}\n${opened.repositories
            .map((r) => {
              const at = `${server.url}${r.root ? '' : `/repos/${r.name}`}`;
              const extra = r.mirror ? mirrorSetupLines(at, r.mirror.upstream) : (policies.get(r.name) ?? []);
              return [`  ${r.name} at ${at} (${r.visibility}; ${opened.where.get(r.name)})`, ...extra.map((l) => `    ${l}`)].join('\n');
            })
            .join('\n')}\n`,
        );
      }
    } else {
      const [only] = opened.repositories;
      logger.info(
        {
          url: server.url,
          repository: config.name ?? null,
          publicDir: config.publicDir ?? null,
          store: config.store ? opened.where.get(only!.name) : null,
          access: only!.visibility,
          credentials: tokens.where,
          users: config.users.length + tokens.users().length,
          tokens: tokens.list().length,
          workers,
        },
        'listening',
      );
      if (!isServeWorker) {
        const policies = (await policyLines(opened.repositories)).get(only!.name) ?? [];
        io.err(`hexrepo serve: ${server.url} (${only!.visibility}; ${opened.where.get(only!.name)}${workersNote})\n${policies.map((l) => `  ${l}\n`).join('')}`);
      }
    }

    let stuck = false;
    await new Promise<void>((resolveStop) => {
      let stopping = false;
      const stop = (signal: string): void => {
        if (stopping) return;
        stopping = true;
        logger.info({ signal }, 'shutting down: finishing requests in flight');
        process.off('SIGTERM', onTerm);
        process.off('SIGINT', onInt);
        process.off('uncaughtException', onUncaught);
        process.off('unhandledRejection', onUncaught);
        clearInterval(refresher);
        // The whole stop, pending registry writes included, fits in the grace period: a flush that
        // cannot finish (a stuck disk) is abandoned, and the next start rebuilds what it missed.
        const deadline = Date.now() + SHUTDOWN_GRACE_MS;
        let timer: NodeJS.Timeout | undefined;
        const overdue = new Promise<'overdue'>((r) => (timer = setTimeout(() => r('overdue'), SHUTDOWN_GRACE_MS)));
        const finish = server
          .close(SHUTDOWN_GRACE_MS)
          .then(() => writes?.flushed())
          .then(() => (Date.now() < deadline ? writes?.save() : undefined))
          .catch((err: unknown) => logger.error({ err: (err as Error).message }, 'shutdown: could not write the registry or save the build cache; the next start repairs both'));
        void Promise.race([finish, overdue])
          .then((how) => {
            if (how !== 'overdue') return;
            logger.error({ graceMs: SHUTDOWN_GRACE_MS }, 'shutdown: pending writes did not finish within the grace period; stopping anyway (the next start repairs the registry)');
            stuck = true;
          })
          .finally(() => {
            clearTimeout(timer);
            resolveStop();
          });
      };
      const onTerm = (): void => stop('SIGTERM');
      const onInt = (): void => stop('SIGINT');
      process.on('SIGTERM', onTerm);
      process.on('SIGINT', onInt);
      // A signal to the primary reaches the workers as this message.
      if (isServeWorker) joinPrimary({ url: server.url, stop: () => stop('primary'), metrics: () => metrics!.local() });
    });
    logger.info('stopped');
    logger.flush();
    // Writes still waiting (on a lock or a stuck disk) must not keep the process alive past the grace.
    if (stuck) setTimeout(() => process.exit(1), 200).unref();
    return stuck ? 1 : 0;
  },
};

/** The dependency policies each repository publishes (none for mirrors), as the lines that turn one on in Mix. */
async function policyLines(repositories: readonly HostedRepository[]): Promise<Map<string, string[]>> {
  return new Map(await Promise.all(repositories.map(async (r) => [r.name, r.mirror ? [] : (await listPolicies(r.store, r.name).catch(() => [])).map((p) => policySetupLine(r.name, p.name))] as const)));
}
