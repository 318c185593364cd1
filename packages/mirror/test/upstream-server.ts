/**
 * A loopback upstream for the sync and bundle tests: a real Hex repository named `hexpm` (hexrepo's
 * builder over the fixture tarballs, a fresh test key) in a temp folder, served by a plain static
 * server with strong ETags and 304s, counting what it sends, and able to fail the next N requests
 * of a path with a 503 (or reset the connection).
 */
import { createHash } from 'node:crypto';
import { mkdtemp, readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join, normalize, sep } from 'node:path';
import { FsStore } from '@hexrepo/storage';
import { buildUpstream, type TestUpstream } from './helpers.js';

export interface UpstreamServer {
  url: string;
  root: string;
  upstream: TestUpstream;
  /** Bodies sent (200s) per path. */
  bodies: Map<string, number>;
  /** Every request: path and status. */
  requests: { path: string; status: number }[];
  /** Fail the next `times` requests of `path` with `kind`. */
  failNext(path: string, times: number, kind: '503' | 'reset'): void;
  close(): Promise<void>;
}

/** Serve files from `root` (strong ETag = SHA-256 of the body, 304 on a matching If-None-Match). */
export async function serveFolder(root: string): Promise<Omit<UpstreamServer, 'upstream'>> {
  const bodies = new Map<string, number>();
  const requests: UpstreamServer['requests'] = [];
  const faults = new Map<string, { times: number; kind: '503' | 'reset' }>();
  const server: Server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname).replace(/^\//, '');
    const fault = faults.get(path);
    if (fault && fault.times > 0) {
      fault.times--;
      requests.push({ path, status: fault.kind === '503' ? 503 : 0 });
      if (fault.kind === 'reset') req.socket.destroy();
      else res.writeHead(503).end('busy\n');
      return;
    }
    const file = normalize(join(root, path));
    void (async () => {
      let status = 404;
      try {
        if (!file.startsWith(root + sep) || path.split('/').some((s) => s.startsWith('.') || s === '_hexrepo')) throw new Error('outside');
        const body = await readFile(file);
        const etag = `"${createHash('sha256').update(body).digest('hex')}"`;
        status = req.headers['if-none-match'] === etag ? 304 : 200;
        res.writeHead(status, { etag, 'content-length': status === 200 ? body.length : 0 });
        res.end(status === 200 ? body : undefined);
        if (status === 200) bodies.set(path, (bodies.get(path) ?? 0) + 1);
      } catch {
        res.writeHead(404).end('not found\n');
      }
      requests.push({ path, status });
    })();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (!address || typeof address === 'string') throw new Error('no address');
  return {
    url: `http://127.0.0.1:${address.port}`,
    root,
    bodies,
    requests,
    failNext: (path, times, kind) => faults.set(path, { times, kind }),
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Build the fixture repository `hexpm` in a temp folder and serve it. */
export async function startUpstream(): Promise<UpstreamServer> {
  const root = await mkdtemp(join(tmpdir(), 'hexrepo-upstream-'));
  const upstream = await buildUpstream({ store: new FsStore(root) });
  return { ...(await serveFolder(root)), upstream };
}
