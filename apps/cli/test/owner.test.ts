/** hexrepo owner list|add|remove and retire/unretire --all, on a local folder and against a running server. */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadPublicKey, unpackPackage } from '@hexrepo/registry';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hexrepo } from '../../../e2e/support/cli.js';
import { startServe, type ServeProcess } from '../../../e2e/support/serve.js';

const FIXTURES = new URL('../../../test-fixtures/tarballs/', import.meta.url).pathname;
let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hexrepo-owner-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const retired = async (repo: string, name: string): Promise<Record<string, string | undefined>> => {
  const publicKey = loadPublicKey(await readFile(join(repo, 'public/public_key')));
  const pkg = unpackPackage(await readFile(join(repo, 'public/packages', name)), { publicKey, repository: 'acme', name });
  return Object.fromEntries(pkg.releases.map((r) => [r.version, r.retired?.reason]));
};

describe('on a local folder', () => {
  let repo: string;
  beforeAll(async () => {
    expect((await hexrepo(['init', 'local', '--name', 'acme'], { cwd: dir })).status).toBe(0);
    repo = join(dir, 'local');
    expect((await hexrepo(['user', 'add', 'alice', '--scope', 'write'], { cwd: repo, input: 'alice-password-1\n' })).status).toBe(0);
    expect((await hexrepo(['publish', join(FIXTURES, 'foo-0.1.0.tar'), join(FIXTURES, 'foo-0.2.0.tar')], { cwd: repo })).status).toBe(0);
  }, 30_000);

  it('adds, lists and removes owners; an unknown user or package is refused', async () => {
    const empty = await hexrepo(['owner', 'list', 'foo'], { cwd: repo });
    expect([empty.status, empty.stderr]).toEqual([0, 'foo has no owners\n']);
    const add = await hexrepo(['owner', 'add', 'foo', 'alice', '--json'], { cwd: repo });
    expect(add.status, add.stderr).toBe(0);
    expect(JSON.parse(add.stdout)).toEqual([{ username: 'alice', level: 'full' }]);
    expect((await hexrepo(['owner', 'list', 'foo'], { cwd: repo })).stdout).toMatch(/^alice\s+full\n$/);
    const unknown = await hexrepo(['owner', 'add', 'foo', 'bob'], { cwd: repo });
    expect([unknown.status, unknown.stderr]).toEqual([2, expect.stringContaining('no user bob')]);
    const noPackage = await hexrepo(['owner', 'add', 'nope', 'alice'], { cwd: repo });
    expect([noPackage.status, noPackage.stderr]).toEqual([1, expect.stringContaining('error[NOT_FOUND]: no package nope')]);
    const last = await hexrepo(['owner', 'remove', 'foo', 'alice'], { cwd: repo });
    expect([last.status, last.stderr]).toEqual([1, expect.stringContaining('error[OWNERSHIP_INVALID]: alice is the last full owner of foo')]);
    expect((await hexrepo(['owner', 'add', 'foo', 'alice', '--level', 'boss'], { cwd: repo })).status).toBe(2);
    // Demoting the last full owner would leave the package with none, like removing it.
    const demote = await hexrepo(['owner', 'add', 'foo', 'alice', '--level', 'maintainer'], { cwd: repo });
    expect([demote.status, demote.stderr]).toEqual([1, expect.stringContaining('error[OWNERSHIP_INVALID]')]);
    expect(JSON.parse((await hexrepo(['owner', 'list', 'foo', '--json'], { cwd: repo })).stdout)).toEqual([{ username: 'alice', level: 'full' }]);
  });

  it('retire --all retires every release, unretire --all clears them', async () => {
    expect((await hexrepo(['retire', 'foo', '0.1.0', 'security', '--message', 'CVE-1'], { cwd: repo })).status).toBe(0);
    const all = await hexrepo(['retire', 'foo', 'deprecated', '--all', '--message', 'use bar'], { cwd: repo });
    expect([all.status, all.stdout]).toEqual([0, expect.stringMatching(/^retired foo \(every release\) in /)]);
    expect(await retired(repo, 'foo')).toEqual({ '0.1.0': 'security', '0.2.0': 'deprecated' });
    expect((await hexrepo(['unretire', 'foo', '--all'], { cwd: repo })).status).toBe(0);
    expect(await retired(repo, 'foo')).toEqual({ '0.1.0': undefined, '0.2.0': undefined });
    expect((await hexrepo(['retire', 'foo', '--all'], { cwd: repo })).status).toBe(2);
  });
});

describe('against hexrepo serve (--url)', () => {
  let repo: string;
  let server: ServeProcess;
  let admin: string;
  let writer: string;
  beforeAll(async () => {
    expect((await hexrepo(['init', 'remote', '--name', 'acme'], { cwd: dir })).status).toBe(0);
    repo = join(dir, 'remote');
    const create = async (label: string, scope: string): Promise<string> =>
      (JSON.parse((await hexrepo(['token', 'create', '--label', label, '--scope', scope, '--scope', 'read', '--json'], { cwd: repo })).stdout) as { token: string }).token;
    admin = await create('ops', 'admin');
    writer = await create('ci', 'write');
    expect((await hexrepo(['user', 'add', 'alice', '--scope', 'write'], { cwd: repo, input: 'alice-password-1\n' })).status).toBe(0);
    server = await startServe([], { cwd: repo });
    expect((await hexrepo(['publish', join(FIXTURES, 'bar-1.0.0.tar'), '--url', server.url], { cwd: dir, env: { HEXREPO_TOKEN: writer } })).status).toBe(0);
  }, 30_000);
  afterAll(async () => {
    await server?.stop();
  });

  it('an admin token adds and removes owners; a write token is refused (exit 3)', async () => {
    const refused = await hexrepo(['owner', 'add', 'bar', 'alice', '--url', server.url], { cwd: dir, env: { HEXREPO_TOKEN: writer } });
    expect([refused.status, refused.stderr]).toEqual([3, expect.stringContaining('403')]);
    const add = await hexrepo(['owner', 'add', 'bar', 'alice', '--url', server.url, '--json'], { cwd: dir, env: { HEXREPO_TOKEN: admin } });
    expect(add.status, add.stderr).toBe(0);
    expect(JSON.parse(add.stdout)).toEqual([expect.objectContaining({ username: 'alice', level: 'full' })]);
    expect((await hexrepo(['owner', 'list', 'bar', '--url', server.url], { cwd: dir, env: { HEXREPO_TOKEN: writer } })).stdout).toMatch(/^alice\s+full\n$/);
    const last = await hexrepo(['owner', 'remove', 'bar', 'alice', '--url', server.url], { cwd: dir, env: { HEXREPO_TOKEN: admin } });
    expect([last.status, last.stderr]).toEqual([1, expect.stringContaining('422')]);
  });

  it('retire --all over the API', async () => {
    const env = { HEXREPO_TOKEN: writer };
    expect((await hexrepo(['retire', 'bar', 'renamed', '--all', '--message', 'now baz', '--url', server.url], { cwd: dir, env })).status).toBe(0);
    expect(await retired(repo, 'bar')).toEqual({ '1.0.0': 'renamed' });
    expect((await hexrepo(['unretire', 'bar', '--all', '--url', server.url], { cwd: dir, env })).status).toBe(0);
    expect(await retired(repo, 'bar')).toEqual({ '1.0.0': undefined });
  });
});
