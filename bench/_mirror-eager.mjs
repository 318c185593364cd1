// The EAGER part of `pnpm bench mirror`: `hexrepo mirror sync --all` (names, versions and every
// packages/NAME, each verified and stored with its meta) from a synthetic upstream at hex.pm's scale
// (20,000 packages, 150,000 releases at --scale 1) on loopback, into an empty folder store; then the
// same sync again (everything stored and fresh: nothing asked for), and once more with --max-age 0
// (every registry file revalidated with If-None-Match: 304s). Time, requests/s and the sync process's
// peak RSS (VmHWM from /proc, polled). Target: under 2 minutes and 300 MB.
import { spawn } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI, log, peakRssMb } from './_lib.mjs';
import { startSyntheticUpstream } from './_mirror-upstream.mjs';

/** Run the CLI, polling its peak RSS; resolves with seconds, peak MB and the parsed --json summary. */
function timedSync(args) {
  return new Promise((resolve, reject) => {
    const start = performance.now();
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    let peak = 0;
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    const poll = setInterval(() => (peak = Math.max(peak, peakRssMb(child.pid))), 50);
    child.on('close', (code) => {
      clearInterval(poll);
      const seconds = (performance.now() - start) / 1000;
      if (code !== 0) return reject(new Error(`hexrepo ${args.join(' ')} exited ${code}:\n${out}${err}`));
      resolve({ seconds, peakMb: peak, summary: JSON.parse(out) });
    });
  });
}

/** Run the eager benchmark; returns Markdown lines. */
export async function eagerSync({ scale, concurrency }) {
  const packages = Math.max(10, Math.round(20_000 * scale));
  log(`eager: building a synthetic upstream of ${packages} packages …`);
  const up = await startSyntheticUpstream({ packages });
  log(`eager: upstream ready in ${up.buildSeconds.toFixed(1)} s (${up.packages} packages, ${up.releases} releases; registry ${up.cache}) at ${up.url}`);
  const dir = await mkdtemp(join(tmpdir(), 'hexrepo-bench-mirror-'));
  const keyFile = join(dir, 'upstream.pem');
  writeFileSync(keyFile, up.publicKeyPem);
  const store = join(dir, 'store');
  const args = ['mirror', 'sync', '--all', '--json', '--store', store, '--upstream', up.url, '--upstream-key', keyFile, '--concurrency', String(concurrency)];
  try {
    const rows = [];
    for (const [label, extra] of [
      ['first sync (empty store)', []],
      ['again, all fresh (no requests)', []],
      ['again, --max-age 0 (304 each)', ['--max-age', '0']],
    ]) {
      const before = up.counters.requests;
      const r = await timedSync([...args, ...extra]);
      const requests = up.counters.requests - before;
      if (r.summary.failures.length > 0) throw new Error(`${label}: ${r.summary.failures.length} failures, first: ${JSON.stringify(r.summary.failures[0])}`);
      log(`eager: ${label}: ${r.seconds.toFixed(1)} s, ${requests} requests, peak RSS ${r.peakMb.toFixed(0)} MB`);
      rows.push(
        `| ${label} | ${r.seconds.toFixed(1)} s | ${requests} | ${requests ? Math.round(requests / r.seconds) : 0} | ${r.summary.fetched} | ${r.summary.skipped} | ${(r.summary.bytes / 1024 / 1024).toFixed(1)} MB | ${r.peakMb.toFixed(0)} MB |`,
      );
    }
    return [
      `Synthetic upstream: ${up.packages} packages, ${up.releases} releases (scale ${scale}), registry ready in ${up.buildSeconds.toFixed(1)} s (${up.cache.startsWith('loaded') ? 'loaded from the on-disk cache' : 'built'}); sync with --concurrency ${concurrency} into a folder store on loopback.`,
      '',
      '| run | time | requests | req/s | fetched | skipped | bytes | peak RSS |',
      '|---|---|---|---|---|---|---|---|',
      ...rows,
      '',
      `Target (scale 1): first sync under 2 minutes and 300 MB.`,
    ];
  } finally {
    await up.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
