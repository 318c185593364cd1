/**
 * A minimal static file server for end-to-end tests of `hexrepo build` output before `hexrepo serve`
 * is involved: GET/HEAD, a strong ETag (rebar3 rejects a tarball 200 without one), 304 only for a
 * non-empty matching If-None-Match (rebar3 sends an empty one first). Listens on 127.0.0.1:0.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { join, normalize, sep } from 'node:path';

export interface StaticServer {
  url: string;
  requests: { method: string; path: string; status: number; authorization: string | undefined }[];
  close(): Promise<void>;
}

export async function startStaticServer(root: string): Promise<StaticServer> {
  const requests: StaticServer['requests'] = [];
  const server: Server = createServer(async (req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    const file = normalize(join(root, path));
    let status = 404;
    try {
      if (!file.startsWith(root + sep) || path.split('/').some((s) => s.startsWith('.'))) throw new Error('outside');
      const body = await readFile(file);
      const etag = `"${createHash('sha256').update(body).digest('hex')}"`;
      const inm = req.headers['if-none-match'];
      status = inm && inm === etag ? 304 : 200;
      res.writeHead(status, { etag, 'content-type': 'application/octet-stream', 'content-length': status === 200 ? body.length : 0 });
      res.end(status === 200 && req.method !== 'HEAD' ? body : undefined);
    } catch {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
    }
    requests.push({ method: req.method ?? '', path, status, authorization: req.headers.authorization });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (!address || typeof address === 'string') throw new Error('no address');
  return {
    url: `http://127.0.0.1:${address.port}`,
    requests,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
