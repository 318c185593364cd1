/**
 * What Mix's Hex client (hexpm/hex 2.x) reads from the API, task by task, over a real host: the
 * requests are shaped as hex_core sends them (ETF bodies and Accept, raw keys, Basic for the
 * password, Bearer for OAuth tokens) and each assertion is on the key the task's source reads
 * (`lib/mix/tasks/hex.user.ex`, `hex.owner.ex`, `hex.organization.ex`, `lib/mix/tasks/hex.ex`).
 * Every ETF answer is also decoded by Erlang's binary_to_term(_, [safe]).
 */
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadPrivateKey } from '@hexrepo/registry';
import { OAuthStore, RepoService, TokenStore } from '@hexrepo/repo';
import { CachedStore, FsStore } from '@hexrepo/storage';
import { createTarball } from '@hexrepo/tarball';
import { erlangUnavailable, erlBinary, runErlang } from '@hexrepo/test-support/erlang';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Access, createHostHandler, decodeEtf, encodeEtf, listen, type Etf, type RunningServer } from '../src/index.js';
import { FIXTURES } from './helpers.js';

const ETF = 'application/vnd.hex+erlang';
const UA = 'hex_core/0.19.0 hex/2.5.2 (elixir/1.18.0) (OTP/27) (erts/15.0)';
const key = loadPrivateKey(await readFile(join(FIXTURES, 'golden-acme/test-only-rsa.pem'), 'utf8'));
const tarball = (name: string, version: string): Uint8Array => createTarball({ name, version, description: `${name} ${version}`, licenses: ['MIT'] }, [{ path: `src/${name}.erl`, contents: Buffer.from(`-module(${name}).\n`) }]).tarball;
const basic = (user: string, password: string): string => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
const ALICE = basic('alice', 'alice-password-1');

let server: RunningServer;
/** A token of no user (hexrepo token create). */
let ci: string;

interface Res {
  status: number;
  term: Etf;
}
/** ETF answers kept for the binary_to_term check at the end. */
const bodies: { label: string; body: Buffer }[] = [];

/** One request as hex_core sends it; the answer must be ETF whenever it has a body. */
async function call(method: string, path: string, opts: { auth?: string; body?: Etf; label?: string } = {}): Promise<Res> {
  const headers: Record<string, string> = { accept: ETF, 'user-agent': UA };
  if (opts.auth !== undefined) headers.authorization = opts.auth;
  if (opts.body !== undefined) headers['content-type'] = ETF;
  const res = await fetch(`${server.url}${path}`, { method, headers, ...(opts.body !== undefined ? { body: encodeEtf(opts.body) } : {}) });
  const bytes = Buffer.from(await res.arrayBuffer());
  if (bytes.length > 0) expect(res.headers.get('content-type'), `${method} ${path}`).toBe(ETF);
  if (opts.label !== undefined) bodies.push({ label: opts.label, body: bytes });
  return { status: res.status, term: bytes.length > 0 ? decodeEtf(bytes) : null };
}
const asMap = (t: Etf): Record<string, Etf> => t as Record<string, Etf>;

beforeAll(async () => {
  const dir = await mkdtemp(join(tmpdir(), 'hexrepo-mix-tasks-'));
  const state = new FsStore(join(dir, 'state'));
  const tokens = await TokenStore.open(state);
  const oauth = await OAuthStore.open(state);
  const open = async (name: string): Promise<RepoService> => (await RepoService.open({ store: new CachedStore(new FsStore(join(dir, name))), repository: name, privateKey: key })).service;
  const acme = await open('acme');
  const pub = await open('pub');
  await tokens.addUser({ username: 'alice', password: 'alice-password-1', grants: [{ repository: 'acme', scopes: ['read', 'write'], packages: [] }] });
  await tokens.addUser({ username: 'bob', password: 'bob-password-123', grants: [{ repository: 'acme', scopes: ['read', 'write'], packages: [] }] });
  ci = (await tokens.create({ label: 'ci', grants: [{ repository: '*', scopes: ['read', 'write'], packages: [] }] })).token;
  // No root repository: `/api/…` outside `/api/repos/NAME` is answered by the host itself.
  server = await listen(
    createHostHandler({
      repositories: [
        { name: 'acme', store: acme.store, service: acme, visibility: 'private' },
        { name: 'pub', store: pub.store, service: pub, visibility: 'public' },
      ],
      access: new Access({ visibility: 'private', users: [], tokens, oauth, maxFailures: 1000 }),
    }),
    { host: '127.0.0.1', port: 0 },
  );
  const published = await fetch(`${server.url}/api/repos/acme/packages/alpha/releases`, {
    method: 'POST',
    headers: { authorization: ALICE, accept: ETF, 'content-type': 'application/octet-stream', 'user-agent': UA },
    body: tarball('alpha', '1.0.0'),
  });
  expect(published.status).toBe(201);
});

