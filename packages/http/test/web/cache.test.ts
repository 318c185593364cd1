/**
 * "Responses cached with ETags": the search answers (JSON and ETF) and the package JSON carry a
 * strong ETag and answer 304 to it; Cache-Control says whether the answer may be kept (a public
 * repository's, revalidated) or must not be (a private one's, and any page a session sees).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ETF_CONTENT_TYPE } from '../../src/etf.js';
import { raw } from '../helpers.js';
import { PASSWORD, startWebHost, type WebHost } from './fixture.js';

let host: WebHost;
beforeAll(async () => {
  host = await startWebHost();
});
afterAll(async () => {
  await host?.close();
});

const get = (path: string, headers: Record<string, string> = {}) => raw(host.server.url, path, { headers });
const basic = (user: string): string => `Basic ${Buffer.from(`${user}:${PASSWORD}`).toString('base64')}`;

/** A 200 with an ETag, then a 304 without a body for that ETag; returns the ETag. */
async function revalidates(path: string, headers: Record<string, string>): Promise<string> {
  const first = await get(path, headers);
  expect(first.status, first.body.toString()).toBe(200);
  const etag = String(first.headers.etag);
  expect(etag).toMatch(/^"[\w-]{27}"$/);
  const again = await get(path, { ...headers, 'if-none-match': etag });
  expect(again.status).toBe(304);
  expect(again.body.length).toBe(0);
  expect(again.headers.etag).toBe(etag);
  expect((await get(path, { ...headers, 'if-none-match': '"other"' })).status).toBe(200);
  return etag;
}

describe('API answers with ETags', () => {
  it('search, in JSON and in ETF: each its own ETag, 304 when unchanged, kept by caches as public data', async () => {
    const json = await revalidates('/api/packages?search=widget', { accept: 'application/json' });
    const etf = await revalidates('/api/packages?search=widget', { accept: ETF_CONTENT_TYPE });
    expect(etf).not.toBe(json);
    const res = await get('/api/packages?search=widget', { accept: 'application/json' });
    expect(res.headers['cache-control']).toBe('public, no-cache');
    expect(res.headers.vary).toBe('accept');
  });

  it('the package JSON: 304 while unchanged, a new ETag once it changes', async () => {
    const before = await revalidates('/api/packages/gadget', { accept: 'application/json' });
    await host.acme.retire('gadget', '0.1.0', { reason: 'deprecated', message: 'use widget' });
    const after = await get('/api/packages/gadget', { accept: 'application/json', 'if-none-match': before });
    expect(after.status).toBe(200);
    expect(String(after.headers.etag)).not.toBe(before);
    expect(after.body.toString()).toContain('use widget');
  });

  it("a private repository's answers: 304 for the same credential, never stored, varying by credential", async () => {
    const headers = { accept: 'application/json', authorization: basic('alice') };
    await revalidates('/api/repos/internal/packages', headers);
    await revalidates('/api/repos/internal/packages/team_secret', headers);
    const res = await get('/api/repos/internal/packages', headers);
    expect(res.headers['cache-control']).toBe('private, no-store');
    expect(res.headers.vary).toBe('accept, authorization');
    // carol sees only ops_*: another answer, another ETag.
    const carol = await get('/api/repos/internal/packages', { accept: 'application/json', authorization: basic('carol'), 'if-none-match': String(res.headers.etag) });
    expect(carol.status).toBe(200);
    expect(carol.body.toString()).not.toContain('team_secret');
  });
});

describe('pages', () => {
  it('a page a logged-in viewer sees is never stored; an anonymous one is revalidated', async () => {
    expect((await get('/-/', { accept: 'text/html' })).headers['cache-control']).toBe('private, no-cache');
    const signedIn = await get('/-/', { accept: 'text/html', authorization: basic('alice') });
    expect(signedIn.status).toBe(200);
    expect(signedIn.body.toString()).toContain('team_secret');
    expect(signedIn.headers['cache-control']).toBe('private, no-store');
    expect((await get('/-/packages/internal/team_secret', { authorization: basic('alice') })).headers['cache-control']).toBe('private, no-store');
  });
});
