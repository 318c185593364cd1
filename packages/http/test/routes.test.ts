import { describe, expect, it } from 'vitest';
import { routeRepository } from '../src/index.js';

describe('routeRepository: a whitelist of repository resources', () => {
  it.each([
    ['/names', 'names', 'names'],
    ['/versions', 'versions', 'versions'],
    ['/public_key', 'public_key', 'public_key'],
    ['/packages/foo', 'package', 'packages/foo'],
    ['/tarballs/foo-0.1.0.tar', 'tarball', 'tarballs/foo-0.1.0.tar'],
    ['/tarballs/pre-1.0.0-rc.1.tar', 'tarball', 'tarballs/pre-1.0.0-rc.1.tar'],
    ['/tarballs/unicode_pkg-0.1.0.tar?x=1', 'tarball', 'tarballs/unicode_pkg-0.1.0.tar'],
    ['/docs/foo-0.1.0.tar.gz', 'docs', 'docs/foo-0.1.0.tar.gz'],
  ])('%s → %s', (path, kind, key) => {
    const r = routeRepository(path);
    expect(r).toMatchObject({ ok: true, resource: { kind, key } });
  });

  it.each(['/private_key.pem', '/.hexrepo/tokens.json', '/tarballs/.tmp-abc-foo-0.1.0.tar', '/packages/Foo', '/packages/foo/bar', '/packages/', '/tarballs/foo.tar', '/tarballs/foo-1.0.tar', '/tarballs/foo-1.0.0+build.tar', '/', '/names/'])(
    'refuses %s with 404',
    (path) => {
      expect(routeRepository(path)).toMatchObject({ ok: false, status: 404 });
    },
  );

  it.each([
    '/../private_key.pem',
    '/packages/../../etc/passwd',
    '/packages/./foo',
    '/%2e%2e/private_key.pem',
    '/%252e%252e/private_key.pem',
    '/packages%2ffoo',
    '/packages%2Ffoo',
    '/tarballs/foo-0.1.0.tar%00',
    '/packages/%E0%A4%A',
    '/packages\\foo',
    'names',
  ])('refuses %s with 400', (path) => {
    expect(routeRepository(path)).toMatchObject({ ok: false, status: 400 });
  });
});