afterAll(async () => {
  await server?.close();
});

describe('mix hex.user auth (Hex 2.0–2.3: keys) and mix hex.user whoami', () => {
  let writeKey: string;
  it('makes the three keys generate_all_user_keys asks for, each answered 201 with body["secret"]', async () => {
    // Basic user:password, then the new write key for the other two (lib/mix/tasks/hex.ex).
    const write = await call('POST', '/api/repos/acme/keys', { auth: ALICE, body: { name: 'laptop-api', permissions: [{ domain: 'api' }] }, label: 'key' });
    expect(write.status).toBe(201);
    writeKey = String(asMap(write.term).secret);
    const read = await call('POST', '/api/repos/acme/keys', { auth: writeKey, body: { name: 'laptop-api-read', permissions: [{ domain: 'api', resource: 'read' }] } });
    const repos = await call('POST', '/api/repos/acme/keys', { auth: writeKey, body: { name: 'laptop-repositories', permissions: [{ domain: 'repositories' }] } });
    expect([read.status, typeof asMap(read.term).secret, repos.status, typeof asMap(repos.term).secret]).toEqual([201, 'string', 201, 'string']);
  });

  it('a second mix hex.user auth (deauth leaves the keys on the server) gets the same names with hex.pm’s -N suffix, 201 each', async () => {
    const again = await call('POST', '/api/repos/acme/keys', { auth: ALICE, body: { name: 'laptop-api', permissions: [{ domain: 'api' }] }, label: 'key' });
    expect([again.status, asMap(again.term).name]).toEqual([201, 'laptop-api-2']);
    const next = String(asMap(again.term).secret);
    const read = await call('POST', '/api/repos/acme/keys', { auth: next, body: { name: 'laptop-api-read', permissions: [{ domain: 'api', resource: 'read' }] } });
    expect([read.status, asMap(read.term).name]).toEqual([201, 'laptop-api-read-2']);
    const third = await call('POST', '/api/repos/acme/keys', { auth: next, body: { name: 'laptop-api', permissions: [{ domain: 'api' }] } });
    expect([third.status, asMap(third.term).name]).toEqual([201, 'laptop-api-3']);
    // The key list (hex.user key --list) shows them apart; each is revoked by its own name.
    const names = ((await call('GET', '/api/repos/acme/keys', { auth: next })).term as Record<string, Etf>[]).map((k) => k.name);
    expect(names.filter((n) => String(n).startsWith('laptop-api'))).toEqual(['laptop-api', 'laptop-api-read', 'laptop-api-2', 'laptop-api-read-2', 'laptop-api-3']);
    for (const name of ['laptop-api-read-2', 'laptop-api-3']) expect((await call('DELETE', `/api/repos/acme/keys/${name}`, { auth: next })).status).toBe(200);
  });

  it('whoami prints body["username"]: the user the key belongs to, not the key’s name', async () => {
    const me = await call('GET', '/api/repos/acme/users/me', { auth: writeKey, label: 'users/me' });
    expect(me.status).toBe(200);
    expect(asMap(me.term)).toMatchObject({ username: 'alice', organizations: [] });
    // hex.owner packages with the same key.
    expect((asMap(me.term).packages as Record<string, Etf>[]).map((p) => p.name)).toEqual(['alpha']);
    // A token of no user has no user: its label is all there is.
    expect(asMap((await call('GET', '/api/repos/acme/users/me', { auth: ci })).term).username).toBe('ci');
  });

  it('Hex ≥ 2.4: an OAuth token exchanged from the key answers whoami and hex.owner packages as its user', async () => {
    // hex_api_oauth:client_credentials, the read token's scopes as Mix asks for them.
    const grant = await call('POST', '/api/repos/acme/oauth/token', { body: { grant_type: 'client_credentials', client_id: '78ea6566-89fd-481e-a1d6-7d9d78eacca8', client_secret: writeKey, scope: 'api:read repositories' } });
    expect(grant.status).toBe(200);
    const bearer = `Bearer ${String(asMap(grant.term).access_token)}`;
    const me = asMap((await call('GET', '/api/repos/acme/users/me', { auth: bearer })).term);
    expect(me.username).toBe('alice');
    expect((me.packages as Record<string, Etf>[]).map((p) => p.name)).toEqual(['alpha']);
  });
});

