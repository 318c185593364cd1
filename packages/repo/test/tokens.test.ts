import { copyFile, mkdir, mkdtemp, readFile, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FsStore, MemoryStore, type BlobStore } from '@hexrepo/storage';
import { describe, expect, it } from 'vitest';
import { CREDENTIALS_KEY, grantAllows, migrateTokenFile, openCredentials, packageAllowed, scopeAllows, TokenStore, type Grant } from '../src/index.js';

const FIXTURE = new URL('../../../test-fixtures/tokens-format1/', import.meta.url).pathname;
const read = (repository = 'acme'): Grant[] => [{ repository, scopes: ['read'], packages: [] }];
const tempDir = (): Promise<string> => mkdtemp(join(tmpdir(), 'hexrepo-tokens-'));

/** The same tests on the memory store and on a real folder. */
const stores: [string, () => Promise<BlobStore>][] = [
  ['memory store', async () => new MemoryStore()],
  ['folder (FsStore)', async () => new FsStore(join(await tempDir(), 'state'))],
];

describe.each(stores)('TokenStore on a %s', (_name, makeStore) => {
  it('creates a token shown once, stores only its hash, and a second instance on the store verifies it', async () => {
    const store = await makeStore();
    const tokens = await TokenStore.open(store);
    expect(tokens.exists).toBe(false);
    const { token, info } = await tokens.create({ label: 'ci', grants: read() });
    expect(token).toMatch(/^hxr_[a-z0-9]{10}_[A-Za-z0-9_-]{43}$/);
    expect(tokens.verify(token)).toEqual(info);
    const stored = Buffer.from((await store.get(CREDENTIALS_KEY))!.body).toString('utf8');
    expect(stored).not.toContain(token.slice(15));
    expect(JSON.parse(stored)).toMatchObject({ format: 2, tokens: [{ id: info.id, grants: read() }], users: [] });
    const other = await TokenStore.open(store);
    expect(other.verify(token)?.grants).toEqual(read());
  });

  it('refuses near misses, unknown ids, garbage and expired tokens', async () => {
    let now = Date.parse('2026-11-01T00:00:00Z');
    const tokens = await TokenStore.open(await makeStore(), { now: () => now });
    const { token } = await tokens.create({ label: 'x', grants: read() });
    const flipped = token.slice(0, -1) + (token.endsWith('A') ? 'B' : 'A');
    expect(tokens.verify(flipped)).toBeNull();
    expect(tokens.verify(token.replace(/^hxr_[a-z0-9]{10}/, 'hxr_0000000000'))).toBeNull();
    expect(tokens.verify('')).toBeNull();
    expect(tokens.verify('Bearer x')).toBeNull();
    const soon = await tokens.create({ label: 'day', grants: read(), expiresAt: new Date(now + 86_400_000) });
    expect(soon.info.expiresAt).toBe('2026-11-02T00:00:00.000Z');
    expect(tokens.verify(soon.token)).not.toBeNull();
    now += 86_400_000;
    expect(tokens.verify(soon.token)).toBeNull();
    expect(tokens.verify(token)).not.toBeNull();
    await expect(tokens.create({ label: 'past', grants: read(), expiresAt: new Date(now - 1) })).rejects.toThrow(/in the future/);
  });

  it('revokes, lists without hashes, validates grants', async () => {
    const tokens = await TokenStore.open(await makeStore());
    const a = await tokens.create({ label: 'a', grants: [{ repository: '*', scopes: ['admin'], packages: ['acme_*'] }] });
    const b = await tokens.create({ label: 'b', grants: read() });
    expect(tokens.list().map((t) => t.label)).toEqual(['a', 'b']);
    expect(JSON.stringify(tokens.list())).not.toContain('hash');
    expect(await tokens.revoke(a.info.id)).toBe(true);
    expect(await tokens.revoke(a.info.id)).toBe(false);
    expect(tokens.verify(a.token)).toBeNull();
    expect(tokens.verify(b.token)).not.toBeNull();
    await expect(tokens.create({ label: 'c', grants: [] })).rejects.toThrow(/at least one grant/);
    await expect(tokens.create({ label: 'c', grants: [{ repository: 'acme', scopes: [], packages: [] }] })).rejects.toThrow(/at least one scope/);
    await expect(tokens.create({ label: 'c', grants: [{ repository: 'acme', scopes: ['root' as never], packages: [] }] })).rejects.toThrow(/unknown scope/);
    await expect(tokens.create({ label: 'c', grants: [{ repository: 'acme', scopes: ['read'], packages: ['../x'] }] })).rejects.toThrow(/package pattern/);
    await expect(tokens.create({ label: 'c', grants: [{ repository: 'Acme/x', scopes: ['read'], packages: [] }] })).rejects.toThrow(/not a repository name/);
  });

  it('refresh() sees what another instance wrote, and bumps generation only on a change', async () => {
    const store = await makeStore();
    const [one, two] = [await TokenStore.open(store), await TokenStore.open(store)];
    const { token, info } = await one.create({ label: 'x', grants: read() });
    expect(two.verify(token)).toBeNull();
    const g = two.generation;
    expect(await two.refresh()).toBe(true);
    expect(two.generation).toBeGreaterThan(g);
    expect(two.verify(token)).not.toBeNull();
    expect(await two.refresh()).toBe(false);
    expect(await two.revoke(info.id)).toBe(true);
    expect(await one.refresh()).toBe(true);
    expect(one.verify(token)).toBeNull();
  });

  it('concurrent creates and revokes from two instances lose nothing and resurrect nothing', async () => {
    const store = await makeStore();
    const [one, two] = [await TokenStore.open(store), await TokenStore.open(store)];
    const doomed = await Promise.all(Array.from({ length: 6 }, (_, i) => (i % 2 ? one : two).create({ label: `doomed-${i}`, grants: read() })));
    await one.refresh();
    await two.refresh();
    // Both instances start from the same etag, so nearly every write below first loses a race.
    const created = await Promise.all([...Array.from({ length: 10 }, (_, i) => (i % 2 ? one : two).create({ label: `new-${i}`, grants: read() })), ...doomed.map((d, i) => (i % 2 ? two : one).revoke(d.info.id))]);
    const fresh = await TokenStore.open(store);
    expect(
      fresh
        .list()
        .map((t) => t.label)
        .sort(),
    ).toEqual(Array.from({ length: 10 }, (_, i) => `new-${i}`).sort());
    for (const c of created.slice(0, 10)) expect(fresh.verify((c as { token: string }).token)).not.toBeNull();
    for (const d of doomed) expect(fresh.verify(d.token)).toBeNull();
    expect(created.slice(10)).toEqual(doomed.map(() => true));
  });

  it('users: scrypt hashes with salt and params, verified; passwd, remove; name taken', async () => {
    const store = await makeStore();
    const tokens = await TokenStore.open(store);
    const alice = await tokens.addUser({ username: 'alice', password: 'wonderland', grants: read() });
    await tokens.addUser({ username: 'bob', password: 'wonderland', grants: read('beta') });
    expect(alice).toEqual({ username: 'alice', grants: read(), createdAt: expect.any(String) as string });
    const file = JSON.parse(Buffer.from((await store.get(CREDENTIALS_KEY))!.body).toString('utf8')) as { users: { passwordHash: string }[] };
    const [ha, hb] = file.users.map((u) => u.passwordHash);
    expect(ha).toMatch(/^scrypt\$16384\$8\$1\$[A-Za-z0-9_-]{22}\$[A-Za-z0-9_-]{43}$/);
    // same password, different salts
    expect(ha!.split('$')[4]).not.toBe(hb!.split('$')[4]);
    expect(JSON.stringify(tokens.users())).not.toContain('scrypt');
    expect(await tokens.verifyUser('alice', 'wonderland')).toEqual(alice);
    expect(await tokens.verifyUser('alice', 'wonderlanD')).toBeNull();
    expect(await tokens.verifyUser('carol', 'wonderland')).toBeNull();
    await expect(tokens.addUser({ username: 'alice', password: 'whatever1', grants: read() })).rejects.toMatchObject({ code: 'ALREADY_EXISTS' });
    await expect(tokens.addUser({ username: 'a:b', password: 'whatever1', grants: read() })).rejects.toThrow(/not a usable user name/);
    await expect(tokens.addUser({ username: 'carol', password: 'short', grants: read() })).rejects.toThrow(/too short/);
    expect(await tokens.setPassword('alice', 'looking-glass')).toBe(true);
    const other = await TokenStore.open(store);
    expect(await other.verifyUser('alice', 'wonderland')).toBeNull();
    expect(await other.verifyUser('alice', 'looking-glass')).not.toBeNull();
    expect(await other.removeUser('alice')).toBe(true);
    expect(await other.removeUser('alice')).toBe(false);
    expect(await tokens.refresh()).toBe(true);
    expect(tokens.hasUser('alice')).toBe(false);
    expect(tokens.users().map((u) => u.username)).toEqual(['bob']);
    expect(tokens.size).toBe(1);
  });
});

