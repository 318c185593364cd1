#!/usr/bin/env node
// The README's first command, the main job: set up on a fresh machine with Node (pnpm, the
// workspace, a build), then run the watch-mode dev server as `pnpm dev` does: a repository on the
// embedded default storage (the local file system) in .hexrepo-dev/, served on
// http://127.0.0.1:4000 with live logs, the client set-up lines printed. Arguments go to
// `hexrepo dev` (a folder, --port, --name, --host, --no-seed). Ctrl-C stops it cleanly.
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ensurePnpm, installAndBuildIfStale, log, ROOT } from './lib/bootstrap.mjs';

try {
  installAndBuildIfStale(ensurePnpm());
} catch (err) {
  log(`set-up failed: ${err.message}`);
  process.exit(1);
}
log('starting the dev server (Ctrl-C stops it; "node scripts/demo.mjs" builds and verifies a demo repository instead)');
// In this process, not a child: Ctrl-C reaches one process, which closes the server and the
// watcher and saves its cache before it exits, so nothing is left running.
const { main } = await import(pathToFileURL(join(ROOT, 'apps/cli/dist/main.js')).href);
const code = await main(['dev', ...process.argv.slice(2)], {
  out: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text),
  errIsTTY: process.stderr.isTTY === true,
  env: process.env,
  cwd: process.cwd(),
});
process.exit(code);
