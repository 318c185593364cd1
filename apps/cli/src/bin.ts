#!/usr/bin/env node
import cluster from 'node:cluster';
import { main } from './main.js';

// Builds read and write thousands of small files at once; libuv's default of 4 threads for file
// I/O is the bottleneck there. Must be set before the first file operation.
process.env.UV_THREADPOOL_SIZE ??= '16';

const code = await main(process.argv.slice(2), {
  out: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text),
  errIsTTY: process.stderr.isTTY === true,
  env: process.env,
  // `pnpm hexrepo …` runs in the workspace root; INIT_CWD is where the user typed it.
  cwd: process.env.npm_lifecycle_event === 'hexrepo' && process.env.INIT_CWD ? process.env.INIT_CWD : process.cwd(),
});
process.exitCode = code;
// A worker of "hexrepo serve" stays connected to its primary, which would keep it alive: leave.
if (cluster.isWorker) process.exit(code);
