// What every benchmark shares: paths, options, the built CLI, and starting/stopping `hexrepo serve`.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { cpus, release, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('..', import.meta.url));
export const CLI = join(ROOT, 'apps/cli/dist/bin.js');

/** Machine facts printed with every benchmark result. */
export function machine() {
  const c = cpus();
  return `${c.length} × ${c[0]?.model ?? 'unknown CPU'}, ${Math.round(totalmem() / 2 ** 30)} GiB RAM, Linux ${release()}, Node ${process.version}`;
}

export function today() {
  return new Date().toISOString().slice(0, 10);
}

export function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

export function percentile(xs, p) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)];
}

/** Peak resident set of a live process in MB (VmHWM), or 0 once it is gone. */
export function peakRssMb(pid) {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : 0;
  } catch {
    return 0;
  }
}

export const log = (m) => process.stderr.write(`${m}\n`);

/** The synthetic package names every benchmark uses (and the build corpus holds). */
export const pkgName = (i) => `pkg_${String(i).padStart(5, '0')}`;

/** A positive whole-number option, `--name N` or `--name=N`; exits 2 on anything else. */
export function intArg(name, dflt) {
  const eq = process.argv.find((a) => a.startsWith(`--${name}=`));
  const i = process.argv.indexOf(`--${name}`);
  const v = eq ? Number(eq.slice(name.length + 3)) : i > 0 ? Number(process.argv[i + 1]) : dflt;
  if (!Number.isInteger(v) || v <= 0) {
    console.error(`--${name} needs a positive whole number`);
    process.exit(2);
  }
  return v;
}

/** Exit with a clear message unless the workspace is built (the benchmarks run the dist output). */
export function requireBuilt(...files) {
  for (const f of [CLI, ...files]) {
    if (!existsSync(f)) {
      console.error(`${f} is missing: build the workspace first (pnpm build)`);
      process.exit(1);
    }
  }
}

/** Run the built CLI; its stdout, or an error with its output. */
export function cli(args, env = {}) {
  const res = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: { ...process.env, ...env } });
  if (res.status !== 0) throw new Error(`hexrepo ${args.join(' ')} failed (${res.status}):\n${res.stdout}${res.stderr}`);
  return res.stdout;
}

/** A port free right now on 127.0.0.1 (for servers that cannot take port 0). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** `hexrepo serve DIR` on a free port with warn-level logs; `url` resolves once it listens. */
export function startServe(dir, env = {}, args = []) {
  const child = spawn(process.execPath, [CLI, 'serve', dir, '--port', '0', '--log-level', 'warn', ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stdout.resume(); // request logs (none at warn, but never let the pipe fill)
  const url = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`hexrepo serve printed no URL in 30 s:\n${stderr}`)), 30_000);
    child.stderr.on('data', (d) => {
      stderr += d;
      const m = /hexrepo serve: (http:\/\/[^\s]+)/.exec(stderr);
      if (m) {
        clearTimeout(timer);
        resolve(m[1].replace(/\/$/, ''));
      }
    });
    child.on('exit', (code, sig) => {
      clearTimeout(timer);
      reject(new Error(`hexrepo serve exited (${code ?? sig}):\n${stderr}`));
    });
  });
  return { child, url, stderr: () => stderr };
}

/** SIGTERM (hexrepo: graceful; nginx: fast shutdown), SIGKILL after 15 s. */
export async function stop(child, name) {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  const timer = setTimeout(() => {
    log(`${name} still running 15 s after SIGTERM: SIGKILL`);
    child.kill('SIGKILL');
  }, 15_000);
  await exited;
  clearTimeout(timer);
}
