#!/usr/bin/env node
// `pnpm bench serve`: HTTP throughput of `hexrepo serve` (private repository, a read token checked
// on every request) with one worker per core (--workers N; the read-only default) and with --workers 1, next to nginx
// serving the same public/ folder as static files (no auth, sendfile), and a bare node:http server on
// as many workers sending the same bytes and headers from memory (bench/_bare-http.mjs: no auth, no
// logs; the ceiling of a Node server here), all measured with wrk in the same run on:
//   GET /packages/NAME · GET /tarballs/NAME-VERSION.tar
// Options: --duration N (seconds per wrk run, default 10) --connections N (64) --threads N (2).
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, linkSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { get as httpGet } from 'node:http';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { cli, freePort, intArg, log, machine, pkgName, requireBuilt, ROOT as root, startServe, stop, today } from './_lib.mjs';

const DURATION = intArg('duration', 10);
const CONNECTIONS = intArg('connections', 64);
const THREADS = intArg('threads', 2);
const CORPUS_TARBALLS = 2000; // hard-linked from the build benchmark's corpus when present
const SMALL_PACKAGES = 20; // otherwise generated: 20 packages × 10 versions
const SMALL_VERSIONS = 10;
const NGINX = '/usr/sbin/nginx';
const WRK = '/usr/bin/wrk';
requireBuilt();
for (const [file, hint] of [
  [NGINX, 'nginx is needed as the baseline'],
  [WRK, 'wrk is needed to generate load'],
]) {
  if (!existsSync(file)) {
    console.error(`${file} missing: ${hint}`);
    process.exit(1);
  }
}

/** Tarballs into TARBALLS: hard links to the cached build corpus, or a small generated set. */
async function fillTarballs(tarballs) {
  const corpusDir = join(tmpdir(), 'hexrepo-bench-corpus-2000x10');
  if (existsSync(join(corpusDir, 'done'))) {
    const files = readdirSync(corpusDir)
      .filter((f) => f.endsWith('.tar'))
      .sort()
      .slice(0, CORPUS_TARBALLS);
    log(`hard-linking ${files.length} tarballs from ${corpusDir} …`);
    for (const f of files) linkSync(join(corpusDir, f), join(tarballs, f));
    return files;
  }
  const { createTarball } = await import(join(root, 'packages/tarball/dist/index.js'));
  log(`generating ${SMALL_PACKAGES * SMALL_VERSIONS} tarballs (no cached corpus; run pnpm bench build to make one) …`);
  const files = [];
  for (let i = 0; i < SMALL_PACKAGES; i++) {
    for (let v = 0; v < SMALL_VERSIONS; v++) {
      const name = pkgName(i);
      const version = `1.${v}.0`;
      const deps = i > 0 ? [{ package: pkgName(i - 1), requirement: '~> 1.0', optional: false, app: pkgName(i - 1) }] : [];
      const src = `-module(${name}).\n-export([v/0]).\nv() -> "${version}".\n% ${'x'.repeat(200 + ((i * 7 + v) % 300))}\n`;
      const { tarball } = createTarball({ name, version, app: name, description: `Synthetic package ${i}`, licenses: ['Apache-2.0'], links: [], buildTools: ['rebar3'], requirements: deps }, [
        { path: `src/${name}.erl`, contents: new TextEncoder().encode(src) },
        { path: `src/${name}.app.src`, contents: new TextEncoder().encode(`{application, ${name}, [{vsn, "${version}"}]}.\n`) },
      ]);
      const file = `${name}-${version}.tar`;
      writeFileSync(join(tarballs, file), tarball);
      files.push(file);
    }
  }
  return files;
}

