/**
 * `hexrepo serve --workers 2`, the built CLI as a real process on port 0: both workers answer on the
 * one port; a publish through one is served by every worker (registry files and the publish API);
 * a revoked token is refused by every worker; a worker killed with SIGKILL is replaced while the
 * server keeps answering; SIGTERM lets a request in flight finish, then every process exits, 0.
 * Requests go on fresh connections (the primary hands connections to workers in turn) and loops
 * are bounded by a count, never by a clock.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { request } from 'node:http';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { availableParallelism, hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hexrepo } from '../../../e2e/support/cli.js';
import { startServe, type ServeProcess } from '../../../e2e/support/serve.js';
import { mergeMetrics } from '../src/cluster.js';
import { resolveServeConfig } from '../src/serve-config.js';
import { until } from '../../../e2e/support/until.js';

const FIXTURES = new URL('../../../test-fixtures/tarballs/', import.meta.url).pathname;

interface Reply {
  status: number;
  body: string;
}

/** One request on a connection of its own. */
function fresh(url: string, path: string, opts: { method?: string; headers?: Record<string, string>; body?: Uint8Array } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request(`${url}${path}`, { method: opts.method ?? 'GET', headers: opts.headers, agent: false }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}

/** Which worker served each logged request for `path` with `status`. */
function servedBy(server: ServeProcess, path: string, status?: number): Set<number> {
  return new Set(server.logs.filter((l) => l.msg === 'request' && l.path === path && (status === undefined || l.status === status)).map((l) => l.worker as number));
}

/** The exit status of a server that was already signalled. */
function exitOf(server: ServeProcess): Promise<number | null> {
  return new Promise((resolve) => (server.child.exitCode !== null || server.child.signalCode !== null ? resolve(server.child.exitCode) : server.child.on('exit', (code) => resolve(code))));
}

/**
 * Start a publish with Expect: 100-continue; once "100 Continue" shows a server process is handling
 * it, SIGTERM the server, wait until `processes` processes log that they are shutting down, then
 * send the body. Resolves with the response status.
 */
function uploadWhileStopping(server: ServeProcess, token: string, tarball: Uint8Array, processes: number): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    const headers = { authorization: token, 'content-type': 'application/octet-stream', 'content-length': String(tarball.length), expect: '100-continue', accept: 'application/json' };
    const req = request(`${server.url}/api/publish`, { method: 'POST', agent: false, headers }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.on('continue', () => {
      const stopping = (): number => server.logs.filter((l) => l.msg === 'shutting down: finishing requests in flight').length;
      server.child.kill('SIGTERM');
      void until('every process is shutting down', () => stopping() === processes, 20000).then(() => req.end(tarball), reject);
    });
    req.flushHeaders();
  });
}