describe('migration of a format-1 token file', () => {
  const secrets = async (): Promise<Record<string, string>> => JSON.parse(await readFile(join(FIXTURE, 'secrets.json'), 'utf8')) as Record<string, string>;
  const oldProject = async (): Promise<{ file: string; state: FsStore }> => {
    const dir = await tempDir();
    const file = join(dir, '.hexrepo', 'tokens.json');
    await mkdir(join(dir, '.hexrepo'));
    await copyFile(join(FIXTURE, 'tokens.json'), file);
    return { file, state: new FsStore(join(dir, '.hexrepo', 'state')) };
  };

  it('imports the tokens as grants on that repository (never *), keeps them working, renames the file', async () => {
    const { file, state } = await oldProject();
    const { tokens, migration } = await openCredentials({ store: state, legacyFile: file, repository: 'acme' });
    expect(migration).toEqual({ status: 'imported', tokens: 2, renamedTo: `${file}.migrated` });
    await expect(stat(file)).rejects.toMatchObject({ code: 'ENOENT' });
    expect((await stat(`${file}.migrated`)).isFile()).toBe(true);
    const s = await secrets();
    const reader = tokens.verify(s['ci reader']!);
    expect(reader).toMatchObject({ id: 'kzjxp21nyc', label: 'ci reader', grants: [{ repository: 'acme', scopes: ['read'], packages: [] }] });
    const publisher = (await TokenStore.open(state)).verify(s['acme publisher']!);
    expect(publisher?.grants).toEqual([{ repository: 'acme', scopes: ['read', 'write'], packages: ['acme_*'] }]);
    expect(grantAllows(publisher!.grants, 'acme', 'write', 'acme_web')).toBe(true);
    expect(grantAllows(publisher!.grants, 'beta', 'read', 'acme_web')).toBe(false);
    // a second open finds nothing left to migrate
    expect((await openCredentials({ store: state, legacyFile: file, repository: 'acme' })).migration).toEqual({ status: 'none' });
  });

  it('imports nothing into a store that already holds credentials, and leaves the file in place', async () => {
    const { file, state } = await oldProject();
    const tokens = await TokenStore.open(state);
    await tokens.create({ label: 'new', grants: read() });
    expect(await migrateTokenFile(file, tokens, 'acme')).toEqual({ status: 'skipped', tokens: 2 });
    expect(tokens.verify((await secrets())['ci reader']!)).toBeNull();
    expect((await stat(file)).isFile()).toBe(true);
  });

  it('needs the repository name when there is a file to migrate; refuses a file of another format', async () => {
    const { file, state } = await oldProject();
    await expect(openCredentials({ store: state, legacyFile: file })).rejects.toThrow(/needs the name of its repository/);
    const dir = await tempDir();
    await copyFile(join(FIXTURE, 'secrets.json'), join(dir, 'tokens.json'));
    await expect(openCredentials({ store: new MemoryStore(), legacyFile: join(dir, 'tokens.json'), repository: 'acme' })).rejects.toThrow(/not a format-1 token file/);
  });
});

