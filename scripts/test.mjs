#!/usr/bin/env node
// The README's test command: set everything up on a fresh machine with Node, then run every check
// and every test suite. The last line is always "N passed, N failed" (totals over all suites).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureCeph, ensureChromium, ensureErlang, ensurePnpm, installAndBuild, log, ROOT, run } from './lib/bootstrap.mjs';

let passed = 0;
let failed = 0;
const finish = () => {
  process.stdout.write(`${passed} passed, ${failed} failed\n`);
  process.exit(failed > 0 ? 1 : 0);
};

const pnpm = ensurePnpm();
const [cmd, ...pre] = pnpm;
ensureErlang();
ensureChromium();
ensureCeph();
try {
  installAndBuild(pnpm);
} catch (err) {
  log(String(err.message));
  failed++;
  finish();
}

// Static checks count as one test each, so a lint or drift failure shows in the totals.
for (const [label, args] of [
  ['generated protobuf code is up to date', ['run', 'proto', '--check']],
  ['typecheck', ['run', 'typecheck']],
  ['lint', ['run', 'lint']],
  ['formatting (prettier)', ['run', 'format:check']],
]) {
  log(`check: ${label}`);
  if (run(cmd, [...pre, ...args])) passed++;
  else {
    log(`FAILED: ${label}`);
    failed++;
  }
}

const report = join(mkdtempSync(join(tmpdir(), 'hexrepo-vitest-')), 'report.json');
const res = spawnSync(cmd, [...pre, 'exec', 'vitest', 'run', '--reporter=default', '--reporter=json', `--outputFile.json=${report}`], { cwd: ROOT, stdio: 'inherit' });
try {
  const json = JSON.parse(readFileSync(report, 'utf8'));
  passed += json.numPassedTests;
  failed += json.numFailedTests;
  // A suite that fails to load has no failed tests; count it.
  failed += json.testResults.filter((s) => s.status === 'failed' && s.assertionResults.every((a) => a.status !== 'failed')).length;
  if (json.numTotalTests === 0) {
    log('no tests ran');
    failed++;
  }
} catch {
  log(`vitest did not write a report (exit ${res.status})`);
  failed++;
}
finish();