describe('hexrepo serve --workers 2', () => {
  let dir: string;
  let repo: string;
  let server: ServeProcess;
  let token: string;
  let workers: number[];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'hexrepo-workers-'));
    repo = join(dir, 'repo');
    expect((await hexrepo(['init', 'repo', '--name', 'acme'], { cwd: dir })).status).toBe(0);
    token = (JSON.parse((await hexrepo(['token', 'create', '--label', 'ci', '--scope', 'read', '--scope', 'write', '--json'], { cwd: repo })).stdout) as { token: string }).token;
    server = await startServe(['--workers', '2'], { cwd: repo });
    // The start-up line comes on stderr, the log lines on stdout: wait for both workers' lines.
    const listening = (): Record<string, unknown>[] => server.logs.filter((l) => l.msg === 'worker listening');
    await until('both workers are listening', () => listening().length === 2, 10000);
    workers = listening().map((l) => l.forked as number);
  }, 60_000);

  afterAll(async () => {
    if (server.child.exitCode === null) server.child.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
  });

  it('starts two workers on one port, and each serves requests; log lines carry the worker id', async () => {
    expect(workers).toHaveLength(2);
    expect(server.stderr()).toContain('2 workers');
    let health = 0;
    await until(
      'both workers serve /health',
      async () => {
        expect((await fresh(server.url, '/health')).status).toBe(200);
        health++;
        return servedBy(server, '/health').size === 2;
      },
      10000,
    );
    expect([...servedBy(server, '/health')].sort()).toEqual([...workers].sort());
    // /metrics counts the requests of every worker, whichever answers the scrape
    const metrics = await fresh(server.url, '/metrics');
    expect(metrics.body).toContain(`hexrepo_http_requests_total{method="GET",route="/health",status="200"} ${health}`);
  }, 60_000);

  it('a publish through one worker is served by every worker, registry files and publish API alike', async () => {
    const tarball = await readFile(join(FIXTURES, 'foo-0.1.0.tar'));
    const pub = await fresh(server.url, '/api/publish', { method: 'POST', headers: { authorization: token, 'content-type': 'application/octet-stream', accept: 'application/json' }, body: tarball });
    expect(pub.status, pub.body).toBe(201);
    // The registry files: each worker's read cache revalidates, so every worker soon serves foo.
    await until(
      'every worker serves packages/foo',
      async () => {
        const res = await fresh(server.url, '/packages/foo', { headers: { authorization: token } });
        expect([200, 404]).toContain(res.status);
        return servedBy(server, '/packages/foo', 200).size === 2;
      },
      20000,
    );
    // The publish API: at once, on every worker (a worker catches up before answering).
    await until(
      'every worker answers the release',
      async () => {
        const res = await fresh(server.url, '/api/packages/foo/releases/0.1.0', { headers: { authorization: token, accept: 'application/json' } });
        expect(res.status, res.body).toBe(200);
        return servedBy(server, '/api/packages/foo/releases/0.1.0', 200).size === 2;
      },
      10000,
    );
    // A write through either worker on the release the other published: retire, then unretire.
    for (const method of ['POST', 'DELETE', 'POST', 'DELETE']) {
      const body = method === 'POST' ? Buffer.from(JSON.stringify({ reason: 'other', message: 'test' })) : undefined;
      const res = await fresh(server.url, '/api/packages/foo/releases/0.1.0/retire', { method, headers: { authorization: token, 'content-type': 'application/json', accept: 'application/json' }, ...(body ? { body } : {}) });
      expect(res.status, res.body).toBeLessThan(300);
    }
  }, 90_000);

  it('a token created or revoked while serving is accepted, then refused, by every worker', async () => {
    // Each worker re-reads the host's credentials when they change (polled every 2 s) and logs it.
    const reloaded = (from: number): Set<number> =>
      new Set(
        server.logs
          .slice(from)
          .filter((l) => l.msg === 'credentials reloaded' && l.worker !== 0)
          .map((l) => l.worker as number),
      );
    const answeredBy = (from: number): Set<number> =>
      new Set(
        server.logs
          .slice(from)
          .filter((l) => l.msg === 'request' && l.path === '/names')
          .map((l) => l.worker as number),
      );
    const createdAt = server.logs.length;
    const created = JSON.parse((await hexrepo(['token', 'create', '--label', 'temp', '--scope', 'read', '--json'], { cwd: repo })).stdout) as { token: string; id: string };
    await until('every worker re-reads the credentials', () => reloaded(createdAt).size === 2, 30000);
    const acceptedFrom = server.logs.length;
    await until(
      'every worker has answered the new token',
      async () => {
        const res = await fresh(server.url, '/names', { headers: { authorization: created.token } });
        expect(res.status).toBe(200);
        return answeredBy(acceptedFrom).size === 2;
      },
      10000,
    );
    expect(
      server.logs
        .slice(acceptedFrom)
        .filter((l) => l.msg === 'request' && l.path === '/names')
        .map((l) => l.who),
    ).toEqual(expect.arrayContaining([`token:${created.id}`]));

    const revokedAt = server.logs.length;
    expect((await hexrepo(['token', 'revoke', created.id], { cwd: repo })).status).toBe(0);
    await until('every worker re-reads the credentials', () => reloaded(revokedAt).size === 2, 30000);
    const refusedFrom = server.logs.length;
    await until(
      'every worker has refused the revoked token',
      async () => {
        const res = await fresh(server.url, '/names', { headers: { authorization: created.token } });
        expect(res.status).toBe(401);
        return answeredBy(refusedFrom).size === 2;
      },
      10000,
    );
  }, 90_000);

  it('a worker killed with SIGKILL is replaced, what it left half-written is swept, and the server answers throughout', async () => {
    const victim = server.logs.find((l) => l.msg === 'worker listening' && l.forked === workers[0])!.pid as number;
    // A temp file as the victim would have left it, cut off mid-write (named after its writer:
    // .tmp-HOSTTAG.PID.START-…, HOSTTAG from the host name and boot id, START from /proc).
    const boot = (await readFile('/proc/sys/kernel/random/boot_id', 'utf8')).trim();
    const hostTag = createHash('sha256').update(`${hostname()}\0${boot}`).digest('hex').slice(0, 10);
    const stat = await readFile(`/proc/${victim}/stat`, 'utf8');
    const start = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]!;
    const leftover = join(repo, 'public', `.tmp-${hostTag}.${victim}.${start}-0123456789ab-names`);
    await writeFile(leftover, 'half a registry file');
    process.kill(victim, 'SIGKILL');
    await until('the primary notices the death', () => server.logs.some((l) => l.msg === 'worker exited unexpectedly; starting a new one' && l.pid === victim && l.signal === 'SIGKILL'), 10000);
    expect((await fresh(server.url, '/health')).status).toBe(200);
    await until('a new worker listens', () => server.logs.some((l) => l.msg === 'worker restarted and listening'), 20000);
    // The primary swept the dead worker's leftovers before starting its replacement.
    expect(existsSync(leftover)).toBe(false);
    expect(server.logs.some((l) => l.msg === 'removed temp files and locks left by a process that died' && l.temps === 1)).toBe(true);
    const replacement = server.logs.find((l) => l.msg === 'worker restarted and listening')!.forked as number;
    expect(workers).not.toContain(replacement);
    await until(
      'the new worker serves',
      async () => {
        expect((await fresh(server.url, '/health')).status).toBe(200);
        return servedBy(server, '/health').has(replacement);
      },
      10000,
    );
    expect(server.child.exitCode).toBeNull();
  }, 60_000);

  it('SIGTERM to the primary: a request in flight finishes, every worker exits, then the primary, with 0', async () => {
    const pids = server.logs.filter((l) => l.msg === 'worker listening' || l.msg === 'worker restarted and listening').map((l) => l.pid as number);
    const tarball = await readFile(join(FIXTURES, 'foo-0.2.0.tar'));
    const upload = uploadWhileStopping(server, token, tarball, 3);
    expect(await upload).toBe(201);
    expect(await exitOf(server)).toBe(0);
    for (const pid of pids) expect(() => process.kill(pid, 0)).toThrow(expect.objectContaining({ code: 'ESRCH' }) as Error);
    expect(
      server.logs
        .filter((l) => l.msg === 'stopped')
        .map((l) => l.worker)
        .sort(),
    ).toEqual([0, ...workers.slice(1), server.logs.find((l) => l.msg === 'worker restarted and listening')!.forked].sort());
  }, 60_000);
});