describe('grants, scopes and package patterns', () => {
  it('a grant covers its repository only, or every one for *', () => {
    const grants: Grant[] = [
      { repository: 'acme', scopes: ['read', 'write'], packages: ['acme_*'] },
      { repository: '*', scopes: ['read'], packages: ['shared'] },
    ];
    expect(grantAllows(grants, 'acme', 'write', 'acme_web')).toBe(true);
    expect(grantAllows(grants, 'acme', 'write', 'shared')).toBe(false);
    expect(grantAllows(grants, 'beta', 'read', 'shared')).toBe(true);
    expect(grantAllows(grants, 'beta', 'read', 'acme_web')).toBe(false);
    expect(grantAllows(grants, 'beta', 'read')).toBe(true);
    expect(grantAllows(grants, 'beta', 'write')).toBe(false);
    expect(grantAllows([{ repository: 'acme', scopes: ['admin'], packages: [] }], 'acme', 'write', 'x')).toBe(true);
    expect(grantAllows([{ repository: 'acme', scopes: ['admin'], packages: [] }], 'beta', 'read')).toBe(false);
    expect(grantAllows([], 'acme', 'read')).toBe(false);
  });

  it('admin grants everything; read and write are separate', () => {
    expect(scopeAllows(['admin'], 'read')).toBe(true);
    expect(scopeAllows(['admin'], 'write')).toBe(true);
    expect(scopeAllows(['write'], 'read')).toBe(false);
    expect(scopeAllows(['read', 'write'], 'read')).toBe(true);
    expect(scopeAllows(['read'], 'write')).toBe(false);
    expect(scopeAllows(['write'], 'admin')).toBe(false);
  });

  it('globs match whole names', () => {
    expect(packageAllowed([], 'anything')).toBe(true);
    expect(packageAllowed(['acme_*'], 'acme_web')).toBe(true);
    expect(packageAllowed(['acme_*'], 'xacme_web')).toBe(false);
    expect(packageAllowed(['foo', 'bar*'], 'barbaz')).toBe(true);
    expect(packageAllowed(['foo'], 'foobar')).toBe(false);
  });
});
