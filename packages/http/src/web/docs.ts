/**
 * Hosted docs: the docs tarball a publish stored (`docs/NAME-VSN.tar.gz`) unpacked on first use
 * (size and entry-count limits; `..`, absolute paths and links refused), kept in a bounded
 * in-memory cache, and served at `/docs/NAME/VSN/…` for the root repository and
 * `/repos/REPO/docs/NAME/VSN/…` for the others; `/docs/NAME/` goes to the latest stable release
 * with docs. Every response carries a Content-Security-Policy with `sandbox` (scripts allowed, no
 * same-origin): docs run in an opaque origin, so their scripts cannot read the host's pages,
 * cookies or API responses as the viewer. Private repositories' docs need read access.
 *
 * An opaque origin's requests are cross-site, so the browser does not send the SameSite session
 * cookie with a docs page's own scripts and styles. A logged-in viewer of private docs is therefore
 * sent once (by a top-level navigation, which carries the cookie) to a capability path,
 * `…/VSN/~TOKENID.EXPIRY.MAC/…`: the MAC is keyed by the session's stored hash, so it is valid only
 * for that session's package, version and lifetime, and dies with the session (logout, revoke).
 * Relative links inside the docs keep it. Credentials sent in a header (curl, a token) need none.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { gunzipSync } from 'node:zlib';
import { compareVersions, formatError, HexrepoError } from '@hexrepo/core';
import { docsKey, type TokenStore } from '@hexrepo/repo';
import { readTar, safeEntryPath } from '@hexrepo/tarball';
import type { Logger } from 'pino';
import type { Identity } from '../auth.js';
import type { HostedRepository } from '../host.js';

/** Limits of one unpacked docs tarball. */
export interface DocsLimits {
  /** @default 64 MiB */
  maxUnpackedBytes: number;
  /** @default 20,000 */
  maxEntries: number;
}

const DEFAULT_DOCS_LIMITS: DocsLimits = { maxUnpackedBytes: 64 * 1024 * 1024, maxEntries: 20_000 };
/** Unpacked docs kept in memory at once (bytes of files). */
const CACHE_BYTES = 256 * 1024 * 1024;

/**
 * The policy of every docs response. `sandbox` without `allow-same-origin` gives the document an
 * opaque origin; inline scripts and styles are allowed because generated docs (ExDoc) use them,
 * and they can do no more than the sandbox allows.
 */
export const DOCS_CSP =
  "sandbox allow-scripts allow-popups allow-forms; default-src 'none'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; img-src 'self' data: https:; font-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'";

/** How long a private docs link lasts at most (the session may end sooner, and then so does the link). */
const DOCS_LINK_SECONDS = 12 * 3600;

function docsMac(key: Buffer, repo: string, name: string, version: string, expires: number): string {
  return createHmac('sha256', key).update(`${repo}\n${name}\n${version}\n${expires}`).digest('base64url');
}

const TYPES: Record<string, string> = {
  html: 'text/html; charset=utf-8',
  htm: 'text/html; charset=utf-8',
  css: 'text/css; charset=utf-8',
  js: 'text/javascript; charset=utf-8',
  json: 'application/json',
  svg: 'image/svg+xml',
  png: 'image/png',
  jpg: 'image/jpeg',
  jpeg: 'image/jpeg',
  gif: 'image/gif',
  ico: 'image/x-icon',
  woff: 'font/woff',
  woff2: 'font/woff2',
  ttf: 'font/ttf',
  txt: 'text/plain; charset=utf-8',
  md: 'text/plain; charset=utf-8',
  epub: 'application/epub+zip',
  map: 'application/json',
};

/** What a docs path names: the repository (null: the root), the package, and the rest after it. */
export function docsPath(path: string): { repo: string | null; name: string; rest: string } | null {
  const m = /^(?:\/repos\/([a-z][a-z0-9_]*))?\/docs\/([a-z][a-z0-9_]*)(\/.*)?$/.exec(path);
  return m ? { repo: m[1] ?? null, name: m[2]!, rest: m[3] ?? '' } : null;
}

/**
 * Unpack a docs tarball (gzip'd tar) into a map of file path → bytes. Refuses links, device
 * files, absolute paths, `..` and anything over the limits: DOCS_INVALID says which.
 */
