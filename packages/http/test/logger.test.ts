/**
 * LineBatcher, the destination of a server's logs: the lines of one event-loop turn in one write,
 * never a line held past that turn, none lost by flushSync, on a real file.
 */
import { closeSync, openSync, readFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createLogger, LineBatcher } from '../src/index.js';

async function logFile(): Promise<{ path: string; fd: number }> {
  const path = join(await mkdtemp(join(tmpdir(), 'hexrepo-log-')), 'out.log');
  return { path, fd: openSync(path, 'a') };
}

const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('LineBatcher', () => {
  it("writes a turn's lines after the turn, whole and in order, a line longer than a pipe's atomic write included", async () => {
    const { path, fd } = await logFile();
    try {
      const logger = createLogger({ destination: new LineBatcher(fd) });
      const long = 'x'.repeat(10_000);
      for (let i = 0; i < 300; i++) logger.info({ i, ...(i === 150 ? { long } : {}) }, 'request');
      // Nothing yet: the lines of this turn go out together once it ends.
      expect(readFileSync(path, 'utf8')).toBe('');
      await turn();
      const lines = readFileSync(path, 'utf8').split('\n');
      expect(lines.pop()).toBe('');
      expect(lines.map((l) => (JSON.parse(l) as { i: number }).i)).toEqual([...Array(300).keys()]);
      expect((JSON.parse(lines[150]!) as { long: string }).long).toBe(long);
      // The next turn's lines follow.
      logger.warn('later');
      await turn();
      expect(readFileSync(path, 'utf8').trimEnd().split('\n').at(-1)).toContain('"msg":"later"');
    } finally {
      closeSync(fd);
    }
  });

  it('flushSync (the exit hook of the app) and logger.flush write what is pending at once', async () => {
    const { path, fd } = await logFile();
    try {
      const batcher = new LineBatcher(fd);
      const logger = createLogger({ destination: batcher });
      logger.info('one');
      batcher.flushSync();
      expect(readFileSync(path, 'utf8')).toContain('"msg":"one"');
      logger.info('two');
      logger.flush();
      expect(readFileSync(path, 'utf8')).toContain('"msg":"two"');
      await turn();
      expect(readFileSync(path, 'utf8').trimEnd().split('\n')).toHaveLength(2);
    } finally {
      closeSync(fd);
    }
  });
});
