/**
 * The account side of the API over a real host (a private repository at / and a public one at
 * /repos/pub, each on its own folder) with real host users and tokens: owners, GET /auth, keys,
 * audit logs, package-level retire, and unknown credentials on public reads. Requests are shaped
 * as Mix and hex_core send them (ETF Accept, raw keys, Basic for users); every ETF answer is also
 * decoded by Erlang's binary_to_term(_, [safe]).
 */
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadPrivateKey, unpackPackage } from '@hexrepo/registry';
import { RepoService, TokenStore } from '@hexrepo/repo';
import { CachedStore, FsStore } from '@hexrepo/storage';
import { createTarball } from '@hexrepo/tarball';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { erlangUnavailable, erlBinary, runErlang } from '@hexrepo/test-support/erlang';
import { Access, createHostHandler, decodeEtf, encodeEtf, listen, type Etf, type RunningServer } from '../src/index.js';
import { MAX_KEYS_PER_USER } from '../src/api-account.js';
import { FIXTURES } from './helpers.js';

const ETF = 'application/vnd.hex+erlang';
const key = loadPrivateKey(await readFile(join(FIXTURES, 'golden-acme/test-only-rsa.pem'), 'utf8'));
const tarball = (name: string, version: string): Uint8Array => createTarball({ name, version, description: `${name} ${version}`, licenses: ['MIT'] }, [{ path: `src/${name}.erl`, contents: Buffer.from(`-module(${name}).\n`) }]).tarball;
const basic = (user: string, password: string): string => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

let dir: string;
let server: RunningServer;
let acme: RepoService;
let pub: RepoService;
let tokens: TokenStore;
/** Host users: alice and bob read and write acme; carol only reads it. */
const ALICE = basic('alice', 'alice-password-1');
const BOB = basic('bob', 'bob-password-12');
const CAROL = basic('carol', 'carol-password-1');
/** Tokens of no user: admin of acme, read+write of acme. */
let admin: string;
let writer: string;
let reader: string;

interface Res {
  status: number;
  headers: Headers;
  body: Buffer;
  term: Etf;
}

/** One request as Mix sends it: ETF Accept, the credential as given, an ETF body when `body` is a term. */
async function call(method: string, path: string, opts: { auth?: string; body?: Etf; json?: boolean } = {}): Promise<Res> {
  const headers: Record<string, string> = { accept: opts.json ? 'application/json' : ETF, 'user-agent': 'hex_core/0.7.1 (rebar3/3.19.0) (httpc) (OTP/25) (erts/13.1.5)' };
  if (opts.auth !== undefined) headers.authorization = opts.auth;
  let body: Uint8Array | undefined;
  if (opts.body !== undefined) {
    body = encodeEtf(opts.body);
    headers['content-type'] = ETF;
  }
  const res = await fetch(`${server.url}${path}`, { method, headers, ...(body ? { body } : {}), redirect: 'manual' });
  const bytes = Buffer.from(await res.arrayBuffer());
  const type = res.headers.get('content-type') ?? '';
  return { status: res.status, headers: res.headers, body: bytes, term: bytes.length === 0 ? null : type.includes(ETF) ? decodeEtf(bytes) : type.includes('json') ? (JSON.parse(bytes.toString()) as Etf) : bytes.toString() };
}

const publish = async (auth: string, name: string, version: string, repo = ''): Promise<Res> => {
  const bytes = tarball(name, version);
  const res = await fetch(`${server.url}/api${repo}/packages/${name}/releases`, {
    method: 'POST',
    headers: { authorization: auth, accept: ETF, 'content-type': 'application/octet-stream', 'user-agent': 'hex_core/0.19.0 hex/2.5.2 (elixir/1.18.0) (OTP/27) (erts/15.0)' },
    body: bytes,
  });
  return { status: res.status, headers: res.headers, body: Buffer.from(await res.arrayBuffer()), term: null };
};

const asMap = (t: Etf): Record<string, Etf> => t as Record<string, Etf>;
const asList = (t: Etf): Record<string, Etf>[] => t as Record<string, Etf>[];

