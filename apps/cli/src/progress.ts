import type { Io } from './command.js';

/**
 * A one-line progress bar on stderr, drawn only on a terminal and only for large jobs, redrawn at
 * most every 100 ms. `done()` clears it.
 */
export function progressBar(io: Io, opts: { minTotal?: number } = {}): { update(label: string, done: number, total: number): void; done(): void } {
  const enabled = io.errIsTTY && !io.env.CI;
  let last = 0;
  let drawn = false;
  return {
    update(label, done, total) {
      if (!enabled || total < (opts.minTotal ?? 500)) return;
      const now = Date.now();
      if (done < total && now - last < 100) return;
      last = now;
      const width = 30;
      const filled = Math.round((done / total) * width);
      io.err(`\r${label.padEnd(6)} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${total}`);
      drawn = true;
    },
    done() {
      if (drawn) io.err('\r\x1b[2K');
      drawn = false;
    },
  };
}
