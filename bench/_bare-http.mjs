#!/usr/bin/env node
// The ceiling `pnpm bench serve` shows next to hexrepo: a bare `node:http` server on N cluster
// workers (as `hexrepo serve --workers N`) sending the same bytes with the same response headers,
// every file read into memory at start, no auth, no routing beyond one Map lookup, no logs, no
// metrics. What hexrepo's requests cost beyond this is its own work; what this costs is Node's.
// Usage: node bench/_bare-http.mjs PUBLIC_DIR PORT WORKERS PATH... (prints "listening" when all listen)
import cluster from 'node:cluster';
import { createHash } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { createServer } from 'node:http';
import { join } from 'node:path';

const [publicDir, port, workers, ...paths] = process.argv.slice(2);

if (cluster.isPrimary) {
  let listening = 0;
  for (let i = 0; i < Number(workers); i++) {
    cluster.fork().on('message', () => {
      if (++listening === Number(workers)) process.stdout.write('listening\n');
    });
  }
  process.on('SIGTERM', () => {
    for (const w of Object.values(cluster.workers ?? {})) w?.kill();
    process.exit(0);
  });
} else {
  const files = new Map();
  for (const path of paths) {
    const body = readFileSync(join(publicDir, path));
    const tarball = path.startsWith('/tarballs/');
    files.set(path, {
      body,
      // The headers hexrepo sends for a private repository's file (flat array: no per-request object).
      headers: [
        'content-type',
        'application/octet-stream',
        'cache-control',
        tarball ? 'private, max-age=31536000, immutable' : 'private, max-age=60',
        'etag',
        `"${createHash('sha256').update(body).digest('hex').slice(0, 40)}"`,
        'last-modified',
        statSync(join(publicDir, path)).mtime.toUTCString(),
        'vary',
        'authorization',
        'content-length',
        String(body.length),
      ],
    });
  }
  const server = createServer({ keepAliveTimeout: 65_000 }, (req, res) => {
    const file = files.get(req.url);
    if (!file) {
      res.writeHead(404, ['content-length', '0']);
      res.end();
      return;
    }
    res.writeHead(200, file.headers);
    res.end(file.body);
  });
  server.listen(Number(port), '127.0.0.1', () => process.send('listening'));
  // Exit (not die by the signal) when the primary stops, so `node --cpu-prof` writes a profile.
  process.on('SIGTERM', () => process.exit(0));
  process.on('disconnect', () => process.exit(0));
}
