/** Interleaved concurrent publishes across several servers, as the several-writers tests use them. */
import { createTarball } from '@hexrepo/tarball';
import type { ServeProcess } from './serve.js';

/**
 * Publish `count` releases at once, alternating between `servers`: even ones are distinct versions
 * of one package `shared`, odd ones packages of their own (`solo_I`). Resolves with the package
 * names and each response as "STATUS BODY".
 */
/** Publish one release of a one-module package through `server`'s API. */
export function publishOne(server: ServeProcess, token: string, name: string, version: string): Promise<Response> {
  const { tarball } = createTarball({ name, version }, [{ path: `src/${name}.erl`, contents: Buffer.from(`-module(${name}).\n`) }]);
  return fetch(`${server.url}/api/packages/${name}/releases`, {
    method: 'POST',
    headers: { authorization: token, 'content-type': 'application/octet-stream', accept: 'application/json' },
    body: tarball,
  });
}

export async function publishInterleaved(servers: ServeProcess[], token: string, count: number): Promise<{ names: string[]; responses: string[] }> {
  const jobs = Array.from({ length: count }, (_, i) => {
    const name = i % 2 === 0 ? 'shared' : `solo_${i}`;
    const version = i % 2 === 0 ? `1.${i}.0` : '1.0.0';
    return { name, version, server: servers[i % servers.length]! };
  });
  const responses = await Promise.all(
    jobs.map(async (j) => {
      const res = await publishOne(j.server, token, j.name, j.version);
      return `${res.status} ${await res.text()}`;
    }),
  );
  return { names: jobs.map((j) => j.name), responses };
}
