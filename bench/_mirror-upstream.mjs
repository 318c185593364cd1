// A synthetic Hex upstream at hex.pm's scale for the mirror benchmarks: a real repository named
// `hexpm` (signed with a fresh key), served over loopback by a plain HTTP server. Every tarball is
// generated deterministically from its name and version; its outer checksum is computed once at
// start (the registry needs it) and the bytes are generated again on each request. `packages/NAME`
// files are signed once at start, so the sync measures the mirror, not the upstream's signing.
// Building them (150,000 tarballs gzipped, 20,000 RSA signatures at scale 1) is split across worker
// threads, and the signed registry is kept on disk (node_modules/.cache/hexrepo-bench, keyed by
// package count, generator version and zlib version): later runs at the same scale load it in seconds.
import { createHash, createPrivateKey } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { buildNames, buildPackage, buildVersions, generateKeyPair } from '@hexrepo/registry';
import { createTarball } from '@hexrepo/tarball';
import { pkgName, ROOT } from './_lib.mjs';

/** Bump when what the generator produces changes: cached upstreams of other versions are ignored. */
const GENERATOR = 1;

/** Versions of package `i`: 1 to 14 of them, averaging 7.5 over 20,000 packages (150,000 releases). */
function versionsOf(i) {
  const n = 1 + ((i * 5) % 14);
  return Array.from({ length: n }, (_, k) => `${1 + Math.floor(k / 5)}.${k % 5}.0`);
}

/** Up to three dependencies on earlier packages, with a requirement any of their versions meets. */
function depsOf(i) {
  const deps = [];
  for (const d of [7, 131, 1999]) if (i >= d && (i + d) % 3 === 0) deps.push({ package: pkgName(i - d), requirement: '>= 1.0.0', optional: false, app: pkgName(i - d) });
  return deps;
}

function tarballOf(name, version, deps) {
  return createTarball({ name, version, description: `synthetic ${name}`, licenses: ['Apache-2.0'], requirements: deps }, [{ path: `src/${name}.erl`, contents: Buffer.from(`-module(${name}).\n%% ${version}\n`) }]);
}

const sha256 = (b) => createHash('sha256').update(b).digest('hex');

/** Signed packages/NAME of packages [from, to): what each worker thread builds. */
function buildRange(from, to, privateKey) {
  const out = [];
  for (let i = from; i < to; i++) {
    const name = pkgName(i);
    const deps = depsOf(i);
    const rels = versionsOf(i).map((version) => {
      const t = tarballOf(name, version, deps);
      return { name, version, innerChecksum: t.innerChecksum, outerChecksum: t.outerChecksum, dependencies: deps, publishedAt: 1_700_000_000 + i };
    });
    out.push(buildPackage({ repository: 'hexpm', name, releases: rels }, privateKey));
  }
  return out;
}

if (!isMainThread && workerData?.role === 'mirror-upstream') {
  const { from, to, keyPem } = workerData;
  const built = buildRange(from, to, createPrivateKey(keyPem));
  // Copied, not transferred: small buffers share Node's allocation pool.
  parentPort.postMessage(built);
}

