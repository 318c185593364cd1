/**
 * The repository-side state behind the API's account routes, on real folders: audit logs (bounded,
 * newest first, no entry lost between two writers on one store), owners (the last full owner kept,
 * two writers merged), the Hex permission → grant mapping, and the publisher kept in the sidecar.
 */
import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HexrepoError } from '@hexrepo/core';
import { FsStore, type BlobStore, type StoredObject } from '@hexrepo/storage';
import { createTarball } from '@hexrepo/tarball';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { addOwner, AuditLog, grantsForPermissions, ownedPackages, ownersKey, packageAuditKey, permissionsOfGrants, readOwners, removeOwner, RepoService, TokenStore, type AuditEntry, type Grant } from '../src/index.js';

const folder = async (): Promise<string> => mkdtemp(join(tmpdir(), 'hexrepo-account-state-'));
const entry = (n: number): AuditEntry => ({ action: 'release.publish', params: { n }, user_agent: null, inserted_at: new Date(n * 1000).toISOString(), user: 'alice' });

describe('AuditLog', () => {
  it('keeps the newest `max` entries, newest first, in pages', async () => {
    const log = new AuditLog(new FsStore(await folder()), 5);
    for (let n = 1; n <= 8; n++) await log.append(packageAuditKey('foo'), entry(n));
    expect((await log.read(packageAuditKey('foo'))).map((e) => e.params.n)).toEqual([8, 7, 6, 5, 4]);
    expect((await log.read(packageAuditKey('foo'), { page: 2, perPage: 2 })).map((e) => e.params.n)).toEqual([6, 5]);
    expect(await log.read(packageAuditKey('bar'))).toEqual([]);
  });

  it('two writers on one store (two servers) appending at once lose nothing', async () => {
    const dir = await folder();
    const a = new AuditLog(new FsStore(dir));
    const b = new AuditLog(new FsStore(dir));
    await Promise.all(Array.from({ length: 60 }, (_, i) => (i % 2 === 0 ? a : b).append(packageAuditKey('foo'), entry(i))));
    const ns = (await a.read(packageAuditKey('foo'), { perPage: 1000 })).map((e) => Number(e.params.n));
    expect(ns.sort((x, y) => x - y)).toEqual(Array.from({ length: 60 }, (_, i) => i));
  });

  it('appending to a log this process wrote last does not read it again (it may be 1,000 entries long)', async () => {
    /** A real folder store that counts the reads of each key. */
    class CountingStore extends FsStore {
      readonly reads = new Map<string, number>();
      override async get(key: string): Promise<StoredObject | null> {
        this.reads.set(key, (this.reads.get(key) ?? 0) + 1);
        return super.get(key);
      }
    }
    const store = new CountingStore(await folder());
    const log = new AuditLog(store);
    for (let n = 1; n <= 5; n++) await log.append(packageAuditKey('foo'), entry(n));
    expect(store.reads.get(packageAuditKey('foo'))).toBe(1);
    // Another writer's append in between is found by the conditional write, read, and kept.
    await new AuditLog(new FsStore(store.root)).append(packageAuditKey('foo'), entry(6));
    await log.append(packageAuditKey('foo'), entry(7));
    expect((await log.read(packageAuditKey('foo'))).map((e) => e.params.n)).toEqual([7, 6, 5, 4, 3, 2, 1]);
  });

  it('the stored file is exactly JSON.stringify of the log with 2-space indentation, whatever the entries hold', async () => {
    const text = fc.string({ unit: 'grapheme', maxLength: 12 });
    const json = fc.letrec<{ value: unknown }>((tie) => ({
      value: fc.oneof({ depthSize: 'small' }, text, fc.integer(), fc.double({ noNaN: true }), fc.boolean(), fc.constant(null), fc.array(tie('value'), { maxLength: 3 }), fc.dictionary(text, tie('value'), { maxKeys: 3 })),
    })).value;
    const anEntry = fc.record({ action: fc.constant('release.publish' as const), params: fc.dictionary(text, json, { maxKeys: 4 }), user_agent: fc.option(text, { nil: null }), inserted_at: text, user: fc.option(text, { nil: null }) });
    const dir = await folder();
    let n = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(fc.array(anEntry, { minLength: 1, maxLength: 3 }), { minLength: 1, maxLength: 4 }), async (batches) => {
        const store = new FsStore(join(dir, String(n++)));
        const log = new AuditLog(store, 5);
        for (const batch of batches) await log.append(packageAuditKey('foo'), ...batch);
        const all = batches.flat().slice(-5);
        const stored = Buffer.from((await store.get(packageAuditKey('foo')))!.body).toString('utf8');
        expect(stored).toBe(`${JSON.stringify({ format: 1, entries: all }, null, 2)}\n`);
      }),
      { numRuns: 40 },
    );
  });
});