export function unpackDocs(gz: Uint8Array, limits: DocsLimits = DEFAULT_DOCS_LIMITS): Map<string, Uint8Array> {
  let tar: Uint8Array;
  try {
    tar = gunzipSync(gz, { maxOutputLength: limits.maxUnpackedBytes + 1024 * 1024 });
  } catch (err) {
    throw new HexrepoError('CONTENTS_CORRUPT', `the docs are not a gzip'd tar archive within ${limits.maxUnpackedBytes} bytes: ${(err as Error).message}`);
  }
  const entries = readTar(tar);
  if (entries.length > limits.maxEntries) throw new HexrepoError('TAR_UNCOMPRESSED_TOO_BIG', `the docs have ${entries.length} entries, over the limit of ${limits.maxEntries}`);
  const files = new Map<string, Uint8Array>();
  let total = 0;
  for (const e of entries) {
    if (e.type === 'dir') continue;
    if (e.type === 'symlink' || e.type === 'hardlink') throw new HexrepoError('CONTENTS_UNSAFE_LINK', `the docs entry ${e.name.slice(0, 200)} is a ${e.type}; docs may hold only files and folders`, { path: e.name });
    if (e.type !== 'file') throw new HexrepoError('CONTENTS_UNSUPPORTED_ENTRY', `the docs entry ${e.name.slice(0, 200)} is not a file or folder; docs may hold only files and folders`, { path: e.name });
    // The same rule as a package's contents: relative, no `..`, no absolute path.
    const path = safeEntryPath(e.name);
    total += e.size;
    if (total > limits.maxUnpackedBytes) throw new HexrepoError('TAR_UNCOMPRESSED_TOO_BIG', `the docs unpack to more than ${limits.maxUnpackedBytes} bytes`);
    // A copy: the entry is a view of the whole archive (headers, padding, extended headers), which
    // the cache would otherwise keep alive while counting only this file's bytes.
    files.set(path, new Uint8Array(e.data));
  }
  return files;
}

/** What a file of unpacked docs costs besides its bytes: its Map entry and object headers. */
const ENTRY_OVERHEAD = 128;

/** The memory unpacked docs hold, as the cache counts it: the files' bytes, their names (UTF-16) and an entry each, so 20,000 empty files are not free. */
export function docsFootprint(files: ReadonlyMap<string, Uint8Array>): number {
  let bytes = 0;
  for (const [path, data] of files) bytes += data.byteLength + path.length * 2 + ENTRY_OVERHEAD;
  return bytes;
}

export interface DocsHandlerOptions {
  repositories: readonly HostedRepository[];
  canRead: (id: Identity | null, repo: HostedRepository, pkg: string) => boolean;
  viewer: (req: IncomingMessage) => Promise<Identity | null>;
  /** The host's credentials, for private docs links tied to a login session. */
  tokens?: TokenStore;
  limits?: DocsLimits;
  logger?: Logger;
}

function sendText(req: IncomingMessage, res: ServerResponse, status: number, text: string, headers: Record<string, string> = {}): void {
  const body = Buffer.from(text);
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'content-length': String(body.length), 'cache-control': 'no-store', 'content-security-policy': DOCS_CSP, 'x-content-type-options': 'nosniff', ...headers });
  res.end(req.method === 'HEAD' ? undefined : body);
}

