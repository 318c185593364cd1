/** Repository files (`names`, `packages/NAME`, `public_key`…) over HTTP, as a `Fetcher`. */
import { refused, repositoryRoot, send, type ServerOptions } from './http.js';
import type { Fetcher } from './signed-reader.js';

/** A Fetcher for a server's repository files: 404 is null, any other refusal a coded error. */
export function httpFiles(opts: ServerOptions): Fetcher {
  const base = repositoryRoot(opts.url);
  return async (path) => {
    const url = `${base}/${path}`;
    const res = await send(opts, url, url, { method: 'GET' });
    if (res.status === 404) return null;
    if (!res.ok) throw await refused('GET', url, res);
    return new Uint8Array(await res.arrayBuffer());
  };
}
