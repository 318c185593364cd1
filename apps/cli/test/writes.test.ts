/** hexrepo publish / retire / unretire / revert, on a local folder and against a running server. */
import { copyFile, mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadPublicKey, unpackPackage } from '@hexrepo/registry';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hexrepo } from '../../../e2e/support/cli.js';
import { startServe, type ServeProcess } from '../../../e2e/support/serve.js';

const FIXTURES = new URL('../../../test-fixtures/tarballs/', import.meta.url).pathname;
let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hexrepo-writes-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const registry = async (repo: string, name: string) => {
  const publicKey = loadPublicKey(await readFile(join(repo, 'public/public_key')));
  return unpackPackage(await readFile(join(repo, 'public/packages', name)), { publicKey, repository: 'acme', name });
};

describe('on a local folder', () => {
  let repo: string;
  beforeAll(async () => {
    expect((await hexrepo(['init', 'local', '--name', 'acme'], { cwd: dir })).status).toBe(0);
    repo = join(dir, 'local');
    await copyFile(join(FIXTURES, 'foo-0.1.0.tar'), join(dir, 'foo-0.1.0.tar'));
  });

  it('publish, refuse a duplicate, replace, retire, unretire, revert', async () => {
    const pub = await hexrepo(['publish', join(FIXTURES, 'foo-0.1.0.tar'), join(FIXTURES, 'foo-0.2.0.tar'), '--json'], { cwd: repo });
    expect(pub.status, pub.stderr).toBe(0);
    expect(JSON.parse(pub.stdout)).toMatchObject({
      ok: true,
      published: [
        { name: 'foo', version: '0.1.0', created: true },
        { name: 'foo', version: '0.2.0' },
      ],
    });
    const dup = await hexrepo(['publish', join(FIXTURES, 'foo-0.1.0.tar')], { cwd: repo });
    expect(dup.status).toBe(1);
    expect(dup.stderr).toMatch(/error\[ALREADY_EXISTS\]: .*foo-0\.1\.0\.tar.*--replace/);
    expect((await hexrepo(['publish', join(FIXTURES, 'foo-0.1.0.tar'), '--replace'], { cwd: repo })).stdout).toMatch(/^replaced foo 0\.1\.0/);

    const short = await hexrepo(['retire', 'foo', '0.1.0', 'security', '--message', 'no'], { cwd: repo });
    expect([short.status, short.stderr]).toEqual([2, expect.stringMatching(/error\[USAGE\]: .*--message is 2 characters; it must be 3 to 140/)]);
    expect((await hexrepo(['retire', 'foo', '0.1.0', 'security', '--message', 'CVE-1'], { cwd: repo })).status).toBe(0);
    expect((await registry(repo, 'foo')).releases[0]!.retired).toEqual({ reason: 'security', message: 'CVE-1' });
    // a full rebuild keeps it
    expect((await hexrepo(['build', '--no-cache'], { cwd: repo })).status).toBe(0);
    expect((await registry(repo, 'foo')).releases[0]!.retired).toEqual({ reason: 'security', message: 'CVE-1' });
    expect((await hexrepo(['unretire', 'foo', '0.1.0'], { cwd: repo })).status).toBe(0);
    expect((await registry(repo, 'foo')).releases[0]!.retired).toBeUndefined();

    expect((await hexrepo(['revert', 'foo', '0.1.0'], { cwd: repo })).status).toBe(0);
    expect((await registry(repo, 'foo')).releases.map((r) => r.version)).toEqual(['0.2.0']);
    await expect(readFile(join(repo, 'public/tarballs/foo-0.1.0.tar'))).rejects.toThrow(/ENOENT/);
    expect((await hexrepo(['verify'], { cwd: repo })).status).toBe(0);
  });

  it('usage errors', async () => {
    expect((await hexrepo(['publish'], { cwd: repo })).status).toBe(2);
    expect((await hexrepo(['retire', 'foo', '0.2.0', 'bored'], { cwd: repo })).stderr).toContain('REASON must be one of');
    for (const reason of ['toString', 'constructor', '__proto__']) expect((await hexrepo(['retire', 'foo', '0.2.0', reason], { cwd: repo })).stderr).toContain('REASON must be one of');
    expect((await hexrepo(['revert', 'foo'], { cwd: repo })).status).toBe(2);
    const missing = await hexrepo(['revert', 'foo', '9.9.9'], { cwd: repo });
    expect(missing.status).toBe(1);
    expect(missing.stderr).toMatch(/error\[NOT_FOUND\]: foo has no release 9\.9\.9/);
  });
});

describe('against hexrepo serve (--url, HEXREPO_TOKEN)', () => {
  let repo: string;
  let server: ServeProcess;
  let token: string;
  beforeAll(async () => {
    expect((await hexrepo(['init', 'remote', '--name', 'acme'], { cwd: dir })).status).toBe(0);
    repo = join(dir, 'remote');
    token = (JSON.parse((await hexrepo(['token', 'create', '--label', 'ci', '--scope', 'write', '--json'], { cwd: repo })).stdout) as { token: string }).token;
    server = await startServe([], { cwd: repo });
  }, 30_000);
  afterAll(async () => {
    await server?.stop();
  });

  it('publishes, retires and reverts through the publish API', async () => {
    const env = { HEXREPO_TOKEN: token };
    const pub = await hexrepo(['publish', join(FIXTURES, 'bar-1.0.0.tar'), '--url', server.url, '--json'], { cwd: dir, env });
    expect(pub.status, pub.stderr).toBe(0);
    expect(JSON.parse(pub.stdout)).toMatchObject({ published: [{ name: 'bar', version: '1.0.0', created: true }] });
    const dup = await hexrepo(['publish', join(FIXTURES, 'bar-1.0.0.tar'), '--url', server.url], { cwd: dir, env });
    expect(dup.status).toBe(1);
    expect(dup.stderr).toContain('422');
    expect((await hexrepo(['retire', 'bar', '1.0.0', 'deprecated', '--message', 'use baz', '--url', server.url], { cwd: dir, env })).status).toBe(0);
    expect((await registry(repo, 'bar')).releases[0]!.retired).toEqual({ reason: 'deprecated', message: 'use baz' });
    expect((await hexrepo(['revert', 'bar', '1.0.0', '--url', server.url], { cwd: dir, env })).status).toBe(0);
    await expect(readFile(join(repo, 'public/packages/bar'))).rejects.toThrow(/ENOENT/);
    const noToken = await hexrepo(['revert', 'bar', '1.0.0', '--url', server.url], { cwd: dir });
    expect(noToken.status).toBe(2);
    expect(noToken.stderr).toContain('HEXREPO_TOKEN');
  });
});

