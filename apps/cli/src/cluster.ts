/**
 * `hexrepo serve` on every core: a primary process forks worker processes that share the listening
 * socket (node:cluster; the primary binds it and hands connections out round-robin). Each worker is
 * a complete server with its own read cache, token store and publish service, writing to the same
 * store as the others: the store's conditional writes keep every publish, and the read cache
 * revalidates every second. The primary serves nothing: it starts the workers, restarts one that
 * dies, merges their /metrics, and when stopped asks every worker to finish its requests and waits
 * until all have exited.
 */
import cluster, { type Worker } from 'node:cluster';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Metrics, type Logger } from '@hexrepo/http';
import { NAMES_KEY, VERSIONS_KEY, type RepoService } from '@hexrepo/repo';

/** What flows between the primary and its workers. */
type Message = { hexrepo: 'listening'; url: string } | { hexrepo: 'shutdown' } | { hexrepo: 'metrics?'; id: number } | { hexrepo: 'metrics'; id: number; text: string };

function isMessage(m: unknown): m is Message {
  return typeof m === 'object' && m !== null && typeof (m as { hexrepo?: unknown }).hexrepo === 'string';
}

/** True in a worker process of a clustered `hexrepo serve`. */
export const isServeWorker = cluster.isWorker;

/** The id logs carry: the worker's cluster id, 0 for the primary (or the single process). */
export function workerId(): number {
  return cluster.worker?.id ?? 0;
}

/** How long past its grace period a stopping worker (flushing, saving its cache) may take before it is killed. */
const KILL_AFTER_GRACE_MS = 5_000;
/** A worker that lived this long before dying is restarted at once; quicker deaths back off. */
const HEALTHY_MS = 10_000;
const MAX_BACKOFF_MS = 30_000;

export interface StartedWorkers {
  /** The address every worker listens on. */
  url: string;
  /**
   * Ask every worker to finish its requests in flight (up to `graceMs`) and exit; resolves once all
   * have. A worker still running a few seconds after that is killed.
   */
  close(graceMs?: number): Promise<void>;
}

/**
 * Fork `count` workers (each runs this same command line and serves) and wait until all listen.
 * Returns `{ failed: status }` when a worker exits before the first start completes (it printed its
 * error on stderr): the others are stopped. After the start a worker that dies is replaced, after a
 * backoff when it keeps dying young, with a log line; the primary never exits because of one.
 */
