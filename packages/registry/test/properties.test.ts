/** Round trips of every registry resource over generated contents (fast-check). */
import { compareVersions, RETIREMENT_REASONS, type RegistryRelease, type RetirementReasonName } from '@hexrepo/core';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { buildNames, buildPackage, buildVersions, unpackNames, unpackPackage, unpackVersions } from '../src/index.js';
import { goldenKey, goldenPublicKey } from './helpers.js';

const name = fc.stringMatching(/^[a-z][a-z0-9_]{0,20}$/);
const version = fc.tuple(fc.nat(50), fc.nat(50), fc.nat(50), fc.option(fc.stringMatching(/^(alpha|beta|rc)\.(0|[1-9][0-9]?)$/), { nil: undefined })).map(([a, b, c, pre]) => `${a}.${b}.${c}${pre ? `-${pre}` : ''}`);
const checksum = fc.uint8Array({ minLength: 32, maxLength: 32 });
const text = fc.string({ unit: 'grapheme', maxLength: 40 });
const dependency = fc.record({
  package: name,
  requirement: fc.constantFrom('~> 1.0', '>= 0.0.0', '1.2.3', '>= 1.0.0 and < 2.0.0', '~> 0.1.0-rc.1'),
  optional: fc.boolean(),
  app: name,
  repository: fc.option(fc.constantFrom('hexpm', 'other'), { nil: undefined }),
});
const retirement = fc.record({ reason: fc.constantFrom(...(Object.keys(RETIREMENT_REASONS) as RetirementReasonName[])), message: fc.option(text, { nil: undefined }) });

const releases = fc.uniqueArray(
  fc.record({
    version,
    innerChecksum: checksum,
    outerChecksum: checksum,
    dependencies: fc.array(dependency, { maxLength: 4 }),
    retired: fc.option(retirement, { nil: undefined }),
    publishedAt: fc.option(fc.integer({ min: 0, max: 4_000_000_000 }), { nil: undefined }),
  }),
  { selector: (r) => r.version, minLength: 1, maxLength: 6 },
);

/** Drop keys whose value is undefined, as exactOptionalPropertyTypes wants and unpack returns. */
function clean<T>(value: T): T {
  if (value instanceof Uint8Array) return Buffer.from(value).toString('hex') as T;
  if (Array.isArray(value)) return value.map(clean) as T;
  if (value && typeof value === 'object')
    return Object.fromEntries(
      Object.entries(value)
        .filter(([, v]) => v !== undefined)
        .map(([k, v]) => [k, clean(v)]),
    ) as T;
  return value;
}

describe('registry round trips', () => {
  it('packages/NAME: build → unpack gives the releases back, sorted by SemVer, dependencies by package name', () => {
    fc.assert(
      fc.property(name, releases, (pkgName, rels) => {
        const input = rels.map((r) => clean({ ...r, name: pkgName }) as RegistryRelease);
        const file = buildPackage({ repository: 'acme', name: pkgName, releases: rels.map((r) => ({ ...r, name: pkgName }) as RegistryRelease) }, goldenKey);
        const back = unpackPackage(file, { publicKey: goldenPublicKey, repository: 'acme', name: pkgName });
        const byteOrder = (a: { package: string }, b: { package: string }): number => Buffer.compare(Buffer.from(a.package), Buffer.from(b.package));
        const expected = input.map((r) => ({ ...r, dependencies: r.dependencies.map((d) => (d.repository === 'acme' ? { ...d, repository: undefined } : d)).sort(byteOrder) }));
        expect(clean(back.releases)).toEqual(clean(expected.sort((a, b) => compareVersions(a.version, b.version))));
      }),
      { numRuns: 60 },
    );
  });

  it('names and versions: build → unpack gives the entries back', () => {
    const entries = fc.uniqueArray(fc.record({ name, seconds: fc.integer({ min: 0, max: 4_000_000_000 }), versions: fc.uniqueArray(version, { maxLength: 5 }) }), {
      selector: (e) => e.name,
      maxLength: 20,
    });
    fc.assert(
      fc.property(entries, (list) => {
        const names = list.map((e) => ({ name: e.name, updatedAt: { seconds: e.seconds, nanos: 0 } }));
        const versions = list.map((e) => ({ name: e.name, versions: e.versions, retired: e.versions.length > 0 ? [0] : [] }));
        expect(unpackNames(buildNames({ repository: 'r', packages: names }, goldenKey), { publicKey: goldenPublicKey, repository: 'r' }).packages).toEqual(names);
        expect(unpackVersions(buildVersions({ repository: 'r', packages: versions }, goldenKey), { publicKey: goldenPublicKey, repository: 'r' }).packages).toEqual(versions);
      }),
      { numRuns: 40 },
    );
  });
});
