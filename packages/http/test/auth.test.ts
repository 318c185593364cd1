import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TokenStore } from '@hexrepo/repo';
import { describe, expect, it } from 'vitest';
import { Access, parseAuthorization, safeEqual } from '../src/index.js';

const basic = (user: string, pass: string): string => `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;

describe('parseAuthorization: every form the clients send', () => {
  it('raw key (Mix and rebar3 repo_key), Bearer, Basic', () => {
    expect(parseAuthorization('hxr_abc')).toEqual({ secrets: ['hxr_abc'] });
    expect(parseAuthorization('Bearer hxr_abc')).toEqual({ secrets: ['hxr_abc'] });
    expect(parseAuthorization('bearer   hxr_abc ')).toEqual({ secrets: ['hxr_abc'] });
    expect(parseAuthorization(basic('alice', 's3cret:x'))).toEqual({ secrets: ['s3cret:x', 'alice'], basic: { username: 'alice', password: 's3cret:x' } });
    expect(parseAuthorization(basic('hxr_tok', ''))).toEqual({ secrets: ['hxr_tok'], basic: { username: 'hxr_tok', password: '' } });
    expect(parseAuthorization(undefined)).toBeNull();
    expect(parseAuthorization('   ')).toBeNull();
  });

  it('safeEqual', () => {
    expect(safeEqual('a', 'a')).toBe(true);
    expect(safeEqual('a', 'ab')).toBe(false);
  });
});

describe('Access', async () => {
  const tokens = await TokenStore.open(join(await mkdtemp(join(tmpdir(), 'hexrepo-access-')), 'tokens.json'));
  const reader = await tokens.create({ label: 'r', scopes: ['read'] });
  const writer = await tokens.create({ label: 'w', scopes: ['read', 'write'], packages: ['acme_*'] });
  const publisher = await tokens.create({ label: 'p', scopes: ['write'] });
  const users = [{ username: 'alice', password: 'wonderland' }];

  it('private: no credentials → 401; wrong → 401; Basic user, raw, Bearer and Basic-password tokens → ok', () => {
    const access = new Access({ visibility: 'private', users, tokens });
    expect(access.check('a', undefined, 'read')).toMatchObject({ ok: false, status: 401 });
    expect(access.check('a', basic('alice', 'nope'), 'read')).toMatchObject({ ok: false, status: 401 });
    expect(access.check('a', basic('alice', 'wonderland'), 'read')).toMatchObject({ ok: true, identity: { kind: 'user', username: 'alice' } });
    expect(access.check('a', reader.token, 'read')).toMatchObject({ ok: true, identity: { kind: 'token' } });
    expect(access.check('a', `Bearer ${reader.token}`, 'read')).toMatchObject({ ok: true });
    expect(access.check('a', basic('anything', reader.token), 'read')).toMatchObject({ ok: true });
    expect(access.check('a', basic(reader.token, ''), 'read')).toMatchObject({ ok: true });
  });

  it('private with no user or token yet refuses every read (nothing to authenticate with)', () => {
    const access = new Access({ visibility: 'private', users: [] });
    expect(access.check('a', undefined, 'read')).toMatchObject({ ok: false, status: 401 });
    expect(access.check('a', 'anything', 'read')).toMatchObject({ ok: false, status: 401 });
  });

  it('scopes and package patterns → 403', () => {
    const access = new Access({ visibility: 'private', users, tokens });
    expect(access.check('a', reader.token, 'write')).toMatchObject({ ok: false, status: 403 });
    expect(access.check('a', writer.token, 'write', 'acme_web')).toMatchObject({ ok: true });
    expect(access.check('a', writer.token, 'read', 'other')).toMatchObject({ ok: false, status: 403 });
    expect(access.check('a', writer.token, 'admin')).toMatchObject({ ok: false, status: 403 });
    expect(access.check('a', publisher.token, 'read')).toMatchObject({ ok: false, status: 403, message: 'the token does not have the read scope' });
    expect(access.check('a', publisher.token, 'write')).toMatchObject({ ok: true });
  });

  it('public: reads never fail on credentials (a stranger\'s hex.pm Bearer token), writes still need them', () => {
    const access = new Access({ visibility: 'public', users, tokens });
    expect(access.check('a', undefined, 'read')).toMatchObject({ ok: true, identity: null });
    expect(access.check('a', 'Bearer some-hexpm-oauth-token', 'read')).toMatchObject({ ok: true, identity: null });
    expect(access.check('a', basic('alice', 'bad'), 'read')).toMatchObject({ ok: true });
    expect(access.check('a', undefined, 'write')).toMatchObject({ ok: false, status: 401 });
  });

  it('a revoked token stops working at once, even right after a successful request', async () => {
    const access = new Access({ visibility: 'private', users, tokens });
    const t = await tokens.create({ label: 'short-lived', scopes: ['read'] });
    expect(access.check('a', t.token, 'read')).toMatchObject({ ok: true });
    await tokens.revoke(t.info.id);
    expect(access.check('a', t.token, 'read')).toMatchObject({ ok: false, status: 401 });
  });

  it('rate-limits unknown tokens per address, and the window expires; a valid credential still gets in', () => {
    let now = 1_000_000;
    const access = new Access({ visibility: 'private', users, tokens, maxFailures: 3, windowMs: 60_000, now: () => now });
    for (let i = 0; i < 3; i++) expect(access.check('10.0.0.1', 'wrong', 'read')).toMatchObject({ status: 401 });
    expect(access.check('10.0.0.1', 'wrong', 'read')).toMatchObject({ ok: false, status: 429, retryAfterSeconds: 60 });
    expect(access.check('10.0.0.1', basic('nobody', 'guess'), 'read')).toMatchObject({ ok: false, status: 429 });
    expect(access.check('10.0.0.2', 'wrong', 'read')).toMatchObject({ status: 401 });
    // Somebody else's failures never refuse a valid token or password.
    expect(access.check('10.0.0.1', reader.token, 'read')).toMatchObject({ ok: true });
    expect(access.check('10.0.0.1', basic('alice', 'wonderland'), 'read')).toMatchObject({ ok: true });
    now += 60_001;
    expect(access.check('10.0.0.1', 'wrong', 'read')).toMatchObject({ status: 401 });
  });

  it('rate-limits password guesses per address and user, without telling whether the password was right', () => {
    let now = 1_000_000;
    const access = new Access({ visibility: 'private', users: [...users, { username: 'bob', password: 'builder' }], tokens, maxFailures: 3, windowMs: 60_000, now: () => now });
    for (let i = 0; i < 3; i++) expect(access.check('10.0.0.1', basic('alice', `guess${i}`), 'read')).toMatchObject({ status: 401 });
    expect(access.check('10.0.0.1', basic('alice', 'guess'), 'read')).toMatchObject({ ok: false, status: 429 });
    expect(access.check('10.0.0.1', basic('alice', 'wonderland'), 'read')).toMatchObject({ ok: false, status: 429, retryAfterSeconds: 60 });
    expect(access.authenticate('10.0.0.1', basic('alice', 'wonderland'))).toMatchObject({ ok: false, status: 429 });
    expect(access.check('10.0.0.2', basic('alice', 'wonderland'), 'read')).toMatchObject({ ok: true });
    expect(access.check('10.0.0.1', basic('bob', 'builder'), 'read')).toMatchObject({ ok: true });
    // A token as the password (Mix with netrc) is not a guess at alice's password.
    expect(access.check('10.0.0.1', basic('alice', reader.token), 'read')).toMatchObject({ ok: true });
    now += 60_001;
    expect(access.check('10.0.0.1', basic('alice', 'wonderland'), 'read')).toMatchObject({ ok: true });
  });

  it('a 403 names who was refused', () => {
    const access = new Access({ visibility: 'private', users, tokens });
    expect(access.check('a', writer.token, 'write', 'other')).toMatchObject({ ok: false, status: 403, identity: { kind: 'token', token: { id: writer.info.id } } });
  });
});

describe('Access with grants per repository', async () => {
  const tokens = await TokenStore.open(join(await mkdtemp(join(tmpdir(), 'hexrepo-grants-')), 'tokens.json'));
  const alphaOnly = await tokens.create({ label: 'a', scopes: ['read'], grants: [{ repository: 'alpha', scopes: ['read', 'write'], packages: ['web_*'] }, { repository: 'beta', scopes: ['read'], packages: [] }] });
  const everywhere = await tokens.create({ label: 'all', scopes: ['read'] });
  const access = new Access({ visibility: 'private', users: [{ username: 'ops', password: 'long-password' }], tokens });
  const alpha = { repository: 'alpha', visibility: 'private' } as const;
  const beta = { repository: 'beta', visibility: 'private' } as const;
  const gamma = { repository: 'gamma', visibility: 'private' } as const;

  it('checks the scope and the packages of the grant for the target repository only', () => {
    expect(access.check('a', alphaOnly.token, 'write', 'web_ui', alpha)).toMatchObject({ ok: true });
    expect(access.check('a', alphaOnly.token, 'write', 'core', alpha)).toMatchObject({ ok: false, status: 403, message: 'the token is not allowed to access package core' });
    expect(access.check('a', alphaOnly.token, 'read', 'core', beta)).toMatchObject({ ok: true });
    expect(access.check('a', alphaOnly.token, 'write', 'web_ui', beta)).toMatchObject({ ok: false, status: 403, message: 'the token does not have the write scope' });
    expect(access.check('a', alphaOnly.token, 'read', undefined, gamma)).toMatchObject({ ok: false, status: 403, message: 'the token has no access to repository gamma' });
    // Without a target only grants on every repository count.
    expect(access.check('a', alphaOnly.token, 'read')).toMatchObject({ ok: false, status: 403 });
  });

  it('a token of the token file (scopes, packages) and the configured users reach every repository', () => {
    for (const target of [alpha, beta, gamma]) {
      expect(access.check('a', everywhere.token, 'read', 'x', target)).toMatchObject({ ok: true });
      expect(access.check('a', `Basic ${Buffer.from('ops:long-password').toString('base64')}`, 'write', 'x', target)).toMatchObject({ ok: true });
    }
  });

  it('public reads stay open on a public repository, whatever the grants', () => {
    expect(access.check('a', alphaOnly.token, 'read', undefined, { repository: 'gamma', visibility: 'public' })).toMatchObject({ ok: true });
    expect(access.check('a', alphaOnly.token, 'write', undefined, { repository: 'gamma', visibility: 'public' })).toMatchObject({ ok: false, status: 403 });
  });
});
