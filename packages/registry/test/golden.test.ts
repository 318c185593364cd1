/**
 * The golden registry made by `mix hex.registry build` (Hex 2.5.1) with a test key: every file
 * decodes and verifies, and re-encoding what was decoded reproduces each file byte for byte
 * (signature, protobuf field emission and gzip framing all identical).
 */
import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { buildNames, buildPackage, buildVersions, proto, publicKeyPem, unpackNames, unpackPackage, unpackVersions } from '../src/index.js';
import { GOLDEN, GOLDEN_PACKAGES, goldenKey, goldenPublicKey } from './helpers.js';

const read = (key: string): Uint8Array => readFileSync(`${GOLDEN}${key}`);
const opts = { publicKey: goldenPublicKey, repository: 'acme' };

describe('golden registry of mix hex.registry build', () => {
  it('public_key is the PKCS#1 PEM that publicKeyPem writes', () => {
    expect(publicKeyPem(goldenKey)).toBe(readFileSync(`${GOLDEN}public_key`, 'utf8'));
  });

  it('names decodes, verifies and re-encodes byte for byte', () => {
    const names = unpackNames(read('names'), opts);
    expect(names.packages.map((p) => p.name)).toEqual(GOLDEN_PACKAGES);
    // every tarball mtime is 2026-01-01 except foo-0.2.0.tar (2026-02-01)
    expect(names.packages.find((p) => p.name === 'foo')?.updatedAt).toEqual({ seconds: Date.UTC(2026, 1, 1) / 1000, nanos: 0 });
    expect(names.packages.find((p) => p.name === 'bar')?.updatedAt).toEqual({ seconds: Date.UTC(2026, 0, 1) / 1000, nanos: 0 });
    expect(Buffer.from(buildNames(names, goldenKey))).toEqual(Buffer.from(read('names')));
  });

  it('versions decodes, verifies and re-encodes byte for byte', () => {
    const versions = unpackVersions(read('versions'), opts);
    expect(versions.packages.find((p) => p.name === 'foo')).toEqual({ name: 'foo', versions: ['0.1.0', '0.2.0'], retired: [] });
    expect(Buffer.from(buildVersions(versions, goldenKey))).toEqual(Buffer.from(read('versions')));
  });

  it.each(GOLDEN_PACKAGES)('packages/%s decodes, verifies and re-encodes byte for byte', (name) => {
    const pkg = unpackPackage(read(`packages/${name}`), { ...opts, name });
    expect(pkg.releases.length).toBeGreaterThan(0);
    for (const r of pkg.releases) {
      expect(r.innerChecksum).toHaveLength(32);
      expect(r.outerChecksum).toHaveLength(32);
    }
    const releases = pkg.releases.map((r) => ({ ...r, outerChecksum: r.outerChecksum! }));
    expect(Buffer.from(buildPackage({ repository: 'acme', name, releases }, goldenKey))).toEqual(Buffer.from(read(`packages/${name}`)));
  });

  it('outer checksums match test-fixtures/tarballs/SHA256SUMS', () => {
    const sums = new Map(
      readFileSync(`${GOLDEN}../../tarballs/SHA256SUMS`, 'utf8')
        .trim()
        .split('\n')
        .map((l) => l.split(/\s+\*?/).reverse() as [string, string]),
    );
    for (const name of GOLDEN_PACKAGES) {
      for (const r of unpackPackage(read(`packages/${name}`), { ...opts, name }).releases) {
        expect(Buffer.from(r.outerChecksum!).toString('hex')).toBe(sums.get(`${name}-${r.version}.tar`));
      }
    }
  });

  it('mix emission: optional and app always written, repository only for another repository', () => {
    const signed = proto.signed.Signed.decode(gunzipSync(read('packages/opt')));
    const pkg = proto.pkg.Package.decode(signed.payload);
    const deps = pkg.releases.flatMap((r) => r.dependencies ?? []).filter((d) => d != null);
    expect(deps.length).toBeGreaterThan(0);
    for (const d of deps) {
      expect(Object.hasOwn(d, 'optional')).toBe(true);
      expect(Object.hasOwn(d, 'app')).toBe(true);
      if (Object.hasOwn(d, 'repository')) expect(d.repository).not.toBe('acme');
    }
  });

  it('mix emission: dependencies in byte order of package names, whatever order they come in', () => {
    const dep = (name: string) => ({ package: name, requirement: '~> 1.0', optional: false, app: name });
    const release = { name: 'p', version: '1.0.0', innerChecksum: new Uint8Array(32), outerChecksum: new Uint8Array(32), dependencies: ['ab', 'a_b', 'a1'].map(dep) };
    const pkg = unpackPackage(buildPackage({ repository: 'acme', name: 'p', releases: [release] }, goldenKey), { ...opts, name: 'p' });
    // '1' < '_' < 'b' as bytes, as Erlang orders binary map keys; a locale collation would not.
    expect(pkg.releases[0]?.dependencies.map((d) => d.package)).toEqual(['a1', 'a_b', 'ab']);
  });

  it('gzip framing is Erlang zlib:gzip/1: mtime 0, OS 3', () => {
    for (const key of ['names', 'versions', ...GOLDEN_PACKAGES.map((n) => `packages/${n}`)]) {
      expect(Buffer.from(read(key).subarray(0, 10)).toString('hex')).toBe('1f8b0800000000000003');
    }
  });
});

describe('HEX_SPEC.md §3.5 test vector', () => {
  it('encodes the names payload of bar and foo in repository acme', async () => {
    const { assembleNamesPayload, encodeNamesEntry } = await import('../src/index.js');
    const payload = assembleNamesPayload([encodeNamesEntry({ name: 'bar', updatedAt: { seconds: 1795463409, nanos: 0 } }), encodeNamesEntry({ name: 'foo', updatedAt: { seconds: 1795463398, nanos: 0 } })], 'acme');
    expect(Buffer.from(payload).toString('hex')).toBe('0a0f0a036261721a0808f1b192d80610000a0f0a03666f6f1a0808e6b192d8061000120461636d65');
  });
});
