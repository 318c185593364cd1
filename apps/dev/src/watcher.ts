/**
 * Watches `tarballs/` and turns bursts of changes into few rebuilds: changes are collected while a
 * rebuild runs and for a short quiet period, then refreshed together. chokidar's write-finish
 * detection keeps a file that is still being copied from being read half-way.
 */
import { basename } from 'node:path';
import { watch, type FSWatcher } from 'chokidar';

export interface WatchOptions {
  /** Quiet time before a rebuild starts. @default 20 ms */
  debounceMs?: number;
  /** How long a file's size must stay still before it counts as written. @default 40 ms */
  stableMs?: number;
  usePolling?: boolean;
}

export class TarballWatcher {
  readonly #pending = new Set<string>();
  #timer: NodeJS.Timeout | null = null;
  #running: Promise<void> | null = null;
  #watcher: FSWatcher;
  #closed = false;
  readonly ready: Promise<void>;

  constructor(
    dir: string,
    private readonly rebuild: (files: string[]) => Promise<void>,
    private readonly opts: WatchOptions = {},
  ) {
    this.#watcher = watch(dir, {
      ignoreInitial: true,
      depth: 0,
      ignored: (path, stats) => basename(path).startsWith('.') || (stats?.isFile() === true && !path.endsWith('.tar')),
      awaitWriteFinish: { stabilityThreshold: opts.stableMs ?? 40, pollInterval: 10 },
      ...(opts.usePolling ? { usePolling: true, interval: 50 } : {}),
    });
    const onChange = (path: string): void => {
      if (path.endsWith('.tar') && !basename(path).startsWith('.')) this.#queue(basename(path));
    };
    this.#watcher.on('add', onChange).on('change', onChange).on('unlink', onChange);
    this.ready = new Promise((resolve) => this.#watcher.once('ready', () => resolve()));
  }

  #queue(file: string): void {
    this.#pending.add(file);
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = setTimeout(() => this.#drain(), this.opts.debounceMs ?? 20);
  }

  #drain(): void {
    this.#timer = null;
    if (this.#running || this.#pending.size === 0 || this.#closed) return;
    const files = [...this.#pending];
    this.#pending.clear();
    this.#running = this.rebuild(files).finally(() => {
      this.#running = null;
      // Changes that arrived meanwhile form the next batch.
      if (this.#pending.size > 0) this.#drain();
    });
  }

  async close(): Promise<void> {
    this.#closed = true;
    if (this.#timer) clearTimeout(this.#timer);
    await this.#watcher.close();
    await this.#running;
  }
}
