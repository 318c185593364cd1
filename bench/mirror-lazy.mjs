#!/usr/bin/env node
// `pnpm bench mirror-lazy`: time to first byte through a mirror repository of `hexrepo serve`.
//   hit:  a tarball the mirror has cached vs the same file from a local repository of the same server
//   miss: a tarball the mirror must fetch, verify and store vs the same file from the upstream directly
// The upstream is a Hex repository named hexpm built from the fixture tarballs, on a plain static
// server on loopback (so "miss" measures the mirror's own cost, not a network). Options: --rounds N.
import { createServer, get as httpGet } from 'node:http';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { intArg, log, machine, median, percentile, requireBuilt, ROOT as root, startServe, stop, today } from './_lib.mjs';

const REPO = join(root, 'packages/repo/dist/index.js');
const REGISTRY = join(root, 'packages/registry/dist/index.js');
const STORAGE = join(root, 'packages/storage/dist/index.js');
requireBuilt(REPO, REGISTRY, STORAGE);
const rounds = intArg('rounds', 200);

const { buildRegistry } = await import(REPO);
const { generateKeyPair, publicKeyPem } = await import(REGISTRY);
const { FsStore } = await import(STORAGE);

const dir = mkdtempSync(join(tmpdir(), 'hexrepo-bench-mirror-lazy-'));
const fixtures = join(root, 'test-fixtures/tarballs');
const tarballs = readdirSync(fixtures).filter((f) => f.endsWith('.tar'));

async function buildRepo(folder, repository, privateKey) {
  mkdirSync(join(folder, 'tarballs'), { recursive: true });
  for (const t of tarballs) cpSync(join(fixtures, t), join(folder, 'tarballs', t));
  await buildRegistry({ store: new FsStore(folder), repository, privateKey, threads: 1 });
  writeFileSync(join(folder, 'public_key'), publicKeyPem(privateKey));
}

/** Milliseconds from sending a GET to the response headers; the body is drained. */
function ttfb(url) {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    httpGet(url, { agent: false }, (res) => {
      const ms = performance.now() - started;
      if (res.statusCode !== 200) reject(new Error(`${url}: ${res.statusCode}`));
      res.resume();
      res.on('end', () => resolve({ ms, cache: res.headers['x-hexrepo-cache'] }));
    }).on('error', reject);
  });
}

let upstream;
let serve;
try {
  const { privateKey } = await generateKeyPair();
  await buildRepo(join(dir, 'upstream'), 'hexpm', privateKey);
  await buildRepo(join(dir, 'local/public'), 'local', privateKey);
  writeFileSync(join(dir, 'upstream_key.pem'), publicKeyPem(privateKey));
  // A plain static server, as a CDN in front of a bucket.
  upstream = createServer((req, res) => {
    try {
      const body = readFileSync(join(dir, 'upstream', decodeURIComponent(new URL(req.url, 'http://x').pathname).replace(/^\/+/, '')));
      res.writeHead(200, { 'content-length': body.length }).end(body);
    } catch {
      res.writeHead(404).end();
    }
  });
  await new Promise((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  const upstreamUrl = `http://127.0.0.1:${upstream.address().port}`;
  writeFileSync(
    join(dir, 'hexrepo.json'),
    JSON.stringify({
      repositories: [
        { name: 'hexpm', mirror: { url: upstreamUrl, publicKey: 'upstream_key.pem', maxAge: 3600 }, publicDir: 'cache', access: 'public' },
        { name: 'local', publicDir: 'local/public', access: 'public' },
      ],
    }),
  );
  serve = startServe(dir, {}, ['--workers', '1']);
  const base = await serve.url;
  const file = 'tarballs/foo-0.1.0.tar';
  await ttfb(`${base}/repos/hexpm/${file}`);
  for (const t of tarballs) await ttfb(`${base}/repos/hexpm/packages/${t.replace(/-.*/, '')}`);
  await ttfb(`${base}/repos/local/${file}`);

  log(`mirror-lazy: ${rounds} hits against ${base}`);
  const hit = [];
  const local = [];
  for (let i = 0; i < rounds; i++) {
    const h = await ttfb(`${base}/repos/hexpm/${file}`);
    if (h.cache !== 'hit') throw new Error(`expected a cache hit, got ${h.cache}`);
    hit.push(h.ms);
    local.push((await ttfb(`${base}/repos/local/${file}`)).ms);
  }
  const miss = [];
  const direct = [];
  const missRounds = Math.min(rounds, 2 * tarballs.length);
  for (let i = 0; i < missRounds; i++) {
    const t = tarballs[i % tarballs.length];
    // Forget the cached copy: once the server's read cache revalidates (a second), the next request
    // is a miss (fetch, verify against packages/NAME, store).
    rmSync(join(dir, 'cache/tarballs', t), { force: true });
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    const m = await ttfb(`${base}/repos/hexpm/tarballs/${t}`);
    if (m.cache !== 'miss') throw new Error(`expected a miss, got ${m.cache}`);
    miss.push(m.ms);
    direct.push((await ttfb(`${upstreamUrl}/tarballs/${t}`)).ms);
  }
  const row = (label, xs) => `| ${label} | ${median(xs).toFixed(3)} | ${percentile(xs, 95).toFixed(3)} |`;
  console.log(
    [
      `### Mirror, lazy: time to first byte (${today()})`,
      '',
      `${machine()}; ${rounds} hits and ${missRounds} misses, one request at a time, a new connection each; fixture tarballs (≤ 20 KB).`,
      '',
      '| request | median ms | p95 ms |',
      '| --- | --- | --- |',
      row('mirror hit (tarball)', hit),
      row('local repository, same file', local),
      row('mirror miss (fetch + verify + store)', miss),
      row('upstream directly, same file', direct),
      '',
      `hit / local: ${(median(hit) / median(local)).toFixed(2)}×; miss / direct: ${(median(miss) / median(direct)).toFixed(2)}×.`,
    ].join('\n'),
  );
} finally {
  await stop(serve?.child, 'hexrepo serve');
  await new Promise((resolve) => (upstream ? upstream.close(resolve) : resolve()));
  rmSync(dir, { recursive: true, force: true });
}
