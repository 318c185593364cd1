import { generateKeyPairSync } from 'node:crypto';
import { HexrepoError, type Retirement } from '@hexrepo/core';
import { unpackPackage, unpackVersions } from '@hexrepo/registry';
import { MemoryStore } from '@hexrepo/storage';
import { createTarball } from '@hexrepo/tarball';
import { beforeEach, describe, expect, it } from 'vitest';
import { loadReleaseStates, RepoService } from '../src/index.js';

// hex.pm's rule (hexpm ReleaseRetirement.changeset): a reason from the five, a message of 3 to 140 characters
// or none. The service holds it, so every caller (CLI, API, TUI, a future mirror) gets the same answer.
const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const REPO = 'acme';

let store: MemoryStore;
let service: RepoService;

beforeEach(async () => {
  store = new MemoryStore();
  service = (await RepoService.open({ store, repository: REPO, privateKey })).service;
  await service.publish(createTarball({ name: 'foo', version: '1.0.0', description: 'foo', licenses: ['MIT'] }, [{ path: 'src/foo.erl', contents: Buffer.from('-module(foo).\n') }]).tarball);
});

async function retiredInRegistry(): Promise<Retirement | undefined> {
  const file = await store.get('packages/foo');
  return unpackPackage(file!.body, { publicKey, repository: REPO, name: 'foo' }).releases[0]?.retired;
}

async function refusal(retirement: unknown): Promise<HexrepoError> {
  // The API and the TUI hand the service whatever they were sent: the type does not protect it.
  const err = await service.retire('foo', '1.0.0', retirement as Retirement).then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(HexrepoError);
  return err as HexrepoError;
}

describe('RepoService.retire holds the retirement rule', () => {
  it.each([
    ['an unknown reason', { reason: 'bored' }, 'reason', 'is invalid'],
    ['a reason inherited from Object.prototype', { reason: 'toString' }, 'reason', 'is invalid'],
    ['a message under 3 characters', { reason: 'other', message: 'no' }, 'message', 'should be at least 3 character(s)'],
    ['a message over 140 characters', { reason: 'deprecated', message: 'x'.repeat(141) }, 'message', 'should be at most 140 character(s)'],
    ['a message that is not text', { reason: 'security', message: 42 }, 'message', 'is invalid'],
  ])('refuses %s with RETIREMENT_INVALID and changes nothing', async (_, retirement, field, problem) => {
    const before = new Map<string, string>();
    for await (const o of store.list('')) before.set(o.key, (await store.head(o.key))!.etag);
    const err = await refusal(retirement);
    expect(err.code).toBe('RETIREMENT_INVALID');
    expect(err.details).toMatchObject({ field, problem });
    expect(await retiredInRegistry()).toBeUndefined();
    const after = new Map<string, string>();
    for await (const o of store.list('')) after.set(o.key, (await store.head(o.key))!.etag);
    expect(after).toEqual(before);
  });

  it('counts characters as hex.pm does (graphemes), not UTF-16 code units', async () => {
    // 140 thumbs with a skin tone: 140 characters to a reader and to Ecto, 560 UTF-16 code units.
    const message = '👍🏽'.repeat(140);
    await service.retire('foo', '1.0.0', { reason: 'deprecated', message });
    expect(await retiredInRegistry()).toEqual({ reason: 'deprecated', message });
    expect((await refusal({ reason: 'deprecated', message: message + 'é' })).details).toMatchObject({ field: 'message', length: 141 });
  });

  it('stores a valid retirement in the registry and the sidecar; an empty message is no message', async () => {
    await service.retire('foo', '1.0.0', { reason: 'security', message: 'CVE-2024-1' });
    expect(await retiredInRegistry()).toEqual({ reason: 'security', message: 'CVE-2024-1' });
    expect((await loadReleaseStates(store)).get('foo')?.get('1.0.0')?.retired).toEqual({ reason: 'security', message: 'CVE-2024-1' });
    await service.retire('foo', '1.0.0', { reason: 'other', message: '' });
    expect(await retiredInRegistry()).toEqual({ reason: 'other' });
    const versions = unpackVersions((await store.get('versions'))!.body, { publicKey, repository: REPO });
    expect(versions.packages.find((p) => p.name === 'foo')?.retired).toEqual([0]);
  });
});
