// Set-up shared by the README's two commands: make sure pnpm (pinned in package.json) and the
// workspace dependencies are there, and build. Plain Node, no dependencies: it runs before install.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const PNPM_VERSION = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')).packageManager.split('@')[1];

export function log(message) {
  process.stderr.write(`[hexrepo] ${message}\n`);
}

/** Run a command in the repo root with inherited output; returns true on exit 0. */
export function run(cmd, args, opts = {}) {
  const res = spawnSync(cmd, args, { cwd: ROOT, stdio: 'inherit', env: { ...process.env, ...opts.env } });
  return res.status === 0;
}

function has(cmd, args = ['--version']) {
  return spawnSync(cmd, args, { stdio: 'ignore' }).status === 0;
}

/** The pnpm command to use: a global pnpm of the pinned version, installed with npm if needed. */
export function ensurePnpm() {
  const current = spawnSync('pnpm', ['--version'], { encoding: 'utf8' });
  if (current.status === 0 && current.stdout.trim() === PNPM_VERSION) return ['pnpm'];
  log(`installing pnpm ${PNPM_VERSION} with npm (corepack is not used: its signature check fails on some registries)`);
  if (spawnSync('npm', ['install', '-g', `pnpm@${PNPM_VERSION}`], { stdio: 'inherit' }).status === 0 && has('pnpm')) return ['pnpm'];
  log('global install failed; falling back to npx');
  return ['npx', '--yes', `pnpm@${PNPM_VERSION}`];
}

/**
 * Erlang, rebar3 and Elixir (Mix) for the real-client tests: installed with apt when missing and
 * possible. Returns whether rebar3 is usable; a missing Mix is reported on its own.
 */
export function ensureErlang() {
  const erlang = () => has('erl', ['-noshell', '-eval', 'halt().']) && has('rebar3', ['version']);
  const mix = () => has('mix', ['--version']);
  if (erlang() && mix()) return true;
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  if (isRoot && has('apt-get', ['--version'])) {
    log('installing erlang-nox, rebar3 and elixir with apt-get (for the real-client tests)');
    try {
      execFileSync('sh', ['-c', 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq erlang-nox rebar3 elixir >/dev/null'], { stdio: 'inherit' });
    } catch {
      log('apt-get install erlang-nox rebar3 elixir failed');
    }
  }
  if (!mix()) log('mix (elixir) not found and cannot apt-get install it here: the Mix test of the dev example packages will be skipped');
  if (erlang()) return true;
  log('erl/rebar3 not found and cannot apt-get install them here: the rebar3 and hex_core cross-check tests will be skipped');
  return false;
}

/** Chromium for the dev page test (headless, through playwright-core): installed with apt when missing and possible. */
export function ensureChromium() {
  if (has('chromium', ['--version']) && has('tmux', ['-V'])) return true;
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  if (isRoot && has('apt-get', ['--version'])) {
    log('installing chromium and tmux with apt-get (for the dev page test and the TUI end-to-end test)');
    try {
      execFileSync('sh', ['-c', 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium tmux >/dev/null'], { stdio: 'inherit' });
    } catch {
      log('apt-get install chromium tmux failed');
    }
    if (has('chromium', ['--version']) && has('tmux', ['-V'])) return true;
  }
  log('chromium or tmux not found and cannot apt-get install them here: the dev page or TUI end-to-end test will be skipped');
  return false;
}

/**
 * Ceph (monitor, OSD, RADOS Gateway) for the S3 driver tests, which run a throwaway single-node cluster
 * as a real S3 server: installed with apt when missing and possible (nothing starts by itself).
 */
export function ensureCeph() {
  const present = () => ['ceph-mon', 'ceph-osd', 'radosgw'].every((b) => has('sh', ['-c', `command -v ${b}`]));
  if (present()) return true;
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  if (isRoot && has('apt-get', ['--version'])) {
    log('installing ceph-mon, ceph-osd and radosgw with apt-get (for the S3 driver tests)');
    try {
      execFileSync('sh', ['-c', 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends ceph-mon ceph-osd radosgw >/dev/null'], { stdio: 'inherit' });
    } catch {
      log('apt-get install ceph-mon ceph-osd radosgw failed');
    }
    if (present()) return true;
  }
  log('ceph-mon/ceph-osd/radosgw not found and cannot apt-get install them here: the S3 driver tests on Ceph RGW will be skipped');
  return false;
}

/** pnpm install (frozen lockfile on CI) and build every package. */
export function installAndBuild(pnpm) {
  const [cmd, ...pre] = pnpm;
  const frozen = process.env.CI ? ['--frozen-lockfile'] : [];
  if (!run(cmd, [...pre, 'install', ...frozen])) throw new Error('pnpm install failed');
  if (!run(cmd, [...pre, 'run', 'build'])) throw new Error('build failed');
}

/** The newest modification time of any file under `dir` (0 when there is none). */
function newest(dir) {
  let max = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) max = Math.max(max, statSync(join(entry.parentPath, entry.name)).mtimeMs);
  }
  return max;
}

/**
 * True when building again would only rewrite the same files: turbo holds a build of every
 * package's current inputs and each dist/ is there and not older than its src/. Rewriting dist/
 * in place while a server or a test runs from it is what this avoids.
 */
function buildIsCurrent(pnpm) {
  const [cmd, ...pre] = pnpm;
  const res = spawnSync(cmd, [...pre, 'exec', 'turbo', 'run', 'build', '--dry=json'], { cwd: ROOT, encoding: 'utf8' });
  if (res.status !== 0) return false;
  try {
    const tasks = JSON.parse(res.stdout).tasks.filter((t) => t.command !== '<NONEXISTENT>');
    return (
      tasks.length > 0 &&
      tasks.every((t) => {
        const dir = join(ROOT, t.directory);
        return t.cache.status === 'HIT' && existsSync(join(dir, 'dist')) && newest(join(dir, 'src')) <= newest(join(dir, 'dist'));
      })
    );
  } catch {
    return false;
  }
}

/** pnpm install, and a build unless the one on disk is current (see buildIsCurrent). */
export function installAndBuildIfStale(pnpm) {
  const [cmd, ...pre] = pnpm;
  const frozen = process.env.CI ? ['--frozen-lockfile'] : [];
  if (!run(cmd, [...pre, 'install', ...frozen])) throw new Error('pnpm install failed');
  if (buildIsCurrent(pnpm)) {
    log('the build is up to date');
    return;
  }
  if (!run(cmd, [...pre, 'run', 'build'])) throw new Error('build failed');
}
