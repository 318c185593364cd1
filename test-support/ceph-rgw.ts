/**
 * Test support: a real S3 server — Ceph's RADOS Gateway from Debian (Pacific) — on loopback.
 * One monitor, one memstore OSD (data in RAM) and radosgw, no cephx, everything (config, mon store,
 * pid files, logs, sockets) in one throwaway folder, on ports free at start. See shared/S3_TESTING.md.
 *
 *   const rgw = await startRgw();   // ~2–5 s
 *   ... S3 client on rgw.endpoint with rgw.accessKeyId / rgw.secretAccessKey, forcePathStyle ...
 *   await rgw.stop();               // SIGKILLs every daemon by its pid file, removes the folder
 */
import { execFile, spawn, spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface RgwServer {
  /** `http://127.0.0.1:PORT` */
  endpoint: string;
  accessKeyId: string;
  secretAccessKey: string;
  region: string;
  /** The cluster's folder (config, logs); removed by stop(). */
  dir: string;
  /** How long start took, in milliseconds. */
  startMs: number;
  /** Kills every daemon and removes the folder. Safe to call more than once. */
  stop(): Promise<void>;
}

const BINARIES = ['ceph-mon', 'ceph-osd', 'radosgw', 'radosgw-admin', 'ceph', 'monmaptool', 'ceph-authtool'];

/** Why the gateway cannot run here, or null when it can. */
export function rgwUnavailable(): string | null {
  const missing = BINARIES.filter((b) => spawnSync('sh', ['-c', `command -v ${b}`], { stdio: 'ignore' }).status !== 0);
  if (missing.length > 0) {
    return `Ceph not installed (missing ${missing.join(', ')}): apt-get install -y --no-install-recommends ceph-mon ceph-osd radosgw`;
  }
  return null;
}

/** Ports that were free a moment ago: each bound on port 0 and released. */
async function freePorts(n: number): Promise<number[]> {
  const servers: Server[] = [];
  try {
    const ports: number[] = [];
    for (let i = 0; i < n; i++) {
      const srv = createServer();
      servers.push(srv);
      await new Promise<void>((resolve, reject) => {
        srv.once('error', reject);
        srv.listen(0, '127.0.0.1', () => resolve());
      });
      ports.push((srv.address() as { port: number }).port);
    }
    return ports;
  } finally {
    await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  }
}

async function canBind(port: number): Promise<boolean> {
  const srv = createServer();
  const ok = await new Promise<boolean>((resolve) => {
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => resolve(true));
  });
  if (ok) await new Promise<void>((resolve) => srv.close(() => resolve()));
  return ok;
}

/** A run of `n` consecutive free ports (the OSD binds several, from `ms bind port min` up). */
async function freePortRange(n: number): Promise<[number, number]> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const [probe] = await freePorts(1);
    const base = probe!;
    if (base + n > 65535) continue;
    let ok = true;
    for (let p = base; p < base + n && ok; p++) ok = await canBind(p);
    if (ok) return [base, base + n - 1];
  }
  throw new Error(`no run of ${n} free ports found`);
}

