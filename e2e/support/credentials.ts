/** Waiting for servers to pick up a change of the host's credentials. */
import type { ServeProcess } from './serve.js';

/**
 * How many times every process of a server that answers requests has logged that it re-read the
 * credentials: the least over its workers (each re-reads on its own), or the single process's count.
 */
export function reloads(s: ServeProcess): number {
  const listening = new Set(s.logs.filter((l) => l.msg === 'listening').map((l) => l.worker));
  // A primary (worker 0) serves nothing and re-reads nothing; a single process has no worker id.
  if (listening.size > 1) listening.delete(0);
  const counts = [...listening].map((w) => s.logs.filter((l) => l.msg === 'credentials reloaded' && l.worker === w).length);
  return counts.length === 0 ? 0 : Math.min(...counts);
}

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