/** ETF bodies collected along the way, decoded by Erlang at the end. */
const bodies: { label: string; body: Buffer }[] = [];
const keep = (label: string, res: Res): Res => {
  expect(res.headers.get('content-type')).toBe(ETF);
  bodies.push({ label, body: res.body });
  return res;
};

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hexrepo-api-account-'));
  const open = async (name: string): Promise<RepoService> => (await RepoService.open({ store: new CachedStore(new FsStore(join(dir, name))), repository: name, privateKey: key })).service;
  acme = await open('acme');
  pub = await open('pub');
  tokens = await TokenStore.open(new FsStore(join(dir, 'state')));
  await tokens.addUser({ username: 'alice', password: 'alice-password-1', grants: [{ repository: 'acme', scopes: ['read', 'write'], packages: [] }] });
  await tokens.addUser({ username: 'bob', password: 'bob-password-12', grants: [{ repository: 'acme', scopes: ['read', 'write'], packages: [] }] });
  await tokens.addUser({ username: 'carol', password: 'carol-password-1', grants: [{ repository: 'acme', scopes: ['read'], packages: [] }] });
  await tokens.addUser({ username: 'd.e@example', password: 'dee-password-123', grants: [{ repository: 'acme', scopes: ['read'], packages: [] }] });
  admin = (await tokens.create({ label: 'ops', grants: [{ repository: 'acme', scopes: ['admin'], packages: [] }] })).token;
  writer = (await tokens.create({ label: 'ci', grants: [{ repository: '*', scopes: ['read', 'write'], packages: [] }] })).token;
  reader = (await tokens.create({ label: 'reader', grants: [{ repository: 'acme', scopes: ['read'], packages: [] }] })).token;
  const access = new Access({ visibility: 'private', users: [], tokens, maxFailures: 1000 });
  server = await listen(
    createHostHandler({
      repositories: [
        { name: 'acme', store: acme.store, service: acme, visibility: 'private', root: true },
        { name: 'pub', store: pub.store, service: pub, visibility: 'public' },
      ],
      access,
    }),
    { host: '127.0.0.1', port: 0 },
  );
  expect((await publish(ALICE, 'alpha', '1.0.0')).status).toBe(201);
  expect((await publish(ALICE, 'alpha', '1.1.0')).status).toBe(201);
  expect((await publish(writer, 'gamma', '0.1.0', '/repos/pub')).status).toBe(201);
});

afterAll(async () => {
  await server?.close();
});

