#!/usr/bin/env node
import { main } from './main.js';

const code = await main(process.argv.slice(2), {
  out: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text),
  errIsTTY: process.stderr.isTTY === true,
  env: process.env,
  // `pnpm hexrepo …` runs in the workspace root; INIT_CWD is where the user typed it.
  cwd: process.env.npm_lifecycle_event === 'hexrepo' && process.env.INIT_CWD ? process.env.INIT_CWD : process.cwd(),
});
process.exitCode = code;
