/**
 * Key-to-frame timing on a generated 5,000-package source: the time from writing a key to stdin
 * to the next frame Ink writes. Printed for the record (p50 / max); nothing is asserted about speed.
 */
import { performance } from 'node:perf_hooks';
import { afterAll, expect, it } from 'vitest';
import { cleanup, render } from 'ink-testing-library';
import { App } from '../src/app.js';
import { generated } from './fake.js';

afterAll(() => cleanup());

function stats(ms: number[]): string {
  const sorted = [...ms].sort((a, b) => a - b);
  const p50 = sorted[Math.floor(sorted.length / 2)]!;
  return `n=${sorted.length} p50=${p50.toFixed(2)}ms max=${sorted[sorted.length - 1]!.toFixed(2)}ms`;
}

it('measures key-to-frame times on 5,000 packages (typing a filter, moving the cursor)', async () => {
  const source = generated(5000);
  const app = render(<App source={source} cwd={process.cwd()} rows={24} columns={80} />);
  const out = app.stdout as unknown as { write: (frame: string) => void };
  const original = out.write.bind(out);
  let onFrame: (() => void) | null = null;
  out.write = (frame: string) => {
    original(frame);
    onFrame?.();
  };
  const until = Date.now() + 5000;
  while (!(app.lastFrame() ?? '').includes('(5000 of 5000)')) {
    if (Date.now() > until) throw new Error('the list did not load');
    await new Promise((r) => setTimeout(r, 5));
  }
  const time = async (key: string): Promise<number> => {
    const frame = new Promise<number>((resolve) => (onFrame = () => resolve(performance.now())));
    const t0 = performance.now();
    app.stdin.write(key);
    const t1 = await Promise.race([frame, new Promise<number>((r) => setTimeout(() => r(Number.NaN), 1000))]);
    onFrame = null;
    await new Promise((r) => setImmediate(r));
    return t1 - t0;
  };

  const filter: number[] = [];
  const cursor: number[] = [];
  for (let round = 0; round < 10; round++) {
    for (const ch of 'phoenix_') filter.push(await time(ch));
    for (let i = 0; i < 8; i++) filter.push(await time('\u007F'));
    for (let i = 0; i < 20; i++) cursor.push(await time('\u001B[B'));
    for (let i = 0; i < 20; i++) cursor.push(await time('\u001B[A'));
  }
  for (let i = 0; i < 40; i++) cursor.push(await time('\u001B[6~'));
  const missed = [...filter, ...cursor].filter((t) => Number.isNaN(t)).length;
  console.log(`key-to-frame, 5000 packages, filter keys: ${stats(filter.filter((t) => !Number.isNaN(t)))}`);
  console.log(`key-to-frame, 5000 packages, cursor keys: ${stats(cursor.filter((t) => !Number.isNaN(t)))}`);
  console.log(`keys without a frame within 1 s: ${missed}`);
  expect(app.lastFrame()).toContain('of 5000');
});
