#!/usr/bin/env node
// `pnpm bench [NAME…]`: runs bench/NAME.mjs for each name (all when none given). Each benchmark
// measures hexrepo next to a baseline in the same run and prints a Markdown section for BENCHMARKS.md.
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const here = fileURLToPath(new URL('.', import.meta.url));
const all = readdirSync(here)
  .filter((f) => f.endsWith('.mjs') && f !== 'run.mjs' && !f.startsWith('_'))
  .map((f) => f.slice(0, -4))
  .sort();
// Options are "--name value" or "--name=value" (every benchmark option takes a value) and are passed
// to each benchmark; the other arguments are benchmark names.
const wanted = [];
const options = [];
for (let i = 2; i < process.argv.length; i++) {
  const a = process.argv[i];
  if (!a.startsWith('-')) wanted.push(a);
  else if (a.includes('=') || i + 1 >= process.argv.length || process.argv[i + 1].startsWith('-')) options.push(a);
  else options.push(a, process.argv[++i]);
}
const unknown = wanted.filter((w) => !all.includes(w));
if (unknown.length) {
  console.error(`unknown benchmark(s): ${unknown.join(', ')}; available: ${all.join(', ')}`);
  process.exit(2);
}
let failed = false;
for (const name of wanted.length ? wanted : all) {
  console.error(`\n=== bench ${name} ===`);
  const res = spawnSync(process.execPath, [`${here}${name}.mjs`, ...options], { stdio: 'inherit' });
  if (res.status !== 0) failed = true;
}
process.exit(failed ? 1 : 0);
