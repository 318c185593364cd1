/**
 * An upstream for mirror tests: a plain static file server over a folder holding a Hex repository
 * (GET/HEAD, strong ETag, 304 for a matching If-None-Match, a log of requests), and a
 * fault-injecting proxy to put in front of it (5xx, resets, hangs, a slow first byte, answers
 * signed by another key or for another repository, tampered bytes). Both listen on 127.0.0.1:0.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { join, normalize, sep } from 'node:path';

export interface LoggedRequest {
  method: string;
  path: string;
  status: number;
  ifNoneMatch: string | undefined;
}

export interface Listening {
  url: string;
  requests: LoggedRequest[];
  close(): Promise<void>;
}

async function listenOn(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (!address || typeof address === 'string') throw new Error('no address');
  return `http://127.0.0.1:${address.port}`;
}

function closer(server: Server): () => Promise<void> {
  return () =>
    new Promise((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
}

/** Serve `root` as it is: what a CDN in front of a bucket does. */
export async function startStaticUpstream(root: string): Promise<Listening> {
  const requests: LoggedRequest[] = [];
  const server = createServer(async (req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    const file = normalize(join(root, path));
    let status = 404;
    try {
      if (!file.startsWith(root.endsWith(sep) ? root : root + sep) || path.split('/').some((s) => s.startsWith('.') || s === '_hexrepo')) throw new Error('outside');
      const body = await readFile(file);
      const etag = `"${createHash('sha256').update(body).digest('hex').slice(0, 32)}"`;
      status = req.headers['if-none-match'] === etag ? 304 : 200;
      res.writeHead(status, { etag, 'content-type': 'application/octet-stream', ...(status === 200 ? { 'content-length': body.length } : {}) });
      res.end(status === 200 && req.method !== 'HEAD' ? body : undefined);
    } catch {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
    }
    requests.push({ method: req.method ?? '', path, status, ifNoneMatch: req.headers['if-none-match'] });
  });
  return { url: await listenOn(server), requests, close: closer(server) };
}

/** What the proxy does to the next requests. */
export type Fault =
  | { kind: 'none' }
  | { kind: 'status'; status: number }
  | { kind: 'reset' }
  /** Accept the request and never answer. */
  | { kind: 'hang' }
  /** Answer correctly after `ms`. */
  | { kind: 'slow-first-byte'; ms: number }
  /** Answer with the file at the same path under another upstream (another key, another repository name). */
  | { kind: 'substitute'; url: string }
  /** Answer the upstream's bytes with one byte flipped. */
  | { kind: 'tamper' };

export interface FaultProxy extends Listening {
  /** Apply `fault` to requests whose path matches `only` (all when absent). */
  setFault(fault: Fault, only?: RegExp): void;
}

function fetchThrough(base: string, req: IncomingMessage): Promise<{ status: number; headers: Record<string, string>; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = {};
    if (typeof req.headers['if-none-match'] === 'string') headers['if-none-match'] = req.headers['if-none-match'];
    const out = request(`${base}${req.url ?? '/'}`, { method: req.method ?? 'GET', headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const h: Record<string, string> = {};
        for (const k of ['etag', 'content-type']) if (typeof res.headers[k] === 'string') h[k] = res.headers[k];
        resolve({ status: res.statusCode ?? 502, headers: h, body: Buffer.concat(chunks) });
      });
      res.on('error', reject);
    });
    out.on('error', reject);
    out.end();
  });
}

/** A proxy in front of `target` that injects faults. */
export async function startFaultProxy(target: string): Promise<FaultProxy> {
  const requests: LoggedRequest[] = [];
  let fault: Fault = { kind: 'none' };
  let only: RegExp | undefined;
  const reply = (res: ServerResponse, status: number, headers: Record<string, string>, body: Buffer): void => {
    res.writeHead(status, { ...headers, ...(status === 200 ? { 'content-length': String(body.length) } : {}) });
    res.end(status === 200 ? body : undefined);
  };
  const server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    const f = only && !only.test(path) ? { kind: 'none' as const } : fault;
    const log = (status: number): void => void requests.push({ method: req.method ?? '', path, status, ifNoneMatch: req.headers['if-none-match'] });
    const pass = (base: string, mangle?: (b: Buffer) => Buffer): void => {
      fetchThrough(base, req)
        .then((r) => {
          log(r.status);
          reply(res, r.status, r.headers, r.status === 200 && mangle ? mangle(r.body) : r.body);
        })
        .catch(() => res.destroy());
    };
    switch (f.kind) {
      case 'none':
        return pass(target);
      case 'status':
        log(f.status);
        res.writeHead(f.status, { 'content-type': 'text/plain' }).end('injected failure\n');
        return;
      case 'reset':
        log(0);
        req.socket.destroy();
        return;
      case 'hang':
        log(0);
        return;
      case 'slow-first-byte':
        setTimeout(() => pass(target), f.ms);
        return;
      case 'substitute':
        return pass(f.url);
      case 'tamper':
        return pass(target, (b) => {
          const copy = Buffer.from(b);
          if (copy.length > 0) copy[copy.length - 1] = copy[copy.length - 1]! ^ 0xff;
          return copy;
        });
    }
  });
  return {
    url: await listenOn(server),
    requests,
    close: closer(server),
    setFault(next, paths) {
      fault = next;
      only = paths;
    },
  };
}
