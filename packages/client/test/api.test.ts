import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { listen } from '@hexrepo/http';
import { ApiClient } from '../src/index.js';
import { ADMIN, basic, FIXTURES, refusal, serveRepository } from './helpers.js';

const tarball = (file: string): Promise<Buffer> => readFile(join(FIXTURES, 'tarballs', file));

describe('ApiClient against a running repository server', () => {
  it('publishes, reads metadata, retires, unretires and reverts', async () => {
    const { url } = await serveRepository({ users: [ADMIN] });
    const api = new ApiClient({ url: `${url}/api/`, token: basic(ADMIN) });
    expect(api.api).toBe(`${url}/api`);
    await api.revert('foo', '0.2.0');
    const published = await api.publish(await tarball('foo-0.2.0.tar'));
    expect(published).toMatchObject({ created: true, name: 'foo', version: '0.2.0' });
    expect(published.checksum).toMatch(/^[0-9a-f]{64}$/);
    expect(await api.publish(await tarball('foo-0.2.0.tar'), { replace: true })).toMatchObject({ created: false, name: 'foo' });
    await api.retire('foo', '0.1.0', { reason: 'security', message: 'CVE' });
    expect((await api.package('foo')).latest_version).toBe('0.2.0');
    expect((await api.release('foo', '0.1.0')).version).toBe('0.1.0');
    await api.unretire('foo', '0.1.0');
  });

  it('maps each refusal to its stable code: 401 AUTH_INVALID, 403 PERMISSION_DENIED, 404, 422, tagged 422', async () => {
    const server = await serveRepository({ users: [ADMIN] });
    const unknown = await refusal(new ApiClient({ url: server.url, token: 'not-a-token' }).publish(await tarball('baz-1.0.0.tar')));
    expect(unknown).toMatchObject({ code: 'AUTH_INVALID', details: { status: 401, hint: expect.stringContaining('HEXREPO_TOKEN') } });
    expect(unknown.message).toMatch(new RegExp(`^POST ${server.url}/api/publish\\?replace=false: 401 `));

    const { token } = await server.tokens.create({ label: 'reader', grants: [{ repository: 'acme', scopes: ['read'], packages: [] }] });
    const reader = await refusal(new ApiClient({ url: server.url, token }).publish(await tarball('baz-1.0.0.tar')));
    expect(reader).toMatchObject({ code: 'PERMISSION_DENIED', details: { status: 403 } });

    const api = new ApiClient({ url: server.url, token: basic(ADMIN) });
    expect(await refusal(api.release('foo', '9.9.9'))).toMatchObject({ code: 'NOT_FOUND', details: { status: 404 } });
    expect(await refusal(api.publish(await tarball('foo-0.1.0.tar')))).toMatchObject({ code: 'ALREADY_EXISTS', details: { status: 422 } });
    // The server's own code travels in errors.tar as "[CODE] …".
    const garbage = await refusal(api.publish(new TextEncoder().encode('not a tarball')));
    expect(garbage.code).toMatch(/^TAR_/);
    expect(garbage.details.status).toBe(422);
  });

  it('refuses an unknown retirement reason before sending anything', async () => {
    const server = await serveRepository({ users: [ADMIN] });
    const api = new ApiClient({ url: server.url, token: basic(ADMIN) });
    // "toString" is on every object's prototype: an `in` check would let it through.
    for (const reason of ['toString', 'bogus']) expect(await refusal(api.retire('foo', '0.1.0', { reason }))).toMatchObject({ code: 'USAGE' });
  });

  it('429 is RATE_LIMITED with the Retry-After seconds', async () => {
    const server = await serveRepository({ users: [ADMIN], maxFailures: 1 });
    const api = new ApiClient({ url: server.url, token: 'wrong' });
    await refusal(api.unretire('foo', '0.1.0'));
    const limited = await refusal(api.unretire('foo', '0.1.0'));
    expect(limited).toMatchObject({ code: 'RATE_LIMITED', details: { status: 429, retryAfterSeconds: expect.any(Number) } });
  });

  it('a store failure on the server (5xx) is SERVER_ERROR', async () => {
    const server = await serveRepository({ users: [ADMIN] });
    const api = new ApiClient({ url: server.url, token: basic(ADMIN) });
    await api.revert('baz', '1.0.0');
    // tarballs/ turned into a file: the server cannot store the upload.
    await rm(join(server.publicDir, 'tarballs'), { recursive: true });
    await writeFile(join(server.publicDir, 'tarballs'), 'not a folder');
    const failed = await refusal(api.publish(await tarball('baz-1.0.0.tar')));
    expect(failed).toMatchObject({ code: 'SERVER_ERROR', details: { status: 500 } });
  });

  it('no server listening is NETWORK_ERROR naming the cause', async () => {
    const closed = await listen((_req, res) => res.end(), { host: '127.0.0.1', port: 0 });
    await closed.close();
    const err = await refusal(new ApiClient({ url: closed.url, token: 't' }).publish(new Uint8Array(1)));
    expect(err.code).toBe('NETWORK_ERROR');
    expect(err.message).toMatch(new RegExp(`^cannot reach ${closed.url}/api: fetch failed: .*ECONNREFUSED`));
  });
});