describe('hexrepo serve --workers 1', () => {
  it('is one process, as before: no workers forked, no worker field in the logs; SIGTERM lets an upload finish', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hexrepo-workers1-'));
    let server: ServeProcess | undefined;
    try {
      expect((await hexrepo(['init', 'repo', '--name', 'acme'], { cwd: dir })).status).toBe(0);
      const token = (JSON.parse((await hexrepo(['token', 'create', '--label', 'ci', '--scope', 'write', '--json'], { cwd: join(dir, 'repo') })).stdout) as { token: string }).token;
      const started = await startServe(['--workers', '1'], { cwd: join(dir, 'repo') });
      server = started;
      expect((await fresh(server.url, '/health')).status).toBe(200);
      await until('the request is logged', () => started.logs.some((l) => l.msg === 'request'), 10000);
      // SIGTERM lets an upload in flight finish here too (one that asked for 100 Continue included).
      expect(await uploadWhileStopping(server, token, await readFile(join(FIXTURES, 'foo-0.1.0.tar')), 1)).toBe(201);
      expect(await exitOf(server)).toBe(0);
      expect(server.logs.some((l) => l.msg === 'worker listening')).toBe(false);
      expect(server.logs.filter((l) => 'worker' in l)).toEqual([]);
      expect(server.logs.find((l) => l.msg === 'listening')).toMatchObject({ workers: 1 });
      expect(server.stderr()).not.toMatch(/; \d+ workers\)/);
    } finally {
      if (server && server.child.exitCode === null && server.child.signalCode === null) {
        server.child.kill('SIGKILL');
        await exitOf(server);
      }
      await rm(dir, { recursive: true, force: true });
    }
  }, 60_000);
});

describe('access "auto" with workers', () => {
  it('is decided once by the primary: a worker replaced after a token was created stays public like the others', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hexrepo-workers-auto-'));
    let server: ServeProcess | undefined;
    try {
      expect((await hexrepo(['init', 'repo', '--name', 'acme'], { cwd: dir })).status).toBe(0);
      const repo = join(dir, 'repo');
      // No token yet: "auto" makes the repository public.
      server = await startServe(['--workers', '2'], { cwd: repo });
      const started = server;
      await until('both workers listen', () => started.logs.filter((l) => l.msg === 'worker listening').length === 2, 10000);
      expect(started.stderr()).toContain('(public;');
      expect((await hexrepo(['token', 'create', '--label', 'later', '--scope', 'read'], { cwd: repo })).status).toBe(0);
      const victim = started.logs.find((l) => l.msg === 'worker listening')!.pid as number;
      process.kill(victim, 'SIGKILL');
      await until('a new worker listens', () => started.logs.some((l) => l.msg === 'worker restarted and listening'), 20000);
      const replacement = started.logs.find((l) => l.msg === 'worker restarted and listening')!.forked as number;
      // Anonymous reads are served by every worker, the replacement included.
      await until(
        'the replacement serves an anonymous read',
        async () => {
          expect((await fresh(started.url, '/names')).status).toBe(200);
          return servedBy(started, '/names').has(replacement);
        },
        10000,
      );
    } finally {
      if (server && server.child.exitCode === null && server.child.signalCode === null) {
        server.child.kill('SIGTERM');
        await exitOf(server);
      }
      await rm(dir, { recursive: true, force: true });
    }
  }, 60_000);
});

