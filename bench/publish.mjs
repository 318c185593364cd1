#!/usr/bin/env node
// `pnpm bench publish`: publishes per second through the publish API of `hexrepo serve`
// (POST /api/packages/NAME/releases) into a repository of 2,000 packages, next to the floor
// measured in the same run: per publish, 3 RSA-2048 signatures (packages/NAME, versions, names)
// and SHA-256 over the tarball.
//   1 publisher, sequential · 16 concurrent publishers, distinct packages ·
//   16 concurrent publishers, all into the same package (distinct versions)
// Options: --sequential N (publishes in the 1-publisher run, default 200) --concurrent N (publishes
// in each 16-publisher run, default 400) --publishers N (16).
import { spawnSync } from 'node:child_process';
import { createHash, createPrivateKey, sign } from 'node:crypto';
import { existsSync, linkSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cli, CLI, intArg, log, machine, median, percentile, pkgName, requireBuilt, ROOT as root, startServe, stop, today } from './_lib.mjs';

const SEQUENTIAL = intArg('sequential', 200);
const CONCURRENT = intArg('concurrent', 400);
const PUBLISHERS = intArg('publishers', 16);
const PACKAGES = 2000; // one release (1.0.0) each before the runs
const WARMUP = 10; // sequential publishes before the measured runs (JIT, connection pool), not reported
const FLOOR_ROUNDS = 200;
const TARBALL_LIB = join(root, 'packages/tarball/dist/index.js');
requireBuilt(TARBALL_LIB);
if (SEQUENTIAL + CONCURRENT + WARMUP > PACKAGES - 1) {
  console.error(`--sequential + --concurrent must stay under ${PACKAGES - 1 - WARMUP}: every publish of the first two runs touches its own package`);
  process.exit(2);
}
const { createTarball } = await import(TARBALL_LIB);

/** The tarball of package I, version VERSION, with the same metadata shape as bench/build.mjs. */
function tarballFor(i, version) {
  const name = pkgName(i);
  const deps = i > 0 ? [{ package: pkgName(i - 1), requirement: '~> 1.0', optional: false, app: pkgName(i - 1) }] : [];
  const src = `-module(${name}).\n-export([v/0]).\nv() -> "${version}".\n% ${'x'.repeat(200 + ((i * 7) % 300))}\n`;
  const { tarball } = createTarball({ name, version, app: name, description: `Synthetic package ${i}`, licenses: ['Apache-2.0'], links: [], buildTools: ['rebar3'], requirements: deps }, [
    { path: `src/${name}.erl`, contents: new TextEncoder().encode(src) },
    { path: `src/${name}.app.src`, contents: new TextEncoder().encode(`{application, ${name}, [{vsn, "${version}"}]}.\n`) },
  ]);
  return tarball;
}

/** PUBLIC/tarballs: pkg_XXXXX-1.0.0.tar for every package, hard-linked from the build corpus or generated. */
function fillTarballs(tarballs) {
  const corpusDir = join(tmpdir(), 'hexrepo-bench-corpus-2000x10');
  const files = [];
  if (existsSync(join(corpusDir, 'done'))) {
    log(`hard-linking ${PACKAGES} tarballs from ${corpusDir} …`);
    for (let i = 0; i < PACKAGES; i++) {
      const f = `${pkgName(i)}-1.0.0.tar`;
      linkSync(join(corpusDir, f), join(tarballs, f));
      files.push(f);
    }
    return files;
  }
  log(`generating ${PACKAGES} tarballs (no cached corpus; run pnpm bench build to make one) …`);
  for (let i = 0; i < PACKAGES; i++) {
    const f = `${pkgName(i)}-1.0.0.tar`;
    writeFileSync(join(tarballs, f), tarballFor(i, '1.0.0'));
    files.push(f);
  }
  return files;
}

/** One publish; resolves with its latency in ms. Anything but 201 fails the benchmark. */
async function publish(url, token, job) {
  const t0 = performance.now();
  const res = await fetch(`${url}/api/packages/${job.name}/releases?replace=false`, {
    method: 'POST',
    headers: { authorization: token, 'content-type': 'application/octet-stream', accept: 'application/json' },
    body: job.tarball,
  });
  const body = await res.text();
  const ms = performance.now() - t0;
  if (res.status !== 201) throw new Error(`publish ${job.name} ${job.version}: HTTP ${res.status}, expected 201:\n${body.slice(0, 2000)}`);
  return ms;
}

