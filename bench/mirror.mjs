#!/usr/bin/env node
// `pnpm bench mirror`: the hex.pm mirror. EAGER (bench/_mirror-eager.mjs): sync of the whole
// registry from a synthetic upstream at hex.pm's scale. The LAZY part (pull-through time to first
// byte) lives in bench/_mirror-lazy.mjs when present and runs after it.
// Options: --scale F (fraction of hex.pm's 20,000 packages / 150,000 releases; default 1),
//          --concurrency N (sync requests in flight; default 16).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { intArg, machine, requireBuilt, today } from './_lib.mjs';
import { eagerSync } from './_mirror-eager.mjs';

function scaleArg() {
  const eq = process.argv.find((a) => a.startsWith('--scale='));
  const i = process.argv.indexOf('--scale');
  const v = eq ? Number(eq.slice(8)) : i > 0 ? Number(process.argv[i + 1]) : 1;
  if (!(v > 0 && v <= 1)) {
    console.error('--scale needs a number in (0, 1]');
    process.exit(2);
  }
  return v;
}

requireBuilt();
const scale = scaleArg();
const concurrency = intArg('concurrency', 16);
const lines = [`## mirror (${today()})`, '', machine(), '', '### Eager sync of the registry', '', ...(await eagerSync({ scale, concurrency }))];
const lazy = fileURLToPath(new URL('./_mirror-lazy.mjs', import.meta.url));
if (existsSync(lazy)) {
  const { lazyBench } = await import(lazy);
  lines.push('', '### Lazy (pull-through)', '', ...(await lazyBench({ scale })));
}
console.log(lines.join('\n'));
