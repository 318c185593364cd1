import { existsSync, unwatchFile, watchFile } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Access, createLogger, createRepositoryHandler, listen } from '@hexrepo/http';
import { formatError, HexrepoError } from '@hexrepo/core';
import { openRepository, type RepoService, TokenStore } from '@hexrepo/repo';
import { CachedStore, FsStore } from '@hexrepo/storage';
import { isServeWorker, joinPrimary, startWorkers, workerHandler, workerId, WorkerMetrics } from '../cluster.js';
import type { Command } from '../command.js';
import { defaultCachePath, loadSigningKey, storeCachePath } from '../project.js';
import { CONFIG_KEYS, resolveServeConfig, SERVE_ENV } from '../serve-config.js';
import { loadStoreSigningKey, openStore } from '../stores.js';

/** Files in the public folder's top level that look like a private key (never served; warned about). */
async function strayKeys(publicDir: string): Promise<string[]> {
  const entries = await readdir(publicDir).catch(() => []);
  return entries.filter((f) => /\.(pem|key)$/i.test(f) || /private/i.test(f)).map((f) => join(publicDir, f));
}

/** SIGTERM/SIGINT: how long requests in flight and pending registry writes may take. */
const SHUTDOWN_GRACE_MS = 10_000;

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
the Hex self-hosting guide: clients put user:password in the repository URL, or use ~/.netrc),
and tokens from "hexrepo token create" (Mix --auth-key, rebar3 repo_key, "Bearer TOKEN", or Basic
with the token as password). Failed attempts are rate-limited per client address (10 a minute).

With the repository's private key (--private-key, or the one hexrepo.json names) it also serves
the publish API under /api, so HEX_API_URL=URL/api HEX_API_KEY=TOKEN mix hex.publish works, as do
mix hex.retire, mix hex.publish --revert, docs uploads and rebar3_hex (tokens need the write
scope). Retirements and publish times are kept in _hexrepo/releases/ and survive "hexrepo build".
See docs/publish.md.

Also serves /health (JSON) and /metrics (Prometheus). Logs one JSON line per request on stdout
(pino; credentials never logged). SIGTERM or SIGINT: stop accepting, let requests in flight
and pending registry writes finish (up to 10 s in all), exit 0. At start, temp files and locks
left in the folder by a process that died are removed.

