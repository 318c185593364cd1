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

/** A forwarded host as a browser would send it: a name or address and an optional port, nothing else. */
const FORWARDED_HOST_RE = /^(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$/;

/** The first value of a header a chain of proxies may have appended to. */
function firstForwarded(value: string | string[] | undefined): string {
  return String(Array.isArray(value) ? value[0] : (value ?? ''))
    .split(',')[0]!
    .trim();
}

/**
 * The origin (`proto://host`) the client used. `X-Forwarded-Proto` and `X-Forwarded-Host` are read
 * only with `trustProxy`: without a proxy that sets them, any client could send them, and they decide
 * where browsers are sent (OAuth's verification URI) and which Origin a form may come from.
 */
export function requestOrigin(req: IncomingMessage, trustProxy: boolean): string {
  const tls = 'encrypted' in req.socket && req.socket.encrypted === true;
  let proto = tls ? 'https' : 'http';
  let host = req.headers.host ?? 'localhost';
  if (trustProxy) {
    const fproto = firstForwarded(req.headers['x-forwarded-proto']).toLowerCase();
    if (fproto === 'https' || fproto === 'http') proto = fproto;
    const fhost = firstForwarded(req.headers['x-forwarded-host']);
    if (FORWARDED_HOST_RE.test(fhost)) host = fhost;
  }
  return `${proto}://${host}`;
}

/** True when `If-None-Match` (non-empty) lists `etag`; an empty header is absent (rebar3 sends one). */
export function etagMatches(ifNoneMatch: string | undefined, etag: string): boolean {
  if (ifNoneMatch === undefined || ifNoneMatch.trim() === '') return false;
  const bare = etag.replace(/^W\//, '');
  return ifNoneMatch.split(',').some((t) => {
    const tag = t.trim();
    return tag === '*' || tag.replace(/^W\//, '') === bare;
  });
}
