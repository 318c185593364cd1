/**
 * Advisories and policies kept by the repository service: stored in the release sidecar (and
 * `_hexrepo/policies/`), signed into packages/NAME, versions and policies/NAME on every write,
 * and kept by a rebuild from scratch (a fresh open without cache, as `hexrepo build --no-cache`).
 */
import { generateKeyPairSync } from 'node:crypto';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { buildPolicy, unpackPackage, unpackPolicy, unpackVersions } from '@hexrepo/registry';
import { FsStore } from '@hexrepo/storage';
import { createTarball } from '@hexrepo/tarball';
import { beforeEach, describe, expect, it } from 'vitest';
import { openRepository, RepoService, verifyRepository } from '../src/index.js';
import { tempDir } from './helpers.js';

const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const REPO = 'acme';
const tarball = (version: string): Uint8Array => createTarball({ name: 'foo', version, description: 'foo', licenses: ['MIT'] }, [{ path: 'src/foo.erl', contents: Buffer.from('-module(foo).\n') }]).tarball;
const ADVISORY = { id: 'GHSA-1111-2222-3333', summary: 'Atom exhaustion', htmlUrl: 'https://example.test/GHSA-1111-2222-3333', severity: 'high', cvssScore: 7.5, aliases: ['CVE-2026-0001'] };

let dir: string;
let store: FsStore;
let service: RepoService;

const pkg = async () => unpackPackage((await store.get('packages/foo'))!.body, { publicKey, repository: REPO, name: 'foo' });
const versions = async () => unpackVersions((await store.get('versions'))!.body, { publicKey, repository: REPO }).packages[0]!;

beforeEach(async () => {
  dir = await tempDir();
  store = new FsStore(dir);
  service = (await RepoService.open({ store, repository: REPO, privateKey })).service;
  for (const v of ['1.0.0', '1.1.0', '1.2.0']) await service.publish(tarball(v));
});

describe('advisories', () => {
  it('are signed into packages/NAME and versions, kept in the sidecar, and survive a rebuild without cache', async () => {
    expect(await service.addAdvisory('foo', ADVISORY, ['< 1.2.0'])).toEqual(['1.0.0', '1.1.0']);
    const p = await pkg();
    expect(p.advisories.map((a) => a.id)).toEqual(['GHSA-1111-2222-3333']);
    expect(p.releases.map((r) => r.advisories?.map((a) => a.id) ?? [])).toEqual([['GHSA-1111-2222-3333'], ['GHSA-1111-2222-3333'], []]);
    expect(await versions()).toMatchObject({ versions: ['1.0.0', '1.1.0', '1.2.0'], withAdvisories: [0, 1] });
    const sidecar = JSON.parse(await readFile(join(dir, '_hexrepo/releases/foo.json'), 'utf8')) as { advisories: Record<string, unknown>; releases: Record<string, { advisories?: string[] }> };
    expect(Object.keys(sidecar.advisories)).toEqual(['GHSA-1111-2222-3333']);
    expect(sidecar.releases['1.0.0']!.advisories).toEqual(['GHSA-1111-2222-3333']);

    // A rebuild from nothing: registry files deleted, no cache.
    await rm(join(dir, 'packages'), { recursive: true });
    await rm(join(dir, 'versions'));
    const reopened = await openRepository({ store, repository: REPO, privateKey, ignoreCache: true });
    await reopened.close();
    expect((await pkg()).releases[0]!.advisories).toEqual([{ ...ADVISORY, apiUrl: ADVISORY.htmlUrl }]);
    expect((await versions()).withAdvisories).toEqual([0, 1]);
    expect(await verifyRepository(store, { repository: REPO, publicKey })).toMatchObject({ ok: true, problems: [] });
  });

  it('a later publish is not affected; replacing the advisory re-targets it; remove clears it', async () => {
    await service.addAdvisory('foo', ADVISORY, ['1.0.0']);
    await service.publish(tarball('1.3.0'));
    expect((await pkg()).releases.map((r) => (r.advisories ? r.version : null)).filter(Boolean)).toEqual(['1.0.0']);
    await service.addAdvisory('foo', { ...ADVISORY, severity: 'critical' }, ['~> 1.2']);
    expect(service.advisories('foo')).toEqual([{ package: 'foo', advisory: expect.objectContaining({ severity: 'critical' }), versions: ['1.2.0', '1.3.0'] }]);
    await service.removeAdvisory('foo', ADVISORY.id);
    expect((await pkg()).advisories).toEqual([]);
    expect((await versions()).withAdvisories).toBeUndefined();
    await expect(service.removeAdvisory('foo', ADVISORY.id)).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });

  it('refuses versions that match no release, and an invalid advisory, changing nothing', async () => {
    const before = (await store.get('packages/foo'))!.etag;
    await expect(service.addAdvisory('foo', ADVISORY, ['>= 2.0.0'])).rejects.toThrow(/matches no release of foo \(it has 1.0.0, 1.1.0, 1.2.0\)/);
    await expect(service.addAdvisory('foo', ADVISORY, ['>= 2.0'])).rejects.toThrow(/neither a version nor an Elixir requirement/);
    await expect(service.addAdvisory('foo', { ...ADVISORY, severity: 'severe' }, ['1.0.0'])).rejects.toMatchObject({ code: 'ADVISORY_INVALID' });
    expect((await store.get('packages/foo'))!.etag).toBe(before);
  });
});

