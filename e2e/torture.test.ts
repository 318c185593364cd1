/**
 * The crash-consistency harness (scripts/torture.mjs), short: real `hexrepo serve` and
 * `hexrepo build` processes killed with SIGKILL at random moments while clients publish, retire and
 * revert; after every restart every acknowledged operation must hold, `hexrepo verify` must pass and
 * no temp or lock file may be left. The long run is `pnpm torture -- --kills 200` (RELIABILITY.md).
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const SCRIPT = fileURLToPath(new URL('../scripts/torture.mjs', import.meta.url));

describe('kill -9 torture (short run)', () => {
  it('10 kills of serve and build: nothing acknowledged lost, verify passes, no temp or lock file left', () => {
    const run = spawnSync(process.execPath, [SCRIPT, '--kills', '10', '--json'], { encoding: 'utf8', timeout: 110_000 });
    const summary = JSON.parse(run.stdout.trim().split('\n').pop() ?? '{}') as {
      ok: boolean;
      kills: number;
      lost: number;
      verifyFailures: number;
      leftovers: number;
      unexpected: number;
      acknowledged: Record<string, number>;
      failures: string[];
      seed: number;
    };
    expect(summary.failures, `seed ${summary.seed}; replay with: node scripts/torture.mjs --seed ${summary.seed} --kills 10`).toEqual([]);
    expect(summary).toMatchObject({ ok: true, kills: 10, lost: 0, verifyFailures: 0, leftovers: 0, unexpected: 0 });
    expect(summary.acknowledged.publish).toBeGreaterThan(0);
    expect(run.status).toBe(0);
  }, 120_000);
});