/** Publishes JOBS with WORKERS publishers pulling from one queue; wall time and per-publish latencies. */
async function run(url, token, jobs, workers) {
  const latencies = [];
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: workers }, async () => {
      while (next < jobs.length) {
        const job = jobs[next++];
        latencies.push(await publish(url, token, job));
      }
    }),
  );
  const wallMs = performance.now() - t0;
  return { wallMs, perSec: (jobs.length / wallMs) * 1000, p50: percentile(latencies, 50), p99: percentile(latencies, 99), n: jobs.length };
}

function verify(dir) {
  const res = spawnSync(process.execPath, [CLI, 'verify', dir, '--json'], { encoding: 'utf8' });
  let report;
  try {
    report = JSON.parse(res.stdout);
  } catch {
    throw new Error(`hexrepo verify printed no JSON (${res.status}):\n${res.stdout}${res.stderr}`);
  }
  if (res.status !== 0 || !report.ok) throw new Error(`hexrepo verify failed (${res.status}):\n${JSON.stringify(report.problems?.slice(0, 20) ?? report, null, 2)}${res.stderr}`);
  return report;
}

// --- setup
const work = mkdtempSync(join(tmpdir(), 'hexrepo-bench-publish-'));
const dir = join(work, 'repo');
const publicDir = join(dir, 'public');
let hexrepo;
let failed = false;
const onSignal = async () => {
  await stop(hexrepo?.child, 'hexrepo');
  rmSync(work, { recursive: true, force: true });
  process.exit(130);
};
process.once('SIGINT', onSignal);
process.once('SIGTERM', onSignal);
try {
  cli(['init', dir, '--name', 'bench']);
  const files = fillTarballs(join(publicDir, 'tarballs'));
  log(`hexrepo build (${files.length} tarballs) …`);
  cli(['build', dir, '--quiet']);
  const before = verify(dir);
  if (before.packages !== PACKAGES || before.releases !== PACKAGES) throw new Error(`after build: ${before.packages} packages, ${before.releases} releases, expected ${PACKAGES} each`);
  const token = JSON.parse(cli(['token', 'create', dir, '--label', 'bench', '--scope', 'read', '--scope', 'write', '--json'])).token;
  if (typeof token !== 'string' || !token) throw new Error('token create printed no token');

  // --- floor: 3 RSA-2048 signatures with the repository's key over a payload the size of the real
  // versions file, plus SHA-256 over one new tarball; median of FLOOR_ROUNDS rounds.
  const versionsBytes = statSync(join(publicDir, 'versions')).size;
  const hexrepoJson = JSON.parse(readFileSync(join(dir, 'hexrepo.json'), 'utf8'));
  const key = createPrivateKey(readFileSync(join(dir, hexrepoJson.privateKey ?? 'private_key.pem')));

  // --- the tarballs to publish, generated before the server starts (never timed)
  log('generating the tarballs to publish …');
  let p = 0;
  const distinct = (n) =>
    Array.from({ length: n }, () => {
      const i = p++;
      return { name: pkgName(i), version: '2.0.0', tarball: tarballFor(i, '2.0.0') };
    });
  const warmup = distinct(WARMUP);
  const seqJobs = distinct(SEQUENTIAL);
  const parJobs = distinct(CONCURRENT);
  const samePkg = PACKAGES - 1; // not touched by the runs above
  const sameJobs = Array.from({ length: CONCURRENT }, (_, n) => ({ name: pkgName(samePkg), version: `2.${n}.0`, tarball: tarballFor(samePkg, `2.${n}.0`) }));
  const tarballBytes = median(seqJobs.map((j) => j.tarball.byteLength));

  const payload = Buffer.alloc(versionsBytes, 7);
  const sample = seqJobs[0].tarball;
  for (let k = 0; k < 10; k++) sign('sha512', payload, key); // warm-up
  const floorTimes = [];
  for (let k = 0; k < FLOOR_ROUNDS; k++) {
    const t0 = performance.now();
    createHash('sha256').update(sample).digest();
    for (let s = 0; s < 3; s++) sign('sha512', payload, key);
    floorTimes.push(performance.now() - t0);
  }
  const floorMs = median(floorTimes);
  const floorPerSec = 1000 / floorMs;
  log(`floor: ${floorMs.toFixed(2)} ms per publish (${floorPerSec.toFixed(0)}/s; versions file ${versionsBytes} bytes)`);

  log('starting hexrepo serve …');
  hexrepo = startServe(dir);
  hexrepo.url = await hexrepo.url;
  log(`  hexrepo ${hexrepo.url}`);

  log(`warm-up: ${WARMUP} sequential publishes …`);
  await run(hexrepo.url, token, warmup, 1);
  const runs = [
    { label: `1 publisher, ${SEQUENTIAL} publishes, each into a different package`, jobs: seqJobs, workers: 1 },
    { label: `${PUBLISHERS} concurrent publishers, ${CONCURRENT} publishes, each into a different package`, jobs: parJobs, workers: PUBLISHERS },
    { label: `${PUBLISHERS} concurrent publishers, ${CONCURRENT} publishes, all into the same package (distinct versions)`, jobs: sameJobs, workers: PUBLISHERS },
  ];
  for (const r of runs) {
    log(`${r.label} …`);
    r.result = await run(hexrepo.url, token, r.jobs, r.workers);
    log(`  ${r.result.perSec.toFixed(1)} publishes/s, p50 ${r.result.p50.toFixed(1)} ms, p99 ${r.result.p99.toFixed(1)} ms (${(r.result.wallMs / 1000).toFixed(2)} s)`);
  }

  // --- consistency: the API agrees, the server stops cleanly, then a strict verify of the files
  const api = await fetch(`${hexrepo.url}/api/packages/${pkgName(samePkg)}`, { headers: { authorization: token, accept: 'application/json' } });
  const apiBody = await api.text();
  if (api.status !== 200) throw new Error(`GET /api/packages/${pkgName(samePkg)}: HTTP ${api.status}:\n${apiBody.slice(0, 2000)}`);
  const apiReleases = JSON.parse(apiBody).releases?.length;
  if (apiReleases !== CONCURRENT + 1) throw new Error(`GET /api/packages/${pkgName(samePkg)} lists ${apiReleases} releases, expected ${CONCURRENT + 1}`);
  await stop(hexrepo.child, 'hexrepo');
  if (hexrepo.child.exitCode !== 0) throw new Error(`hexrepo serve exited ${hexrepo.child.exitCode ?? hexrepo.child.signalCode} on SIGTERM:\n${hexrepo.stderr()}`);
  const published = WARMUP + SEQUENTIAL + CONCURRENT + CONCURRENT;
  log('hexrepo verify …');
  const after = verify(dir);
  if (after.packages !== PACKAGES || after.releases !== PACKAGES + published || after.unlisted.length !== 0) {
    throw new Error(`after the runs: ${after.packages} packages, ${after.releases} releases, ${after.unlisted.length} unlisted tarballs; expected ${PACKAGES}, ${PACKAGES + published}, 0`);
  }
  log(`  ok: ${after.packages} packages, ${after.releases} releases (${before.releases} + ${published}), ${after.tarballsChecked} tarballs checked`);

  const ms = (x) => `${x.toFixed(1)} ms`;
  const lines = [
    `### hexrepo serve — publish API, ${PACKAGES.toLocaleString('en')}-package repository (POST /api/packages/NAME/releases, ~${(tarballBytes / 1024).toFixed(1)} KiB tarballs)`,
    '',
    `${today()} · ${machine()}`,
    '',
    '| run | publishes/s | p50 | p99 | vs floor |',
    '| --- | ---: | ---: | ---: | ---: |',
    `| floor: 3 RSA-2048 signatures over ${(versionsBytes / 1024).toFixed(1)} KiB (the versions file) + SHA-256 over one tarball, in-process, median of ${FLOOR_ROUNDS} | ${floorPerSec.toFixed(0)} | ${ms(floorMs)} | — | 1.00× |`,
  ];
  for (const { label, result } of runs) {
    lines.push(`| ${label} | ${result.perSec.toFixed(0)} | ${ms(result.p50)} | ${ms(result.p99)} | ${(result.perSec / floorPerSec).toFixed(2)}× |`);
  }
  lines.push(
    '',
    `Concurrent publishes are group-committed: while one flush runs, the publishes that arrive wait for the next one, which signs packages/NAME once per changed package and versions and names once for all of them. Every response was 201 (a release is acknowledged once it is in the signed registry files on disk); afterwards \`hexrepo verify\` passed with ${after.releases.toLocaleString('en')} releases (${before.releases.toLocaleString('en')} + ${published.toLocaleString('en')}, ${WARMUP} of them warm-up publishes). The publishers (Node's fetch) run on the same machine as the server.`,
    '',
  );
  process.stdout.write(lines.join('\n'));
} catch (err) {
  failed = true;
  console.error(err instanceof Error ? err.stack : err);
} finally {
  await stop(hexrepo?.child, 'hexrepo');
  rmSync(work, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