describe('Hex ≥ 2.4 (logged in through OAuth): mix hex.publish of a new package, then mix hex.owner', () => {
  /** Mix's two tokens (lib/mix/tasks/hex.ex, exchange_and_store_tokens): write is api:write, read is api:read repositories. */
  const oauthToken = async (apiKey: string, scope: string): Promise<string> => {
    const grant = await call('POST', '/api/repos/acme/oauth/token', { body: { grant_type: 'client_credentials', client_id: '78ea6566-89fd-481e-a1d6-7d9d78eacca8', client_secret: apiKey, scope } });
    expect(grant.status).toBe(200);
    return `Bearer ${String(asMap(grant.term).access_token)}`;
  };
  let write: string;
  let read: string;
  beforeAll(async () => {
    const k = await call('POST', '/api/repos/acme/keys', { auth: ALICE, body: { name: 'desk-api', permissions: [{ domain: 'api' }] } });
    write = await oauthToken(String(asMap(k.term).secret), 'api:write');
    read = await oauthToken(String(asMap(k.term).secret), 'api:read repositories');
  });

  it('the user who publishes a new package with the write token becomes its full owner, and hex.owner packages lists it', async () => {
    const res = await fetch(`${server.url}/api/repos/acme/packages/omega/releases`, {
      method: 'POST',
      headers: { authorization: write, accept: ETF, 'content-type': 'application/octet-stream', 'user-agent': UA },
      body: tarball('omega', '1.0.0'),
    });
    expect(res.status).toBe(201);
    const owners = await call('GET', '/api/repos/acme/packages/omega/owners', { auth: read });
    expect((owners.term as Record<string, Etf>[]).map((o) => [o.email, o.level])).toEqual([['alice', 'full']]);
    const me = asMap((await call('GET', '/api/repos/acme/users/me', { auth: read })).term);
    expect((me.packages as Record<string, Etf>[]).map((p) => p.name)).toEqual(['alpha', 'omega']);
  });

  it('hex.owner add, transfer and remove with the write token of a full owner succeed (2xx); the read token may not', async () => {
    expect((await call('PUT', '/api/repos/acme/packages/alpha/owners/bob', { auth: read, body: { level: 'maintainer', transfer: false }, label: 'error' })).status).toBe(403);
    expect((await call('PUT', '/api/repos/acme/packages/alpha/owners/bob', { auth: write, body: { level: 'maintainer', transfer: false } })).status).toBe(204);
    expect((await call('DELETE', '/api/repos/acme/packages/alpha/owners/bob', { auth: write })).status).toBe(204);
    expect((await call('PUT', '/api/repos/acme/packages/omega/owners/bob', { auth: write, body: { level: 'full', transfer: true } })).status).toBe(204);
    const owners = await call('GET', '/api/repos/acme/packages/omega/owners', { auth: read });
    expect((owners.term as Record<string, Etf>[]).map((o) => [o.email, o.level])).toEqual([['bob', 'full']]);
    // alice is no owner of omega any more: her token can no longer change its owners.
    expect((await call('PUT', '/api/repos/acme/packages/omega/owners/alice', { auth: write, body: { level: 'full', transfer: false } })).status).toBe(403);
  });

  it('hex.organization auth NAME (POST /keys) with the write token: 403, and the message Mix prints says why and what to use', async () => {
    const res = await call('POST', '/api/repos/acme/keys', { auth: write, body: { name: 'laptop-repository-acme', permissions: [{ domain: 'repository', resource: 'acme' }] }, label: 'error' });
    expect(res.status).toBe(403);
    expect(String(asMap(res.term).message)).toMatch(/OAuth token cannot create or revoke API keys.*password/);
    expect((await call('DELETE', '/api/repos/acme/keys/desk-api', { auth: write })).status).toBe(403);
  });
});

