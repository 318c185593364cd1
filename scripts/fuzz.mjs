#!/usr/bin/env node
// The long fuzz run: the same properties as the CI run (packages/*/test/fuzz-*.test.ts, whose
// shared settings are in test-support/fuzz.ts), with many more inputs, one seed for replay, and a
// hard stop so a hanging input ends the run instead of stalling it.
//
//   pnpm fuzz -- --minutes 10            about ten minutes over all targets, then stop
//   pnpm fuzz -- --runs 100000           100000 inputs per property
//   pnpm fuzz -- --runs 1000 --only http,etf --seed 42
//   pnpm fuzz -- --seed S --path P --only T   replay one failure fast-check reported
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const TARGETS = {
  tarball: 'packages/tarball/test/fuzz-tarball.test.ts',
  metadata: 'packages/tarball/test/fuzz-metadata.test.ts',
  etf: 'packages/http/test/fuzz-etf.test.ts',
  http: 'packages/http/test/fuzz-routes.test.ts',
  docs: 'packages/repo/test/fuzz-docs.test.ts',
};
/** Start-up of one test file (imports, fixtures, servers), for the time budget. */
const SETUP_MS_PER_FILE = 10_000;

function usage(message) {
  if (message) process.stderr.write(`fuzz: ${message}\n`);
  process.stderr.write('usage: pnpm fuzz -- (--minutes N | --runs N) [--only TARGET,...] [--seed S] [--path P] [--max-minutes M]\n' + `targets: ${Object.keys(TARGETS).join(', ')}\n`);
  process.exit(message ? 2 : 0);
}

const args = process.argv.slice(2).filter((a) => a !== '--');
const opts = { only: Object.keys(TARGETS) };
for (let i = 0; i < args.length; i++) {
  const flag = args[i];
  const value = args[i + 1];
  if (flag === '--help' || flag === '-h') usage();
  if (value === undefined) usage(`${flag} needs a value`);
  i++;
  if (flag === '--minutes' || flag === '--runs' || flag === '--max-minutes') {
    const n = Number(value);
    if (!(n > 0) || (flag === '--runs' && !Number.isInteger(n))) usage(`${flag} must be a positive number, not ${value}`);
    opts[flag.slice(2)] = n;
  } else if (flag === '--seed') {
    if (!/^-?\d+$/.test(value)) usage(`--seed must be an integer, not ${value}`);
    opts.seed = Number(value);
  } else if (flag === '--path') opts.path = value;
  else if (flag === '--only') {
    opts.only = value.split(',').filter(Boolean);
    for (const t of opts.only) if (!(t in TARGETS)) usage(`unknown target ${t}`);
  } else usage(`unknown option ${flag}`);
}
if ((opts.minutes === undefined) === (opts.runs === undefined)) usage('give either --minutes or --runs');

const files = opts.only.map((t) => TARGETS[t]);
// One property per `await fuzz(…)` call: the budget is shared out between them.
const properties = files.reduce((n, f) => n + (readFileSync(new URL(f, new URL('../', import.meta.url)), 'utf8').match(/await fuzz\(/g) ?? []).length, 0);
const seed = opts.seed ?? (Math.random() * 2 ** 31) | 0;
const env = { ...process.env, HEXREPO_FUZZ_SEED: String(seed) };
if (opts.path) env.HEXREPO_FUZZ_PATH = opts.path;
let deadlineMs;
if (opts.minutes !== undefined) {
  const perProperty = Math.max(1000, Math.floor((opts.minutes * 60_000 - files.length * SETUP_MS_PER_FILE) / properties));
  env.HEXREPO_FUZZ_MS = String(perProperty);
  deadlineMs = opts.minutes * 60_000 + 2 * 60_000;
  process.stdout.write(`[fuzz] ${properties} properties in ${files.length} files, ${Math.round(perProperty / 1000)} s each, seed ${seed}\n`);
} else {
  env.HEXREPO_FUZZ_RUNS = String(opts.runs);
  deadlineMs = (opts['max-minutes'] ?? 240) * 60_000;
  process.stdout.write(`[fuzz] ${properties} properties in ${files.length} files, ${opts.runs} runs each, seed ${seed}\n`);
}
const replay = `pnpm fuzz -- ${opts.minutes !== undefined ? `--minutes ${opts.minutes}` : `--runs ${opts.runs}`} --only ${opts.only.join(',')} --seed ${seed}`;
process.stdout.write(`[fuzz] replay with: ${replay}\n`);

// One file after the other, so the run takes about the time asked for and each gets a whole core.
const started = Date.now();
const child = spawn(process.execPath, [fileURLToPath(new URL('../node_modules/vitest/vitest.mjs', import.meta.url)), 'run', '--no-file-parallelism', '--reporter=verbose', ...files], {
  cwd: ROOT,
  env,
  stdio: 'inherit',
  detached: true,
});
let hung = false;
const watchdog = setTimeout(() => {
  hung = true;
  process.stderr.write(`[fuzz] no result after ${Math.round(deadlineMs / 60_000)} minutes: an input hangs or the run is far slower than planned; stopping\n`);
  process.kill(-child.pid, 'SIGKILL');
}, deadlineMs);
child.on('exit', (code, signal) => {
  clearTimeout(watchdog);
  const minutes = ((Date.now() - started) / 60_000).toFixed(1);
  if (hung) {
    process.stderr.write(`[fuzz] stopped after ${minutes} min; replay with: ${replay}\n`);
    process.exit(3);
  }
  if (code === 0) process.stdout.write(`[fuzz] all properties held for ${minutes} min (seed ${seed})\n`);
  else process.stderr.write(`[fuzz] a property failed after ${minutes} min (${signal ?? `exit ${code}`}); fast-check printed the seed and path above — replay with: pnpm fuzz -- --runs 1 --only TARGET --seed SEED --path PATH\n`);
  process.exit(code ?? 1);
});
