/**
 * What anonymous callers can make the OAuth endpoints keep: device authorizations need no
 * credentials, and each one is a record in the host's state store that every server re-reads, so
 * both their number and their size are bounded. A real server on loopback, a real state store in a
 * temp dir, an injected clock.
 */
import { mkdtemp, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OAuthStore, OAUTH_KEY, TokenStore } from '@hexrepo/repo';
import { FsStore, type StoredObject } from '@hexrepo/storage';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Access, createHostHandler, listen, type RunningServer } from '../src/index.js';

let clock = Date.parse('2026-06-01T12:00:00Z');
const now = (): number => clock;
let root: string;
let server: RunningServer;
let tokens: TokenStore;
let oauth: OAuthStore;
let state: CountingFsStore;

/** The real folder store, counting full reads of the OAuth state (what every server pays per request that reaches it). */
class CountingFsStore extends FsStore {
  oauthReads = 0;
  override async get(key: string): Promise<StoredObject | null> {
    if (key === OAUTH_KEY) this.oauthReads++;
    return super.get(key);
  }
}

const startDevice = (body: Record<string, string>): Promise<Response> =>
  fetch(`${server.url}/api/oauth/device_authorization`, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json' }, body: JSON.stringify(body) });

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'hexrepo-oauth-limits-'));
  state = new CountingFsStore(join(root, 'state'));
  tokens = await TokenStore.open(state, { now });
  oauth = await OAuthStore.open(state, { now, maxDevices: 5, maxSessionsPerSubject: 3 });
  server = await listen(createHostHandler({ repositories: [], access: new Access({ visibility: 'private', users: [], tokens, oauth, now }) }), { host: '127.0.0.1', port: 0 });
});

afterAll(async () => {
  await server?.close();
});

describe('device authorizations from anonymous callers', () => {
  it('are capped: past the limit a new one is refused (503, retry-after) until the old ones expire', async () => {
    for (let i = 0; i < 5; i++) expect((await startDevice({ client_id: 'cli', scope: 'api' })).status).toBe(200);
    const refused = await startDevice({ client_id: 'cli', scope: 'api' });
    expect(refused.status).toBe(503);
    expect(((await refused.json()) as { error: string }).error).toBe('temporarily_unavailable');
    const retryAfter = Number(refused.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThan(0);
    // Expired codes are kept a while (a late poll hears expired_token), then pruned: room again.
    clock += retryAfter * 1000;
    expect((await startDevice({ client_id: 'cli', scope: 'api' })).status).toBe(200);
  });

  it('refuse a client_id or scope too long to be real, so a record stays small', async () => {
    const long = await startDevice({ client_id: 'x'.repeat(15_000) });
    expect(long.status).toBe(400);
    expect(((await long.json()) as { error: string }).error).toBe('invalid_request');
    const manyScopes = Array.from({ length: 500 }, (_, i) => `repository:r${i}`).join(' ');
    expect((await startDevice({ client_id: 'cli', scope: manyScopes })).status).toBe(400);
    expect((await stat(join(root, 'state', OAUTH_KEY))).size).toBeLessThan(10_000);
  });
});

describe('user codes on the approval page', () => {
  it('are not open to guessing: after 10 unknown codes from an address, the page refuses (429) until the window passes', async () => {
    clock += 3_600_000;
    const started = await startDevice({ client_id: 'cli', scope: 'api' });
    const code = ((await started.json()) as { user_code: string }).user_code;
    const wrong = code === 'BBBB-BBBB' ? 'CCCC-CCCC' : 'BBBB-BBBB';
    for (let i = 0; i < 10; i++) expect((await fetch(`${server.url}/oauth/device?user_code=${wrong}`)).status).toBe(404);
    const blocked = await fetch(`${server.url}/oauth/device?user_code=${code}`);
    expect(blocked.status).toBe(429);
    expect(Number(blocked.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(await blocked.text()).not.toContain(code);
    clock += 60_000;
    expect((await fetch(`${server.url}/oauth/device?user_code=${code}`)).status).toBe(200);
  });
});

describe('sessions of one API key or user', () => {
  const token = async (body: Record<string, string>): Promise<{ status: number; refresh_token?: string }> => {
    const res = await fetch(`${server.url}/api/oauth/token`, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json' }, body: JSON.stringify(body) });
    return { status: res.status, ...((await res.json()) as { refresh_token?: string }) };
  };

  it('are capped: exchanging a key again and again ends its least recently renewed sessions, not those of other keys', async () => {
    const other = (await tokens.create({ label: 'other', grants: [{ repository: '*', scopes: ['read'], packages: [] }] })).token;
    const kept = await token({ grant_type: 'client_credentials', client_id: 'cli', client_secret: other });
    const looping = (await tokens.create({ label: 'loop', grants: [{ repository: '*', scopes: ['read'], packages: [] }] })).token;
    const issued: string[] = [];
    for (let i = 0; i < 10; i++) {
      clock += 1000;
      const t = await token({ grant_type: 'client_credentials', client_id: 'cli', client_secret: looping });
      expect(t.status).toBe(200);
      issued.push(t.refresh_token!);
    }
    expect(oauth.list().length).toBe(4);
    expect((await token({ grant_type: 'refresh_token', client_id: 'cli', refresh_token: issued[0]! })).status).toBe(400);
    expect((await token({ grant_type: 'refresh_token', client_id: 'cli', refresh_token: issued[9]! })).status).toBe(200);
    expect((await token({ grant_type: 'refresh_token', client_id: 'cli', refresh_token: kept.refresh_token! })).status).toBe(200);
  });
});

describe('made-up device codes and refresh tokens', () => {
  const post = async (path: string, body: Record<string, string>): Promise<{ status: number; error?: string }> => {
    const res = await fetch(`${server.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json' }, body: JSON.stringify(body) });
    const text = await res.text();
    return { status: res.status, ...(text ? (JSON.parse(text) as { error?: string }) : {}) };
  };
  const madeUp = (prefix: string, i: number): string => `${prefix}_${String(i).padStart(10, 'z')}_${'C'.repeat(43)}`;

  it('are refused from memory once the store was looked at, without reading the whole state for each', async () => {
    clock += 3_600_000;
    expect((await startDevice({ client_id: 'cli', scope: 'api' })).status).toBe(200);
    const before = state.oauthReads;
    for (let i = 0; i < 20; i++) {
      expect(await post('/api/oauth/token', { grant_type: 'urn:ietf:params:oauth:grant-type:device_code', client_id: 'cli', device_code: madeUp('hxd', i) })).toMatchObject({ status: 400, error: 'invalid_grant' });
      expect(await post('/api/oauth/token', { grant_type: 'refresh_token', client_id: 'cli', refresh_token: madeUp('hxf', i) })).toMatchObject({ status: 400, error: 'invalid_grant' });
      expect((await post('/api/oauth/revoke', { token: madeUp('hxa', i) })).status).toBe(200);
    }
    expect(state.oauthReads - before).toBe(0);
    // What another server issued a moment ago is still found (the store is looked at once).
    const other = await OAuthStore.open(new FsStore(join(root, 'state')), { now });
    const key = (await tokens.create({ label: 'elsewhere', grants: [{ repository: '*', scopes: ['read'], packages: [] }] })).info.id;
    const issued = await other.issue({ clientId: 'cli', name: '', subject: { kind: 'key', id: key }, scopes: [], repository: null });
    expect((await post('/api/oauth/token', { grant_type: 'refresh_token', client_id: 'cli', refresh_token: issued.refreshToken })).status).toBe(200);
  });
});