describe('mix hex.organization: hexrepo has no organizations', () => {
  // hex_core's hex_api_key under an organization: {api}/orgs/ORG/keys (key generate, list, revoke).
  const calls: [string, string][] = [
    ['POST', '/api/orgs/acme/keys'],
    ['GET', '/api/orgs/acme/keys'],
    ['DELETE', '/api/orgs/acme/keys'],
    ['DELETE', '/api/orgs/acme/keys/laptop'],
    ['POST', '/api/repos/acme/orgs/acme/keys'],
    ['GET', '/api/repos/pub/orgs/acme/keys'],
  ];
  it('key generate/list/revoke get a 404 whose message (printed by Mix) says so and what to use instead', async () => {
    for (const [method, path] of calls) {
      const res = await call(method, path, { auth: ALICE, ...(method === 'POST' ? { body: { name: 'k', permissions: [{ domain: 'repository', resource: 'acme' }] } } : {}), label: 'error' });
      expect(res.status, `${method} ${path}`).toBe(404);
      expect(asMap(res.term).status).toBe(404);
      expect(String(asMap(res.term).message), `${method} ${path}`).toMatch(/no organizations.*repository:NAME/);
    }
  });

  it('organization auth ORG asks POST /keys for repository:ORG: a repository of the host works, another is refused with a message', async () => {
    const ok = await call('POST', '/api/repos/acme/keys', { auth: ALICE, body: { name: 'laptop-repository-acme', permissions: [{ domain: 'repository', resource: 'acme' }] } });
    expect([ok.status, typeof asMap(ok.term).secret]).toEqual([201, 'string']);
    const other = await call('POST', '/api/repos/acme/keys', { auth: ALICE, body: { name: 'laptop-repository-elsewhere', permissions: [{ domain: 'repository', resource: 'elsewhere' }] }, label: 'error' });
    expect(other.status).toBe(403);
    expect(typeof asMap(other.term).message).toBe('string');
  });
});

const unavailable = erlangUnavailable();
describe.skipIf(unavailable)("the answers through Erlang's binary_to_term(_, [safe])", () => {
  it('decode, with the keys the tasks read', () => {
    const checks = bodies.map(({ label, body }) => {
      const check =
        label === 'error'
          ? `#{<<"status">> := S, <<"message">> := M} = T, true = is_integer(S) andalso is_binary(M)`
          : label === 'key'
            ? `#{<<"secret">> := Sec} = T, true = is_binary(Sec)`
            : `#{<<"username">> := <<"alice">>, <<"organizations">> := [], <<"packages">> := [#{<<"name">> := <<"alpha">>, <<"repository">> := <<"acme">>, <<"html_url">> := H}]} = T, true = is_binary(H)`;
      return `fun() -> T = binary_to_term(${erlBinary(body)}, [safe]), ${check}, <<${JSON.stringify(label)}>> end()`;
    });
    expect(bodies.length).toBe(12);
    const out = runErlang(`[${checks.join(',\n')}]`);
    for (const label of ['error', 'key', 'users/me']) expect(out).toContain(`<<"${label}">>`);
  });
});