export async function startWorkers(opts: {
  count: number;
  logger: Logger;
  /**
   * Runs after a worker died unexpectedly, before its replacement starts: the place to remove what
   * it left half-written (FsStore.sweep only removes files of dead owners, so the other workers'
   * writes in progress are safe). Its failure is logged; the replacement starts anyway.
   */
  afterWorkerDied?: () => Promise<void>;
  /** Environment added to every worker's (settings the primary decided once, for all of them). */
  env?: Record<string, string>;
}): Promise<StartedWorkers | { failed: number }> {
  const { count, logger } = opts;
  let url: string | undefined;
  let starting = true;
  let closing = false;
  const bornAt = new Map<Worker, number>();
  /** Workers that said they listen: they stop on a message; the others (still starting) on SIGTERM. */
  const announced = new WeakSet<Worker>();
  let youngDeaths = 0;
  let exitedAll: (() => void) | null = null;
  let startFailed: ((status: number) => void) | null = null;
  let listeningCount = 0;
  let allListening: (() => void) | null = null;

  const live = (): Worker[] => Object.values(cluster.workers ?? {}).filter((w): w is Worker => w !== undefined && !w.isDead());

  /** Every worker's own metrics, merged: counters and histograms summed, uptime the longest. */
  let nextMetricsId = 0;
  const pendingMetrics = new Map<number, (text: string) => void>();
  const gatherMetrics = async (): Promise<string> => {
    const texts = await Promise.all(
      live().map(
        (w) =>
          new Promise<string>((resolve) => {
            const id = ++nextMetricsId;
            // A worker that is stopping may not answer: its counters are left out of this scrape.
            const timer = setTimeout(() => {
              pendingMetrics.delete(id);
              resolve('');
            }, 1000);
            pendingMetrics.set(id, (text) => {
              clearTimeout(timer);
              resolve(text);
            });
            if (w.isConnected()) w.send({ hexrepo: 'metrics?', id } satisfies Message);
          }),
      ),
    );
    return mergeMetrics(texts);
  };

  const fork = (): void => {
    const worker = cluster.fork(opts.env);
    bornAt.set(worker, Date.now());
    worker.on('message', (m: unknown) => {
      if (!isMessage(m)) return;
      if (m.hexrepo === 'listening') {
        url ??= m.url;
        announced.add(worker);
        logger.info({ forked: worker.id, pid: worker.process.pid }, starting ? 'worker listening' : 'worker restarted and listening');
        if (starting && ++listeningCount === count) allListening?.();
      } else if (m.hexrepo === 'metrics?') {
        void gatherMetrics().then((text) => {
          if (worker.isConnected()) worker.send({ hexrepo: 'metrics', id: m.id, text } satisfies Message);
        });
      } else if (m.hexrepo === 'metrics') {
        pendingMetrics.get(m.id)?.(m.text);
        pendingMetrics.delete(m.id);
      }
    });
    worker.on('exit', (code, signal) => {
      const lived = Date.now() - (bornAt.get(worker) ?? Date.now());
      bornAt.delete(worker);
      if (closing) {
        if (live().length === 0) exitedAll?.();
        return;
      }
      if (starting) {
        startFailed?.(code ?? 1);
        return;
      }
      youngDeaths = lived >= HEALTHY_MS ? 0 : youngDeaths + 1;
      const delayMs = youngDeaths === 0 ? 0 : Math.min(MAX_BACKOFF_MS, 250 * 2 ** (youngDeaths - 1));
      logger.error({ exited: worker.id, pid: worker.process.pid, code, signal, restartInMs: delayMs }, 'worker exited unexpectedly; starting a new one');
      const cleaned = opts.afterWorkerDied?.().catch((err: unknown) => logger.error({ err: (err as Error).message }, 'could not sweep what the dead worker left; the next start will')) ?? Promise.resolve();
      void cleaned.then(() =>
        setTimeout(() => {
          if (!closing) fork();
        }, delayMs),
      );
    });
  };

  const close = async (graceMs = 10_000): Promise<void> => {
    if (closing) return;
    closing = true;
    const done = new Promise<void>((resolve) => {
      exitedAll = resolve;
      if (live().length === 0) resolve();
    });
    for (const w of live()) {
      if (announced.has(w) && w.isConnected()) w.send({ hexrepo: 'shutdown' } satisfies Message);
      else w.process.kill('SIGTERM');
    }
    const deadline = setTimeout(() => {
      for (const w of live()) {
        logger.warn({ killed: w.id, pid: w.process.pid }, 'worker did not stop in time; killing it');
        w.process.kill('SIGKILL');
      }
    }, graceMs + KILL_AFTER_GRACE_MS);
    await done;
    clearTimeout(deadline);
  };

  const failed = new Promise<number>((resolve) => (startFailed = resolve));
  const listening = new Promise<void>((resolve) => (allListening = resolve));
  for (let i = 0; i < count; i++) fork();
  const outcome = await Promise.race([listening.then(() => null), failed]);
  starting = false;
  if (outcome !== null) {
    logger.error({ workers: count }, 'a worker could not start (its error is above); stopping the others');
    await close();
    return { failed: outcome };
  }
  return { url: url!, close };
}

/**
 * In a worker: tell the primary this worker listens at `url`, and run `stop` when the primary asks
 * every worker to shut down (a signal to the primary). `metrics` answers the primary's scrapes.
 */
export function joinPrimary(opts: { url: string; stop: () => void; metrics: () => string }): void {
  process.on('message', (m: unknown) => {
    if (!isMessage(m)) return;
    if (m.hexrepo === 'shutdown') opts.stop();
    else if (m.hexrepo === 'metrics?') process.send?.({ hexrepo: 'metrics', id: m.id, text: opts.metrics() } satisfies Message);
  });
  process.send?.({ hexrepo: 'listening', url: opts.url } satisfies Message);
}

/**
 * Sum Prometheus text expositions sample by sample (gauges named *uptime* take the largest), keeping
 * each metric family's lines together under its HELP and TYPE lines, as the format requires.
 */
export function mergeMetrics(texts: string[]): string {
  const families = new Map<string, { comments: string[]; series: Map<string, number> }>();
  const familyOf = (name: string): { comments: string[]; series: Map<string, number> } => {
    let f = families.get(name);
    if (!f) {
      f = { comments: [], series: new Map() };
      families.set(name, f);
    }
    return f;
  };
  for (const text of texts) {
    let current = familyOf('');
    for (const line of text.split('\n')) {
      if (line === '') continue;
      const comment = /^# (HELP|TYPE) (\S+)/.exec(line);
      if (comment) {
        current = familyOf(comment[2]!);
        if (!current.comments.includes(line)) current.comments.push(line);
        continue;
      }
      if (line.startsWith('#')) continue;
      const space = line.lastIndexOf(' ');
      const series = line.slice(0, space);
      const value = Number(line.slice(space + 1));
      const previous = current.series.get(series);
      current.series.set(series, previous === undefined ? value : series.includes('uptime') ? Math.max(previous, value) : previous + value);
    }
  }
  const out: string[] = [];
  for (const f of families.values()) out.push(...f.comments, ...[...f.series].map(([series, value]) => `${series} ${value}`));
  return `${out.join('\n')}\n`;
}