describe('owners', () => {
  it('add changes the level of an existing owner, transfer leaves one, the last full owner stays', async () => {
    const store = new FsStore(await folder());
    expect(await readOwners(store, 'foo')).toEqual([]);
    await addOwner(store, 'foo', 'alice', 'full');
    await addOwner(store, 'foo', 'bob', 'full');
    await addOwner(store, 'foo', 'bob', 'maintainer');
    expect((await readOwners(store, 'foo')).map((o) => [o.username, o.level])).toEqual([
      ['alice', 'full'],
      ['bob', 'maintainer'],
    ]);
    await expect(removeOwner(store, 'foo', 'alice')).rejects.toMatchObject({ code: 'OWNERSHIP_INVALID', details: { field: 'username', problem: 'cannot remove last owner of package' } });
    await expect(removeOwner(store, 'foo', 'carol')).rejects.toBeInstanceOf(HexrepoError);
    expect((await removeOwner(store, 'foo', 'bob')).map((o) => o.username)).toEqual(['alice']);
    await addOwner(store, 'foo', 'carol', 'full', { transfer: true });
    expect((await readOwners(store, 'foo')).map((o) => o.username)).toEqual(['carol']);
  });

  it('two writers adding owners at once both land', async () => {
    const dir = await folder();
    await Promise.all(Array.from({ length: 20 }, (_, i) => addOwner(new FsStore(dir), 'foo', `user${i}`, 'maintainer')));
    expect((await readOwners(new FsStore(dir), 'foo')).length).toBe(20);
  });

  it('ownedPackages reads an owners file again only when it changed, and follows every change', async () => {
    const inner = new FsStore(await folder());
    const reads: string[] = [];
    // The same folder, with each read written down (another process's writes go through `inner`).
    const store: BlobStore = {
      url: inner.url,
      get: (k) => (reads.push(k), inner.get(k)),
      head: (k) => inner.head(k),
      put: (k, b, o) => inner.put(k, b, o),
      putMany: (e) => inner.putMany(e),
      delete: (k) => inner.delete(k),
      list: (p) => inner.list(p),
    };
    for (const name of ['a', 'b', 'c']) await addOwner(inner, name, 'alice', 'full');
    await addOwner(inner, 'b', 'bob', 'full', { transfer: true });
    expect(await ownedPackages(store, 'alice')).toEqual([
      { name: 'a', level: 'full' },
      { name: 'c', level: 'full' },
    ]);
    expect(reads.length).toBe(3);
    reads.length = 0;
    expect((await ownedPackages(store, 'bob')).map((p) => p.name)).toEqual(['b']);
    expect(reads).toEqual([]);
    // Changed, added and removed files are seen at once; only the changed and new ones are read.
    await addOwner(inner, 'a', 'bob', 'maintainer');
    await addOwner(inner, 'd', 'bob', 'full');
    await inner.delete(ownersKey('b'));
    expect(await ownedPackages(store, 'bob')).toEqual([
      { name: 'a', level: 'maintainer' },
      { name: 'd', level: 'full' },
    ]);
    expect(reads.sort()).toEqual([ownersKey('a'), ownersKey('d')]);
  });
});

