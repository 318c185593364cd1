#!/usr/bin/env node
// `pnpm torture [-- --kills N] [--clients N] [--seed N] [--json]`: crash consistency of hexrepo on
// a local folder. Runs a real `hexrepo serve` (several concurrent publish/retire/revert clients) and
// real `hexrepo build` runs over freshly dropped tarballs, kills the process with SIGKILL at random
// moments, restarts, and after every restart checks:
//   - every acknowledged operation holds: a publish answered 201 is listed with its exact bytes, an
//     acknowledged retire is retired, an acknowledged revert is gone; an operation cut off by the
//     kill is either fully there or fully absent, and stays as first seen (never appears later);
//   - `hexrepo verify` passes after the start (or build) that follows the kill;
//   - no temp or lock file (.tmp-*, .lock-*) is left in the folder once the next start is up.
// Exits 0 when every check held; prints a summary (JSON with --json) either way.
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, release, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const CLI = join(ROOT, 'apps/cli/dist/bin.js');
for (const f of [CLI, join(ROOT, 'packages/tarball/dist/index.js'), join(ROOT, 'packages/registry/dist/index.js')]) {
  if (!existsSync(f)) {
    console.error(`${f} is missing: build the workspace first (pnpm build)`);
    process.exit(1);
  }
}
const { createTarball } = await import(join(ROOT, 'packages/tarball/dist/index.js'));
const { loadPublicKey, unpackPackage } = await import(join(ROOT, 'packages/registry/dist/index.js'));

function intArg(name, dflt) {
  const eq = process.argv.find((a) => a.startsWith(`--${name}=`));
  const i = process.argv.indexOf(`--${name}`);
  const v = eq ? Number(eq.slice(name.length + 3)) : i > 0 ? Number(process.argv[i + 1]) : dflt;
  if (!Number.isInteger(v) || v < 0) {
    console.error(`--${name} needs a whole number`);
    process.exit(2);
  }
  return v;
}
const KILLS = intArg('kills', 20);
const CLIENTS = intArg('clients', 4);
const SEED = intArg('seed', Date.now() % 1_000_000);
const JSON_OUT = process.argv.includes('--json');
const KEEP = process.argv.includes('--keep');

// A small seeded generator, so a failing run can be replayed with --seed.
let state = SEED || 1;
const rand = () => {
  state ^= state << 13;
  state ^= state >>> 17;
  state ^= state << 5;
  return ((state >>> 0) % 1_000_000) / 1_000_000;
};
const between = (lo, hi) => lo + Math.floor(rand() * (hi - lo + 1));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const log = (m) => {
  if (!JSON_OUT) process.stderr.write(`${m}\n`);
};
const sha = (b) => createHash('sha256').update(b).digest('hex');

const dir = mkdtempSync(join(tmpdir(), 'hexrepo-torture-'));
const pub = join(dir, 'public');
function cli(args) {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`hexrepo ${args.join(' ')} exited ${r.status}:\n${r.stdout}${r.stderr}`);
  return r.stdout;
}
cli(['init', dir, '--name', 'torture']);
const token = JSON.parse(cli(['token', 'create', dir, '--label', 'torture', '--scope', 'read', '--scope', 'write', '--json'])).token;
const publicKey = loadPublicKey(readFileSync(join(pub, 'public_key')));

const figures = { kills: 0, serveKills: 0, buildKills: 0, restarts: 0, checks: 0, acknowledged: { publish: 0, retire: 0, revert: 0, build: 0 }, cutOff: 0, lost: 0, verifyFailures: 0, leftovers: 0, unexpected: 0 };
const failures = [];
const fail = (what) => {
  failures.push(what);
  log(`FAIL: ${what}`);
};

/**
 * What the harness knows of each release: `allowed`, the states clients may legitimately see
 * ('absent', 'present', 'retired'); one state once acknowledged or first observed.
 */
const releases = new Map();
const key = (name, version) => `${name} ${version}`;
const tarballs = new Map(); // key → sha256 of the bytes published or dropped

function makeTarball(name, version) {
  const { tarball } = createTarball({ name, version, description: `torture ${name} ${version}` }, [{ path: `src/${name}.erl`, contents: Buffer.from(`-module(${name}).\n%% ${version} ${rand()}\n`) }]);
  return tarball;
}

// ---- the serve phase: concurrent clients until the kill --------------------------------------

function startServe() {
  // In its own process group, like a service under systemd, Docker or Kubernetes: a crash of the
  // service is every process of it dying at once (the primary and its workers), see killGroup.
  const child = spawn(process.execPath, [CLI, 'serve', dir, '--port', '0', '--log-level', 'warn'], { stdio: ['ignore', 'ignore', 'pipe'], detached: true });
  let err = '';
  return new Promise((resolve, reject) => {
    child.stderr.on('data', (d) => {
      err += d;
      const m = /hexrepo serve: (http:\/\/\S+)/.exec(err);
      if (m) resolve({ child, url: m[1] });
    });
    child.on('exit', (code, signal) => reject(new Error(`hexrepo serve exited (${code ?? signal}) before listening:\n${err}`)));
  });
}