describe('owners', () => {
  it('the first publisher (a user) is the full owner; the package map lists the owners', async () => {
    const owners = keep('owners', await call('GET', '/api/packages/alpha/owners', { auth: reader }));
    expect(owners.status).toBe(200);
    expect(owners.term).toEqual([{ username: 'alice', email: 'alice', level: 'full', url: `${server.url}/api/users/alice`, inserted_at: expect.stringMatching(/^\d{4}-/), updated_at: expect.stringMatching(/^\d{4}-/) }]);
    expect(asMap((await call('GET', '/api/packages/alpha', { auth: reader })).term).owners).toEqual([{ username: 'alice', email: 'alice', url: `${server.url}/api/users/alice` }]);
    // A package published by a token of no user has no owner.
    expect((await call('GET', '/api/repos/pub/packages/gamma/owners')).term).toEqual([]);
  });

  it('a full owner adds and removes owners; others are refused (403), unknown users 404, bad levels 422', async () => {
    expect((await call('PUT', '/api/packages/alpha/owners/bob', { auth: BOB, body: { level: 'full', transfer: false } })).status).toBe(403);
    expect((await call('PUT', '/api/packages/alpha/owners/bob', { auth: reader, body: { level: 'full' } })).status).toBe(403);
    expect((await call('PUT', '/api/packages/alpha/owners/bob', { body: { level: 'full' } })).status).toBe(401);
    const bad = keep('error 422', await call('PUT', '/api/packages/alpha/owners/bob', { auth: ALICE, body: { level: 'boss' } }));
    expect(bad.status).toBe(422);
    expect(asMap(bad.term).errors).toEqual({ level: 'is invalid' });
    const unknown = keep('error 404', await call('PUT', '/api/packages/alpha/owners/nobody', { auth: ALICE, body: { level: 'full' } }));
    expect([unknown.status, asMap(unknown.term).status]).toEqual([404, 404]);
    expect((await call('PUT', '/api/packages/nothere/owners/bob', { auth: ALICE, body: { level: 'full' } })).status).toBe(404);
    expect((await call('PUT', '/api/packages/alpha/owners/bob', { auth: ALICE, body: { level: 'maintainer', transfer: false } })).status).toBe(204);
    // Mix encodes the name with URI.encode_www_form: "@" arrives as %40.
    expect((await call('PUT', '/api/packages/alpha/owners/d.e%40example', { auth: ALICE, body: { level: 'maintainer' } })).status).toBe(204);
    expect(asList((await call('GET', '/api/packages/alpha/owners', { auth: reader })).term).map((o) => [o.username, o.level])).toEqual([
      ['alice', 'full'],
      ['bob', 'maintainer'],
      ['d.e@example', 'maintainer'],
    ]);
    expect(asMap((await call('GET', '/api/packages/alpha/owners/bob', { auth: reader })).term).level).toBe('maintainer');
    // A maintainer cannot manage owners; a full owner can.
    expect((await call('DELETE', '/api/packages/alpha/owners/d.e%40example', { auth: BOB })).status).toBe(403);
    expect((await call('DELETE', '/api/packages/alpha/owners/d.e%40example', { auth: ALICE })).status).toBe(204);
    const last = await call('DELETE', '/api/packages/alpha/owners/alice', { auth: ALICE });
    expect([last.status, asMap(last.term).errors]).toEqual([422, { username: 'cannot remove last owner of package' }]);
    expect(asMap((await call('DELETE', '/api/packages/alpha/owners/carol', { auth: ALICE })).term).errors).toEqual({ username: 'user is not an owner of package' });
  });

  it('a repository admin manages owners without being one, and transfer leaves only the new owner', async () => {
    expect((await call('PUT', '/api/packages/alpha/owners/carol', { auth: admin, body: { level: 'full', transfer: true } })).status).toBe(204);
    expect(asList((await call('GET', '/api/packages/alpha/owners', { auth: reader })).term).map((o) => [o.username, o.level])).toEqual([['carol', 'full']]);
    // alice is no owner any more: refused.
    expect((await call('PUT', '/api/packages/alpha/owners/alice', { auth: ALICE, body: { level: 'full' } })).status).toBe(403);
    expect((await call('PUT', '/api/packages/alpha/owners/alice', { auth: admin, body: { level: 'full' } })).status).toBe(204);
  });
  it('tells a credential that cannot read the repository nothing about which packages exist (403 either way)', async () => {
    const outsider = (await tokens.create({ label: 'pub-only', grants: [{ repository: 'pub', scopes: ['read', 'write'], packages: [] }] })).token;
    for (const method of ['PUT', 'DELETE']) {
      const known = await call(method, '/api/packages/alpha/owners/bob', { auth: outsider, body: { level: 'full' } });
      const unknown = await call(method, '/api/packages/nothere/owners/bob', { auth: outsider, body: { level: 'full' } });
      expect([method, known.status, unknown.status]).toEqual([method, 403, 403]);
      expect(String(asMap(unknown.term).message).replace('nothere', 'alpha')).toBe(asMap(known.term).message);
    }
  });
  it('never leaves a package that has a full owner without one: no demoting the last, no transfer to a maintainer', async () => {
    expect((await publish(ALICE, 'delta', '1.0.0')).status).toBe(201);
    const demote = await call('PUT', '/api/packages/delta/owners/alice', { auth: ALICE, body: { level: 'maintainer' } });
    expect([demote.status, asMap(demote.term).errors]).toEqual([422, { level: 'cannot demote last full owner of package' }]);
    const transfer = await call('PUT', '/api/packages/delta/owners/bob', { auth: ALICE, body: { level: 'maintainer', transfer: true } });
    expect([transfer.status, asMap(transfer.term).errors]).toEqual([422, { level: 'cannot demote last full owner of package' }]);
    expect(asList((await call('GET', '/api/packages/delta/owners', { auth: reader })).term).map((o) => [o.username, o.level])).toEqual([['alice', 'full']]);
  });
});