describe('Hex key permissions and grants', () => {
  const alice: Grant[] = [
    { repository: 'acme', scopes: ['read', 'write'], packages: [] },
    { repository: 'team', scopes: ['admin'], packages: ['team_*'] },
    { repository: 'docs', scopes: ['read'], packages: [] },
  ];
  it('cuts every permission to the caller’s grants, never passing admin on', () => {
    expect(grantsForPermissions([{ domain: 'api', resource: 'write' }], alice)).toEqual([
      { repository: 'acme', scopes: ['read', 'write'], packages: [] },
      { repository: 'team', scopes: ['read', 'write'], packages: ['team_*'] },
    ]);
    expect(grantsForPermissions([{ domain: 'api' }, { domain: 'api', resource: 'write' }], alice)).toHaveLength(2);
    expect(grantsForPermissions([{ domain: 'api', resource: 'read' }], alice).map((g) => [g.repository, g.scopes])).toEqual([
      ['acme', ['read']],
      ['team', ['read']],
      ['docs', ['read']],
    ]);
    expect(grantsForPermissions([{ domain: 'repository', resource: 'docs' }], alice)).toEqual([{ repository: 'docs', scopes: ['read'], packages: [] }]);
    expect(grantsForPermissions([{ domain: 'repository', resource: 'acme' }], [{ repository: '*', scopes: ['read'], packages: [] }])).toEqual([{ repository: 'acme', scopes: ['read'], packages: [] }]);
    expect(() => grantsForPermissions([{ domain: 'repository', resource: 'other' }], alice)).toThrow(expect.objectContaining({ code: 'PERMISSION_DENIED' }));
    expect(() => grantsForPermissions([{ domain: 'api', resource: 'write' }], [{ repository: 'docs', scopes: ['read'], packages: [] }])).toThrow(expect.objectContaining({ code: 'PERMISSION_DENIED' }));
    expect(() => grantsForPermissions([{ domain: 'docs', resource: 'acme' }], alice)).toThrow(expect.objectContaining({ code: 'USAGE' }));
    expect(() => grantsForPermissions([], alice)).toThrow(expect.objectContaining({ code: 'USAGE' }));
  });

  it('shows the permissions a key was created with, else derives them from its grants', () => {
    expect(permissionsOfGrants(alice, [{ domain: 'repository', resource: 'acme' }])).toEqual([{ domain: 'repository', resource: 'acme' }]);
    expect(permissionsOfGrants(alice)).toEqual([
      { domain: 'api', resource: 'write' },
      { domain: 'repository', resource: 'docs' },
    ]);
    expect(permissionsOfGrants([{ repository: '*', scopes: ['read'], packages: [] }])).toEqual([{ domain: 'repositories' }]);
  });
});

describe('keys of a user', () => {
  it('go with the user: removing a user revokes the keys they created, and only those', async () => {
    const tokens = await TokenStore.open(new FsStore(await folder()));
    const grants: Grant[] = [{ repository: 'acme', scopes: ['read'], packages: [] }];
    await tokens.addUser({ username: 'alice', password: 'alice-password-1', grants });
    const key = await tokens.create({ label: 'laptop', grants, user: 'alice', permissions: [{ domain: 'api', resource: 'read' }] });
    const other = await tokens.create({ label: 'ci', grants });
    expect(tokens.verify(key.token)).toMatchObject({ user: 'alice', permissions: [{ domain: 'api', resource: 'read' }] });
    expect(await tokens.removeUser('alice')).toBe(true);
    expect(tokens.verify(key.token)).toBeNull();
    expect(tokens.verify(other.token)).not.toBeNull();
  });
});

describe('the publisher of a release', () => {
  it('is kept in the sidecar, shown after a reopen, and absent for a release published without one', async () => {
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const store = new FsStore(await folder());
    const tarball = (version: string): Uint8Array => createTarball({ name: 'foo', version, description: 'foo', licenses: ['MIT'] }, [{ path: 'src/foo.erl', contents: Buffer.from('-module(foo).\n') }]).tarball;
    const { service } = await RepoService.open({ store, repository: 'acme', privateKey });
    await service.publish(tarball('1.0.0'));
    await service.publish(tarball('1.1.0'), { publisher: 'alice' });
    const reopened = (await RepoService.open({ store, repository: 'acme', privateKey })).service;
    expect(reopened.releases('foo').map((r) => [r.version, r.publisher])).toEqual([
      ['1.0.0', undefined],
      ['1.1.0', 'alice'],
    ]);
    // A replacement records who replaced it.
    await reopened.publish(tarball('1.1.0'), { replace: true, publisher: 'bob' });
    expect(reopened.releases('foo')[1]!.publisher).toBe('bob');
  });
});
