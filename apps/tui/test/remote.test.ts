/**
 * The TUI's remote source against a real repository server in-process (what `hexrepo serve`
 * runs), on 127.0.0.1 port 0: reads through the signed registry, writes through the publish API,
 * and refusals with the same codes the CLI gives.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Access, createRepositoryHandler, listen, type RunningServer } from '@hexrepo/http';
import { createProject, openRepository, type OpenRepository } from '@hexrepo/repo';
import { FsStore } from '@hexrepo/storage';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openRemoteSource } from '../src/index.js';

const FIXTURES = new URL('../../../test-fixtures/tarballs/', import.meta.url).pathname;
const ADMIN = { username: 'admin', password: 'correct horse battery' };
const token = `Basic ${Buffer.from(`${ADMIN.username}:${ADMIN.password}`).toString('base64')}`;

let dir: string;
let server: RunningServer;
let opened: OpenRepository;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hexrepo-tui-remote-'));
  const { publicDir, privateKey } = await createProject(dir, 'acme');
  const store = new FsStore(publicDir);
  opened = await openRepository({ store, repository: 'acme', privateKey });
  await opened.service!.publish(await readFile(join(FIXTURES, 'foo-0.1.0.tar')));
  const access = new Access({ visibility: 'private', users: [ADMIN] });
  server = await listen(createRepositoryHandler({ store, access, repository: 'acme', service: opened.service! }), { host: '127.0.0.1', port: 0 });
});

afterAll(async () => {
  await server?.close(1_000);
  await opened?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('openRemoteSource', () => {
  it('lists, reads and publishes with a token', async () => {
    const source = await openRemoteSource({ url: `${server.url}/api`, token });
    expect(source.info).toMatchObject({ kind: 'remote', repository: 'acme', location: server.url });
    expect(source.info.readOnly).toBeUndefined();
    expect(await source.listPackages()).toEqual([{ name: 'foo', latest: '0.1.0', releases: 1, retired: 0, latestRetired: false, advisories: 0 }]);
    expect((await source.releases('foo')).map((r) => r.version)).toEqual(['0.1.0']);
    expect(await source.metadata('foo', '0.1.0')).toMatchObject({ buildTools: expect.any(Array) });
    expect(await source.publish(await readFile(join(FIXTURES, 'bar-1.0.0.tar')))).toMatchObject({ created: true, name: 'bar', version: '1.0.0' });
    await source.retire('foo', '0.1.0', { reason: 'deprecated' });
    expect((await source.listPackages()).find((p) => p.name === 'foo')).toMatchObject({ retired: 1, latestRetired: true });
    await source.unretire('foo', '0.1.0');
  });

  it('a refused token is AUTH_INVALID (as in the CLI), not a usage error', async () => {
    await expect(openRemoteSource({ url: server.url, token: 'wrong' })).rejects.toMatchObject({ code: 'AUTH_INVALID', details: { status: 401 } });
  });

  it('refuses a reason that is not one of the five, even one every object has ("toString")', async () => {
    const source = await openRemoteSource({ url: server.url, token });
    await expect(source.retire('foo', '0.1.0', { reason: 'toString' as 'other' })).rejects.toMatchObject({ code: 'USAGE' });
    expect((await source.releases('foo'))[0]!.retired).toBeUndefined();
  });
});