/** Starts Erlang's inets httpd on PUBLIC the way the Hex self-hosting guide does; resolves with its base URL. */
async function startInets(serverRoot, publicDir) {
  mkdirSync(serverRoot, { recursive: true });
  const port = await freePort();
  const config = `[{port, ${port}}, {server_name, "bench"}, {server_root, ${JSON.stringify(serverRoot)}}, {document_root, ${JSON.stringify(publicDir)}}, {bind_address, {127,0,0,1}}]`;
  const child = spawn('erl', ['-noshell', '-eval', `{ok, _} = application:ensure_all_started(inets), {ok, _} = inets:start(httpd, ${config}), receive stop -> ok end.`], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`inets exited (${child.exitCode}):\n${stderr}`);
    try {
      await fetch(`${url}/names`);
      return { child, url };
    } catch {
      if (Date.now() > deadline) throw new Error(`inets not answering on ${url}:\n${stderr}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

/** Starts bench/_bare-http.mjs on PUBLIC with N workers for PATHS; resolves with its base URL. */
async function startBare(publicDir, workers, paths) {
  const port = await freePort();
  const child = spawn(process.execPath, [join(root, 'bench/_bare-http.mjs'), publicDir, String(port), String(workers), ...paths], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  await new Promise((resolve, reject) => {
    child.stdout.on('data', (d) => {
      out += d;
      if (out.includes('listening')) resolve();
    });
    child.on('exit', (code, sig) => reject(new Error(`bare node:http exited (${code ?? sig}):\n${stderr}`)));
  });
  return { child, url: `http://127.0.0.1:${port}` };
}

/** Starts nginx on PUBLIC (static files, no auth) in the foreground; resolves with its base URL. */
async function startNginx(prefix, publicDir) {
  const port = await freePort();
  mkdirSync(join(prefix, 'logs'), { recursive: true });
  const conf = join(prefix, 'nginx.conf');
  const asRoot = process.getuid?.() === 0;
  writeFileSync(
    conf,
    `${asRoot ? 'user root;\n' : ''}worker_processes auto;
daemon off;
pid ${join(prefix, 'nginx.pid')};
error_log ${join(prefix, 'logs/error.log')} warn;
events { worker_connections 4096; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  etag on;
  keepalive_requests 1000000;
  default_type application/octet-stream;
  client_body_temp_path ${join(prefix, 'client_body')};
  proxy_temp_path ${join(prefix, 'proxy')};
  fastcgi_temp_path ${join(prefix, 'fastcgi')};
  uwsgi_temp_path ${join(prefix, 'uwsgi')};
  scgi_temp_path ${join(prefix, 'scgi')};
  server {
    listen 127.0.0.1:${port};
    root ${publicDir};
  }
}
`,
  );
  const child = spawn(NGINX, ['-c', conf, '-p', prefix], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const exited = new Promise((resolve) => child.on('exit', (code, sig) => resolve(code ?? sig)));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 10_000;
  for (;;) {
    const early = await Promise.race([exited, new Promise((r) => setTimeout(() => r(undefined), 100))]);
    if (early !== undefined) {
      const errLog = existsSync(join(prefix, 'logs/error.log')) ? readFileSync(join(prefix, 'logs/error.log'), 'utf8') : '';
      throw new Error(`nginx exited (${early}):\n${stderr}${errLog}`);
    }
    try {
      await fetch(`${url}/public_key`);
      return { child, url };
    } catch {
      if (Date.now() > deadline) throw new Error(`nginx not answering on ${url}:\n${stderr}`);
    }
  }
}

/**
 * GET on a fresh connection: a pooled keep-alive connection idle longer than the server's
 * keepAliveTimeout (65 s; the runs in between take longer) may be closed just as it is reused.
 */
async function expectStatus(url, headers, want, what) {
  const status = await new Promise((resolve, reject) => {
    const req = httpGet(url, { headers, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode));
    });
    req.on('error', reject);
  });
  if (status !== want) throw new Error(`${what}: GET ${url} returned ${status}, expected ${want}`);
}

/** wrk latency value ("635.91us", "1.09ms", "2.00s") in milliseconds. */
function toMs(s) {
  const m = /^([\d.]+)(us|ms|s|m|h)$/.exec(s);
  if (!m) throw new Error(`unparsed wrk latency: ${s}`);
  return Number(m[1]) * { us: 1e-3, ms: 1, s: 1e3, m: 60e3, h: 3600e3 }[m[2]];
}

function wrk(url, headers = []) {
  const args = ['-t', String(THREADS), '-c', String(CONNECTIONS), '-d', `${DURATION}s`, '--latency', ...headers.flatMap((h) => ['-H', h]), url];
  const res = spawnSync(WRK, args, { encoding: 'utf8' });
  if (res.status !== 0) throw new Error(`wrk ${url} failed (${res.status}):\n${res.stdout}${res.stderr}`);
  const out = res.stdout;
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(out);
  const p50 = /^\s+50%\s+(\S+)/m.exec(out);
  const p99 = /^\s+99%\s+(\S+)/m.exec(out);
  if (!rps || !p50 || !p99) throw new Error(`unparsed wrk output:\n${out}`);
  const non2xx = /Non-2xx or 3xx responses:\s+(\d+)/.exec(out);
  if (non2xx) throw new Error(`wrk ${url}: ${non2xx[1]} non-2xx/3xx responses:\n${out}`);
  const errors = /Socket errors:.*/.exec(out);
  if (errors) log(`  wrk: ${errors[0]}`);
  const requests = /(\d+) requests in/.exec(out);
  return { rps: Number(rps[1]), p50: toMs(p50[1]), p99: toMs(p99[1]), requests: Number(requests?.[1] ?? 0) };
}

// --- setup
const work = mkdtempSync(join(tmpdir(), 'hexrepo-bench-serve-'));
const dir = join(work, 'repo');
const publicDir = join(dir, 'public');
let hexrepo;
let hexrepo1;
let hexrepoInfo;
let bare;
let nginx;
let inets;
let failed = false;
const onSignal = async () => {
  await stopAll();
  rmSync(work, { recursive: true, force: true });
  process.exit(130);
};
const stopAll = () =>
  Promise.allSettled([
    stop(hexrepo?.child, 'hexrepo'),
    stop(hexrepo1?.child, 'hexrepo --workers 1'),
    stop(hexrepoInfo?.child, 'hexrepo --log-level info'),
    stop(bare?.child, 'bare node:http'),
    stop(nginx?.child, 'nginx'),
    stop(inets?.child, 'inets'),
  ]);
process.once('SIGINT', onSignal);
process.once('SIGTERM', onSignal);
try {
  cli(['init', dir, '--name', 'bench']);
  const files = await fillTarballs(join(publicDir, 'tarballs'));
  log(`hexrepo build (${files.length} tarballs) …`);
  cli(['build', dir, '--quiet']);
  const token = JSON.parse(cli(['token', 'create', dir, '--label', 'bench', '--scope', 'read', '--json'])).token;
  if (typeof token !== 'string' || !token) throw new Error('token create printed no token');

  // One package from the middle of the set, and its first version's tarball.
  const names = [...new Set(files.map((f) => f.replace(/-[^-]+\.tar$/, '')))].sort();
  const pkg = names[Math.floor(names.length / 2)];
  const tarball = files.filter((f) => f.startsWith(`${pkg}-`)).sort()[0];
  const routes = [
    { route: `GET /packages/${pkg}`, path: `/packages/${pkg}` },
    { route: `GET /tarballs/${tarball}`, path: `/tarballs/${tarball}` },
  ];

  log(`starting hexrepo serve (--workers ${availableParallelism()}, then --workers 1) and nginx …`);
  const authEnv = { AUTH_USERNAME: 'bench', AUTH_PASSWORD: 'bench-password' };
  // The repository has its signing key (publishing on), whose default is one process: ask for one
  // worker per core, the default of a read-only server, explicitly.
  hexrepo = startServe(dir, authEnv, ['--workers', String(availableParallelism())]);
  hexrepo.url = await hexrepo.url;
  const workers = Number(/; (\d+) workers\)/.exec(hexrepo.stderr())?.[1] ?? 1);
  hexrepo1 = startServe(dir, authEnv, ['--workers', '1']);
  hexrepo1.url = await hexrepo1.url;
  // The default log level: a JSON line per request, to a pipe this process drains between runs (the server buffers meanwhile, as it would for a slow log collector).
  hexrepoInfo = startServe(dir, authEnv, ['--workers', String(availableParallelism()), '--log-level', 'info']);
  hexrepoInfo.url = await hexrepoInfo.url;
  bare = await startBare(
    publicDir,
    availableParallelism(),
    routes.map((r) => r.path),
  );
  nginx = await startNginx(join(work, 'nginx'), publicDir);
  inets = await startInets(join(work, 'inets'), publicDir);
  log(`  hexrepo ${hexrepo.url} (${workers} workers) · hexrepo --workers 1 ${hexrepo1.url} · hexrepo --log-level info ${hexrepoInfo.url} · bare node:http ${bare.url} · nginx ${nginx.url} · inets ${inets.url}`);

  const auth = { Authorization: token };
  for (const { path } of routes) {
    await expectStatus(`${hexrepo.url}${path}`, auth, 200, 'hexrepo with the token');
    await expectStatus(`${hexrepo.url}${path}`, {}, 401, 'hexrepo without a token');
    await expectStatus(`${hexrepo1.url}${path}`, auth, 200, 'hexrepo --workers 1 with the token');
    await expectStatus(`${hexrepoInfo.url}${path}`, auth, 200, 'hexrepo --log-level info with the token');
    await expectStatus(`${bare.url}${path}`, {}, 200, 'bare node:http');
    await expectStatus(`${nginx.url}${path}`, {}, 200, 'nginx');
    await expectStatus(`${inets.url}${path}`, {}, 200, 'inets');
  }

  const rows = [];
  for (const { route, path } of routes) {
    log(`wrk ${route}: hexrepo, ${workers} workers (${DURATION} s) …`);
    const h = wrk(`${hexrepo.url}${path}`, [`Authorization: ${token}`]);
    log(`  ${h.rps.toFixed(0)} req/s, p50 ${h.p50.toFixed(2)} ms, p99 ${h.p99.toFixed(2)} ms`);
    log(`wrk ${route}: hexrepo --workers 1 (${DURATION} s) …`);
    const h1 = wrk(`${hexrepo1.url}${path}`, [`Authorization: ${token}`]);
    log(`  ${h1.rps.toFixed(0)} req/s, p50 ${h1.p50.toFixed(2)} ms, p99 ${h1.p99.toFixed(2)} ms`);
    log(`wrk ${route}: hexrepo, ${workers} workers, --log-level info (${DURATION} s) …`);
    const hi = wrk(`${hexrepoInfo.url}${path}`, [`Authorization: ${token}`]);
    log(`  ${hi.rps.toFixed(0)} req/s, p50 ${hi.p50.toFixed(2)} ms, p99 ${hi.p99.toFixed(2)} ms`);
    log(`wrk ${route}: bare node:http, ${workers} workers (${DURATION} s) …`);
    const b = wrk(`${bare.url}${path}`);
    log(`  ${b.rps.toFixed(0)} req/s, p50 ${b.p50.toFixed(2)} ms, p99 ${b.p99.toFixed(2)} ms`);
    log(`wrk ${route}: nginx (${DURATION} s) …`);
    const n = wrk(`${nginx.url}${path}`);
    log(`  ${n.rps.toFixed(0)} req/s, p50 ${n.p50.toFixed(2)} ms, p99 ${n.p99.toFixed(2)} ms`);
    log(`wrk ${route}: inets (${DURATION} s) …`);
    const i = wrk(`${inets.url}${path}`);
    log(`  ${i.rps.toFixed(0)} req/s, p50 ${i.p50.toFixed(2)} ms, p99 ${i.p99.toFixed(2)} ms`);
    rows.push({ route, h, h1, hi, b, n, i });
  }
  // The server must still be healthy after the load (no crash, no leak into 5xx).
  await expectStatus(`${hexrepo.url}${routes[0].path}`, auth, 200, 'hexrepo after the load');
  await expectStatus(`${hexrepo1.url}${routes[0].path}`, auth, 200, 'hexrepo --workers 1 after the load');

  const ms = (x) => (x < 1 ? `${(x * 1000).toFixed(0)} µs` : `${x.toFixed(2)} ms`);
  const rps = (x) => Math.round(x).toLocaleString('en');
  const lines = [
    `### hexrepo serve — wrk, ${CONNECTIONS} connections, ${THREADS} threads, ${DURATION} s per run (${files.length.toLocaleString('en')} tarballs in the repository)`,
    '',
    `${today()} · ${machine()}`,
    '',
    '| route | server | req/s | p50 | p99 | req/s vs nginx |',
    '| --- | --- | ---: | ---: | ---: | ---: |',
  ];
  for (const { route, h, h1, hi, b, n, i } of rows) {
    lines.push(`| \`${route}\` | hexrepo serve, ${workers} workers (private, token checked) | ${rps(h.rps)} | ${ms(h.p50)} | ${ms(h.p99)} | ${(h.rps / n.rps).toFixed(2)}× |`);
    lines.push(`| \`${route}\` | hexrepo serve --workers 1 (private, token checked) | ${rps(h1.rps)} | ${ms(h1.p50)} | ${ms(h1.p99)} | ${(h1.rps / n.rps).toFixed(2)}× |`);
    lines.push(`| \`${route}\` | hexrepo serve, ${workers} workers, --log-level info (the default: a line per request) | ${rps(hi.rps)} | ${ms(hi.p50)} | ${ms(hi.p99)} | ${(hi.rps / n.rps).toFixed(2)}× |`);
    lines.push(`| \`${route}\` | bare node:http, ${workers} workers (no auth, no logs: the ceiling) | ${rps(b.rps)} | ${ms(b.p50)} | ${ms(b.p99)} | ${(b.rps / n.rps).toFixed(2)}× |`);
    lines.push(`| \`${route}\` | nginx (no auth) | ${rps(n.rps)} | ${ms(n.p50)} | ${ms(n.p99)} | 1.00× |`);
    lines.push(`| \`${route}\` | inets httpd (no auth, the guide's server) | ${rps(i.rps)} | ${ms(i.p50)} | ${ms(i.p99)} | ${(i.rps / n.rps).toFixed(2)}× |`);
  }
  lines.push(
    '',
    `nginx and inets serve the same public/ folder as static files with no auth (nginx with sendfile, worker_processes auto: ${availableParallelism()} here); hexrepo checks the read token on every request of a private repository, with one worker process per core (${workers}, the default of a read-only server) and as one process (--workers 1), logging at warn, and at info (the default; its lines go to a pipe this benchmark drains between runs). The bare node:http server (bench/_bare-http.mjs) sends the same bytes and headers from memory on ${workers} cluster workers, with no auth, routing or logs: what Node's HTTP stack alone costs here. wrk runs on the same machine as the servers.`,
    '',
  );
  process.stdout.write(lines.join('\n'));
} catch (err) {
  failed = true;
  console.error(err instanceof Error ? err.stack : err);
} finally {
  await stopAll();
  rmSync(work, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
