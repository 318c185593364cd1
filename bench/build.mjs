#!/usr/bin/env node
// `pnpm bench build`: hexrepo build on a synthetic repository (2,000 packages × 10 versions by
// default), next to the floor measured in the same run: the same number of RSA-2048 signatures
// (one per package plus names and versions) and SHA-256 over the same tarball bytes.
//   full build (CLI, no cache) · no-change rebuild (CLI, directory scan included) ·
//   add-one-tarball rebuild (CLI) · add-one-tarball registry work once the file is known (in-process)
// The full CLI build's peak RSS (VmHWM of the child, polled from /proc) is measured too.
// Options: --packages N --versions N (defaults 2000 and 10). BENCH_BUILD=full runs only the floor
// and the two full builds (CLI and in-process).
import { spawn } from 'node:child_process';
import { createHash, createPrivateKey, generateKeyPairSync, sign } from 'node:crypto';
import { existsSync, linkSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI, intArg, log, machine, median, peakRssMb, pkgName, requireBuilt, ROOT as root, today } from './_lib.mjs';

const PACKAGES = intArg('packages', 2000);
const VERSIONS = intArg('versions', 10);
const FULL_ONLY = process.env.BENCH_BUILD === 'full';
requireBuilt();
const { createTarball } = await import(join(root, 'packages/tarball/dist/index.js'));
const { loadPrivateKey } = await import(join(root, 'packages/registry/dist/index.js'));
const { buildRegistry, factsFromBytes } = await import(join(root, 'packages/repo/dist/index.js'));
const { FsStore } = await import(join(root, 'packages/storage/dist/index.js'));

const version = (v) => `1.${v}.0`;

/** Deterministic synthetic tarballs, generated once per size and reused across runs. */
function corpus() {
  const dir = join(tmpdir(), `hexrepo-bench-corpus-${PACKAGES}x${VERSIONS}`);
  if (existsSync(join(dir, 'done'))) return dir;
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  log(`generating ${PACKAGES * VERSIONS} tarballs in ${dir} …`);
  for (let i = 0; i < PACKAGES; i++) for (let v = 0; v < VERSIONS; v++) writeTarball(dir, i, v);
  writeFileSync(join(dir, 'done'), '');
  return dir;
}

function writeTarball(dir, i, v) {
  const name = pkgName(i);
  const deps = i > 0 ? [{ package: pkgName(i - 1), requirement: '~> 1.0', optional: false, app: pkgName(i - 1) }] : [];
  const src = `-module(${name}).\n-export([v/0]).\nv() -> "${version(v)}".\n% ${'x'.repeat(200 + ((i * 7 + v) % 300))}\n`;
  const { tarball } = createTarball({ name, version: version(v), app: name, description: `Synthetic package ${i}`, licenses: ['Apache-2.0'], links: [], buildTools: ['rebar3'], requirements: deps }, [
    { path: `src/${name}.erl`, contents: new TextEncoder().encode(src) },
    { path: `src/${name}.app.src`, contents: new TextEncoder().encode(`{application, ${name}, [{vsn, "${version(v)}"}]}.\n`) },
  ]);
  const file = join(dir, `${name}-${version(v)}.tar`);
  writeFileSync(file, tarball);
  return file;
}

/** A fresh public folder whose tarballs/ are hard links to the corpus (same bytes, same mtimes). */
function freshPublic(corpusDir, label) {
  const pub = join(tmpdir(), `hexrepo-bench-public-${label}-${process.pid}`);
  temps.push(pub);
  rmSync(pub, { recursive: true, force: true });
  mkdirSync(join(pub, 'tarballs'), { recursive: true });
  for (const f of readdirSync(corpusDir)) if (f.endsWith('.tar')) linkSync(join(corpusDir, f), join(pub, 'tarballs', f));
  return pub;
}

const GNU_TIME = '/usr/bin/time';

/**
 * Run the CLI; its time, peak RSS and --json summary. The peak is the kernel's (GNU time's %M) when
 * /usr/bin/time is installed, else VmHWM polled every 20 ms, which can miss a peak in the last 20 ms.
 */
function timeCli(args) {
  const rssFile = join(work, `rss-${process.hrtime.bigint()}`);
  const gnuTime = existsSync(GNU_TIME);
  const [cmd, argv] = gnuTime ? [GNU_TIME, ['-o', rssFile, '-f', '%M', process.execPath, CLI, ...args]] : [process.execPath, [CLI, ...args]];
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    let peakMb = 0;
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    const poll = gnuTime ? undefined : setInterval(() => (peakMb = Math.max(peakMb, peakRssMb(child.pid))), 20);
    child.on('close', (code) => {
      clearInterval(poll);
      const ms = performance.now() - t0;
      if (code !== 0) return reject(new Error(`hexrepo ${args.join(' ')} failed:\n${err}`));
      if (existsSync(rssFile)) peakMb = Number(readFileSync(rssFile, 'utf8').trim().split('\n').pop()) / 1024;
      resolve({ ms, peakMb, summary: JSON.parse(out) });
    });
  });
}

