/**
 * The server's attack surface, over a real server, a real folder and raw sockets: bodies over the
 * limit sent chunked, uploads refused before their body, over-long names, links out of the public
 * folder, property names of Object.prototype as retirement reasons, what /health and the request
 * log tell.
 */
import { link, mkdir, mkdtemp, readFile, symlink, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { loadPrivateKey } from '@hexrepo/registry';
import { RepoService, TokenStore } from '@hexrepo/repo';
import { CachedStore, FsStore } from '@hexrepo/storage';
import { createTarball, writeTar } from '@hexrepo/tarball';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CORPUS_LIMITS } from '../../tarball/test/malformed-corpus.js';
import { Access, createLogger, createRepositoryHandler, listen, type RunningServer } from '../src/index.js';
import { FIXTURES, goldenPublic, raw } from './helpers.js';

const PEM = await readFile(join(FIXTURES, 'golden-acme/test-only-rsa.pem'), 'utf8');
const key = loadPrivateKey(PEM);
const basic = (user: string, pass: string): string => `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;
const LIMIT = CORPUS_LIMITS.maxTarballSize;

interface Exchange {
  /** Everything the server sent before the connection ended. */
  text: string;
  /** Body bytes handed to the socket before the server closed it. */
  sent: number;
}

/**
 * A raw HTTP/1.1 exchange: write `head`, then the body chunks (respecting back-pressure), and
 * collect what the server answers until it closes the connection. `end` half-closes after the body.
 */
function exchange(base: string, head: string, body: Iterable<Buffer>, opts: { end?: boolean } = {}): Promise<Exchange> {
  const url = new URL(base);
  return new Promise((resolve) => {
    const socket = connect(Number(url.port), url.hostname);
    const received: Buffer[] = [];
    let sent = 0;
    let open = true;
    const done = (): void => {
      if (!open) return;
      open = false;
      resolve({ text: Buffer.concat(received).toString('latin1'), sent });
    };
    socket.on('data', (d: Buffer) => received.push(d));
    socket.on('close', done);
    socket.on('error', () => socket.destroy());
    socket.once('connect', async () => {
      socket.write(head);
      for (const chunk of body) {
        if (!open || socket.destroyed) return;
        sent += chunk.length;
        if (!socket.write(chunk))
          await new Promise<void>((r) => {
            socket.once('drain', r);
            socket.once('close', r);
          });
      }
      if (opts.end && !socket.destroyed) socket.end();
    });
  });
}

/** `size` bytes as chunked transfer coding, in 16 KiB chunks, with the last chunk. */
function* chunked(size: number): Iterable<Buffer> {
  const piece = Buffer.alloc(16 * 1024, 0x61);
  for (let left = size; left > 0; left -= piece.length) {
    const part = left >= piece.length ? piece : piece.subarray(0, left);
    yield Buffer.concat([Buffer.from(`${part.length.toString(16)}\r\n`), part, Buffer.from('\r\n')]);
  }
  yield Buffer.from('0\r\n\r\n');
}

let dir: string;
let pub: string;
let store: CachedStore;
let service: RepoService;
let tokens: TokenStore;
let writer: string;
let writerId: string;
let otherOnly: string;
let otherOnlyId: string;
let server: RunningServer;
const logs: Record<string, unknown>[] = [];
const servers: RunningServer[] = [];

/** A server on the shared store with its own Access, so rate-limit tests do not meet each other. */
async function serverWith(access: Access): Promise<RunningServer> {
  const s = await listen(createRepositoryHandler({ store, access, repository: 'acme', service, maxUploadBytes: LIMIT }), { host: '127.0.0.1', port: 0 });
  servers.push(s);
  return s;
}
const users = [
  { username: 'alice', password: 'wonderland' },
  { username: 'bob', password: 'builder' },
];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hexrepo-harden-'));
  pub = join(dir, 'public');
  store = new CachedStore(new FsStore(pub));
  ({ service } = await RepoService.open({ store, repository: 'acme', privateKey: key, limits: CORPUS_LIMITS }));
  await service.publish(createTarball({ name: 'foo', version: '1.0.0', description: 'foo', licenses: ['MIT'] }, [{ path: 'src/foo.erl', contents: Buffer.from('-module(foo).\n') }]).tarball);
  tokens = await TokenStore.open(new FsStore(join(dir, 'state')));
  ({
    token: writer,
    info: { id: writerId },
  } = await tokens.create({ label: 'ci', grants: [{ repository: 'acme', scopes: ['read', 'write'], packages: [] }] }));
  ({
    token: otherOnly,
    info: { id: otherOnlyId },
  } = await tokens.create({ label: 'other', grants: [{ repository: 'acme', scopes: ['read'], packages: ['other_*'] }] }));
  const logger = createLogger({ destination: { write: (line: string) => void logs.push(JSON.parse(line) as Record<string, unknown>) } });
  const access = new Access({ repository: 'acme', visibility: 'private', users, tokens, maxFailures: 1000 });
  server = await listen(createRepositoryHandler({ store, access, repository: 'acme', service, maxUploadBytes: LIMIT, logger }), { host: '127.0.0.1', port: 0 });
});

afterAll(async () => {
  await server?.close();
  for (const s of servers) await s.close();
});

describe('a chunked body over the limit is refused and the server keeps serving', () => {
  it.each([
    ['/api/publish', 'application/octet-stream', LIMIT],
    ['/api/packages/foo/releases', 'application/octet-stream', LIMIT],
    ['/api/repos/acme/packages/foo/releases', 'application/octet-stream', LIMIT],
    ['/api/packages/foo/releases/1.0.0/docs', 'application/octet-stream', LIMIT],
    ['/api/packages/foo/releases/1.0.0/retire', 'application/json', 64 * 1024],
  ])('POST %s', async (path, type, limit) => {
    for (const authorization of [writer, basic('alice', 'wonderland')]) {
      const head = `POST ${path} HTTP/1.1\r\nHost: x\r\nAuthorization: ${authorization}\r\nContent-Type: ${type}\r\nTransfer-Encoding: chunked\r\n\r\n`;
      const res = await exchange(server.url, head, chunked(limit + 70_000));
      expect(res.text).toMatch(/^HTTP\/1\.1 413 /);
      expect(res.text).toMatch(/\r\nconnection: close\r\n/i);
      expect((await raw(server.url, '/names', { headers: { authorization: writer } })).status).toBe(200);
    }
  });
});

describe('an upload refused before its body is not read to the end', () => {
  it('401 with Connection: close, and the socket closes long before 100 MB are sent', async () => {
    const total = 100 * 1024 * 1024;
    const piece = Buffer.alloc(64 * 1024, 0x62);
    const body = function* (): Iterable<Buffer> {
      for (let i = 0; i < total / piece.length; i++) yield piece;
    };
    const head = `POST /api/packages/foo/releases HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\nContent-Length: ${total}\r\n\r\n`;
    const res = await exchange(server.url, head, body(), { end: true });
    expect(res.text).toMatch(/^HTTP\/1\.1 401 /);
    expect(res.text).toMatch(/\r\nconnection: close\r\n/i);
    expect(res.sent).toBeLessThan(total);
    expect((await raw(server.url, '/names', { headers: { authorization: writer } })).status).toBe(200);
  });
});

describe('names longer than Hex allows', () => {
  it('are 404 at the router on a public server, and the log line is short', async () => {
    const open = await serverWith(new Access({ repository: 'acme', visibility: 'public', users: [] }));
    const long = 'a'.repeat(300);
    for (const path of [`/packages/${long}`, `/tarballs/${long}-1.0.0.tar`, `/docs/${long}-1.0.0.tar.gz`, `/tarballs/foo-1.0.0-${'b'.repeat(250)}.tar`, `/docs/${'c'.repeat(245)}-1.0.0.tar.gz`]) {
      expect((await raw(open.url, path)).status, path).toBe(404);
    }
  });

  it('the store reads them as missing; the API answers 404; the log keeps a bounded path', async () => {
    const fs = new FsStore(pub);
    expect(await fs.get(`packages/${'a'.repeat(300)}`)).toBeNull();
    expect(await fs.head(`docs/${'a'.repeat(300)}-1.0.0.tar.gz`)).toBeNull();
    const long = 'a'.repeat(300);
    expect((await raw(server.url, `/api/packages/${long}/releases/1.0.0/docs`, { headers: { authorization: writer } })).status).toBe(404);
    expect((await raw(server.url, `/api/packages/${long}`, { headers: { authorization: writer } })).status).toBe(404);
    expect((await raw(server.url, `/packages/${long}${'x'.repeat(5000)}`, { headers: { authorization: writer } })).status).toBe(404);
    const lines = logs.filter((l) => typeof l.path === 'string' && (l.path as string).includes('aaaa'));
    expect(lines.length).toBeGreaterThanOrEqual(3);
    for (const l of lines) expect((l.path as string).length).toBeLessThanOrEqual(260);
  });
});

describe('links inside the public folder never serve a private key or a file outside', () => {
  let linked: RunningServer;
  let project: string;
  beforeAll(async () => {
    const lpub = await goldenPublic();
    project = join(lpub, '..');
    await writeFile(join(project, 'private_key.pem'), PEM);
    await writeFile(join(lpub, 'private_key.pem'), PEM);
    await mkdir(join(project, 'secrets'));
    await writeFile(join(project, 'secrets/leak-1.0.0.tar.gz'), 'a file outside the public folder');
    // A symlink to the key outside, and to a copy a careless user left inside the folder.
    await symlink('../../private_key.pem', join(lpub, 'tarballs/out-1.0.0.tar'));
    await symlink('../private_key.pem', join(lpub, 'tarballs/in-1.0.0.tar'));
    await symlink(join(project, 'private_key.pem'), join(lpub, 'packages/abs'));
    // A folder of the repository that is a symlink out of it.
    await symlink('../secrets', join(lpub, 'docs'));
    // Hard links to the key, outside and inside, and a plain copy under a repository path.
    await link(join(project, 'private_key.pem'), join(lpub, 'tarballs/hard-1.0.0.tar'));
    await link(join(lpub, 'private_key.pem'), join(lpub, 'packages/hardin'));
    await writeFile(join(lpub, 'packages/copy'), PEM);
    // What stays allowed: a symlink to a repository file inside the folder.
    await symlink('foo-0.1.0.tar', join(lpub, 'tarballs/alias-0.1.0.tar'));
    const lstore = new CachedStore(new FsStore(lpub));
    for (const access of [new Access({ repository: 'acme', visibility: 'public', users: [] }), new Access({ repository: 'acme', visibility: 'private', users, tokens })]) {
      linked = await listen(createRepositoryHandler({ store: lstore, access, repository: 'acme' }), { host: '127.0.0.1', port: 0 });
      servers.push(linked);
    }
  });

  it.each(['/tarballs/out-1.0.0.tar', '/tarballs/in-1.0.0.tar', '/packages/abs', '/docs/leak-1.0.0.tar.gz', '/tarballs/hard-1.0.0.tar', '/packages/hardin', '/packages/copy'])('%s is 404 for GET, conditional GET and HEAD', async (path) => {
    for (const s of servers.slice(-2)) {
      const auth = { authorization: basic('alice', 'wonderland') };
      for (const res of [await raw(s.url, path, { headers: auth }), await raw(s.url, path, { headers: { ...auth, 'if-none-match': '"x"' } }), await raw(s.url, path, { method: 'HEAD', headers: auth })]) {
        expect(res.status, path).toBe(404);
        expect(res.body.toString()).not.toMatch(/PRIVATE KEY|outside the public/);
      }
    }
  });

  it('a symlink to a repository file inside the folder is still served', async () => {
    const res = await raw(linked.url, '/tarballs/alias-0.1.0.tar', { headers: { authorization: basic('alice', 'wonderland') } });
    expect(res.status).toBe(200);
    expect(res.body.equals(await readFile(join(FIXTURES, 'tarballs/foo-0.1.0.tar')))).toBe(true);
  });
});

describe('retirement reasons are the five Hex knows, never Object.prototype property names', () => {
  it.each(['toString', 'valueOf', 'constructor', '__proto__', 'hasOwnProperty', 'isPrototypeOf'])('%s → 422, nothing stored', async (reason) => {
    const res = await raw(server.url, '/api/packages/foo/releases/1.0.0/retire', {
      method: 'POST',
      headers: { authorization: writer, 'content-type': 'application/json', 'content-length': String(JSON.stringify({ reason }).length) },
      body: JSON.stringify({ reason }),
    });
    expect(res.status).toBe(422);
    expect(service.releases('foo')[0]!.retired).toBeUndefined();
  });
});

describe('docs uploads follow the entry rules of package contents', () => {
  it.each([
    ['a symlink out of the docs', { name: 'evil', type: 'symlink' as const, linkname: '../../../etc/passwd' }],
    ['an absolute symlink', { name: 'evil', type: 'symlink' as const, linkname: '/etc/passwd' }],
    ['a hard link out of the docs', { name: 'evil', type: 'hardlink' as const, linkname: '/etc/passwd' }],
    ['a FIFO', { name: 'fifo', type: 'other' as const, typeflag: '6' }],
  ])('%s → 422, no docs stored', async (_what, entry) => {
    const docs = gzipSync(writeTar([{ name: 'index.html', data: Buffer.from('<h1>foo</h1>') }, entry]));
    const res = await raw(server.url, '/api/packages/foo/releases/1.0.0/docs', { method: 'POST', headers: { authorization: writer, 'content-type': 'application/octet-stream', 'content-length': String(docs.length) }, body: docs });
    expect(res.status).toBe(422);
    expect(JSON.parse(res.body.toString())).toMatchObject({ errors: { tar: expect.stringMatching(/CONTENTS_(UNSAFE_LINK|UNSUPPORTED_ENTRY)/) } });
    expect(await service.hasDocs('foo', '1.0.0')).toBe(false);
  });
});

describe('/health', () => {
  it('tells anyone the status and the repository name, never where it is stored', async () => {
    const res = await raw(server.url, '/health');
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body.toString())).toEqual({ status: 'ok', repository: 'acme' });
    expect(res.body.toString()).not.toContain(pub);
    const wrong = await raw(server.url, '/health', { headers: { authorization: basic('alice', 'nope') } });
    expect(JSON.parse(wrong.body.toString())).toEqual({ status: 'ok', repository: 'acme' });
  });

  it('an authenticated caller also sees the store', async () => {
    const res = await raw(server.url, '/health', { headers: { authorization: writer } });
    expect(JSON.parse(res.body.toString())).toEqual({ status: 'ok', repository: 'acme', store: new FsStore(pub).url });
  });
});

describe('the request log', () => {
  it('counts the bytes of JSON API responses', async () => {
    const res = await raw(server.url, '/api/users/me', { headers: { authorization: writer } });
    expect(res.status).toBe(200);
    const line = logs.findLast((l) => l.msg === 'request' && l.path === '/api/users/me');
    expect(line).toMatchObject({ status: 200, bytes: res.body.length, who: `token:${writerId}` });
    expect(res.body.length).toBeGreaterThan(0);
  });

  it('names who was refused with a 403', async () => {
    expect((await raw(server.url, '/packages/foo', { headers: { authorization: otherOnly } })).status).toBe(403);
    expect(logs.findLast((l) => l.msg === 'request' && l.path === '/packages/foo')).toMatchObject({ status: 403, who: `token:${otherOnlyId}` });
    expect((await raw(server.url, '/api/packages/foo/releases/1.0.0/retire', { method: 'DELETE', headers: { authorization: otherOnly } })).status).toBe(403);
    expect(logs.findLast((l) => l.msg === 'request' && l.path === '/api/packages/foo/releases/1.0.0/retire')).toMatchObject({ status: 403, who: `token:${otherOnlyId}` });
  });
});

describe('failed logins: brute force is throttled, valid credentials are not locked out', () => {
  it('20 bad tokens from one address, then a good token → 200', async () => {
    const s = await serverWith(new Access({ repository: 'acme', visibility: 'private', users, tokens }));
    const statuses: number[] = [];
    for (let i = 0; i < 20; i++) statuses.push((await raw(s.url, '/names', { headers: { authorization: `hxr_wrong${i}` } })).status);
    expect(statuses.slice(0, 10)).toEqual(Array(10).fill(401));
    expect(statuses.slice(10)).toEqual(Array(10).fill(429));
    expect((await raw(s.url, '/names', { headers: { authorization: writer } })).status).toBe(200);
    expect((await raw(s.url, '/names', { headers: { authorization: basic('x', writer) } })).status).toBe(200);
    // The user's password is not somebody else's failures either.
    expect((await raw(s.url, '/names', { headers: { authorization: basic('alice', 'wonderland') } })).status).toBe(200);
  });

  it("20 bad passwords for alice: her right password → 429 (no oracle), bob's → 200, a token → 200", async () => {
    const s = await serverWith(new Access({ repository: 'acme', visibility: 'private', users, tokens }));
    for (let i = 0; i < 20; i++) await raw(s.url, '/names', { headers: { authorization: basic('alice', `guess${i}`) } });
    const alice = await raw(s.url, '/names', { headers: { authorization: basic('alice', 'wonderland') } });
    expect(alice.status).toBe(429);
    expect(Number(alice.headers['retry-after'])).toBeGreaterThan(0);
    expect((await raw(s.url, '/names', { headers: { authorization: basic('bob', 'builder') } })).status).toBe(200);
    expect((await raw(s.url, '/names', { headers: { authorization: writer } })).status).toBe(200);
  });

  it('GET /api/users/me is throttled like /names', async () => {
    const s = await serverWith(new Access({ repository: 'acme', visibility: 'private', users, tokens }));
    const statuses: number[] = [];
    for (let i = 0; i < 20; i++) statuses.push((await raw(s.url, '/api/users/me', { headers: { authorization: basic('alice', `guess${i}`) } })).status);
    expect(statuses.slice(0, 10)).toEqual(Array(10).fill(401));
    expect(statuses.slice(10)).toEqual(Array(10).fill(429));
    expect((await raw(s.url, '/api/users/me', { headers: { authorization: basic('alice', 'wonderland') } })).status).toBe(429);
    expect((await raw(s.url, '/names', { headers: { authorization: basic('alice', 'wonderland') } })).status).toBe(429);
    expect((await raw(s.url, '/api/users/me', { headers: { authorization: writer } })).status).toBe(200);
  });

  it('on a public server, password guessing on users/me is throttled too', async () => {
    const s = await serverWith(new Access({ repository: 'acme', visibility: 'public', users, tokens }));
    for (let i = 0; i < 10; i++) expect((await raw(s.url, '/api/users/me', { headers: { authorization: basic('bob', `guess${i}`) } })).status).toBe(401);
    expect((await raw(s.url, '/api/users/me', { headers: { authorization: basic('bob', 'builder') } })).status).toBe(429);
  });
});