async function request(url, method, path, body) {
  try {
    const res = await fetch(`${url}/api${path}`, {
      method,
      headers: { authorization: token, accept: 'application/json', ...(body ? { 'content-type': body instanceof Uint8Array ? 'application/octet-stream' : 'application/json' } : {}) },
      ...(body ? { body: body instanceof Uint8Array ? body : JSON.stringify(body) } : {}),
    });
    const text = await res.text();
    return { status: res.status, text };
  } catch {
    return { status: 0, text: 'connection lost' };
  }
}

async function client(c, url, until) {
  const pkgs = [`c${c}_a`, `c${c}_b`, `c${c}_c`];
  while (Date.now() < until.at && !until.killed) {
    const r = rand();
    const mine = [...releases.entries()].filter(([k, v]) => k.startsWith(`c${c}_`) && v.allowed.length === 1 && v.allowed[0] !== 'absent' && !v.busy);
    if (r < 0.6 || mine.length === 0) {
      const name = pkgs[between(0, 2)];
      const n = (versionCounter.get(name) ?? 0) + 1;
      versionCounter.set(name, n);
      const version = `1.${n}.0`;
      const bytes = makeTarball(name, version);
      const k = key(name, version);
      tarballs.set(k, sha(bytes));
      releases.set(k, { allowed: ['absent', 'present'], busy: true });
      const res = await request(url, 'POST', `/packages/${name}/releases`, bytes);
      const rel = releases.get(k);
      rel.busy = false;
      if (res.status === 201) {
        rel.allowed = ['present'];
        figures.acknowledged.publish++;
      } else if (res.status === 0 || res.status >= 500) figures.cutOff++;
      else fail(`publish ${k}: unexpected ${res.status} ${res.text}`);
    } else {
      const [k, rel] = mine[between(0, mine.length - 1)];
      const [name, version] = k.split(' ');
      const revert = rand() < 0.5;
      const target = revert ? 'absent' : 'retired';
      if (!revert && rel.allowed[0] === 'retired') continue;
      rel.busy = true;
      const res = revert ? await request(url, 'DELETE', `/packages/${name}/releases/${version}`) : await request(url, 'POST', `/packages/${name}/releases/${version}/retire`, { reason: 'other', message: 'torture' });
      rel.busy = false;
      if (res.status === 204) {
        rel.allowed = [target];
        figures.acknowledged[revert ? 'revert' : 'retire']++;
      } else if (res.status === 0 || res.status >= 500) {
        rel.allowed = [...rel.allowed, target];
        figures.cutOff++;
      } else fail(`${revert ? 'revert' : 'retire'} ${k}: unexpected ${res.status} ${res.text}`);
    }
  }
}
const versionCounter = new Map();

/** SIGKILL to serve's whole process group (KillMode=control-group), then wait until none is left. */
async function killGroup(child) {
  process.kill(-child.pid, 'SIGKILL');
  await new Promise((r) => (child.exitCode !== null || child.signalCode !== null ? r() : child.once('exit', r)));
  // Bounded: a killed worker not yet reaped (a zombie) still counts as a member of the group.
  for (const until = Date.now() + 5000; Date.now() < until;) {
    try {
      process.kill(-child.pid, 0);
    } catch {
      return;
    }
    await sleep(10);
  }
}

async function servePhase() {
  const { child, url } = await startServe();
  figures.restarts++;
  await check('after a serve start');
  const until = { at: Date.now() + between(150, 1500), killed: false };
  const clients = Array.from({ length: CLIENTS }, (_, c) => client(c, url, until));
  await sleep(until.at - Date.now());
  await killGroup(child);
  until.killed = true;
  figures.kills++;
  figures.serveKills++;
  await Promise.all(clients);
}

// ---- the build phase: tarballs dropped into tarballs/, a build killed at a random moment --------

