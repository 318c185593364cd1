/**
 * The 2026 registry additions, checked byte by byte against their field definitions (HEX_SPEC.md
 * §2.3–2.4, hexpm/specifications policy.proto): `Package.advisories` (4), `Release.advisory_indexes`
 * (6, NOT packed), `Versions.Package.with_advisories` (5, packed) and the `Policy` resource. The
 * expected bytes are written here from field numbers and wire types, not by the encoder under test;
 * `protoc --decode_raw` (Debian's protobuf-compiler) is a second, independent oracle when installed.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { gunzipSync } from 'node:zlib';
import { validatePolicy, type Advisory, type PolicyDefinition, type RegistryRelease } from '@hexrepo/core';
import { describe, expect, it } from 'vitest';
import { buildPackage, buildPolicy, buildVersions, encodePackagePayload, encodePolicyPayload, encodeVersionsEntry, generateKeyPair, loadPublicKey, proto, signAndWrap, unpackPackage, unpackPolicy, unpackVersions } from '../src/index.js';
import { goldenKey, goldenPublicKey } from './helpers.js';

// A minimal protobuf writer for the expected bytes: tag = field << 3 | wire type.
const varint = (n: number): number[] => {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n = Math.floor(n / 128);
    if (n > 0) b |= 0x80;
    out.push(b);
  } while (n > 0);
  return out;
};
const bytes = (...parts: (number | number[] | Uint8Array)[]): number[] => parts.flatMap((p) => (typeof p === 'number' ? [p] : [...p]));
const ld = (field: number, body: number[] | Uint8Array): number[] => bytes(varint((field << 3) | 2), varint(body.length), body);
const str = (field: number, s: string): number[] => ld(field, new TextEncoder().encode(s));
const vint = (field: number, n: number): number[] => bytes(varint(field << 3), varint(n));
const f32 = (field: number, x: number): number[] => {
  const b = Buffer.alloc(4);
  b.writeFloatLE(x);
  return bytes(varint((field << 3) | 5), [...b]);
};

const protoc = spawnSync('protoc', ['--version']).status === 0;
const decodeRaw = (payload: Uint8Array): string => execFileSync('protoc', ['--decode_raw'], { input: payload }).toString();

const sha = (byte: number): Uint8Array => new Uint8Array(32).fill(byte);
const ADV: Advisory = { id: 'GHSA-aaaa-bbbb-cccc', summary: 'DoS in parser', htmlUrl: 'https://example.test/a', apiUrl: 'https://example.test/a.json', severity: 'high', cvssScore: 7.5, aliases: ['CVE-2026-1'] };
const ADV2: Advisory = { id: 'ACME-1', summary: 'Leak', htmlUrl: 'https://example.test/b', apiUrl: 'https://example.test/b', severity: 'low', aliases: [] };
const releases: RegistryRelease[] = [
  { name: 'web', version: '1.0.0', innerChecksum: sha(1), outerChecksum: sha(2), dependencies: [], advisories: [ADV, ADV2] },
  { name: 'web', version: '1.1.0', innerChecksum: sha(3), outerChecksum: sha(4), dependencies: [], publishedAt: 1_790_000_000 },
];

describe('Package.advisories and Release.advisory_indexes', () => {
  const payload = encodePackagePayload({ repository: 'acme', name: 'web', releases });

  it('encode byte for byte: advisories sorted by id after repository, indexes unpacked (one tag per index)', () => {
    const advisory = (a: Advisory, severity: number, cvss?: number): number[] =>
      ld(4, bytes(str(1, a.id), str(2, a.summary), str(3, a.htmlUrl), vint(4, severity), cvss !== undefined ? f32(5, cvss) : [], str(6, a.apiUrl), ...a.aliases.map((x) => str(7, x))));
    const expected = bytes(
      // release 1.0.0: version, inner, outer, advisory_indexes 0 and 1 as two field-6 varints (proto2, not packed)
      ld(1, bytes(str(1, '1.0.0'), ld(2, sha(1)), ld(5, sha(2)), vint(6, 0), vint(6, 1))),
      ld(1, bytes(str(1, '1.1.0'), ld(2, sha(3)), ld(5, sha(4)), ld(7, bytes(vint(1, 1_790_000_000), vint(2, 0))))),
      str(2, 'web'),
      str(3, 'acme'),
      advisory(ADV2, 1), // "ACME-1" < "GHSA-…"
      advisory(ADV, 3, 7.5),
    );
    expect(Buffer.from(payload).toString('hex')).toBe(Buffer.from(expected).toString('hex'));
  });

  it.skipIf(!protoc)('protoc --decode_raw reads the same fields', () => {
    const raw = decodeRaw(payload);
    expect(raw).toMatch(/6: 0\n\s*6: 1\n/);
    expect(raw).toContain('1: "GHSA-aaaa-bbbb-cccc"');
    expect(raw).toMatch(/5: 0x40f00000/); // 7.5 as a fixed32 float
    expect(raw).toContain('7: "CVE-2026-1"');
  });

  it('round trip through the decoder: each release gets its own advisories back', () => {
    const file = buildPackage({ repository: 'acme', name: 'web', releases }, goldenKey);
    const pkg = unpackPackage(file, { publicKey: goldenPublicKey, repository: 'acme', name: 'web' });
    expect(pkg.advisories.map((a) => a.id)).toEqual(['ACME-1', 'GHSA-aaaa-bbbb-cccc']);
    expect(pkg.releases[0]!.advisories).toEqual([ADV2, ADV]);
    expect(pkg.releases[1]!.advisories).toBeUndefined();
    expect(pkg.advisories[1]).toEqual(ADV);
  });

  it('a package without advisories encodes exactly as before (no field 4, no field 6)', () => {
    const plain = releases.map(({ advisories: _, ...r }) => r);
    const expected = bytes(ld(1, bytes(str(1, '1.0.0'), ld(2, sha(1)), ld(5, sha(2)))), ld(1, bytes(str(1, '1.1.0'), ld(2, sha(3)), ld(5, sha(4)), ld(7, bytes(vint(1, 1_790_000_000), vint(2, 0))))), str(2, 'web'), str(3, 'acme'));
    expect(Buffer.from(encodePackagePayload({ repository: 'acme', name: 'web', releases: plain })).toString('hex')).toBe(Buffer.from(expected).toString('hex'));
  });
});

describe('Versions.Package.with_advisories', () => {
  it('is packed: one field-5 record holding the varints', () => {
    const entry = encodeVersionsEntry({ name: 'web', versions: ['1.0.0', '1.1.0', '1.2.0'], retired: [1], withAdvisories: [0, 2] });
    const expected = ld(1, bytes(str(1, 'web'), str(2, '1.0.0'), str(2, '1.1.0'), str(2, '1.2.0'), ld(3, [1]), ld(5, [0, 2])));
    expect(Buffer.from(entry).toString('hex')).toBe(Buffer.from(expected).toString('hex'));
  });

  it('round trips', () => {
    const file = buildVersions({ repository: 'acme', packages: [{ name: 'web', versions: ['1.0.0', '1.1.0'], retired: [], withAdvisories: [0] }] }, goldenKey);
    expect(unpackVersions(file, { publicKey: goldenPublicKey, repository: 'acme' }).packages).toEqual([{ name: 'web', versions: ['1.0.0', '1.1.0'], retired: [], withAdvisories: [0] }]);
  });
});

describe('Policy (policies/NAME)', () => {
  const policy: PolicyDefinition = validatePolicy(
    {
      name: 'strict-prod',
      description: 'Production',
      visibility: 'public',
      repositories: [
        {
          repository: 'hexpm',
          restriction: { minSeverity: 'high', retirementReasons: ['security', 'invalid'], cooldown: '7d' },
          overrides: [
            { action: 'allow', package: 'plug', requirement: '~> 1.14' },
            { action: 'deny', package: 'jason', comment: 'use the built-in JSON' },
          ],
        },
        { repository: 'acme', overrides: [] },
      ],
    },
    'acme',
  );

  it('encodes byte for byte: fields 1–5, packed retirement reasons, enums as varints', () => {
    const expected = bytes(
      str(1, 'acme'),
      str(2, 'strict-prod'),
      str(3, 'Production'),
      vint(4, 1), // VISIBILITY_PUBLIC
      ld(
        5,
        bytes(
          str(1, 'hexpm'),
          ld(2, bytes(vint(1, 3), ld(2, [2, 1]), str(3, '7d'))), // SEVERITY_HIGH; [RETIRED_SECURITY, RETIRED_INVALID] packed
          ld(3, bytes(vint(1, 0), ld(2, bytes(str(1, 'plug'), str(2, '~> 1.14'))))), // ALLOW
          ld(3, bytes(vint(1, 1), ld(2, str(1, 'jason')), str(5, 'use the built-in JSON'))), // DENY + comment
        ),
      ),
      ld(5, str(1, 'acme')),
    );
    expect(Buffer.from(encodePolicyPayload({ repository: 'acme', policy })).toString('hex')).toBe(Buffer.from(expected).toString('hex'));
  });

  it.skipIf(!protoc)('protoc --decode_raw reads the same fields', () => {
    const raw = decodeRaw(encodePolicyPayload({ repository: 'acme', policy }));
    expect(raw).toContain('1: "acme"');
    expect(raw).toContain('2: "strict-prod"');
    expect(raw).toContain('4: 1');
    expect(raw).toContain('3: "7d"');
  });

  it('is gzip(Signed{payload, signature}) and round trips to the rules as entered', () => {
    const file = buildPolicy({ repository: 'acme', policy }, goldenKey);
    const signed = proto.signed.Signed.decode(gunzipSync(file));
    expect(Buffer.from(signed.payload)).toEqual(Buffer.from(encodePolicyPayload({ repository: 'acme', policy })));
    expect(signed.signature).toHaveLength(256);
    const back = unpackPolicy(file, { publicKey: goldenPublicKey, repository: 'acme', name: 'strict-prod' });
    expect(back).toEqual({ ...policy, repository: 'acme', skippedOverrides: 0 });
  });

  it('refuses another repository, another policy name and another key, as Hex does', async () => {
    const file = buildPolicy({ repository: 'acme', policy }, goldenKey);
    expect(() => unpackPolicy(file, { publicKey: goldenPublicKey, repository: 'other', name: 'strict-prod' })).toThrow(expect.objectContaining({ code: 'REGISTRY_BAD_REPO_NAME' }));
    expect(() => unpackPolicy(file, { publicKey: goldenPublicKey, repository: 'acme', name: 'lax' })).toThrow(expect.objectContaining({ code: 'REGISTRY_BAD_PACKAGE_NAME' }));
    const other = await generateKeyPair(1024);
    expect(() => unpackPolicy(file, { publicKey: loadPublicKey(other.publicKeyPem), repository: 'acme', name: 'strict-prod' })).toThrow(expect.objectContaining({ code: 'REGISTRY_BAD_SIGNATURE' }));
  });

  it('an unknown visibility reads as private and an unknown override action is skipped (fail closed, as Hex)', () => {
    const payload = Uint8Array.from(bytes(str(1, 'acme'), str(2, 'future'), vint(4, 7), ld(5, bytes(str(1, 'hexpm'), ld(3, bytes(vint(1, 9), ld(2, str(1, 'plug'))))))));
    const back = unpackPolicy(signAndWrap(payload, goldenKey), { publicKey: goldenPublicKey, repository: 'acme', name: 'future' });
    expect(back.visibility).toBe('private');
    expect(back.repositories).toEqual([{ repository: 'hexpm', overrides: [] }]);
    expect(back.skippedOverrides).toBe(1);
  });
});
