import { copyFile, cp } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { fingerprint, generateKeyPair, loadPrivateKey } from '@hexrepo/registry';
import { buildRegistry } from '@hexrepo/repo';
import { FsStore } from '@hexrepo/storage';
import { httpFiles, SignedReader } from '../src/index.js';
import { ADMIN, basic, goldenPublic, KEY, refusal, serveRepository, tempDir } from './helpers.js';

/** The same tarballs built as another repository, with `key`: what a wrong origin serves. */
async function otherRepository(name: string, key = KEY): Promise<string> {
  const pub = join(await tempDir(), 'public');
  await cp(join(await goldenPublic(), 'tarballs'), join(pub, 'tarballs'), { recursive: true });
  await buildRegistry({ store: new FsStore(pub), repository: name, privateKey: key });
  return pub;
}

describe('SignedReader over HTTP', () => {
  it('reads names, versions and packages/NAME as signed, with the repository name from names', async () => {
    const { url } = await serveRepository({ visibility: 'public' });
    const reader = await SignedReader.open(httpFiles({ url }), { location: url });
    expect(reader.repository).toBe('acme');
    expect(fingerprint(reader.publicKey)).toBe(fingerprint(KEY));
    const packages = await reader.packages();
    expect(packages.find((p) => p.name === 'foo')).toEqual({ name: 'foo', versions: ['0.1.0', '0.2.0'], retired: [], withAdvisories: [] });
    expect(await reader.names()).toEqual(packages.map((p) => p.name));
    const releases = await reader.releases('foo');
    expect(releases.map((r) => r.version)).toEqual(['0.1.0', '0.2.0']);
    expect(releases[0]!.checksum).toMatch(/^[0-9a-f]{64}$/);
  });

  it('sends the token on reads of a private repository; without it, AUTH_INVALID', async () => {
    const { url } = await serveRepository({ users: [ADMIN] });
    expect((await SignedReader.open(httpFiles({ url, token: basic(ADMIN) }), { location: url })).repository).toBe('acme');
    expect(await refusal(SignedReader.open(httpFiles({ url }), { location: url }))).toMatchObject({ code: 'AUTH_INVALID', details: { status: 401 } });
  });

  it('refuses a server whose names is signed for another repository than the one expected (origin)', async () => {
    const { url } = await serveRepository({ visibility: 'public' });
    const err = await refusal(SignedReader.open(httpFiles({ url }), { location: url, repository: 'beta' }));
    expect(err).toMatchObject({ code: 'REGISTRY_BAD_REPO_NAME' });
    expect(err.message).toContain('"acme", not "beta"');
  });

  it('refuses packages/NAME signed by the right key but for another repository (origin)', async () => {
    const { url, publicDir } = await serveRepository({ visibility: 'public' });
    // After the server's opening build, which would re-sign it.
    await copyFile(join(await otherRepository('beta'), 'packages/foo'), join(publicDir, 'packages/foo'));
    const reader = await SignedReader.open(httpFiles({ url }), { location: url, repository: 'acme' });
    expect(await refusal(reader.releases('foo'))).toMatchObject({ code: 'REGISTRY_BAD_REPO_NAME' });
    expect((await reader.releases('bar')).length).toBe(1);
  });

  it('refuses registry files that the expected key did not sign', async () => {
    const other = loadPrivateKey((await generateKeyPair()).privateKeyPem);
    const { url, publicDir } = await serveRepository({ visibility: 'public' });
    // versions replaced by one signed with another key, for the same repository name.
    await copyFile(join(await otherRepository('acme', other), 'versions'), join(publicDir, 'versions'));
    const reader = await SignedReader.open(httpFiles({ url }), { location: url });
    expect(await refusal(reader.packages())).toMatchObject({ code: 'REGISTRY_BAD_SIGNATURE' });
    // A key the caller pinned wins over the one the server serves.
    expect(await refusal(SignedReader.open(httpFiles({ url }), { location: url, publicKey: other }))).toMatchObject({ code: 'REGISTRY_BAD_SIGNATURE' });
  });

  it('says what is missing: public_key, names', async () => {
    const { url } = await serveRepository({ visibility: 'public' });
    const files = httpFiles({ url });
    const noKey = await refusal(SignedReader.open(async (path) => (path === 'public_key' ? null : files(path)), { location: url }));
    expect(noKey).toMatchObject({ code: 'REGISTRY_MISSING', message: `${url}/public_key is missing` });
    const noNames = await refusal(SignedReader.open(async (path) => (path === 'names' ? null : files(path)), { location: url }));
    expect(noNames).toMatchObject({ code: 'REGISTRY_MISSING', message: `${url}/names is missing` });
  });
});
