// A synthetic Hex upstream at hex.pm's scale for the mirror benchmarks: a real repository named
// `hexpm` (signed with a fresh key), served over loopback by a plain HTTP server. Every tarball is
// generated deterministically from its name and version; its outer checksum is computed once at
// start (the registry needs it) and the bytes are generated again on each request. `packages/NAME`
// files are signed once at start, so the sync measures the mirror, not the upstream's signing.
import { createHash } from 'node:crypto';
import { createServer } from 'node:http';
import { buildNames, buildPackage, buildVersions, generateKeyPair } from '@hexrepo/registry';
import { createTarball } from '@hexrepo/tarball';
import { pkgName } from './_lib.mjs';

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

/**
 * Build the registry for `packages` packages and start serving it on 127.0.0.1. Returns the URL,
 * the public key PEM, counters, facts (packages, releases, build seconds) and close().
 */
export async function startSyntheticUpstream({ packages }) {
  const t0 = performance.now();
  const { privateKey, publicKeyPem } = await generateKeyPair();
  const files = new Map();
  const names = [];
  const versionsEntries = [];
  let releases = 0;
  for (let i = 0; i < packages; i++) {
    const name = pkgName(i);
    const deps = depsOf(i);
    const versions = versionsOf(i);
    const rels = versions.map((version) => {
      const t = tarballOf(name, version, deps);
      return { name, version, innerChecksum: t.innerChecksum, outerChecksum: t.outerChecksum, dependencies: deps, publishedAt: 1_700_000_000 + i };
    });
    releases += rels.length;
    files.set(`packages/${name}`, buildPackage({ repository: 'hexpm', name, releases: rels }, privateKey));
    names.push({ name, updatedAt: { seconds: 1_700_000_000 + i, nanos: 0 } });
    versionsEntries.push({ name, versions, retired: [] });
  }
  files.set('names', buildNames({ repository: 'hexpm', packages: names }, privateKey));
  files.set('versions', buildVersions({ repository: 'hexpm', packages: versionsEntries }, privateKey));
  files.set('public_key', Buffer.from(publicKeyPem));
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
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(resolve);
      }),
  };
}