// --- setup (every temp folder of this run is removed on exit, however the run ends)
const temps = [];
const cleanup = () => {
  for (const d of temps) rmSync(d, { recursive: true, force: true });
};
process.on('exit', cleanup);
for (const sig of ['SIGINT', 'SIGTERM']) process.once(sig, () => process.exit(130));
const corpusDir = corpus();
const work = join(tmpdir(), `hexrepo-bench-work-${process.pid}`);
temps.push(work);
mkdirSync(work, { recursive: true });
const keyPath = join(work, 'private_key.pem');
writeFileSync(keyPath, generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
const key = createPrivateKey(readFileSync(keyPath));
const tarballFiles = readdirSync(corpusDir).filter((f) => f.endsWith('.tar'));
const totalBytes = tarballFiles.reduce((s, f) => s + statSync(join(corpusDir, f)).size, 0);

// --- floor: signatures + SHA-256 over the same bytes (bytes already in memory)
const bodies = tarballFiles.map((f) => readFileSync(join(corpusDir, f)));
const payload = Buffer.alloc(1500, 7);
const f0 = performance.now();
for (const b of bodies) createHash('sha256').update(b).digest();
for (let i = 0; i < PACKAGES + 2; i++) sign('sha512', payload, key);
const floorMs = performance.now() - f0;

// --- full build through the CLI, no cache
const pub = freshPublic(corpusDir, 'cli');
const cache = join(work, 'cache.json');
const common = ['build', pub, '--name', 'bench', '--private-key', keyPath, '--cache', cache, '--json'];
const full = await timeCli([...common, '--no-cache']);
const noChange = FULL_ONLY ? null : await timeCli(common);
if (noChange && (noChange.summary.read !== 0 || noChange.summary.written.length !== 0)) throw new Error('no-change rebuild did work');
const addTimes = [];
for (let k = 0; k < (FULL_ONLY ? 0 : 5); k++) {
  writeTarball(join(pub, 'tarballs'), k * 37, VERSIONS + k);
  const add = await timeCli(common);
  if (add.summary.read !== 1 || add.summary.written.length !== 3) throw new Error(`add-one rebuild: ${JSON.stringify(add.summary)}`);
  addTimes.push(add.ms);
}

// --- in-process: the dev-server path (index kept in memory, changed file known)
const pub2 = freshPublic(corpusDir, 'lib');
const privateKey = loadPrivateKey(readFileSync(keyPath, 'utf8'));
const store = new FsStore(pub2);
const l0 = performance.now();
const built = await buildRegistry({ store, repository: 'bench', privateKey });
const libFullMs = performance.now() - l0;
const workTimes = [];
for (let k = 0; k < (FULL_ONLY ? 0 : 20); k++) {
  const file = writeTarball(join(pub2, 'tarballs'), k * 53, VERSIONS + 10 + k);
  const t0 = performance.now();
  const bytes = readFileSync(file);
  const st = statSync(file);
  const fileName = file.slice(file.lastIndexOf('/') + 1);
  const facts = factsFromBytes(fileName, bytes);
  built.index.put({ file: fileName, size: st.size, mtimeMs: st.mtimeMs, facts });
  const res = await built.index.flush(store, built.cache.outputs, null);
  workTimes.push(performance.now() - t0);
  if (res.written.length !== 3) throw new Error(`in-process add wrote ${res.written}`);
}

rmSync(pub, { recursive: true, force: true });
rmSync(pub2, { recursive: true, force: true });
rmSync(work, { recursive: true, force: true });

const r = (x) => x.toFixed(0);
const lines = [
  `### hexrepo build — ${PACKAGES.toLocaleString('en')} packages × ${VERSIONS} versions (${tarballFiles.length.toLocaleString('en')} tarballs, ${(totalBytes / 2 ** 20).toFixed(1)} MiB)`,
  '',
  `${today()} · ${machine()}`,
  '',
  '| measurement | time | ratio | peak RSS |',
  '| --- | ---: | ---: | ---: |',
  `| floor: ${PACKAGES + 2} RSA-2048 signatures + SHA-256 over all tarball bytes | ${r(floorMs)} ms | 1.00× | |`,
  `| full build, CLI (\`hexrepo build --no-cache\`, process start included) | ${r(full.ms)} ms | ${(full.ms / floorMs).toFixed(2)}× floor | ${r(full.peakMb)} MB |`,
  `| full build, in-process (\`buildRegistry\`) | ${r(libFullMs)} ms | ${(libFullMs / floorMs).toFixed(2)}× floor | |`,
  ...(FULL_ONLY
    ? []
    : [
        `| no-change rebuild, CLI (scan of ${tarballFiles.length.toLocaleString('en')} files included) | ${r(noChange.ms)} ms | ${(full.ms / noChange.ms).toFixed(0)}× faster than full | ${r(noChange.peakMb)} MB |`,
        `| add one tarball, CLI (scan included), median of 5 | ${r(median(addTimes))} ms | ${(full.ms / median(addTimes)).toFixed(0)}× faster than full | |`,
        `| add one tarball, registry work once the file is known (read, validate, 3 signatures, 3 atomic writes), median of 20 | ${median(workTimes).toFixed(1)} ms | max ${Math.max(...workTimes).toFixed(1)} ms | |`,
      ]),
  '',
];
process.stdout.write(lines.join('\n'));
