/** The log line format: pino's JSON with an ISO time (formatted once per millisecond, unchanged on the wire). */
import { describe, expect, it } from 'vitest';
import { createLogger } from '../src/index.js';

describe('createLogger', () => {
  it('writes one JSON line per call with the ISO time of the call, level, service, bindings and msg, credentials redacted', () => {
    const lines: string[] = [];
    const logger = createLogger({ destination: { write: (line: string) => void lines.push(line) } }).child({ worker: 1 });
    const before = Date.now();
    for (let i = 0; i < 50; i++) logger.info({ i, token: 'secret' }, 'request');
    const after = Date.now();
    expect(lines).toHaveLength(50);
    for (const [i, line] of lines.entries()) {
      expect(line.endsWith('\n')).toBe(true);
      expect(line).toMatch(/^\{"level":30,"time":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z","service":"hexrepo","worker":1,"i":\d+,"token":"\[redacted\]","msg":"request"\}\n$/);
      const { time, i: n } = JSON.parse(line) as { time: string; i: number };
      expect(n).toBe(i);
      expect(Date.parse(time)).toBeGreaterThanOrEqual(before);
      expect(Date.parse(time)).toBeLessThanOrEqual(after);
    }
  });
});