describe('GET /auth', () => {
  it('204 when the credential grants the domain and resource, 403 when not, 401 without one, 400 without a domain', async () => {
    const status = async (query: string, auth?: string): Promise<number> => (await call('GET', `/api/auth${query}`, auth !== undefined ? { auth } : {})).status;
    expect(await status('?domain=api', writer)).toBe(204);
    expect(await status('?domain=api&resource=write', writer)).toBe(204);
    expect(await status('?domain=api&resource=read', reader)).toBe(204);
    expect(await status('?domain=api&resource=write', reader)).toBe(403);
    expect(await status('?domain=repository&resource=acme', reader)).toBe(204);
    expect(await status('?domain=repository&resource=pub', reader)).toBe(403);
    expect(await status('?domain=repository&resource=pub', writer)).toBe(204);
    expect(await status('?domain=repositories', writer)).toBe(204);
    expect(await status('?domain=repositories', reader)).toBe(403);
    expect(await status('?domain=package&resource=alpha', ALICE)).toBe(204);
    expect(await status('?domain=docs&resource=acme', writer)).toBe(403);
    expect(await status('?domain=repository&resource=acme')).toBe(401);
    expect(await status('?domain=repository&resource=acme', 'hxr_aaaaaaaaaa_unknownunknownunknownunknownunknownunknownun')).toBe(401);
    expect(await status('', writer)).toBe(400);
    keep('error 403', await call('GET', '/api/auth?domain=repository&resource=pub', { auth: reader }));
  });
});

