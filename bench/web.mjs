#!/usr/bin/env node
// `pnpm bench web`: the web UI and search on a repository of --packages N packages (default 20,000),
// served in-process by the built @hexrepo/http over loopback: time to build the search index, then
// the median and p95 time of GET /-/ (index), /-/packages/NAME (package page), /-/search?q=…
// (search page) and /api/packages?search=… (the API mix hex.package search calls), next to the
// baseline GET /packages/NAME (a signed registry file from the store) in the same run.
// Target: index and package pages and search under 100 ms. Options: --packages N, --requests N (50).
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { intArg, log, machine, median, percentile, pkgName, requireBuilt, ROOT as root, today } from './_lib.mjs';

const PACKAGES = intArg('packages', 20_000);
const REQUESTS = intArg('requests', 50);
const HTTP = join(root, 'packages/http/dist/index.js');
requireBuilt(HTTP, join(root, 'packages/http/dist/ui-assets/app.css'));

const { createTarball } = await import(join(root, 'packages/tarball/dist/index.js'));
const { RepoService } = await import(join(root, 'packages/repo/dist/index.js'));
const { SearchIndex } = await import(join(root, 'packages/repo/dist/index.js'));
const { FsStore } = await import(join(root, 'packages/storage/dist/index.js'));
const { loadPrivateKey } = await import(join(root, 'packages/registry/dist/index.js'));
const { Access, createHostHandler, listen } = await import(HTTP);

const WORDS = ['json', 'http', 'parser', 'cache', 'queue', 'crypto', 'phoenix', 'ecto', 'telemetry', 'logger', 'pool', 'websocket'];
const dir = mkdtempSync(join(tmpdir(), 'hexrepo-bench-web-'));
try {
  const tarballs = join(dir, 'public/tarballs');
  mkdirSync(tarballs, { recursive: true });
  log(`generating ${PACKAGES} packages …`);
  for (let i = 0; i < PACKAGES; i++) {
    const name = pkgName(i);
    const description = `A ${WORDS[i % WORDS.length]} library for ${WORDS[(i * 7) % WORDS.length]} number ${i}`;
    const readme = `# ${name}\n\n${description}.\n\n\`\`\`elixir\n{:${name}, "~> 1.0"}\n\`\`\`\n`;
    const { tarball } = createTarball({ name, version: '1.0.0', description, licenses: ['Apache-2.0'], links: [['GitHub', `https://example.com/${name}`]] }, [
      { path: `src/${name}.erl`, contents: new TextEncoder().encode(`-module(${name}).\n`) },
      { path: 'README.md', contents: new TextEncoder().encode(readme) },
    ]);
    writeFileSync(join(tarballs, `${name}-1.0.0.tar`), tarball);
  }
  const key = loadPrivateKey(readFileSync(join(root, 'test-fixtures/golden-acme/test-only-rsa.pem'), 'utf8'));
  log('building the registry …');
  const { service } = await RepoService.open({ store: new FsStore(join(dir, 'public')), repository: 'acme', privateKey: key });
  let t = performance.now();
  await SearchIndex.of(service).catchUp();
  const indexBuildMs = performance.now() - t;
  const server = await listen(createHostHandler({ repositories: [{ name: 'acme', store: service.store, service, visibility: 'public', root: true }], access: new Access({ visibility: 'public', users: [] }) }), {
    host: '127.0.0.1',
    port: 0,
  });
  const agent = new (await import('node:http')).Agent({ keepAlive: true, maxSockets: 1 });
  const time = (path, accept) =>
    new Promise((resolve, reject) => {
      const started = performance.now();
      const req = request(`${server.url}${path}`, { agent, headers: { accept } }, (res) => {
        res.resume();
        res.on('end', () => (res.statusCode === 200 ? resolve(performance.now() - started) : reject(new Error(`${path}: ${res.statusCode}`))));
      });
      req.on('error', reject);
      req.end();
    });
  const middle = pkgName(Math.floor(PACKAGES / 2));
  const cases = [
    ['baseline: GET /packages/NAME (registry file)', () => `/packages/${middle}`, '*/*'],
    ['GET /-/ (index page)', () => '/-/', 'text/html'],
    ['GET /-/packages/acme/NAME (package page, README cached after the first)', (i) => `/-/packages/acme/${pkgName((i * 97) % PACKAGES)}`, 'text/html'],
    ['GET /-/search?q=WORD (search page)', (i) => `/-/search?q=${WORDS[i % WORDS.length]}`, 'text/html'],
    ['GET /api/packages?search=WORD (JSON, 100 a page)', (i) => `/api/packages?search=${WORDS[i % WORDS.length]}`, 'application/json'],
    ['GET /api/packages?search=WORD (ETF)', (i) => `/api/packages?search=${WORDS[i % WORDS.length]}`, 'application/vnd.hex+erlang'],
  ];
  const rows = [];
  for (const [label, path, accept] of cases) {
    for (let i = 0; i < 5; i++) await time(path(i), accept); // warm-up
    const ms = [];
    for (let i = 0; i < REQUESTS; i++) ms.push(await time(path(i + 5), accept));
    rows.push(`| ${label} | ${median(ms).toFixed(1)} | ${percentile(ms, 95).toFixed(1)} |`);
  }
  agent.destroy();
  await server.close();
  t = performance.now();
  console.log(`## Web UI and search (${today()}, ${machine()})

${PACKAGES} packages, ${REQUESTS} sequential requests per row over loopback (one keep-alive connection), after 5 warm-up requests.
Search index built from the packages' metadata in ${(indexBuildMs / 1000).toFixed(2)} s.

| request | median ms | p95 ms |
| --- | --- | --- |
${rows.join('\n')}
`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