/**
 * A worker's metrics: its own counters for the primary to merge, and for one /metrics response the
 * merged counters of every worker (Prometheus scrapes one worker per request, and per-worker counters
 * would look like resets between scrapes).
 */
export class WorkerMetrics extends Metrics {
  #merged: string | null = null;

  /** This worker's counters only. */
  local(): string {
    return super.render();
  }

  /** Render `text` on the next call only (the /metrics handler renders synchronously right after). */
  useOnce(text: string): void {
    this.#merged = text;
  }

  override render(): string {
    const merged = this.#merged;
    this.#merged = null;
    return merged ?? super.render();
  }
}

/**
 * Wrap a worker's request handler: /metrics first fetches every worker's counters through the
 * primary; API requests catch up with the other writers (apiCatchUp).
 */
export function workerHandler(handler: (req: IncomingMessage, res: ServerResponse) => void, opts: { services: readonly RepoService[]; metrics: WorkerMetrics; logger: Logger }): (req: IncomingMessage, res: ServerResponse) => void {
  const { metrics } = opts;
  const api = apiCatchUp(handler, opts);
  const pending = new Map<number, (text: string) => void>();
  let nextId = 0;
  process.on('message', (m: unknown) => {
    if (isMessage(m) && m.hexrepo === 'metrics') {
      pending.get(m.id)?.(m.text);
      pending.delete(m.id);
    }
  });
  const merged = (): Promise<string | null> =>
    new Promise((resolve) => {
      const id = ++nextId;
      // The primary is stopping, or gone: this worker's own counters are better than no answer.
      const timer = setTimeout(() => {
        pending.delete(id);
        resolve(null);
      }, 3000);
      pending.set(id, (text) => {
        clearTimeout(timer);
        resolve(text);
      });
      process.send?.({ hexrepo: 'metrics?', id } satisfies Message);
    });

  return (req, res) => {
    if ((req.url ?? '/') === '/metrics') {
      void merged().then((text) => {
        if (text !== null) metrics.useOnce(text);
        handler(req, res);
      });
      return;
    }
    api(req, res);
  };
}

/**
 * Wrap a request handler so that an API request first brings the publish services up to date when
 * another writer (another worker, or another server on the same store) changed a registry: its
 * names or versions file is not the one this service last wrote or read. A release published
 * through one process can then be shown, retired or reverted through any other at once; registry
 * reads are served from the store and need no such step.
 */
export function apiCatchUp(handler: (req: IncomingMessage, res: ServerResponse) => void, opts: { services: readonly RepoService[]; logger: Logger }): (req: IncomingMessage, res: ServerResponse) => void {
  const { services, logger } = opts;
  if (services.length === 0) return handler;
  // One check at a time; a request that arrives while one runs waits for the next, which starts
  // after it arrived and so sees every change its client could know of (group commit, as writes).
  let running: Promise<void> | null = null;
  let next: Promise<void> | null = null;
  const changedBehindUs = async (service: RepoService): Promise<boolean> => {
    for (const key of [VERSIONS_KEY, NAMES_KEY]) {
      const head = await service.store.head(key);
      if ((head?.etag ?? null) !== (service.cache.outputs.get(key)?.etag ?? null)) return true;
    }
    return false;
  };
  const checkOne = async (service: RepoService): Promise<void> => {
    if (!(await changedBehindUs(service))) return;
    // This process's own flush may be what changed the files (renamed, not yet recorded): let it
    // finish before taking the difference for another writer's, which costs a full resync.
    await service.flushed();
    if (await changedBehindUs(service)) await service.resync();
  };
  const check = async (): Promise<void> => {
    await Promise.all(services.map(checkOne));
  };
  const start = (): Promise<void> => {
    next = null;
    const run = check();
    running = run;
    const clear = (): void => {
      if (running === run) running = null;
    };
    run.then(clear, clear);
    return run;
  };
  const caughtUp = (): Promise<void> => (running ? (next ??= running.then(start, start)) : start());

  return (req, res) => {
    const url = req.url ?? '/';
    // A publish needs no catch-up: its conditional writes find another writer's change and resync
    // then. Checking first would also read this process's own flush in progress as someone else's.
    if ((url === '/api' || url.startsWith('/api/') || url.startsWith('/api?')) && !isPublish(req.method, url)) {
      caughtUp().then(
        () => handler(req, res),
        (err: unknown) => {
          logger.error({ err: (err as Error).message }, 'could not catch up with the other writers; answering from what this process knows');
          handler(req, res);
        },
      );
      return;
    }
    handler(req, res);
  };
}

/** POST /api/publish or POST /api/[repos/R/]packages/NAME/releases. */
function isPublish(method: string | undefined, url: string): boolean {
  if (method !== 'POST') return false;
  const path = url.split('?', 1)[0]!;
  return path.endsWith('/publish') || /\/packages\/[^/]+\/releases$/.test(path);
}