describe('the default number of workers', () => {
  // Both are started without --workers: the default follows whether the server publishes.
  it('is one process when the publish API is on (writers in several processes contend), one per core when read-only', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hexrepo-workers-default-'));
    const started: ServeProcess[] = [];
    try {
      expect((await hexrepo(['init', 'repo', '--name', 'acme'], { cwd: dir })).status).toBe(0);
      const publishing = await startServe([], { cwd: join(dir, 'repo') });
      started.push(publishing);
      await until('the server logs that it listens', () => publishing.logs.some((l) => l.msg === 'listening'), 10000);
      expect(publishing.logs.find((l) => l.msg === 'listening')).toMatchObject({ workers: 1 });
      expect(publishing.logs.some((l) => l.msg === 'worker listening')).toBe(false);
      // The same folder without a signing key: read-only, every core.
      const readOnly = await startServe([join(dir, 'repo', 'public'), '--name', 'acme'], { cwd: dir });
      started.push(readOnly);
      await until('the server logs that it listens', () => readOnly.logs.some((l) => l.msg === 'listening'), 10000);
      expect(readOnly.logs.find((l) => l.msg === 'listening')).toMatchObject({ workers: availableParallelism() });
      if (availableParallelism() > 1) expect(readOnly.stderr()).toContain(`${availableParallelism()} workers`);
    } finally {
      for (const server of started) {
        if (server.child.exitCode === null && server.child.signalCode === null) {
          server.child.kill('SIGTERM');
          await exitOf(server);
        }
      }
      await rm(dir, { recursive: true, force: true });
    }
  }, 60_000);
});

describe('the workers setting', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'hexrepo-workers-cfg-'));
    await mkdir(join(dir, 'public'));
    await writeFile(join(dir, 'hexrepo.json'), JSON.stringify({ name: 'acme' }));
    await writeFile(join(dir, 'serve.json'), JSON.stringify({ workers: 3 }));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });
  const resolveWith = (values: Record<string, unknown>, env: Record<string, string> = {}) => resolveServeConfig({ values, env, cwd: dir, positional: undefined });

  it('defaults to one worker per core; flag beats HEXREPO_WORKERS beats the config file', async () => {
    expect(await resolveWith({})).toMatchObject({ workers: availableParallelism(), sources: { workers: 'default' } });
    expect(await resolveWith({ config: 'serve.json' })).toMatchObject({ workers: 3 });
    expect(await resolveWith({ config: 'serve.json' }, { HEXREPO_WORKERS: '2' })).toMatchObject({ workers: 2, sources: { workers: 'HEXREPO_WORKERS' } });
    expect(await resolveWith({ config: 'serve.json', workers: '1' }, { HEXREPO_WORKERS: '2' })).toMatchObject({ workers: 1, sources: { workers: '--workers' } });
  });

  it('refuses what is not a count of processes, naming the setting and its source', async () => {
    for (const bad of ['0', '-1', '1.5', 'many', '257']) {
      await expect(resolveWith({ workers: bad })).rejects.toMatchObject({ code: 'CONFIG_INVALID', message: expect.stringMatching(/^workers \(from --workers\) must be a whole number of worker processes, 1-256/) as string });
    }
    const res = await hexrepo(['serve', '--workers', '0'], { cwd: dir });
    expect(res.status).toBe(1);
    expect(res.stderr).toContain('error[CONFIG_INVALID]: workers (from --workers)');
  });
});

describe('mergeMetrics', () => {
  it('sums each series across workers and keeps every family together under its HELP and TYPE', () => {
    const a = ['# HELP r Requests.', '# TYPE r counter', 'r{route="/a"} 2', '# HELP up Uptime.', '# TYPE up gauge', 'hexrepo_process_uptime_seconds 5', ''].join('\n');
    const b = ['# HELP r Requests.', '# TYPE r counter', 'r{route="/a"} 3', 'r{route="/b"} 1', '# HELP up Uptime.', '# TYPE up gauge', 'hexrepo_process_uptime_seconds 7', ''].join('\n');
    expect(mergeMetrics([a, b, ''])).toBe(['# HELP r Requests.', '# TYPE r counter', 'r{route="/a"} 5', 'r{route="/b"} 1', '# HELP up Uptime.', '# TYPE up gauge', 'hexrepo_process_uptime_seconds 7', ''].join('\n'));
  });
});
