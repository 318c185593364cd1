/** Small facts about a request that the repository endpoint and the API both need. */
import type { IncomingMessage } from 'node:http';

const MAX_LOGGED_PATH = 256;

/** Paths in logs are cut short: a client chooses them, and a 100 KB path must not become a 100 KB log line. */
export function logPath(path: string): string {
  return path.length <= MAX_LOGGED_PATH ? path : `${path.slice(0, MAX_LOGGED_PATH)}…`;
}

/**
 * True while a request still has body bytes the handler has not read. A refusal then ends with
 * Connection: close, so Node closes the socket after the response instead of reading the rest of
 * an upload nobody wants (it would otherwise drain it to keep the connection alive).
 */
export function bodyUnread(req: IncomingMessage): boolean {
  if (req.complete) return false;
  return req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0;
}