describe('policies', () => {
  const policy = { name: 'strict-prod', visibility: 'private', repositories: [{ repository: 'hexpm', restriction: { minSeverity: 'high', cooldown: '7d' }, overrides: [{ action: 'deny', package: 'jason' }] }] };

  it('are stored, signed into policies/NAME, re-signed on open when the signed file is lost, and deleted', async () => {
    await service.putPolicy(policy, 'create');
    const read = async () => unpackPolicy((await store.get('policies/strict-prod'))!.body, { publicKey, repository: REPO, name: 'strict-prod' });
    expect(await read()).toEqual({ ...policy, repository: REPO, skippedOverrides: 0 });
    await expect(service.putPolicy(policy, 'create')).rejects.toMatchObject({ code: 'ALREADY_EXISTS' });
    await service.putPolicy({ ...policy, visibility: 'public' }, 'edit');
    expect((await read()).visibility).toBe('public');

    await rm(join(dir, 'policies/strict-prod'));
    const reopened = await openRepository({ store, repository: REPO, privateKey, ignoreCache: true });
    await reopened.close();
    expect((await read()).visibility).toBe('public');

    expect((await verifyRepository(store, { repository: REPO, publicKey })).ok).toBe(true);
    // A policy signed for another repository is what Mix would refuse: verify reports it.
    await store.put('policies/stray-one', buildPolicy({ repository: 'other', policy: { name: 'stray-one', visibility: 'public', repositories: [] } }, privateKey));
    expect((await verifyRepository(store, { repository: REPO, publicKey })).problems).toEqual([expect.objectContaining({ key: 'policies/stray-one', code: 'REGISTRY_BAD_REPO_NAME' })]);
    await store.delete('policies/stray-one');

    await service.deletePolicy('strict-prod');
    expect(await store.get('policies/strict-prod')).toBeNull();
    expect(await service.listPolicies()).toEqual([]);
  });

  it('refuses an invalid policy with the reason, storing nothing', async () => {
    await expect(service.putPolicy({ ...policy, repositories: [{ repository: 'hexpm', restriction: { cooldown: '7 days' } }] }, 'create')).rejects.toThrow(/cooldown "7 days" is not a duration Hex understands/);
    expect(await store.get('_hexrepo/policies/strict-prod.json')).toBeNull();
    expect(await store.get('policies/strict-prod')).toBeNull();
  });
});