let dropped = 0;
async function buildPhase() {
  const count = between(10, 60);
  for (let i = 0; i < count; i++) {
    const name = `drop_${between(0, 9)}`;
    const version = `2.${++dropped}.0`;
    const bytes = makeTarball(name, version);
    // Dropped as a user would: complete files renamed into place (never a torn tarball).
    const temp = join(pub, 'tarballs', `.drop-${name}-${version}`);
    writeFileSync(temp, bytes);
    renameSync(temp, join(pub, 'tarballs', `${name}-${version}.tar`));
    tarballs.set(key(name, version), sha(bytes));
    releases.set(key(name, version), { allowed: ['present'], dropped: true });
  }
  const child = spawn(process.execPath, [CLI, 'build', dir, '--quiet'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr.on('data', (d) => (err += d));
  const exited = new Promise((r) => child.once('exit', (code, signal) => r({ code, signal })));
  const killAt = between(40, 2500);
  const timer = setTimeout(() => child.kill('SIGKILL'), killAt);
  const { code, signal } = await exited;
  clearTimeout(timer);
  if (signal === 'SIGKILL') {
    figures.kills++;
    figures.buildKills++;
  } else if (code === 0) {
    figures.acknowledged.build++;
    await check('after a completed build');
  } else fail(`hexrepo build exited ${code}: ${err}`);
}

// ---- the checks ------------------------------------------------------------------------------

function leftovers(folder) {
  const out = [];
  for (const e of readdirSync(folder, { withFileTypes: true })) {
    const p = join(folder, e.name);
    if (e.isDirectory()) out.push(...leftovers(p));
    else if (e.name.startsWith('.tmp-') || e.name.startsWith('.lock-')) out.push(p.slice(pub.length + 1));
  }
  return out;
}

function observe() {
  const seen = new Map(); // key → 'present' | 'retired'
  for (const name of existsSync(join(pub, 'packages')) ? readdirSync(join(pub, 'packages')) : []) {
    if (name.startsWith('.')) continue;
    const pkg = unpackPackage(readFileSync(join(pub, 'packages', name)), { publicKey, repository: 'torture', name });
    for (const r of pkg.releases) {
      const k = key(name, r.version);
      const file = join(pub, 'tarballs', `${name}-${r.version}.tar`);
      const bytes = existsSync(file) ? readFileSync(file) : null;
      if (!bytes || sha(bytes) !== tarballs.get(k) || Buffer.from(r.outerChecksum).toString('hex') !== tarballs.get(k)) {
        fail(`${k} is listed but its tarball is ${bytes ? 'not the one published' : 'missing'}`);
        continue;
      }
      seen.set(k, r.retired ? 'retired' : 'present');
    }
  }
  return seen;
}

async function check(when) {
  figures.checks++;
  const left = leftovers(pub);
  if (left.length > 0) {
    figures.leftovers += left.length;
    fail(`${when}: ${left.length} temp/lock files left: ${left.slice(0, 5).join(', ')}`);
  }
  const v = spawnSync(process.execPath, [CLI, 'verify', dir, '--json'], { encoding: 'utf8' });
  let report;
  try {
    report = JSON.parse(v.stdout);
  } catch {
    report = { ok: false, problems: [{ message: v.stdout + v.stderr }] };
  }
  if (!report.ok) {
    figures.verifyFailures++;
    fail(`${when}: verify failed: ${JSON.stringify(report.problems?.slice(0, 3))}`);
  }
  const seen = observe();
  for (const [k, rel] of releases) {
    const now = seen.get(k) ?? 'absent';
    if (!rel.allowed.includes(now)) {
      const acked = rel.allowed.length === 1;
      if (acked && rel.allowed[0] !== 'absent') figures.lost++;
      else figures.unexpected++;
      fail(`${when}: ${k} is ${now}, expected ${rel.allowed.join(' or ')}`);
    }
    // What clients have now seen is what they must keep seeing.
    rel.allowed = [now];
    if (now === 'absent' && !rel.dropped) releases.delete(k);
  }
  for (const k of seen.keys()) if (!releases.has(k)) fail(`${when}: ${k} is listed but was never published`);
}

// ---- the run ---------------------------------------------------------------------------------

const started = Date.now();
log(`torture: ${KILLS} kills, ${CLIENTS} clients, seed ${SEED}, folder ${dir}`);
try {
  while (figures.kills < KILLS) {
    if (rand() < 0.3) await buildPhase();
    else await servePhase();
    if (figures.kills % 10 === 0) log(`  ${figures.kills} kills, ${Object.values(figures.acknowledged).reduce((a, b) => a + b, 0)} acknowledged, ${failures.length} failures`);
  }
  // The last kill is checked by one more start.
  const { child } = await startServe();
  figures.restarts++;
  await check('after the final start');
  child.kill('SIGTERM');
  await new Promise((r) => child.once('exit', r));
} catch (err) {
  fail(`harness: ${err.stack ?? err}`);
}
const c = cpus();
const summary = {
  ok: failures.length === 0,
  seed: SEED,
  ...figures,
  releasesTracked: releases.size,
  seconds: Math.round((Date.now() - started) / 1000),
  machine: `${c.length} × ${c[0]?.model ?? 'unknown CPU'}, ${Math.round(totalmem() / 2 ** 30)} GiB RAM, Linux ${release()}, Node ${process.version}`,
  date: new Date().toISOString().slice(0, 10),
  failures: failures.slice(0, 20),
};
if (!KEEP) rmSync(dir, { recursive: true, force: true });
// Exit only once the summary is out: writes to a pipe are asynchronous.
process.stdout.write(JSON_OUT ? `${JSON.stringify(summary)}\n` : `${JSON.stringify(summary, null, 2)}\n`, () => process.exit(summary.ok ? 0 : 1));