function run(cmd: string, args: string[], timeoutMs = 30_000): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { timeout: timeoutMs, encoding: 'utf8', maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${cmd} ${args.join(' ')} failed: ${err.message}\n${stdout}\n${stderr}`));
      else resolve(stdout);
    });
  });
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function waitFor(what: string, timeoutMs: number, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(100);
  }
}

/** Folders of the clusters this process started and has not stopped: their daemons are killed at exit. */
const liveDirs = new Set<string>();
let exitHookInstalled = false;
function killAllSync(dir: string, signal: NodeJS.Signals): number[] {
  const runDir = join(dir, 'run');
  const pids: number[] = [];
  if (!existsSync(runDir)) return pids;
  for (const f of readdirSync(runDir)) {
    if (!f.endsWith('.pid')) continue;
    const pid = Number(readFileSync(join(runDir, f), 'utf8').trim());
    if (!Number.isInteger(pid) || pid <= 1) continue;
    try {
      process.kill(pid, signal);
      pids.push(pid);
    } catch {
      // already gone
    }
  }
  return pids;
}
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const dir of liveDirs) {
      killAllSync(dir, 'SIGKILL');
      spawnSync('rm', ['-rf', dir]);
    }
  });
}

/**
 * A detached shell that outlives this process: once it is gone (killed by a signal, which skips the
 * exit hook — vitest ends its workers that way) and the folder is still there, it SIGKILLs the daemons
 * and removes the folder. After a normal stop() the folder is gone and it ends by itself within 1 s.
 */
function startWatchdog(dir: string): void {
  const script = ['while kill -0 "$1" 2>/dev/null && [ -d "$2" ]; do sleep 1; done', '[ -d "$2" ] || exit 0', 'for f in "$2"/run/*.pid; do [ -f "$f" ] && kill -9 "$(cat "$f")" 2>/dev/null; done', 'rm -rf "$2"'].join('\n');
  const child = spawn('sh', ['-c', script, 'ceph-rgw-watchdog', String(process.pid), dir], { detached: true, stdio: 'ignore' });
  child.unref();
}

/** Running, and not a zombie waiting for init to reap it. */
const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return true;
  }
};

async function stopCluster(dir: string): Promise<void> {
  // SIGKILL at once: the data is throwaway (memstore), and a graceful SIGTERM shutdown takes radosgw
  // over 8 s and the OSD ~7 s (it waits for the monitor), which would dominate every test run.
  const pids = killAllSync(dir, 'SIGKILL');
  const deadline = Date.now() + 10_000;
  while (pids.some(alive) && Date.now() < deadline) await sleep(20);
  const left = pids.filter(alive);
  await rm(dir, { recursive: true, force: true });
  liveDirs.delete(dir);
  if (left.length > 0) throw new Error(`Ceph daemons ${left.join(', ')} survived SIGKILL`);
}

export interface StartRgwOptions {
  accessKeyId?: string;
  secretAccessKey?: string;
  /** Print each step with its time to stderr. */
  verbose?: boolean;
}

/**
 * Starts mon + memstore OSD + radosgw and creates an S3 user. Cleans up after itself on failure, and
 * tries once more on fresh ports (a port found free can be taken by another process before Ceph binds it).
 */
export async function startRgw(opts: StartRgwOptions = {}): Promise<RgwServer> {
  const reason = rgwUnavailable();
  if (reason) throw new Error(reason);
  try {
    return await startOnce(opts);
  } catch (err) {
    process.stderr.write(`[ceph-rgw] first start failed, retrying on other ports: ${(err as Error).message.split('\n')[0]}\n`);
    return startOnce(opts);
  }
}

async function startOnce(opts: StartRgwOptions): Promise<RgwServer> {
  const t0 = Date.now();
  const step = (msg: string): void => {
    if (opts.verbose) process.stderr.write(`[ceph-rgw] +${Date.now() - t0} ms ${msg}\n`);
  };
  const accessKeyId = opts.accessKeyId ?? 'HEXREPOTESTACCESSKEY';
  const secretAccessKey = opts.secretAccessKey ?? 'hexrepo-test-secret-key-0123456789abcdef';
  const dir = await mkdtemp(join(tmpdir(), 'hexrepo-ceph-'));
  installExitHook();
  liveDirs.add(dir);
  startWatchdog(dir);
  try {
    const [monV2, monV1, rgwPort] = await freePorts(3);
    const [msMin, msMax] = await freePortRange(24);
    const fsid = randomUUID();
    const conf = join(dir, 'ceph.conf');
    const keyring = join(dir, 'keyring');
    const monAddr = `[v2:127.0.0.1:${monV2},v1:127.0.0.1:${monV1}]`;
    for (const sub of ['run', 'log', 'mon', 'osd']) await mkdir(join(dir, sub));
    await writeFile(
      conf,
      [
        '[global]',
        `fsid = ${fsid}`,
        `mon host = ${monAddr}`,
        'public network = 127.0.0.0/8',
        'auth cluster required = none',
        'auth service required = none',
        'auth client required = none',
        'auth supported = none',
        // Without this radosgw hangs at start (get_initial_auth_request returned -13) when auth is off.
        'ms mon client mode = crc secure',
        'osd pool default size = 1',
        'osd pool default min size = 1',
        'osd pool default pg num = 8',
        'osd pool default pgp num = 8',
        'osd pool default pg autoscale mode = off',
        'osd crush chooseleaf type = 0',
        'mon allow pool size one = true',
        'mon warn on pool no redundancy = false',
        'paxos propose interval = 0.05',
        'mon client hunt interval = 0.5',
        'ms bind ipv6 = false',
        `ms bind port min = ${msMin}`,
        `ms bind port max = ${msMax}`,
        `run dir = ${dir}/run`,
        `admin socket = ${dir}/run/$name.asok`,
        `pid file = ${dir}/run/$name.pid`,
        `log file = ${dir}/log/$name.log`,
        `keyring = ${keyring}`,
        '',
        '[mon]',
        `mon data = ${dir}/mon/$name`,
        '',
        '[osd]',
        `osd data = ${dir}/osd/$id`,
        'osd objectstore = memstore',
        'memstore device bytes = 2147483648',
        '',
        '[client.rgw]',
        `rgw frontends = beast endpoint=127.0.0.1:${rgwPort} tcp_nodelay=1`,
        '',
      ].join('\n'),
    );
    const ceph = (...args: string[]): Promise<string> => run('ceph', ['-c', conf, ...args]);

    await run('ceph-authtool', ['--create-keyring', keyring, '--gen-key', '-n', 'mon.', '--cap', 'mon', 'allow *']);
    const monmap = join(dir, 'monmap');
    await run('monmaptool', ['--create', '--fsid', fsid, '--addv', 'a', monAddr, monmap]);
    await run('ceph-mon', ['-c', conf, '--mkfs', '-i', 'a', '--monmap', monmap, '--keyring', keyring]);
    await run('ceph-mon', ['-c', conf, '-i', 'a']);
    step('mon started');
    await waitFor('the monitor', 30_000, async () => (await run('ceph', ['-c', conf, '--connect-timeout', '5', 'mon', 'stat'], 10_000)).includes('quorum'));
    step('mon in quorum');

    const osdUuid = randomUUID();
    const osdId = (await ceph('osd', 'new', osdUuid)).trim();
    if (!/^\d+$/.test(osdId)) throw new Error(`unexpected osd id ${JSON.stringify(osdId)}`);
    await mkdir(join(dir, 'osd', osdId), { recursive: true });
    await run('ceph-osd', ['-c', conf, '-i', osdId, '--mkfs', '--osd-uuid', osdUuid]);
    await run('ceph-osd', ['-c', conf, '-i', osdId]);
    step(`osd.${osdId} started`);
    await waitFor('the OSD to be up', 60_000, async () => / 1 up/.test(await ceph('osd', 'stat')));
    step('osd up');

    await run('radosgw', ['-c', conf, '-n', 'client.rgw']);
    step('radosgw started');
    const endpoint = `http://127.0.0.1:${rgwPort}`;
    await waitFor('radosgw to answer HTTP', 90_000, async () => {
      const res = await fetch(`${endpoint}/`, { signal: AbortSignal.timeout(2_000) });
      await res.arrayBuffer();
      return true;
    });
    step('radosgw answers');
    await run('radosgw-admin', ['-c', conf, '-n', 'client.admin', 'user', 'create', '--uid=test', '--display-name=test', `--access-key=${accessKeyId}`, `--secret=${secretAccessKey}`]);
    step('user created');

    let stopped: Promise<void> | undefined;
    return {
      endpoint,
      accessKeyId,
      secretAccessKey,
      region: 'us-east-1',
      dir,
      startMs: Date.now() - t0,
      stop: () => (stopped ??= stopCluster(dir)),
    };
  } catch (err) {
    const logs = await collectLogs(dir);
    await stopCluster(dir);
    throw new Error(`starting Ceph RGW failed: ${(err as Error).message}${logs}`, { cause: err });
  }
}

async function collectLogs(dir: string): Promise<string> {
  const logDir = join(dir, 'log');
  if (!existsSync(logDir)) return '';
  let out = '';
  for (const f of readdirSync(logDir)) {
    const text = readFileSync(join(logDir, f), 'utf8');
    out += `\n--- ${f} (last lines) ---\n${text.split('\n').slice(-15).join('\n')}`;
  }
  return out;
}
