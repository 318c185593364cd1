/** hexrepo publish / retire / unretire / revert, on a local folder and against a running server. */
import { copyFile, mkdtemp, readFile, rm } from 'node:fs/promises';
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
    expect(JSON.parse(pub.stdout)).toMatchObject({ ok: true, published: [{ name: 'foo', version: '0.1.0', created: true }, { name: 'foo', version: '0.2.0' }] });
    const dup = await hexrepo(['publish', join(FIXTURES, 'foo-0.1.0.tar')], { cwd: repo });
    expect(dup.status).toBe(1);
    expect(dup.stderr).toMatch(/error\[ALREADY_EXISTS\]: .*foo-0\.1\.0\.tar.*--replace/);
    expect((await hexrepo(['publish', join(FIXTURES, 'foo-0.1.0.tar'), '--replace'], { cwd: repo })).stdout).toMatch(/^replaced foo 0\.1\.0/);

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
