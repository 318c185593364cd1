import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TokenStore } from '@hexrepo/repo';
import { FsStore } from '@hexrepo/storage';
import { describe, expect, it } from 'vitest';
import { Access, parseAuthorization, safeEqual } from '../src/index.js';

const basic = (user: string, pass: string): string => `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;

describe('parseAuthorization: every form the clients send', () => {
  it('raw key (Mix and rebar3 repo_key), Bearer, Basic', async () => {
    expect(parseAuthorization('hxr_abc')).toEqual({ secrets: ['hxr_abc'] });
    expect(parseAuthorization('Bearer hxr_abc')).toEqual({ secrets: ['hxr_abc'] });
    expect(parseAuthorization('bearer   hxr_abc ')).toEqual({ secrets: ['hxr_abc'] });
    expect(parseAuthorization(basic('alice', 's3cret:x'))).toEqual({ secrets: ['s3cret:x', 'alice'], basic: { username: 'alice', password: 's3cret:x' } });
    expect(parseAuthorization(basic('hxr_tok', ''))).toEqual({ secrets: ['hxr_tok'], basic: { username: 'hxr_tok', password: '' } });
    expect(parseAuthorization(undefined)).toBeNull();
    expect(parseAuthorization('   ')).toBeNull();
  });

  it('safeEqual', async () => {
    expect(safeEqual('a', 'a')).toBe(true);
    expect(safeEqual('a', 'ab')).toBe(false);
  });
});

describe('Access', async () => {
  const tokens = await TokenStore.open(new FsStore(join(await mkdtemp(join(tmpdir(), 'hexrepo-access-')), 'state')));
  const reader = await tokens.create({ label: 'r', grants: [{ repository: 'acme', scopes: ['read'], packages: [] }] });
  const writer = await tokens.create({ label: 'w', grants: [{ repository: 'acme', scopes: ['read', 'write'], packages: ['acme_*'] }] });
  const publisher = await tokens.create({ label: 'p', grants: [{ repository: 'acme', scopes: ['write'], packages: [] }] });
  const users = [{ username: 'alice', password: 'wonderland' }];

  it('private: no credentials → 401; wrong → 401; Basic user, raw, Bearer and Basic-password tokens → ok', async () => {
    const access = new Access({ repository: 'acme', visibility: 'private', users, tokens });
    expect(await access.check('a', undefined, 'read')).toMatchObject({ ok: false, status: 401 });
    expect(await access.check('a', basic('alice', 'nope'), 'read')).toMatchObject({ ok: false, status: 401 });
    expect(await access.check('a', basic('alice', 'wonderland'), 'read')).toMatchObject({ ok: true, identity: { kind: 'user', username: 'alice' } });
    expect(await access.check('a', reader.token, 'read')).toMatchObject({ ok: true, identity: { kind: 'token' } });
    expect(await access.check('a', `Bearer ${reader.token}`, 'read')).toMatchObject({ ok: true });
    expect(await access.check('a', basic('anything', reader.token), 'read')).toMatchObject({ ok: true });
    expect(await access.check('a', basic(reader.token, ''), 'read')).toMatchObject({ ok: true });
  });

  it('private with no user or token yet refuses every read (nothing to authenticate with)', async () => {
    const access = new Access({ repository: 'acme', visibility: 'private', users: [] });
    expect(await access.check('a', undefined, 'read')).toMatchObject({ ok: false, status: 401 });
    expect(await access.check('a', 'anything', 'read')).toMatchObject({ ok: false, status: 401 });
  });

  it('scopes and package patterns → 403', async () => {
    const access = new Access({ repository: 'acme', visibility: 'private', users, tokens });
    expect(await access.check('a', reader.token, 'write')).toMatchObject({ ok: false, status: 403 });
    expect(await access.check('a', writer.token, 'write', 'acme_web')).toMatchObject({ ok: true });
    expect(await access.check('a', writer.token, 'read', 'other')).toMatchObject({ ok: false, status: 403 });
    expect(await access.check('a', writer.token, 'admin')).toMatchObject({ ok: false, status: 403 });
    expect(await access.check('a', publisher.token, 'read')).toMatchObject({ ok: false, status: 403, message: 'the token does not have the read scope on repository acme' });
    expect(await access.check('a', publisher.token, 'write')).toMatchObject({ ok: true });
  });

  it("public: reads never fail on credentials (a stranger's hex.pm Bearer token), writes still need them", async () => {
    const access = new Access({ repository: 'acme', visibility: 'public', users, tokens });
    expect(await access.check('a', undefined, 'read')).toMatchObject({ ok: true, identity: null });
    expect(await access.check('a', 'Bearer some-hexpm-oauth-token', 'read')).toMatchObject({ ok: true, identity: null });
    expect(await access.check('a', basic('alice', 'bad'), 'read')).toMatchObject({ ok: true });
    expect(await access.check('a', undefined, 'write')).toMatchObject({ ok: false, status: 401 });
  });

  it('a revoked token stops working at once, even right after a successful request', async () => {
    const access = new Access({ repository: 'acme', visibility: 'private', users, tokens });
    const t = await tokens.create({ label: 'short-lived', grants: [{ repository: 'acme', scopes: ['read'], packages: [] }] });
    expect(await access.check('a', t.token, 'read')).toMatchObject({ ok: true });
    await tokens.revoke(t.info.id);
    expect(await access.check('a', t.token, 'read')).toMatchObject({ ok: false, status: 401 });
  });

  it('rate-limits unknown tokens per address, and the window expires; a valid credential still gets in', async () => {
    let now = 1_000_000;
    const access = new Access({ repository: 'acme', visibility: 'private', users, tokens, maxFailures: 3, windowMs: 60_000, now: () => now });
    for (let i = 0; i < 3; i++) expect(await access.check('10.0.0.1', 'wrong', 'read')).toMatchObject({ status: 401 });
    expect(await access.check('10.0.0.1', 'wrong', 'read')).toMatchObject({ ok: false, status: 429, retryAfterSeconds: 60 });
    expect(await access.check('10.0.0.1', basic('nobody', 'guess'), 'read')).toMatchObject({ ok: false, status: 429 });
    expect(await access.check('10.0.0.2', 'wrong', 'read')).toMatchObject({ status: 401 });
    // Somebody else's failures never refuse a valid token or password.
    expect(await access.check('10.0.0.1', reader.token, 'read')).toMatchObject({ ok: true });
    expect(await access.check('10.0.0.1', basic('alice', 'wonderland'), 'read')).toMatchObject({ ok: true });
    now += 60_001;
    expect(await access.check('10.0.0.1', 'wrong', 'read')).toMatchObject({ status: 401 });
  });

  it('rate-limits password guesses per address and user, without telling whether the password was right', async () => {
    let now = 1_000_000;
    const access = new Access({ repository: 'acme', visibility: 'private', users: [...users, { username: 'bob', password: 'builder' }], tokens, maxFailures: 3, windowMs: 60_000, now: () => now });
    for (let i = 0; i < 3; i++) expect(await access.check('10.0.0.1', basic('alice', `guess${i}`), 'read')).toMatchObject({ status: 401 });
    expect(await access.check('10.0.0.1', basic('alice', 'guess'), 'read')).toMatchObject({ ok: false, status: 429 });
    expect(await access.check('10.0.0.1', basic('alice', 'wonderland'), 'read')).toMatchObject({ ok: false, status: 429, retryAfterSeconds: 60 });
    expect(await access.authenticate('10.0.0.1', basic('alice', 'wonderland'))).toMatchObject({ ok: false, status: 429 });
    expect(await access.check('10.0.0.2', basic('alice', 'wonderland'), 'read')).toMatchObject({ ok: true });
    expect(await access.check('10.0.0.1', basic('bob', 'builder'), 'read')).toMatchObject({ ok: true });
    // A token as the password (Mix with netrc) is not a guess at alice's password.
    expect(await access.check('10.0.0.1', basic('alice', reader.token), 'read')).toMatchObject({ ok: true });
    now += 60_001;
    expect(await access.check('10.0.0.1', basic('alice', 'wonderland'), 'read')).toMatchObject({ ok: true });
  });

  it('checkVerified: the decision of check, without waiting, only for a header check verified lately; undefined when only check can tell', async () => {
    let now = Date.now();
    const access = new Access({ repository: 'acme', visibility: 'private', users, tokens, maxFailures: 2, now: () => now });
    const t = await tokens.create({ label: 'v', grants: [{ repository: 'acme', scopes: ['read'], packages: ['foo'] }], expiresAt: new Date(now + 60_000) });
    // Never seen: only check knows.
    expect(access.checkVerified('a', t.token, 'read', 'foo')).toBeUndefined();
    expect(await access.check('a', t.token, 'read', 'foo')).toMatchObject({ ok: true });
    // Seen: the same decisions as check, package patterns and scopes included.
    for (const [scope, pkg] of [
      ['read', 'foo'],
      ['read', 'bar'],
      ['write', 'foo'],
    ] as const) {
      expect(access.checkVerified('a', t.token, scope, pkg)).toEqual(await access.check('a', t.token, scope, pkg));
    }
    expect(access.checkVerified('a', t.token, 'read', 'bar')).toMatchObject({ ok: false, status: 403 });
    // A public read without credentials needs nothing verified.
    expect(access.checkVerified('a', undefined, 'read', 'foo', { repository: 'acme', visibility: 'public' })).toEqual({ ok: true, identity: null });
    expect(access.checkVerified('a', undefined, 'read', 'foo')).toBeUndefined();
    // Past the verification's few seconds, or past the token's own expiry: check again.
    now += 6_000;
    expect(access.checkVerified('a', t.token, 'read', 'foo')).toBeUndefined();
    now += 51_000;
    expect(await access.check('a', t.token, 'read', 'foo')).toMatchObject({ ok: true });
    expect(access.checkVerified('a', t.token, 'read', 'foo')).toMatchObject({ ok: true });
    // Verified 3 s before the token expires: 1 s after, within the verification's seconds, it is not.
    now += 4_000;
    expect(access.checkVerified('a', t.token, 'read', 'foo')).toBeUndefined();
  });

  it('checkVerified: a revocation, or a limited user, sends the header back to check', async () => {
    const access = new Access({ repository: 'acme', visibility: 'private', users, tokens, maxFailures: 2 });
    const t = await tokens.create({ label: 'w', grants: [{ repository: 'acme', scopes: ['read'], packages: [] }] });
    await access.check('a', t.token, 'read');
    expect(access.checkVerified('a', t.token, 'read')).toMatchObject({ ok: true });
    await tokens.revoke(t.info.id);
    expect(access.checkVerified('a', t.token, 'read')).toBeUndefined();
    const alice = basic('alice', 'wonderland');
    await access.check('b', alice, 'read');
    expect(access.checkVerified('b', alice, 'read')).toMatchObject({ ok: true });
    // Other addresses' failures and other users' do not matter; alice's own from this address do.
    for (let i = 0; i < 2; i++) await access.check('c', basic('alice', 'wrong'), 'read');
    for (let i = 0; i < 2; i++) await access.check('b', 'unknown-token', 'read');
    expect(access.checkVerified('b', alice, 'read')).toMatchObject({ ok: true });
    for (let i = 0; i < 2; i++) await access.check('b', basic('alice', 'wrong'), 'read');
    expect(access.checkVerified('b', alice, 'read')).toBeUndefined();
    expect(await access.check('b', alice, 'read')).toMatchObject({ ok: false, status: 429 });
  });

  it('a 403 names who was refused', async () => {
    const access = new Access({ repository: 'acme', visibility: 'private', users, tokens });
    expect(await access.check('a', writer.token, 'write', 'other')).toMatchObject({ ok: false, status: 403, identity: { kind: 'token', token: { id: writer.info.id } } });
  });
});

describe('Access with the host credentials: grants per repository, stored users', async () => {
  const state = new FsStore(join(await mkdtemp(join(tmpdir(), 'hexrepo-access-host-')), 'state'));
  const tokens = await TokenStore.open(state);
  const acmeReader = await tokens.create({ label: 'acme', grants: [{ repository: 'acme', scopes: ['read'], packages: [] }] });
  const everyRepo = await tokens.create({ label: 'all', grants: [{ repository: '*', scopes: ['read'], packages: [] }] });
  const betaWriter = await tokens.create({ label: 'beta', grants: [{ repository: 'beta', scopes: ['read', 'write'], packages: ['beta_*'] }] });
  await tokens.addUser({ username: 'carol', password: 'correct horse', grants: [{ repository: 'acme', scopes: ['read', 'write'], packages: [] }] });
  const envUsers = [{ username: 'ops', password: 'from-the-environment' }];

  it('a credential for one repository never reads or writes another; "*" covers all; the environment user has everything', async () => {
    const access = new Access({ repository: 'acme', visibility: 'private', users: envUsers, tokens });
    expect(await access.check('a', acmeReader.token, 'read')).toMatchObject({ ok: true });
    expect(await access.check('a', acmeReader.token, 'read', undefined, { repository: 'beta', visibility: 'private' })).toMatchObject({ ok: false, status: 403, message: 'the token has no access to repository beta' });
    expect(await access.check('a', acmeReader.token, 'write')).toMatchObject({ ok: false, status: 403, message: 'the token does not have the write scope on repository acme' });
    expect(await access.check('a', everyRepo.token, 'read', 'x', { repository: 'beta', visibility: 'private' })).toMatchObject({ ok: true });
    expect(await access.check('a', betaWriter.token, 'read')).toMatchObject({ ok: false, status: 403 });
    expect(await access.check('a', betaWriter.token, 'write', 'beta_web', { repository: 'beta', visibility: 'private' })).toMatchObject({ ok: true });
    expect(await access.check('a', betaWriter.token, 'write', 'acme_web', { repository: 'beta', visibility: 'private' })).toMatchObject({
      ok: false,
      status: 403,
      message: 'the token is not allowed to access package acme_web in repository beta',
    });
    expect(await access.check('a', basic('ops', 'from-the-environment'), 'admin', 'x', { repository: 'beta', visibility: 'private' })).toMatchObject({ ok: true, identity: { kind: 'user', username: 'ops' } });
  });

  it('a stored user: the right password passes within its grants, a wrong one is a 401, another repository a 403', async () => {
    const access = new Access({ repository: 'acme', visibility: 'private', users: envUsers, tokens });
    expect(await access.check('a', basic('carol', 'correct horse'), 'write', 'anything')).toMatchObject({ ok: true, identity: { kind: 'user', username: 'carol' } });
    expect(await access.check('a', basic('carol', 'correct horse'), 'read', undefined, { repository: 'beta', visibility: 'private' })).toMatchObject({ ok: false, status: 403, message: 'user carol has no access to repository beta' });
    expect(await access.check('a', basic('carol', 'Correct horse'), 'read')).toMatchObject({ ok: false, status: 401 });
    // A token sent as the Basic password works whatever the user name.
    expect(await access.check('a', basic('carol', acmeReader.token), 'read')).toMatchObject({ ok: true, identity: { kind: 'token' } });
  });

  it('password guesses at a stored user are limited per address and user', async () => {
    const access = new Access({ repository: 'acme', visibility: 'private', users: [], tokens, maxFailures: 2, windowMs: 60_000 });
    for (let i = 0; i < 2; i++) expect(await access.check('10.0.0.9', basic('carol', `guess${i}`), 'read')).toMatchObject({ status: 401 });
    expect(await access.check('10.0.0.9', basic('carol', 'correct horse'), 'read')).toMatchObject({ ok: false, status: 429 });
    expect(await access.check('10.0.0.8', basic('carol', 'correct horse'), 'read')).toMatchObject({ ok: true });
  });

  it('a user removed or a token revoked through another instance is refused once this one refreshes', async () => {
    const access = new Access({ repository: 'acme', visibility: 'private', users: [], tokens });
    const t = await tokens.create({ label: 'short-lived', grants: [{ repository: 'acme', scopes: ['read'], packages: [] }] });
    expect(await access.check('a', basic('carol', 'correct horse'), 'read')).toMatchObject({ ok: true });
    expect(await access.check('a', t.token, 'read')).toMatchObject({ ok: true });
    const elsewhere = await TokenStore.open(state);
    expect(await elsewhere.removeUser('carol')).toBe(true);
    expect(await elsewhere.revoke(t.info.id)).toBe(true);
    expect(await tokens.refresh()).toBe(true);
    expect(await access.check('a', basic('carol', 'correct horse'), 'read')).toMatchObject({ ok: false, status: 401 });
    expect(await access.check('a', t.token, 'read')).toMatchObject({ ok: false, status: 401 });
  });
});

describe('Access with grants per repository', async () => {
  const tokens = await TokenStore.open(new FsStore(join(await mkdtemp(join(tmpdir(), 'hexrepo-grants-')), 'state')));
  const alphaOnly = await tokens.create({
    label: 'a',
    grants: [
      { repository: 'alpha', scopes: ['read', 'write'], packages: ['web_*'] },
      { repository: 'beta', scopes: ['read'], packages: [] },
    ],
  });
  const everywhere = await tokens.create({ label: 'all', grants: [{ repository: '*', scopes: ['read'], packages: [] }] });
  const access = new Access({ visibility: 'private', users: [{ username: 'ops', password: 'long-password' }], tokens });
  const alpha = { repository: 'alpha', visibility: 'private' } as const;
  const beta = { repository: 'beta', visibility: 'private' } as const;
  const gamma = { repository: 'gamma', visibility: 'private' } as const;

  it('checks the scope and the packages of the grant for the target repository only', async () => {
    expect(await access.check('a', alphaOnly.token, 'write', 'web_ui', alpha)).toMatchObject({ ok: true });
    expect(await access.check('a', alphaOnly.token, 'write', 'core', alpha)).toMatchObject({ ok: false, status: 403, message: 'the token is not allowed to access package core in repository alpha' });
    expect(await access.check('a', alphaOnly.token, 'read', 'core', beta)).toMatchObject({ ok: true });
    expect(await access.check('a', alphaOnly.token, 'write', 'web_ui', beta)).toMatchObject({ ok: false, status: 403, message: 'the token does not have the write scope on repository beta' });
    expect(await access.check('a', alphaOnly.token, 'read', undefined, gamma)).toMatchObject({ ok: false, status: 403, message: 'the token has no access to repository gamma' });
    // Without a target only grants on every repository count.
    expect(await access.check('a', alphaOnly.token, 'read')).toMatchObject({ ok: false, status: 403 });
  });

  it('a token granted every repository ("*") and the configured users reach every repository', async () => {
    for (const target of [alpha, beta, gamma]) {
      expect(await access.check('a', everywhere.token, 'read', 'x', target)).toMatchObject({ ok: true });
      expect(await access.check('a', `Basic ${Buffer.from('ops:long-password').toString('base64')}`, 'write', 'x', target)).toMatchObject({ ok: true });
    }
  });

  it('public reads stay open on a public repository, whatever the grants', async () => {
    expect(await access.check('a', alphaOnly.token, 'read', undefined, { repository: 'gamma', visibility: 'public' })).toMatchObject({ ok: true });
    expect(await access.check('a', alphaOnly.token, 'write', undefined, { repository: 'gamma', visibility: 'public' })).toMatchObject({ ok: false, status: 403 });
  });
});