describe('keys', () => {
  let secret: string;
  it('POST /keys with Basic (rebar3 hex user auth) creates a key once; it works, and is listed as the authing key', async () => {
    const created = keep('key created', await call('POST', '/api/keys', { auth: ALICE, body: { name: 'laptop', permissions: [{ domain: 'api', resource: 'write' }] } }));
    expect(created.status).toBe(201);
    expect(created.headers.get('location')).toBe(`${server.url}/api/keys/laptop`);
    const k = asMap(created.term);
    expect(k).toMatchObject({ name: 'laptop', authing_key: false, permissions: [{ domain: 'api', resource: 'write' }], revoke_at: null, revoked_at: null, url: `${server.url}/api/keys/laptop` });
    secret = String(k.secret);
    expect(secret).toMatch(/^hxr_/);
    // The key publishes (alice's grants, cut to read+write) and is shown without its secret afterwards.
    expect((await publish(secret, 'beta', '1.0.0')).status).toBe(201);
    const list = keep('keys', await call('GET', '/api/keys', { auth: secret }));
    expect(asList(list.term).map((x) => [x.name, x.authing_key, x.secret])).toEqual([['laptop', true, null]]);
    expect(asMap(keep('key', await call('GET', '/api/keys/laptop', { auth: ALICE })).term)).toMatchObject({ name: 'laptop', authing_key: false, secret: null });
    expect((await call('GET', '/api/keys/other', { auth: ALICE })).status).toBe(404);
    // The publisher of beta is alice (through her key): she owns it.
    expect(asList((await call('GET', '/api/packages/beta/owners', { auth: reader })).term).map((o) => o.username)).toEqual(['alice']);
  });

  it('renames a duplicate name as hex.pm does (NAME-2); refuses a permission the caller lacks (403), an unknown domain or a past revoke_at (422), a token of no user (403)', async () => {
    const dup = await call('POST', '/api/keys', { auth: ALICE, body: { name: 'laptop', permissions: [{ domain: 'api' }] } });
    expect([dup.status, asMap(dup.term).name]).toEqual([201, 'laptop-2']);
    expect((await call('DELETE', '/api/keys/laptop-2', { auth: ALICE })).status).toBe(200);
    expect((await call('POST', '/api/keys', { auth: ALICE, body: { name: 'x', permissions: [{ domain: 'repository', resource: 'pub' }] } })).status).toBe(403);
    expect((await call('POST', '/api/keys', { auth: CAROL, body: { name: 'x', permissions: [{ domain: 'api', resource: 'write' }] } })).status).toBe(403);
    expect((await call('POST', '/api/keys', { auth: ALICE, body: { name: 'x', permissions: [{ domain: 'docs', resource: 'acme' }] } })).status).toBe(422);
    expect((await call('POST', '/api/keys', { auth: ALICE, body: { name: 'x', permissions: 'all' } })).status).toBe(422);
    expect((await call('POST', '/api/keys', { auth: ALICE, body: { permissions: [] } })).status).toBe(422);
    expect((await call('POST', '/api/keys', { auth: ALICE, body: { name: 'x', permissions: [{ domain: 'api' }], revoke_at: '2001-01-01T00:00:00Z' } })).status).toBe(422);
    expect((await call('POST', '/api/keys', { auth: writer, body: { name: 'x', permissions: [{ domain: 'api' }] } })).status).toBe(403);
    const malformed = await fetch(`${server.url}/api/keys`, { method: 'POST', headers: { authorization: ALICE, accept: ETF, 'content-type': 'application/json' }, body: '{"name": ' });
    expect(malformed.status).toBe(400);
  });

  it('a short-lived key shows revoke_at and is refused after it; read keys map to read grants', async () => {
    const at = new Date(Date.now() + 3_600_000).toISOString();
    const k = asMap((await call('POST', '/api/keys', { auth: CAROL, body: { name: 'ci-read', permissions: [{ domain: 'repository', resource: 'acme' }], revoke_at: at } })).term);
    expect(k.revoke_at).toBe(at);
    expect(k.permissions).toEqual([{ domain: 'repository', resource: 'acme' }]);
    const info = tokens.list().find((t) => t.user === 'carol' && t.label === 'ci-read')!;
    expect(info.grants).toEqual([{ repository: 'acme', scopes: ['read'], packages: [] }]);
    expect(info.expiresAt).toBe(at);
    expect((await call('GET', '/api/packages/alpha', { auth: String(k.secret) })).status).toBe(200);
    expect((await publish(String(k.secret), 'carol_pkg', '1.0.0')).status).toBe(403);
  });

  it('DELETE /keys/NAME revokes one key (200, revoked_at), DELETE /keys all of the caller’s', async () => {
    const gone = keep('key revoked', await call('DELETE', '/api/keys/laptop', { auth: ALICE }));
    expect(gone.status).toBe(200);
    expect(asMap(gone.term)).toMatchObject({ name: 'laptop', revoked_at: expect.stringMatching(/^\d{4}-/) });
    expect((await call('GET', '/api/keys', { auth: secret })).status).toBe(401);
    expect((await call('DELETE', '/api/keys/laptop', { auth: ALICE })).status).toBe(404);
    const a = String(asMap((await call('POST', '/api/keys', { auth: ALICE, body: { name: 'a', permissions: [{ domain: 'api', resource: 'read' }] } })).term).secret);
    expect((await call('POST', '/api/keys', { auth: ALICE, body: { name: 'b', permissions: [{ domain: 'api' }] } })).status).toBe(201);
    // api:read cannot make keys, nor revoke them: a leaked read key must not take the write keys down (hex.pm: api:write).
    expect((await call('POST', '/api/keys', { auth: a, body: { name: 'c', permissions: [{ domain: 'api', resource: 'read' }] } })).status).toBe(403);
    expect((await call('DELETE', '/api/keys/b', { auth: a })).status).toBe(403);
    expect((await call('DELETE', '/api/keys', { auth: a })).status).toBe(403);
    expect(
      tokens
        .list()
        .filter((t) => t.user === 'alice')
        .map((t) => t.label),
    ).toEqual(['a', 'b']);
    const b = String(asMap((await call('POST', '/api/keys', { auth: ALICE, body: { name: 'b2', permissions: [{ domain: 'api' }] } })).term).secret);
    const all = await call('DELETE', '/api/keys', { auth: b });
    expect([all.status, asMap(all.term).name, asMap(all.term).authing_key]).toEqual([200, 'b2', true]);
    expect(tokens.list().filter((t) => t.user === 'alice')).toEqual([]);
    // carol's key is hers, untouched.
    expect(
      tokens
        .list()
        .filter((t) => t.user === 'carol')
        .map((t) => t.label),
    ).toEqual(['ci-read']);
  });
  it('a short-lived key cannot make a key that outlives it: the new key is revoked when the old one is', async () => {
    const at = new Date(Date.now() + 3_600_000).toISOString();
    const short = String(asMap((await call('POST', '/api/keys', { auth: BOB, body: { name: 'short', permissions: [{ domain: 'api', resource: 'write' }], revoke_at: at } })).term).secret);
    const forever = await call('POST', '/api/keys', { auth: short, body: { name: 'forever', permissions: [{ domain: 'api', resource: 'write' }] } });
    expect([forever.status, asMap(forever.term).revoke_at]).toEqual([201, at]);
    const later = await call('POST', '/api/keys', { auth: short, body: { name: 'later', permissions: [{ domain: 'api' }], revoke_at: new Date(Date.now() + 7_200_000).toISOString() } });
    expect([later.status, asMap(later.term).revoke_at]).toEqual([201, at]);
    expect(
      tokens
        .list()
        .filter((t) => t.user === 'bob')
        .map((t) => [t.label, t.expiresAt]),
    ).toEqual([
      ['short', at],
      ['forever', at],
      ['later', at],
    ]);
    // Bob's password is not short-lived: keys it makes live as long as asked.
    expect(asMap((await call('POST', '/api/keys', { auth: BOB, body: { name: 'laptop', permissions: [{ domain: 'api' }] } })).term).revoke_at).toBe(null);
  });
  it(`a user keeps at most ${MAX_KEYS_PER_USER} API keys: the credentials every server re-reads stay bounded`, async () => {
    await tokens.addUser({ username: 'erin', password: 'erin-password-123', grants: [{ repository: 'acme', scopes: ['read'], packages: [] }] });
    const ERIN = basic('erin', 'erin-password-123');
    for (let i = 0; i < MAX_KEYS_PER_USER; i++) expect((await call('POST', '/api/keys', { auth: ERIN, body: { name: `k${i}`, permissions: [{ domain: 'api', resource: 'read' }] } })).status).toBe(201);
    const over = await call('POST', '/api/keys', { auth: ERIN, body: { name: 'one-more', permissions: [{ domain: 'api', resource: 'read' }] } });
    expect([over.status, asMap(over.term).errors]).toEqual([422, { name: `you have ${MAX_KEYS_PER_USER} keys already` }]);
    expect(tokens.list().filter((t) => t.user === 'erin').length).toBe(MAX_KEYS_PER_USER);
    // Revoking one makes room again.
    expect((await call('DELETE', '/api/keys/k0', { auth: ERIN })).status).toBe(200);
    expect((await call('POST', '/api/keys', { auth: ERIN, body: { name: 'one-more', permissions: [{ domain: 'api', resource: 'read' }] } })).status).toBe(201);
  });
});

