/**
 * The host's credentials through the built CLI: tokens with grants and users in the state store
 * (DIR/.hexrepo/state/), the one-time migration of a format-1 token file (made by an older hexrepo),
 * two servers on one folder sharing them, and deploy never uploading them.
 */
import { copyFile, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hexrepo } from '../../../e2e/support/cli.js';
import { namesStatus, reloadedWithin5s, reloads } from '../../../e2e/support/credentials.js';
import { startServe, type ServeProcess } from '../../../e2e/support/serve.js';

const FIXTURE = new URL('../../../test-fixtures/tokens-format1/', import.meta.url).pathname;
const basic = (user: string, pass: string): string => `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;
const CREDENTIALS = '.hexrepo/state/_hexrepo/host/credentials.json';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hexrepo-cred-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function project(name: string): Promise<string> {
  const init = await hexrepo(['init', name, '--name', 'acme'], { cwd: dir });
  expect(init.status, init.stderr).toBe(0);
  return join(dir, name);
}

describe('hexrepo token and hexrepo user on a folder project', () => {
  it('tokens: grants per --repo, --expires, stored as hashes in .hexrepo/state/, never in public/', async () => {
    const repo = await project('tokens');
    const created = await hexrepo(['token', 'create', '--label', 'two', '--repo', 'acme', '--repo', 'beta', '--scope', 'read', '--package', 'acme_*', '--expires', '30d', '--json'], { cwd: repo });
    expect(created.status, created.stderr).toBe(0);
    const info = JSON.parse(created.stdout) as { token: string; id: string; expiresAt: string; grants: unknown };
    expect(info.grants).toEqual([
      { repository: 'acme', scopes: ['read'], packages: ['acme_*'] },
      { repository: 'beta', scopes: ['read'], packages: ['acme_*'] },
    ]);
    const days = (Date.parse(info.expiresAt) - Date.now()) / 86_400_000;
    expect(days > 29.9 && days <= 30).toBe(true);
    const stored = await readFile(join(repo, CREDENTIALS), 'utf8');
    expect(stored).toContain(info.id);
    expect(stored).not.toContain(info.token.slice(15));
    expect((await stat(join(repo, '.hexrepo/state'))).mode & 0o777).toBe(0o700);
    const all = await hexrepo(['token', 'create', '--label', 'all', '--repo', '*', '--scope', 'admin'], { cwd: repo });
    expect(all.status, all.stderr).toBe(0);
    const human = await hexrepo(['token', 'list'], { cwd: repo });
    expect(human.stdout).toMatch(new RegExp(`^${info.id}\\s+acme:read\\[acme_\\*\\] beta:read\\[acme_\\*\\]\\s+\\S+\\s+until `));
    expect(human.stdout).toMatch(/\*:admin\s+\S+\s+all$/m);
    const bad = await hexrepo(['token', 'create', '--label', 'x', '--scope', 'read', '--expires', 'soon'], { cwd: repo });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain('--expires "soon" is not a duration or a date');
    // a bare public folder names no repository: --repo is needed
    const noRepo = await hexrepo(['token', 'create', join(repo, 'public'), '--label', 'x', '--scope', 'read'], { cwd: dir });
    expect(noRepo.status).toBe(2);
    expect(noRepo.stderr).toContain('pass --repo NAME');
  });

  it('users: the password from stdin, never a flag; serve accepts them within their grants; passwd and remove apply', async () => {
    const repo = await project('users');
    const add = await hexrepo(['user', 'add', 'alice', '--scope', 'read'], { cwd: repo, input: 'wonderland\n' });
    expect(add.status, add.stderr).toBe(0);
    expect(add.stderr).toContain('Added user alice (acme:read)');
    const other = await hexrepo(['user', 'add', 'bob', '--repo', 'beta', '--scope', 'read'], { cwd: repo, input: 'builder-bob\n' });
    expect(other.status, other.stderr).toBe(0);
    expect((await hexrepo(['user', 'add', 'carol', '--scope', 'read'], { cwd: repo, input: '' })).stderr).toContain('no password on stdin');
    expect((await hexrepo(['user', 'add', 'carol', '--scope', 'read'], { cwd: repo, input: 'short\n' })).stderr).toContain('too short');
    expect(await readFile(join(repo, CREDENTIALS), 'utf8')).not.toContain('wonderland');
    const list = await hexrepo(['user', 'list', '--json'], { cwd: repo });
    expect((JSON.parse(list.stdout) as { username: string }[]).map((u) => u.username)).toEqual(['alice', 'bob']);

    const server = await startServe([], { cwd: repo });
    try {
      expect((await fetch(`${server.url}/names`, { headers: { authorization: basic('alice', 'wonderland') } })).status).toBe(200);
      // bob may read beta only, not this server's acme
      expect((await fetch(`${server.url}/names`, { headers: { authorization: basic('bob', 'builder-bob') } })).status).toBe(403);
      expect((await fetch(`${server.url}/names`, { headers: { authorization: basic('alice', 'wrong-one') } })).status).toBe(401);
      // A web UI login of alice's, which the new password must end.
      const form = await fetch(`${server.url}/-/login`);
      const csrf = /name="csrf" value="([^"]+)"/.exec(await form.text())![1]!;
      const loggedIn = await fetch(`${server.url}/-/login`, {
        method: 'POST',
        redirect: 'manual',
        headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: form.headers.getSetCookie()[0]!.split(';')[0]!, origin: server.url },
        body: new URLSearchParams({ csrf, username: 'alice', password: 'wonderland', next: '/-/tokens' }).toString(),
      });
      const session = loggedIn.headers
        .getSetCookie()
        .find((c) => c.startsWith('hexrepo_session=hxr_'))!
        .split(';')[0]!;
      expect((await fetch(`${server.url}/-/tokens`, { headers: { cookie: session }, redirect: 'manual' })).status).toBe(200);
      let before = [reloads(server)];
      const passwd = await hexrepo(['user', 'passwd', 'alice'], { cwd: repo, input: 'looking-glass\n' });
      expect(passwd.status).toBe(0);
      expect(passwd.stderr).toContain('ended 1 web session');
      expect(await reloadedWithin5s([server], before)).toEqual([true]);
      expect((await fetch(`${server.url}/-/tokens`, { headers: { cookie: session }, redirect: 'manual' })).status).toBe(303);
      expect(await namesStatus([server], basic('alice', 'wonderland'))).toEqual([401]);
      expect(await namesStatus([server], basic('alice', 'looking-glass'))).toEqual([200]);
      before = [reloads(server)];
      expect((await hexrepo(['user', 'remove', 'alice'], { cwd: repo })).status).toBe(0);
      expect(await reloadedWithin5s([server], before)).toEqual([true]);
      expect(await namesStatus([server], basic('alice', 'looking-glass'))).toEqual([401]);
      expect((await hexrepo(['user', 'remove', 'alice'], { cwd: repo })).status).toBe(1);
    } finally {
      expect(await server.stop()).toBe(0);
    }
  }, 60_000);
});

describe('--state: the credentials in another store', () => {
  it('a token created with --state is accepted by a server given the same --state, and not kept in .hexrepo/state/', async () => {
    const repo = await project('state');
    const state = join(dir, 'shared-state');
    const created = await hexrepo(['token', 'create', '--state', state, '--label', 'shared', '--scope', 'read', '--json'], { cwd: repo });
    expect(created.status, created.stderr).toBe(0);
    const { token, credentials } = JSON.parse(created.stdout) as { token: string; credentials: string };
    expect(credentials).toMatch(/\/shared-state\/_hexrepo\/host\/credentials\.json$/);
    await expect(stat(join(repo, CREDENTIALS))).rejects.toMatchObject({ code: 'ENOENT' });
    const server = await startServe(['--state', state], { cwd: repo, env: { HEXREPO_ACCESS: 'private' } });
    try {
      expect(await namesStatus([server], token)).toEqual([200]);
    } finally {
      expect(await server.stop()).toBe(0);
    }
    const without = await startServe(['--access', 'private'], { cwd: repo });
    try {
      expect(await namesStatus([without], token)).toEqual([401]);
    } finally {
      expect(await without.stop()).toBe(0);
    }
  }, 30_000);
});

describe('migration of a format-1 .hexrepo/tokens.json (made by an older hexrepo)', () => {
  it('hexrepo serve moves it into the state store once; the old tokens keep working, for this repository only', async () => {
    const repo = await project('old');
    await copyFile(join(FIXTURE, 'tokens.json'), join(repo, '.hexrepo/tokens.json'));
    const secrets = JSON.parse(await readFile(join(FIXTURE, 'secrets.json'), 'utf8')) as Record<string, string>;
    const server = await startServe([], { cwd: repo });
    try {
      const moved = (): boolean => server.logs.some((l) => typeof l.msg === 'string' && l.msg.startsWith('moved 2 token(s) from'));
      // stdout (the log) and stderr (the start line) are separate pipes: the line may come a little later
      for (let i = 0; i < 50 && !moved(); i++) await new Promise((r) => setTimeout(r, 100));
      expect(moved()).toBe(true);
      expect((await fetch(`${server.url}/names`, { headers: { authorization: secrets['ci reader']! } })).status).toBe(200);
      expect((await fetch(`${server.url}/names`, { headers: { authorization: `Bearer ${secrets['acme publisher']!}` } })).status).toBe(200);
      expect((await fetch(`${server.url}/names`)).status).toBe(401);
    } finally {
      expect(await server.stop()).toBe(0);
    }
    await expect(stat(join(repo, '.hexrepo/tokens.json'))).rejects.toMatchObject({ code: 'ENOENT' });
    expect(await readFile(join(repo, '.hexrepo/tokens.json.migrated'), 'utf8')).toBe(await readFile(join(FIXTURE, 'tokens.json'), 'utf8'));
    const list = JSON.parse((await hexrepo(['token', 'list', '--json'], { cwd: repo })).stdout) as { id: string; grants: unknown }[];
    expect(list).toEqual([
      expect.objectContaining({ id: 'kzjxp21nyc', grants: [{ repository: 'acme', scopes: ['read'], packages: [] }] }),
      expect.objectContaining({ id: 'gubnxfe7zb', grants: [{ repository: 'acme', scopes: ['read', 'write'], packages: ['acme_*'] }] }),
    ]);
  }, 30_000);

  it('hexrepo token list migrates too, and says so', async () => {
    const repo = await project('old-cli');
    await copyFile(join(FIXTURE, 'tokens.json'), join(repo, '.hexrepo/tokens.json'));
    const list = await hexrepo(['token', 'list', '--json'], { cwd: repo });
    expect(list.status, list.stderr).toBe(0);
    expect(list.stderr).toMatch(/^note: moved 2 token\(s\) from .*tokens\.json to file:.*\/\.hexrepo\/state\/_hexrepo\/host\/credentials\.json/);
    expect(JSON.parse(list.stdout)).toHaveLength(2);
  });
});

describe('two hexrepo serve processes on one folder share the credentials', () => {
  let repo: string;
  let servers: ServeProcess[] = [];
  beforeAll(async () => {
    repo = await project('two');
    // one token first, so the repository is private from the start
    expect((await hexrepo(['token', 'create', '--label', 'first', '--scope', 'read'], { cwd: repo })).status).toBe(0);
    servers = await Promise.all([startServe([], { cwd: repo }), startServe([], { cwd: repo })]);
  }, 30_000);
  afterAll(async () => {
    for (const s of servers) expect(await s.stop()).toBe(0);
  });

  it('a token created while both run is accepted by both; revoked, it is refused by both within 5 s', async () => {
    let before = servers.map(reloads);
    const created = await hexrepo(['token', 'create', '--label', 'live', '--scope', 'read', '--json'], { cwd: repo });
    const { token, id } = JSON.parse(created.stdout) as { token: string; id: string };
    expect(await reloadedWithin5s(servers, before)).toEqual([true, true]);
    expect(await namesStatus(servers, token)).toEqual([200, 200]);
    before = servers.map(reloads);
    expect((await hexrepo(['token', 'revoke', id], { cwd: repo })).status).toBe(0);
    expect(await reloadedWithin5s(servers, before)).toEqual([true, true]);
    expect(await namesStatus(servers, token)).toEqual([401, 401]);
  }, 30_000);
});

describe('hexrepo deploy never uploads the host state', () => {
  it('_hexrepo/host/ in the folder is listed as ignored and not uploaded', async () => {
    const repo = await project('deploy');
    await mkdir(join(repo, 'public/_hexrepo/host'), { recursive: true });
    await writeFile(join(repo, 'public/_hexrepo/host/credentials.json'), JSON.stringify({ format: 2, tokens: [], users: [] }));
    const target = join(dir, 'deployed');
    const res = await hexrepo(['deploy', '--to', target, '--json'], { cwd: repo });
    expect(res.status, res.stderr).toBe(0);
    const out = JSON.parse(res.stdout) as { uploaded: string[]; ignored: string[] };
    expect(out.ignored).toContain('_hexrepo/host/credentials.json');
    expect(out.uploaded).toContain('names');
    await expect(stat(join(target, '_hexrepo/host/credentials.json'))).rejects.toMatchObject({ code: 'ENOENT' });
    // A target that is a server's state store keeps its credentials through deploy --delete.
    const made = await hexrepo(['token', 'create', '--store', target, '--label', 'in-target', '--scope', 'read'], { cwd: repo });
    expect(made.status, made.stderr).toBe(0);
    const before = await readFile(join(target, '_hexrepo/host/credentials.json'), 'utf8');
    expect((await hexrepo(['deploy', '--to', target, '--delete', '--json'], { cwd: repo })).status).toBe(0);
    expect(await readFile(join(target, '_hexrepo/host/credentials.json'), 'utf8')).toBe(before);
  });
});