/** The hosted-docs handler (see the module comment). */
export function createDocsHandler(opts: DocsHandlerOptions): { handle(req: IncomingMessage, res: ServerResponse, state: { identity: Identity | null }): Promise<void>; cachedBytes(): number } {
  const root = opts.repositories.find((r) => r.root);
  const byName = new Map(opts.repositories.map((r) => [r.name, r]));
  const limits = opts.limits ?? DEFAULT_DOCS_LIMITS;
  // Unpacked docs by store key and etag, oldest first: a replaced docs tarball is a new entry.
  const cache = new Map<string, { files: Map<string, Uint8Array>; bytes: number; etag: string }>();
  let cached = 0;
  const inflight = new Map<string, Promise<{ files: Map<string, Uint8Array>; etag: string } | null>>();

  const unpacked = async (repo: HostedRepository, name: string, version: string): Promise<{ files: Map<string, Uint8Array>; etag: string } | null> => {
    const key = docsKey(name, version);
    const head = await repo.store.head(key);
    if (!head) return null;
    const id = `${repo.name}\n${key}\n${head.etag}`;
    const hit = cache.get(id);
    if (hit) {
      cache.delete(id);
      cache.set(id, hit);
      return hit;
    }
    // Requests for the same docs while they are unpacked wait for that one unpack: each would
    // otherwise unpack again and add its bytes to the count for one cache entry.
    let loading = inflight.get(id);
    if (!loading) {
      loading = load(repo, key, id).finally(() => inflight.delete(id));
      inflight.set(id, loading);
    }
    return loading;
  };

  const load = async (repo: HostedRepository, key: string, id: string): Promise<{ files: Map<string, Uint8Array>; etag: string } | null> => {
    const obj = await repo.store.get(key);
    if (!obj) return null;
    const files = unpackDocs(obj.body, limits);
    const bytes = docsFootprint(files);
    const entry = { files, bytes, etag: obj.etag };
    cache.set(id, entry);
    cached += bytes;
    for (const [k, v] of cache) {
      if (cached <= CACHE_BYTES || k === id) break;
      cache.delete(k);
      cached -= v.bytes;
    }
    return entry;
  };

  return {
    /** What the cache of unpacked docs counts as held now (it stays within CACHE_BYTES). */
    cachedBytes: () => cached,
    async handle(req, res, state) {
      if (req.method !== 'GET' && req.method !== 'HEAD') return sendText(req, res, 405, 'method not allowed\n', { allow: 'GET, HEAD' });
      const url = new URL(req.url ?? '/', 'http://host');
      const parsed = docsPath(url.pathname)!;
      const repo = parsed.repo === null ? root : byName.get(parsed.repo);
      // Unknown, unreadable or absent docs all answer the same 404: nothing tells a private package exists.
      const missing = (): void => sendText(req, res, 404, 'no such docs here\n');
      if (!repo?.service) return missing();
      const prefix = `${parsed.repo === null ? '' : `/repos/${parsed.repo}`}/docs/${parsed.name}/`;
      const releases = repo.service.releases(parsed.name);
      const m = /^\/([^/]+)(\/.*)?$/.exec(parsed.rest);
      const version = m?.[1] ?? '';
      let rest = m?.[2];
      // A private docs link (see the module comment): checked instead of the viewer.
      const link = rest === undefined ? null : /^\/~([a-z0-9]{10})\.(\d{1,12})\.([A-Za-z0-9_-]{43})(\/.*)?$/.exec(rest);
      let linked = false;
      if (link) {
        const held = opts.tokens?.keyOf(link[1]!);
        const expires = Number(link[2]);
        const expected = held ? Buffer.from(docsMac(held.key, repo.name, parsed.name, version, expires)) : null;
        linked = held !== null && held !== undefined && expected !== null && expires * 1000 > Date.now() && timingSafeEqual(expected, Buffer.from(link[3]!)) && opts.canRead({ kind: 'token', token: held.info }, repo, parsed.name);
        if (!linked) return missing();
        if (link[4] === undefined) {
          res.writeHead(301, { location: `${prefix}${version}${rest}/`, 'content-length': '0' });
          res.end();
          return;
        }
        rest = link[4];
      } else {
        const id = await opts.viewer(req);
        state.identity = id;
        if (!opts.canRead(id, repo, parsed.name)) return missing();
        // A login session on private docs: to the link that works without the cookie.
        const session = id?.kind === 'token' && id.token.user !== undefined ? opts.tokens?.keyOf(id.token.id) : null;
        if (repo.visibility === 'private' && session && rest !== undefined && releases.some((r) => r.version === version)) {
          const expires = Math.floor(Date.now() / 1000) + DOCS_LINK_SECONDS;
          res.writeHead(302, {
            location: `${prefix}${version}/~${id!.kind === 'token' ? id!.token.id : ''}.${expires}.${docsMac(session.key, repo.name, parsed.name, version, expires)}${rest}${url.search}`,
            'cache-control': 'no-store',
            'content-length': '0',
            'referrer-policy': 'no-referrer',
          });
          res.end();
          return;
        }
      }
      if (parsed.rest === '' || parsed.rest === '/') {
        // The latest stable release with docs (else the latest with docs).
        const newest = releases.map((r) => r.version).sort((a, b) => compareVersions(b, a));
        const withDocs: string[] = [];
        for (const v of newest) if (await repo.service.hasDocs(parsed.name, v)) withDocs.push(v);
        const chosen = withDocs.find((v) => !v.includes('-')) ?? withDocs[0];
        if (!chosen) return missing();
        res.writeHead(302, { location: `${prefix}${chosen}/`, 'cache-control': 'no-cache', 'content-length': '0' });
        res.end();
        return;
      }
      if (!releases.some((r) => r.version === version)) return missing();
      if (rest === undefined) {
        res.writeHead(301, { location: `${prefix}${version}/`, 'content-length': '0' });
        res.end();
        return;
      }
      let file: string;
      try {
        const rel = decodeURIComponent(rest.slice(1));
        file = rel === '' || rel.endsWith('/') ? `${rel}index.html` : rel;
      } catch {
        return sendText(req, res, 400, 'bad request: malformed percent-encoding\n');
      }
      let docs;
      try {
        docs = await unpacked(repo, parsed.name, version);
      } catch (err) {
        opts.logger?.warn({ err: formatError(err), package: parsed.name, version }, 'docs tarball refused');
        return sendText(req, res, 422, 'these docs cannot be shown: the docs tarball breaks the rules for docs (see the server log)\n');
      }
      const bytes = docs?.files.get(file);
      if (!docs || !bytes) return missing();
      const ext = /\.([a-z0-9]+)$/i.exec(file)?.[1]?.toLowerCase() ?? '';
      const etag = `"${docs.etag.replace(/"/g, '').slice(0, 40)}-${Buffer.from(file).toString('base64url').slice(0, 60)}"`;
      const headers: Record<string, string> = {
        // Own keys only: `x.constructor` would otherwise get Object's constructor as its type.
        'content-type': Object.hasOwn(TYPES, ext) ? TYPES[ext]! : 'application/octet-stream',
        'content-security-policy': DOCS_CSP,
        'x-content-type-options': 'nosniff',
        'referrer-policy': 'no-referrer',
        'cache-control': repo.visibility === 'private' ? 'private, no-cache' : 'public, no-cache',
        ...(linked ? {} : { vary: 'cookie, authorization' }),
        etag,
      };
      if (req.headers['if-none-match'] === etag) {
        res.writeHead(304, headers);
        res.end();
        return;
      }
      res.writeHead(200, { ...headers, 'content-length': String(bytes.byteLength) });
      res.end(req.method === 'HEAD' ? undefined : bytes);
    },
  };
}
