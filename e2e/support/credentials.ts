/** Waiting for servers to pick up a change of the host's credentials. */
import type { ServeProcess } from './serve.js';

/** How many times a server has logged that it re-read the credentials. */
export const reloads = (s: ServeProcess): number => s.logs.filter((l) => l.msg === 'credentials reloaded').length;

/**
 * Wait until every server has re-read the credentials since `before` (from `reloads`), for at most
 * 5 s (the bound the issue sets for a revocation to apply everywhere); true per server that did.
 * Waiting on the log, not on requests, keeps failed attempts from reaching the rate limiter.
 */
export async function reloadedWithin5s(servers: ServeProcess[], before: number[]): Promise<boolean[]> {
  const deadline = Date.now() + 5_000;
  while (Date.now() < deadline && servers.some((s, i) => reloads(s) <= before[i]!)) await new Promise((r) => setTimeout(r, 50));
  return servers.map((s, i) => reloads(s) > before[i]!);
}

/** GET /names on each server with `authorization`: the statuses. */
export function namesStatus(servers: ServeProcess[], authorization: string): Promise<number[]> {
  return Promise.all(servers.map(async (s) => (await fetch(`${s.url}/names`, { headers: { authorization } })).status));
}
