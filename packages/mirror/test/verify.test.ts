import { generateKeyPair, loadPublicKey, publicKeyPem } from '@hexrepo/registry';
import { isHexrepoError } from '@hexrepo/core';
import { beforeAll, describe, expect, it } from 'vitest';
import { HEXPM_PUBLIC_KEY, metaKey, parseMeta, parseMirrorPath, resolveUpstream, sha256Hex, verifyNames, verifyPackage, verifyTarball, verifyVersions } from '../src/index.js';
import { buildUpstream, bytes, FIXTURE_SUMS, type TestUpstream } from './helpers.js';

let up: TestUpstream;
let otherKey: ReturnType<typeof loadPublicKey>;
let acme: TestUpstream;

beforeAll(async () => {
  up = await buildUpstream();
  otherKey = loadPublicKey(publicKeyPem((await generateKeyPair()).privateKey));
  acme = await buildUpstream({ repository: 'acme', privateKey: up.privateKey });
});

function refusal(fn: () => unknown): { code: string; message: string } {
  try {
    fn();
  } catch (err) {
    if (isHexrepoError(err)) return { code: err.code, message: err.message };
    throw err;
  }
  throw new Error('expected a refusal');
}

describe('verify', () => {
  it('accepts the upstream registry files and decodes them', async () => {
    const names = verifyNames(await bytes(up.store, 'names'), up.publicKey, 'hexpm');
    expect(names.packages.map((p) => p.name)).toContain('foo');
    const versions = verifyVersions(await bytes(up.store, 'versions'), up.publicKey, 'hexpm');
    expect(versions.packages.find((p) => p.name === 'foo')?.versions).toEqual(['0.1.0', '0.2.0']);
    const foo = verifyPackage(await bytes(up.store, 'packages/foo'), up.publicKey, 'hexpm', 'foo');
    expect(foo.releases.map((r) => [r.version, r.checksum])).toEqual([
      ['0.1.0', FIXTURE_SUMS.get('foo-0.1.0.tar')],
      ['0.2.0', FIXTURE_SUMS.get('foo-0.2.0.tar')],
    ]);
  });

  it('refuses a file signed by another key', async () => {
    for (const [what, fn] of [
      ['names', async () => verifyNames(await bytes(up.store, 'names'), otherKey, 'hexpm')],
      ['versions', async () => verifyVersions(await bytes(up.store, 'versions'), otherKey, 'hexpm')],
      ['packages/foo', async () => verifyPackage(await bytes(up.store, 'packages/foo'), otherKey, 'hexpm', 'foo')],
    ] as const) {
      const err = await fn().then(
        () => null,
        (e: unknown) => e,
      );
      expect(isHexrepoError(err, 'REGISTRY_BAD_SIGNATURE'), what).toBe(true);
      expect((err as Error).message).toContain(`upstream ${what} of repository "hexpm" refused`);
    }
  });

  it('refuses a file signed for another repository name, with the right key', async () => {
    const names = await bytes(acme.store, 'names');
    expect(refusal(() => verifyNames(names, up.publicKey, 'hexpm'))).toMatchObject({ code: 'REGISTRY_BAD_REPO_NAME' });
    const versions = await bytes(acme.store, 'versions');
    expect(refusal(() => verifyVersions(versions, up.publicKey, 'hexpm')).code).toBe('REGISTRY_BAD_REPO_NAME');
    expect(refusal(() => verifyVersions(new Uint8Array([1, 2, 3]), up.publicKey, 'hexpm')).code).toBe('REGISTRY_CORRUPT');
    const pkg = await bytes(acme.store, 'packages/foo');
    expect(refusal(() => verifyPackage(pkg, up.publicKey, 'hexpm', 'foo')).code).toBe('REGISTRY_BAD_REPO_NAME');
  });

  it('refuses packages/NAME served under another package name', async () => {
    const bar = await bytes(up.store, 'packages/bar');
    const r = refusal(() => verifyPackage(bar, up.publicKey, 'hexpm', 'foo'));
    expect(r.code).toBe('REGISTRY_BAD_PACKAGE_NAME');
    expect(r.message).toContain('"bar"');
  });

  it('refuses a tampered tarball and accepts the real one', async () => {
    const tar = await bytes(up.store, 'tarballs/foo-0.1.0.tar');
    const sum = FIXTURE_SUMS.get('foo-0.1.0.tar')!;
    expect(() => verifyTarball(tar, sum.toUpperCase())).not.toThrow();
    const tampered = tar.slice();
    tampered[tampered.length - 10] = tampered[tampered.length - 10]! ^ 1;
    const r = refusal(() => verifyTarball(tampered, sum));
    expect(r.code).toBe('REGISTRY_CHECKSUM_MISMATCH');
    expect(r.message).toContain(sum);
  });
});

describe('layout', () => {
  it('defaults to hex.pm with its built-in key', () => {
    const u = resolveUpstream();
    expect(u).toMatchObject({ url: 'https://repo.hex.pm', repository: 'hexpm', publicKeyPem: HEXPM_PUBLIC_KEY });
    expect(u.publicKey.asymmetricKeyDetails?.modulusLength).toBe(2048);
    expect(refusal(() => resolveUpstream({ url: 'http://127.0.0.1:1' })).code).toBe('CONFIG_INVALID');
    expect(refusal(() => resolveUpstream({ url: 'ftp://x' })).code).toBe('CONFIG_INVALID');
    expect(resolveUpstream({ url: 'http://127.0.0.1:1/', publicKey: up.publicKeyPem }).url).toBe('http://127.0.0.1:1');
  });

  it('classifies upstream paths', () => {
    expect(parseMirrorPath('tarballs/foo-1.0.0-rc.1.tar')).toEqual({ kind: 'tarball', path: 'tarballs/foo-1.0.0-rc.1.tar', name: 'foo', version: '1.0.0-rc.1' });
    expect(parseMirrorPath('docs/my_pkg-0.1.0.tar.gz')).toMatchObject({ kind: 'docs', name: 'my_pkg', version: '0.1.0' });
    expect(parseMirrorPath('packages/foo')).toMatchObject({ kind: 'package', name: 'foo' });
    expect(parseMirrorPath('installs/hex-1.x.csv')?.kind).toBe('installs');
    for (const bad of ['packages/../x', 'tarballs/foo.tar', 'repos/acme/names', '_hexrepo/mirror/meta/names.json', 'packages/Foo']) expect(parseMirrorPath(bad), bad).toBeNull();
  });

  it('parses meta files and refuses malformed ones', () => {
    const sha256 = sha256Hex(new Uint8Array([1]));
    const ok = new TextEncoder().encode(JSON.stringify({ etag: '"x"', fetchedAt: 5, sha256 }));
    expect(parseMeta(ok)).toEqual({ etag: '"x"', fetchedAt: 5, sha256 });
    expect(parseMeta(new TextEncoder().encode('{"etag":null,"fetchedAt":"5"}'))).toBeNull();
    expect(parseMeta(new TextEncoder().encode('nope'))).toBeNull();
    expect(metaKey('packages/foo')).toBe('_hexrepo/mirror/meta/packages/foo.json');
  });
});
