#!/usr/bin/env node
// The README's "main job" command: set up on a fresh machine with Node, then create a demo
// repository on the embedded default storage (the local file system) in .hexrepo-demo/: init,
// add the real fixture tarballs (made by mix and rebar3), build incrementally, verify, and show
// what a client needs. Run it again to see the incremental path (nothing re-read or re-signed).
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { ensurePnpm, installAndBuild, log, ROOT } from './lib/bootstrap.mjs';

installAndBuild(ensurePnpm());
const demo = join(ROOT, '.hexrepo-demo');
const cli = (args) => {
  log(`hexrepo ${args.join(' ')}`);
  const res = spawnSync(process.execPath, [join(ROOT, 'apps/cli/dist/bin.js'), ...args], { cwd: ROOT, stdio: 'inherit' });
  if (res.status !== 0) process.exit(res.status ?? 1);
};

if (!existsSync(join(demo, 'hexrepo.json'))) cli(['init', demo, '--name', 'demo']);
const fixtures = join(ROOT, 'test-fixtures/tarballs');
for (const file of readdirSync(fixtures).filter((f) => f.endsWith('.tar'))) {
  const target = join(demo, 'public/tarballs', file);
  if (!existsSync(target)) copyFileSync(join(fixtures, file), target);
}
cli(['build', demo]);
cli(['verify', demo]);
log(`done: the demo repository "demo" is in ${join(demo, 'public')} (key in ${join(demo, 'private_key.pem')}).`);
log('run this command again to see an incremental no-change rebuild.');
log(`serve it: pnpm hexrepo serve ${demo} (then e.g. curl -sI http://127.0.0.1:4000/packages/foo)`);