describe('audit logs', () => {
  it('GET /packages/NAME/audit-logs: publish and owner events, newest first, with the user and user agent', async () => {
    const res = keep('package audit logs', await call('GET', '/api/packages/alpha/audit-logs', { auth: reader }));
    const entries = asList(res.term);
    expect(entries.map((e) => e.action)).toEqual(['owner.add', 'owner.transfer', 'owner.remove', 'owner.add', 'owner.add', 'release.publish', 'release.publish']);
    expect(entries.at(-1)).toEqual({
      action: 'release.publish',
      params: { package: { name: 'alpha', repository: 'acme' }, release: { version: '1.0.0' } },
      user: 'alice',
      user_agent: 'hex_core/0.19.0 hex/2.5.2 (elixir/1.18.0) (OTP/27) (erts/15.0)',
      inserted_at: expect.stringMatching(/^\d{4}-/),
    });
    expect(entries[0]).toMatchObject({ user: 'token:ops', user_agent: expect.stringMatching(/^hex_core\//), params: { user: { username: 'alice' }, level: 'full' } });
    expect((await call('GET', '/api/packages/alpha/audit-logs?page=2', { auth: reader })).term).toEqual([]);
    expect((await call('GET', '/api/packages/alpha/audit-logs?page=0', { auth: reader })).status).toBe(400);
    expect((await call('GET', '/api/packages/nothere/audit-logs', { auth: reader })).status).toBe(404);
  });

  it('GET /users/me/audit-logs: the caller’s own events, key events included', async () => {
    const res = keep('user audit logs', await call('GET', '/api/users/me/audit-logs', { auth: ALICE }));
    const actions = asList(res.term).map((e) => e.action);
    expect(actions.slice(0, 4)).toEqual(['key.remove', 'key.remove', 'key.remove', 'key.generate']);
    expect(actions).toContain('release.publish');
    expect(actions.filter((a) => a === 'owner.add').length).toBe(2);
  });
});

describe('GET /users/me', () => {
  it('lists the packages the caller owns, as `mix hex.owner packages` prints them (name and html_url of each)', async () => {
    const me = asMap(keep('users/me', await call('GET', '/api/users/me', { auth: ALICE })).term);
    expect(me.username).toBe('alice');
    const listed = asList(me.packages ?? []);
    // The same answer as each package's owners list.
    const expected: string[] = [];
    for (const name of ['alpha', 'beta', 'delta']) {
      const owners = asList((await call('GET', `/api/packages/${name}/owners`, { auth: reader })).term);
      if (owners.some((o) => o.username === 'alice')) expected.push(name);
    }
    expect(expected).toContain('alpha');
    expect(listed.map((p) => p.name)).toEqual(expected);
    expect(listed[0]).toEqual({ name: 'alpha', repository: 'acme', url: `${server.url}/api/packages/alpha`, html_url: `${server.url}/-/packages/acme/alpha` });
    // A token of no user owns nothing, and still gets a list.
    expect(asMap((await call('GET', '/api/users/me', { auth: reader })).term).packages).toEqual([]);
  });
});

describe('package-level retire', () => {
  it('POST /packages/NAME/retire retires every release not retired yet, DELETE unretires them all; the registry follows', async () => {
    const retire = (version: string, body: Etf): Promise<Res> => call('POST', `/api/packages/alpha/releases/${version}/retire`, { auth: writer, body });
    expect((await retire('1.0.0', { reason: 'security', message: 'CVE-2026-1' })).status).toBe(204);
    expect((await call('POST', '/api/packages/alpha/retire', { auth: reader, body: { reason: 'deprecated', message: 'use beta' } })).status).toBe(403);
    expect((await call('POST', '/api/packages/alpha/retire', { auth: writer, body: { reason: 'nope', message: 'use beta' } })).status).toBe(422);
    expect((await call('POST', '/api/packages/nothere/retire', { auth: writer, body: { reason: 'deprecated', message: 'use beta' } })).status).toBe(404);
    expect((await call('POST', '/api/packages/alpha/retire', { auth: writer, body: { reason: 'deprecated', message: 'use beta' } })).status).toBe(204);
    const registry = async (): Promise<Record<string, string | undefined>> => {
      const file = await readFile(join(dir, 'acme', 'packages', 'alpha'));
      const pkg = unpackPackage(file, { publicKey: key, repository: 'acme', name: 'alpha' });
      return Object.fromEntries(pkg.releases.map((r) => [r.version, r.retired?.reason]));
    };
    expect(await registry()).toEqual({ '1.0.0': 'security', '1.1.0': 'deprecated' });
    expect(asMap((await call('GET', '/api/packages/alpha', { auth: reader })).term).retirements).toEqual({ '1.0.0': { reason: 'security', message: 'CVE-2026-1' }, '1.1.0': { reason: 'deprecated', message: 'use beta' } });
    expect((await call('DELETE', '/api/packages/alpha/retire', { auth: writer })).status).toBe(204);
    expect(await registry()).toEqual({ '1.0.0': undefined, '1.1.0': undefined });
    const logged = asList((await call('GET', '/api/packages/alpha/audit-logs', { auth: reader })).term).slice(0, 2);
    expect(logged.map((e) => [e.action, asMap(e.params!).releases])).toEqual([
      ['release.unretire', ['1.0.0', '1.1.0']],
      ['release.retire', ['1.1.0']],
    ]);
  });
});

describe('unknown credentials on a public repository', () => {
  const junk = ['Bearer hexpm-global-token-of-someone-else', 'hxr_aaaaaaaaaa_unknownunknownunknownunknownunknownunknownun', 'Bearer hxr_aaaaaaaaaa_unknownunknownunknownunknownunknownunknownun'];
  it('are ignored on reads of the repository endpoint and the API (200), never 401', async () => {
    for (const auth of junk) {
      expect((await call('GET', '/repos/pub/packages/gamma', { auth })).status, auth).toBe(200);
      expect((await call('GET', '/repos/pub/names', { auth })).status, auth).toBe(200);
      expect((await call('GET', '/repos/pub/tarballs/gamma-0.1.0.tar', { auth })).status, auth).toBe(200);
      expect((await call('GET', '/api/repos/pub/packages/gamma', { auth })).status, auth).toBe(200);
      expect((await call('GET', '/api/repos/pub/packages/gamma/releases/0.1.0', { auth })).status, auth).toBe(200);
      expect((await call('GET', '/api/repos/pub/packages/gamma/owners', { auth })).status, auth).toBe(200);
      expect((await call('GET', '/api/repos/pub/packages/gamma/audit-logs', { auth })).status, auth).toBe(200);
    }
  });
  it('still count on writes and on a private repository (401)', async () => {
    for (const auth of junk) {
      expect((await call('GET', '/packages/alpha', { auth })).status, auth).toBe(401);
      expect((await call('GET', '/api/packages/alpha', { auth })).status, auth).toBe(401);
      expect((await call('DELETE', '/api/repos/pub/packages/gamma/releases/0.1.0', { auth })).status, auth).toBe(401);
    }
  });
});

const unavailable = erlangUnavailable();
describe.skipIf(unavailable)("every ETF answer through Erlang's binary_to_term(_, [safe])", () => {
  it('decodes, with the keys the clients read', () => {
    // Mix reads email and level (hex.owner list), name/secret/permissions (hex.user key), status and
    // message of errors, name/repository/html_url of users/me's packages (hex.owner packages);
    // hex_core returns the maps as they are.
    const checks = bodies.map(({ label, body }) => {
      const check = label.startsWith('error')
        ? `#{<<"status">> := S, <<"message">> := M} = T, true = is_integer(S) andalso is_binary(M)`
        : label === 'owners'
          ? `[#{<<"username">> := U, <<"email">> := E, <<"level">> := L} | _] = T, true = is_binary(U) andalso is_binary(E) andalso is_binary(L)`
          : label === 'keys'
            ? `[#{<<"name">> := _, <<"authing_key">> := true} | _] = T`
            : label === 'users/me'
              ? `#{<<"username">> := _, <<"packages">> := [#{<<"name">> := N, <<"repository">> := R, <<"html_url">> := H} | _]} = T, true = is_binary(N) andalso is_binary(R) andalso is_binary(H)`
              : label.startsWith('key')
                ? `#{<<"name">> := N, <<"secret">> := Sec, <<"permissions">> := [#{<<"domain">> := D, <<"resource">> := _} | _], <<"authing_key">> := A, <<"revoke_at">> := _, <<"inserted_at">> := I} = T, true = is_binary(N) andalso (is_binary(Sec) orelse Sec =:= nil) andalso is_binary(D) andalso is_boolean(A) andalso is_binary(I)`
                : `[#{<<"action">> := Act, <<"params">> := P, <<"user_agent">> := _, <<"inserted_at">> := Ins} | _] = T, true = is_binary(Act) andalso is_map(P) andalso is_binary(Ins)`;
      return `fun() -> T = binary_to_term(${erlBinary(body)}, [safe]), ${check}, <<${JSON.stringify(label)}>> end()`;
    });
    expect(bodies.length).toBe(11);
    const out = runErlang(`[${checks.join(',\n')}]`);
    for (const { label } of bodies) expect(out).toContain(`<<"${label}">>`);
  });
});
