#!/usr/bin/env node
// `pnpm bench dev`: time from a tarball's close in the watched folder to the updated
// packages/NAME being served by the dev server, over 50 drops into a 2,000-package repository,
// next to what the same run measures for the parts: the registry work of each rebuild (read,
// validate, 3 signatures, 3 atomic writes) and the floor of 3 RSA-2048 signatures.
// Options: --drops N (default 50), --packages N (default 2000).
import { createPrivateKey, sign } from 'node:crypto';
import { existsSync, linkSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { intArg, log, machine, median, percentile, pkgName, requireBuilt, ROOT as root, today } from './_lib.mjs';

const DROPS = intArg('drops', 50);
const PACKAGES = intArg('packages', 2000);
const devDist = join(root, 'apps/dev/dist/index.js');
requireBuilt(devDist);
const { startDevServer } = await import(devDist);
const { createTarball } = await import(join(root, 'packages/tarball/dist/index.js'));

const work = mkdtempSync(join(tmpdir(), 'hexrepo-bench-dev-'));
let dev;
try {
  // A workspace with PACKAGES packages (one release each), built before the clock starts.
  const ws = join(work, 'ws');
  const first = await startDevServer({ dir: ws, port: 0, seed: false });
  await first.close();
  const tarballs = join(ws, 'public/tarballs');
  const corpus = join(tmpdir(), 'hexrepo-bench-corpus-2000x10');
  for (let i = 0; i < PACKAGES; i++) {
    const file = `${pkgName(i)}-1.0.0.tar`;
    if (existsSync(join(corpus, file))) linkSync(join(corpus, file), join(tarballs, file));
    else writeFileSync(join(tarballs, file), createTarball({ name: pkgName(i), version: '1.0.0' }, [{ path: `src/${pkgName(i)}.erl`, contents: Buffer.from(`-module(${pkgName(i)}).\n`) }]).tarball);
  }
  log(`starting the dev server on ${PACKAGES} packages …`);
  const t0 = performance.now();
  dev = await startDevServer({ dir: ws, port: 0, seed: false });
  log(`  initial build ${(performance.now() - t0).toFixed(0)} ms`);
  const rebuildMs = [];
  dev.hub.subscribe((e) => {
    if (e.type === 'rebuild' && !e.initial) rebuildMs.push(e.ms);
  });

  // Tarballs to drop, made before timing: a new version of a different package each time.
  const drops = Array.from({ length: DROPS }, (_, k) => {
    const name = pkgName((k * 37) % PACKAGES);
    const version = `2.${k}.0`;
    const { tarball } = createTarball({ name, version, description: 'dropped' }, [{ path: `src/${name}.erl`, contents: Buffer.from(`-module(${name}).\n`) }]);
    return { name, version, file: `${name}-${version}.tar`, tarball };
  });

  const times = [];
  for (const d of drops) {
    writeFileSync(join(tarballs, d.file), d.tarball); // returns after close(2)
    const closed = performance.now();
    for (;;) {
      const res = await fetch(`${dev.url}/packages/${d.name}`);
      const body = Buffer.from(await res.arrayBuffer());
      // The release's version string appears in the gzip'd payload only once it is in: check by unpacking.
      if (res.status === 200 && (await hasVersion(body, d))) break;
      if (performance.now() - closed > 10_000) throw new Error(`${d.file} not served after 10 s`);
      await new Promise((r) => setTimeout(r, 2));
    }
    times.push(performance.now() - closed);
    await new Promise((r) => setTimeout(r, 20)); // one drop at a time
  }

  // The floor: 3 RSA-2048 signatures over payloads of the real sizes.
  const key = createPrivateKey(readFileSync(join(ws, 'private_key.pem')));
  const versionsSize = statSync(join(ws, 'public/versions')).size;
  const payload = Buffer.alloc(versionsSize * 4, 1);
  const f0 = performance.now();
  for (let i = 0; i < 60; i++) sign('sha512', payload, key);
  const floorMs = ((performance.now() - f0) / 60) * 3;

  const ms = (x) => `${x.toFixed(1)} ms`;
  process.stdout.write(
    [
      `### hexrepo dev — drop to served, ${DROPS} drops into a ${PACKAGES.toLocaleString('en')}-package repository`,
      '',
      `${today()} · ${machine()}`,
      '',
      '| measurement | p50 | p95 | max |',
      '| --- | ---: | ---: | ---: |',
      `| tarball closed in tarballs/ → updated packages/NAME served (polled every 2 ms) | ${ms(percentile(times, 50))} | ${ms(percentile(times, 95))} | ${ms(Math.max(...times))} |`,
      `| of which registry work per rebuild (read, validate, 3 signatures, 3 atomic writes) | ${ms(percentile(rebuildMs, 50))} | ${ms(percentile(rebuildMs, 95))} | ${ms(Math.max(...rebuildMs))} |`,
      `| floor: 3 RSA-2048 signatures | ${ms(floorMs)} | | |`,
      '',
      `The rest of the drop-to-served time is chokidar noticing the file and waiting for it to stay the same size for 40 ms (so a file still being copied is never read half-way), plus the 20 ms debounce that coalesces bursts. Target p95 ≤ 300 ms: ${percentile(times, 95) <= 300 ? 'met' : 'NOT met'}. Median of rebuilds: ${ms(median(rebuildMs))} over ${rebuildMs.length} rebuilds.`,
      '',
    ].join('\n'),
  );
} finally {
  await dev?.close();
  rmSync(work, { recursive: true, force: true });
}

async function hasVersion(body, d) {
  const { gunzipSync } = await import('node:zlib');
  try {
    return gunzipSync(body).includes(Buffer.from(d.version));
  } catch {
    return false;
  }
}