/** packages/NAME of every package, built by one worker thread per core. */
async function buildPackages(packages, privateKey) {
  const threads = Math.max(1, Math.min(availableParallelism(), Math.ceil(packages / 500)));
  const keyPem = privateKey.export({ type: 'pkcs8', format: 'pem' });
  const per = Math.ceil(packages / threads);
  const parts = await Promise.all(
    Array.from({ length: threads }, (_, t) => {
      const from = t * per;
      const to = Math.min(packages, from + per);
      return new Promise((resolve, reject) => {
        const w = new Worker(fileURLToPath(import.meta.url), { workerData: { role: 'mirror-upstream', from, to, keyPem } });
        w.once('message', resolve);
        w.once('error', reject);
        w.once('exit', (code) => code !== 0 && reject(new Error(`upstream builder thread exited ${code}`)));
      });
    }),
  );
  return parts.flat().map((b) => Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}

/** The cached registry files (public key PEM, release count, path → bytes) for `packages`, or null. */
function loadCached(file) {
  let all;
  try {
    all = readFileSync(file);
  } catch {
    return null;
  }
  const headLength = all.readUInt32BE(0);
  const head = JSON.parse(all.subarray(4, 4 + headLength).toString('utf8'));
  const files = new Map();
  let at = 4 + headLength;
  for (const [key, length] of head.entries) {
    files.set(key, all.subarray(at, at + length));
    at += length;
  }
  return { publicKeyPem: head.publicKeyPem, releases: head.releases, files };
}

/** Keep the registry files for the next run, renamed into place whole (a killed run leaves no half file). */
function saveCached(file, { publicKeyPem, releases, files }) {
  const head = Buffer.from(JSON.stringify({ publicKeyPem, releases, entries: [...files].map(([k, v]) => [k, v.length]) }));
  const length = Buffer.alloc(4);
  length.writeUInt32BE(head.length);
  mkdirSync(join(file, '..'), { recursive: true });
  const temp = `${file}.${process.pid}.tmp`;
  try {
    writeFileSync(temp, Buffer.concat([length, head, ...files.values()]));
    renameSync(temp, file);
  } finally {
    rmSync(temp, { force: true });
  }
}

/** The registry of `packages` synthetic packages, from the on-disk cache or built (and cached). */
async function registryFiles(packages) {
  const file = join(ROOT, 'node_modules/.cache/hexrepo-bench', `mirror-upstream-g${GENERATOR}-zlib${process.versions.zlib}-${packages}.bin`);
  const cached = loadCached(file);
  if (cached) return { ...cached, cache: `loaded from ${file}` };
  const { privateKey, publicKeyPem } = await generateKeyPair();
  const built = await buildPackages(packages, privateKey);
  const files = new Map();
  const names = [];
  const versionsEntries = [];
  let releases = 0;
  for (let i = 0; i < packages; i++) {
    const name = pkgName(i);
    const versions = versionsOf(i);
    releases += versions.length;
    files.set(`packages/${name}`, built[i]);
    names.push({ name, updatedAt: { seconds: 1_700_000_000 + i, nanos: 0 } });
    versionsEntries.push({ name, versions, retired: [] });
  }
  files.set('names', buildNames({ repository: 'hexpm', packages: names }, privateKey));
  files.set('versions', buildVersions({ repository: 'hexpm', packages: versionsEntries }, privateKey));
  files.set('public_key', Buffer.from(publicKeyPem));
  saveCached(file, { publicKeyPem, releases, files });
  return { publicKeyPem, releases, files, cache: `built and saved to ${file}` };
}

/**
 * Build (or load) the registry for `packages` packages and start serving it on 127.0.0.1. Returns
 * the URL, the public key PEM, counters, facts (packages, releases, build seconds, where the
 * registry came from) and close().
 */
export async function startSyntheticUpstream({ packages }) {
  const t0 = performance.now();
  const { publicKeyPem, releases, files, cache } = await registryFiles(packages);
  const etags = new Map([...files].map(([k, v]) => [k, `"${sha256(v).slice(0, 32)}"`]));
  const buildSeconds = (performance.now() - t0) / 1000;

  const counters = { requests: 0, bodies: 0, notModified: 0, bytes: 0 };
  const server = createServer((req, res) => {
    counters.requests++;
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname).slice(1);
    let body = files.get(path);
    let etag = etags.get(path);
    const m = /^tarballs\/([a-z][a-z0-9_]*)-(\d+\.\d+\.\d+)\.tar$/.exec(path);
    if (!body && m && files.has(`packages/${m[1]}`) && versionsOf(Number(m[1].slice(4))).includes(m[2])) {
      body = tarballOf(m[1], m[2], depsOf(Number(m[1].slice(4)))).tarball;
      etag = `"${sha256(body).slice(0, 32)}"`;
    }
    if (!body) return res.writeHead(404).end();
    if (req.headers['if-none-match'] === etag) {
      counters.notModified++;
      return res.writeHead(304, { etag }).end();
    }
    counters.bodies++;
    counters.bytes += body.length;
    res.writeHead(200, { etag, 'content-length': body.length, 'content-type': 'application/octet-stream' }).end(body);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    publicKeyPem,
    counters,
    packages,
    releases,
    buildSeconds,
    cache,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(resolve);
      }),
  };
}