describe('exit statuses and error codes of refused API calls (a real hexrepo serve)', () => {
  let server: ServeProcess;
  let noKey: ServeProcess;
  let reader: string;
  let writer: string;
  let noKeyWriter: string;
  const tokenOf = async (repo: string, scope: string): Promise<string> => (JSON.parse((await hexrepo(['token', 'create', '--label', scope, '--scope', scope, '--json'], { cwd: repo })).stdout) as { token: string }).token;
  beforeAll(async () => {
    expect((await hexrepo(['init', 'codes', '--name', 'acme'], { cwd: dir })).status).toBe(0);
    const repo = join(dir, 'codes');
    reader = await tokenOf(repo, 'read');
    writer = await tokenOf(repo, 'write');
    server = await startServe([], { cwd: repo });
    // The same kind of repository without its signing key: the server reads but answers writes 503.
    expect((await hexrepo(['init', 'nokey', '--name', 'acme'], { cwd: dir })).status).toBe(0);
    const nokey = join(dir, 'nokey');
    noKeyWriter = await tokenOf(nokey, 'write');
    await rm(join(nokey, 'private_key.pem'));
    noKey = await startServe([], { cwd: nokey });
  }, 30_000);
  afterAll(async () => {
    await server?.stop();
    await noKey?.stop();
  });

  const retire = (url: string, env: Record<string, string>) => hexrepo(['retire', 'bar', '1.0.0', 'deprecated', '--message', 'use baz', '--url', url, '--json'], { cwd: dir, env });
  const failure = (out: string) => JSON.parse(out) as { ok: boolean; exit: number; error: { code: string; message: string; details: Record<string, unknown> } };

  it('a read-only token (403) → exit 3, error[PERMISSION_DENIED]', async () => {
    const res = await retire(server.url, { HEXREPO_TOKEN: reader });
    expect(res.status, res.stderr).toBe(3);
    expect(res.stderr).toMatch(/^error\[PERMISSION_DENIED\]: POST .*\/retire: 403 /m);
    expect(res.stderr).toContain('hint: this needs a token with the write scope');
    expect(failure(res.stdout)).toMatchObject({ ok: false, exit: 3, error: { code: 'PERMISSION_DENIED', details: { status: 403 } } });
  });

  it('an unknown token (401) → exit 3, error[AUTH_INVALID]', async () => {
    const res = await retire(server.url, { HEXREPO_TOKEN: 'hxr_not_a_token' });
    expect(res.status, res.stderr).toBe(3);
    expect(res.stderr).toMatch(/^error\[AUTH_INVALID\]: POST .*: 401 /m);
    expect(failure(res.stdout)).toMatchObject({ exit: 3, error: { code: 'AUTH_INVALID', details: { status: 401 } } });
  });

  it('a server error (503: publishing disabled) → exit 4, error[SERVER_ERROR]', async () => {
    const res = await retire(noKey.url, { HEXREPO_TOKEN: noKeyWriter });
    expect(res.status, res.stderr).toBe(4);
    expect(res.stderr).toMatch(/^error\[SERVER_ERROR\]: POST .*: 503 publishing is disabled/m);
    expect(failure(res.stdout)).toMatchObject({ exit: 4, error: { code: 'SERVER_ERROR', details: { status: 503 } } });
  });

  it('no server listening → exit 4, error[NETWORK_ERROR] naming the cause', async () => {
    // A port that was free a moment ago and is closed again: connecting is refused.
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const { port } = probe.address() as AddressInfo;
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    const res = await retire(`http://127.0.0.1:${port}`, { HEXREPO_TOKEN: writer });
    expect(res.status, res.stderr).toBe(4);
    expect(res.stderr).toMatch(/^error\[NETWORK_ERROR\]: cannot reach http:\/\/127\.0\.0\.1:\d+\/api: fetch failed: .*ECONNREFUSED/m);
    expect(failure(res.stdout)).toMatchObject({ exit: 4, error: { code: 'NETWORK_ERROR' } });
  });

  it('a refused package keeps exit 1, and "hexrepo --help" documents every status', async () => {
    const res = await retire(server.url, { HEXREPO_TOKEN: writer });
    expect(res.status, res.stderr).toBe(1);
    expect(failure(res.stdout)).toMatchObject({ exit: 1, error: { code: 'NOT_FOUND' } });
    const help = (await hexrepo(['--help'])).stdout;
    for (const line of [/^ {2}3 {2}the server refused the credentials \(error\[AUTH_INVALID\]/m, /error\[PERMISSION_DENIED\]/, /^ {2}4 {2}the server failed \(error\[SERVER_ERROR\]/m, /error\[NETWORK_ERROR\]/, /error\[RATE_LIMITED\]/])
      expect(help).toMatch(line);
  });
});