Workers: one process per core by default, sharing the port, each with its own read cache. A
publish through one is served by all within a second; a token created or revoked is seen by all
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
                       --private-key, and the build cache and tokens stay in DIR/.hexrepo/
  --port N             env PORT or HEXREPO_PORT (default 4000; 0 picks a free port)
  --host ADDR          env HEXREPO_HOST (default 127.0.0.1; 0.0.0.0 to listen on every interface)
  --name NAME          env HEXREPO_NAME: the repository name, shown by /health (default: hexrepo.json)
  --access MODE        env HEXREPO_ACCESS: private or public (default: see above)
  --tokens FILE        env HEXREPO_TOKENS: the token file (default: .hexrepo/tokens.json beside
                       the public folder)
  --private-key FILE   env HEXREPO_PRIVATE_KEY: the signing key, enables the publish API
                       (default: the key hexrepo.json names, when it exists; never inside PUBLIC)
  --log-level LEVEL    env HEXREPO_LOG_LEVEL: fatal, error, warn, info, debug, trace, silent
  --workers N          env HEXREPO_WORKERS: worker processes (default: one per core; 1: a single
                       process, no cluster)
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
    port: { type: 'string' },
    host: { type: 'string' },
    name: { type: 'string' },
    access: { type: 'string' },
    tokens: { type: 'string' },
    'private-key': { type: 'string' },
    'log-level': { type: 'string' },
    workers: { type: 'string' },
    config: { type: 'string' },
  },
  async run({ values, positionals }, io) {
    const config = await resolveServeConfig({ values, positional: positionals[0], env: io.env, cwd: io.cwd });
    // With workers, this command runs in the primary and again in each worker. Start-up work that
    // must happen once per server (updating the registry, saving the cache, sweeping leftovers)
    // runs only where !isServeWorker: in the primary, before it forks, or in the single process.
    const clustered = config.workers > 1;
    const logger = clustered ? createLogger({ level: config.logLevel }).child({ worker: workerId() }) : createLogger({ level: config.logLevel });
    const tokens = await TokenStore.open(config.tokensFile);
    const visibility = config.access === 'auto' ? (config.users.length > 0 || tokens.size > 0 ? 'private' : 'public') : config.access;
    const access = new Access({ visibility, users: config.users, tokens });
    // Hot registry files are served from memory, revalidated against the folder every second.
    const inner = config.store ? await openStore(config.store.url, { cwd: config.store.cwd }) : new FsStore(config.publicDir!);
    const store = new CachedStore(inner);
    const where = config.publicDir ?? inner.url;
    // What a killed process left in the folder (temp files, locks) goes before anything is written;
    // once per server (the primary, before it forks).
    if (inner instanceof FsStore && !isServeWorker) {
      const swept = await inner.sweep();
      if (swept.temps.length + swept.locks.length > 0) logger.warn({ temps: swept.temps.length, locks: swept.locks.length, files: [...swept.locks, ...swept.temps].slice(0, 20) }, 'removed temp files and locks left by a process that died');
    }

    // The publish API needs the signing key. The one named by hexrepo.json is optional (a server
    // may only read); one given explicitly must load.
    let service: RepoService | undefined;
    let saveState: (() => Promise<void>) | undefined;
    const keyGiven = config.sources.privateKey !== 'default';
    if (config.privateKey && (keyGiven || existsSync(config.privateKey))) {
      if (!config.name) throw new HexrepoError('CONFIG_INVALID', 'the publish API needs the repository name: pass --name or set HEXREPO_NAME (or run where hexrepo.json is)', { setting: 'name' });
      const privateKey = config.store ? await loadStoreSigningKey(config.privateKey, inner) : await loadSigningKey(config.privateKey, config.publicDir!);
      const cachePath = config.store ? storeCachePath(config.store.stateBase, inner.url) : defaultCachePath(config.publicDir!);
      const opened = await openRepository({ store, repository: config.name, privateKey, cachePath });
      service = opened.service;
      const summary = opened.summary!;
      for (const p of summary.skipped) logger.warn({ file: `tarballs/${p.file}`, code: p.code }, `left out of the registry: ${p.message}`);
      logger.info({ packages: summary.packages, releases: summary.releases, read: summary.read, written: summary.written.length, ms: summary.durationMs }, 'registry up to date; publishing enabled');
      saveState = () => opened.save();
      // In a cluster the primary brought the registry up to date and saved the cache before forking.
      if (!isServeWorker) await saveState();
    } else {
      logger.info('publishing disabled: no private key (pass --private-key to enable the publish API)');
    }

    const metrics = clustered ? new WorkerMetrics() : undefined;
    const handler = createRepositoryHandler({ store, access, repository: config.name ?? 'unnamed', logger, ...(service ? { service } : {}), ...(metrics ? { metrics } : {}) });
    let server: { url: string; close(graceMs?: number): Promise<void> };
    if (clustered && !isServeWorker) {
      // The primary serves nothing: the workers open the service from the cache saved above.
      const started = await startWorkers({ count: config.workers, logger });
      if ('failed' in started) return started.failed;
      server = started;
      service = undefined;
      saveState = undefined;
    } else {
      server = await listen(metrics ? workerHandler(handler, { service, metrics, logger }) : handler, { host: config.host, port: config.port });
    }

    for (const file of config.publicDir !== undefined && !isServeWorker ? await strayKeys(config.publicDir) : []) {
      logger.warn({ file }, 'a file that looks like a private key is inside the public folder; it is never served, but move it out before syncing the folder anywhere');
    }
    if (visibility === 'private' && access.open && !isServeWorker) logger.warn('access is private but no user or token exists yet: every request will be refused; create a token with "hexrepo token create"');
    if (visibility === 'public' && !isServeWorker) logger.info('access is public: anyone who can reach this address can read the repository');
    // Tokens created or revoked while the server runs take effect within two seconds.
    watchFile(config.tokensFile, { interval: 2000 }, (curr, prev) => {
      if (curr.mtimeMs === prev.mtimeMs && curr.size === prev.size && curr.ino === prev.ino) return;
      tokens.reload().then(
        () => logger.info({ tokens: tokens.size }, 'token file reloaded'),
        (err: unknown) => logger.error({ err: (err as Error).message }, 'token file reload failed; keeping the previous tokens'),
      );
    });
    // Last resort only: request handling never throws out of an event handler, but should a bug
    // ever do so, one bad request must not stop the repository for everyone. Writes are atomic
    // (temp file, then rename), so what the failed request left is never half-visible.
    const onUncaught = (err: unknown): void => logger.error({ err: formatError(err) }, 'uncaught error; still serving (please report it)');
    process.on('uncaughtException', onUncaught);
    process.on('unhandledRejection', onUncaught);
    logger.info({ url: server.url, repository: config.name ?? null, publicDir: config.publicDir ?? null, store: config.store ? inner.url : null, access: visibility, users: config.users.length, tokens: tokens.size, workers: config.workers }, 'listening');
    if (!isServeWorker) io.err(`hexrepo serve: ${server.url} (${visibility}; ${where}${clustered ? `; ${config.workers} workers` : ''})\n`);

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
        unwatchFile(config.tokensFile);
        // The whole stop, pending registry writes included, fits in the grace period: a flush that
        // cannot finish (a stuck disk) is abandoned, and the next start rebuilds what it missed.
        const deadline = Date.now() + SHUTDOWN_GRACE_MS;
        let timer: NodeJS.Timeout | undefined;
        const overdue = new Promise<'overdue'>((r) => (timer = setTimeout(() => r('overdue'), SHUTDOWN_GRACE_MS)));
        const finish = server
          .close(SHUTDOWN_GRACE_MS)
          .then(() => service?.flushed())
          .then(() => (Date.now() < deadline ? saveState?.() : undefined))
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
