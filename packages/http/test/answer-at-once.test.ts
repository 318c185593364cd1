/**
 * The repository endpoint's quick path (server.ts servedAtOnce): a plain GET of a file the read
 * cache holds, by a caller whose credentials were verified moments ago, is answered before the
 * request handler returns. These tests hold it to the full path's answer: same bytes and headers,
 * complete log lines, and every refusal the full path makes (revoked token, limited address, other
 * packages, a private key under a repository path), over a real server and a real folder.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { TokenStore } from '@hexrepo/repo';
import { CachedStore, FsStore, MemoryStore } from '@hexrepo/storage';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Access, createLogger, createRepositoryHandler, listen, type RunningServer } from '../src/index.js';
import { FIXTURES, goldenPublic, raw } from './helpers.js';

const basic = (user: string, pass: string): string => `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;

let pub: string;
let server: RunningServer;
let tokens: TokenStore;
let readToken: string;
let readTokenId: string;
let otherPackages: string;
const logs: Record<string, unknown>[] = [];
/** Per request, in order: whether its response had ended when the request handler returned. */
const endedInHandler: boolean[] = [];

beforeAll(async () => {
  pub = await goldenPublic();
  tokens = await TokenStore.open(new FsStore(join(pub, '..', 'state')));
  const created = await tokens.create({ label: 'r', grants: [{ repository: 'acme', scopes: ['read'], packages: [] }] });
  readToken = created.token;
  readTokenId = created.info.id;
  otherPackages = (await tokens.create({ label: 'o', grants: [{ repository: 'acme', scopes: ['read'], packages: ['other_*'] }] })).token;
  const access = new Access({ repository: 'acme', visibility: 'private', users: [{ username: 'alice', password: 'wonderland' }], tokens, maxFailures: 3 });
  const logger = createLogger({ destination: { write: (line: string) => void logs.push(JSON.parse(line) as Record<string, unknown>) } });
  server = await listen(createRepositoryHandler({ store: new CachedStore(new FsStore(pub)), repository: 'acme', access, logger }), { host: '127.0.0.1', port: 0 });
  // Runs right after the repository handler, for the same request.
  server.server.on('request', (_req: IncomingMessage, res: ServerResponse) => void endedInHandler.push(res.writableEnded));
});

afterAll(async () => {
  await server?.close();
});

/** A GET, and whether the handler had answered it by the time it returned. */
async function get(path: string, headers: Record<string, string> = {}): Promise<Awaited<ReturnType<typeof raw>> & { atOnce: boolean }> {
  const before = endedInHandler.length;
  const res = await raw(server.url, path, { headers });
  expect(endedInHandler.length).toBe(before + 1);
  return { ...res, atOnce: endedInHandler[before]! };
}

const withoutDate = (h: Record<string, unknown>): Record<string, unknown> => Object.fromEntries(Object.entries(h).filter(([k]) => k !== 'date'));

describe('a repeated GET by a verified caller', () => {
  it.each([
    ['/packages/foo', 'packages/foo'],
    ['/tarballs/foo-0.1.0.tar', 'tarballs/foo-0.1.0.tar'],
    ['/names', 'names'],
  ] as const)('%s: answered at once, with the bytes, headers and log line of the full path', async (path, file) => {
    // A token, and a configured user's Basic header (the guide's AUTH_USERNAME/AUTH_PASSWORD).
    const authorization = path === '/names' ? basic('alice', 'wonderland') : readToken;
    const first = await get(path, { authorization });
    const second = await get(path, { authorization });
    expect(first.atOnce).toBe(false);
    expect(second.atOnce).toBe(true);
    const bytes = await readFile(join(pub, file));
    for (const res of [first, second]) {
      expect(res.status).toBe(200);
      expect(res.body.equals(bytes)).toBe(true);
      expect(res.headers['content-encoding']).toBeUndefined();
      expect(res.headers['content-length']).toBe(String(bytes.length));
    }
    expect(withoutDate(second.headers)).toEqual(withoutDate(first.headers));
    const lines = logs.filter((l) => l.msg === 'request' && l.path === path).slice(-2);
    expect(lines).toHaveLength(2);
    const who = path === '/names' ? 'user:alice' : `token:${readTokenId}`;
    for (const line of lines) expect(line).toMatchObject({ method: 'GET', path, status: 200, bytes: bytes.length, who, ip: '127.0.0.1', client: 'other' });
  });

  it('If-None-Match and HEAD still get 304 and an empty body', async () => {
    const ok = await get('/packages/foo', { authorization: readToken });
    const etag = String(ok.headers.etag);
    const notModified = await get('/packages/foo', { authorization: readToken, 'if-none-match': etag });
    expect(notModified.status).toBe(304);
    expect(notModified.body.length).toBe(0);
    const head = await raw(server.url, '/packages/foo', { method: 'HEAD', headers: { authorization: readToken } });
    expect(head.status).toBe(200);
    expect(head.body.length).toBe(0);
    expect(head.headers.etag).toBe(etag);
  });
});

describe('what the full path refuses, the quick path refuses', () => {
  it('no credentials, or a token for other packages: 401 and 403 on every request', async () => {
    for (let i = 0; i < 2; i++) {
      expect((await get('/packages/foo')).status).toBe(401);
      expect((await get('/packages/foo', { authorization: otherPackages })).status).toBe(403);
    }
  });

  it('a token revoked right after it was served is refused on the next request', async () => {
    const t = await tokens.create({ label: 'gone', grants: [{ repository: 'acme', scopes: ['read'], packages: [] }] });
    await get('/packages/foo', { authorization: t.token });
    expect((await get('/packages/foo', { authorization: t.token })).atOnce).toBe(true);
    await tokens.revoke(t.info.id);
    const after = await get('/packages/foo', { authorization: t.token });
    expect(after.status).toBe(401);
    expect(after.body.length).toBeGreaterThan(0);
  });

  it("a user's password guessed wrong too often from an address: the right one is refused there too (429), as before", async () => {
    const alice = basic('alice', 'wonderland');
    await get('/packages/foo', { authorization: alice });
    expect((await get('/packages/foo', { authorization: alice })).atOnce).toBe(true);
    for (let i = 0; i < 3; i++) expect((await get('/packages/foo', { authorization: basic('alice', `guess${i}`) })).status).toBe(401);
    const refused = await get('/packages/foo', { authorization: alice });
    expect(refused.status).toBe(429);
    expect(refused.headers['retry-after']).toBeDefined();
    // A token is never refused by the limiter.
    expect((await get('/packages/foo', { authorization: readToken })).status).toBe(200);
  });

  it('bytes that look like a private key under a repository path are never served, however often asked', async () => {
    const pem = await readFile(join(FIXTURES, 'golden-acme/test-only-rsa.pem'));
    const memory = new MemoryStore();
    await memory.put('tarballs/evil-1.0.0.tar', pem);
    const access = new Access({ repository: 'acme', visibility: 'public', users: [] });
    const open = await listen(createRepositoryHandler({ store: new CachedStore(memory), repository: 'acme', access }), { host: '127.0.0.1', port: 0 });
    try {
      for (let i = 0; i < 3; i++) {
        const res = await raw(open.url, '/tarballs/evil-1.0.0.tar');
        expect(res.status).toBe(404);
        expect(res.body.includes('PRIVATE KEY')).toBe(false);
      }
    } finally {
      await open.close();
    }
  });
});
