/**
 * Cross-check against the reference implementation: hex_core's r3_hex_registry (bundled in
 * Debian's rebar3) verifies and decodes the files hexrepo builds, and refuses them under another
 * repository name or key, exactly as rebar3 does when it fetches them.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RegistryRelease } from '@hexrepo/core';
import { describe, expect, it } from 'vitest';
import { erlangUnavailable, erlString, runErlang } from '@hexrepo/test-support/erlang';
import { buildNames, buildPackage, buildVersions, generateKeyPair, loadPublicKey, publicKeyPem, unpackPackage } from '../src/index.js';

const unavailable = erlangUnavailable();
if (unavailable) console.warn(`skipping hex_core registry cross-checks: ${unavailable}`);

const sha = (byte: number): Uint8Array => new Uint8Array(32).fill(byte);

describe.skipIf(unavailable)('r3_hex_registry reads what hexrepo builds', async () => {
  const { privateKey } = await generateKeyPair();
  const other = await generateKeyPair(1024);
  const dir = mkdtempSync(join(tmpdir(), 'hexrepo-r3reg-'));
  const releases: RegistryRelease[] = [
    { name: 'web', version: '1.0.0', innerChecksum: sha(1), outerChecksum: sha(2), dependencies: [{ package: 'json', requirement: '~> 1.0', optional: false, app: 'json' }] },
    {
      name: 'web',
      version: '1.1.0-rc.1',
      innerChecksum: sha(3),
      outerChecksum: sha(4),
      dependencies: [
        { package: 'json', requirement: '>= 1.1.0 and < 2.0.0', optional: true, app: 'json_app' },
        { package: 'decimal', requirement: '~> 2.0', optional: false, app: 'decimal', repository: 'hexpm' },
      ],
      retired: { reason: 'security', message: 'CVE-2026-1' },
      publishedAt: 1_790_000_000,
    },
  ];
  writeFileSync(join(dir, 'public_key'), publicKeyPem(privateKey));
  writeFileSync(join(dir, 'other_key'), other.publicKeyPem);
  writeFileSync(join(dir, 'names'), buildNames({ repository: 'xrepo', packages: [{ name: 'web', updatedAt: { seconds: 1_790_000_000, nanos: 0 } }] }, privateKey));
  writeFileSync(join(dir, 'versions'), buildVersions({ repository: 'xrepo', packages: [{ name: 'web', versions: ['1.0.0', '1.1.0-rc.1'], retired: [1] }] }, privateKey));
  writeFileSync(join(dir, 'web'), buildPackage({ repository: 'xrepo', name: 'web', releases }, privateKey));
  // hex_core 0.7.1 predates advisories (0.16.0): Package field 4, Release field 6 and Versions field 5 are unknown to it.
  const advisory = { id: 'GHSA-aaaa-bbbb-cccc', summary: 'DoS', htmlUrl: 'https://example.test/a', apiUrl: 'https://example.test/a', severity: 'high' as const, cvssScore: 7.5, aliases: ['CVE-2026-1'] };
  writeFileSync(join(dir, 'web-adv'), buildPackage({ repository: 'xrepo', name: 'web', releases: releases.map((r) => ({ ...r, advisories: [advisory] })) }, privateKey));
  writeFileSync(join(dir, 'versions-adv'), buildVersions({ repository: 'xrepo', packages: [{ name: 'web', versions: ['1.0.0', '1.1.0-rc.1'], retired: [1], withAdvisories: [0, 1] }] }, privateKey));

  const decode = (file: string, decodeCall: string, key = 'public_key'): string =>
    runErlang(`
      {ok, PK} = file:read_file(${erlString(join(dir, key))}),
      {ok, Gz} = file:read_file(${erlString(join(dir, file))}),
      case r3_hex_registry:decode_and_verify_signed(zlib:gunzip(Gz), PK) of
        {ok, Payload} -> ${decodeCall};
        Other -> Other
      end`);

  it('names: signature and repository verified', () => {
    const out = decode('names', `r3_hex_registry:decode_names(Payload, <<"xrepo">>)`);
    // hex_core 0.7.1 predates `updated_at` (0.8.0) and skips it, as old clients must.
    expect(out).toBe('{ok,[#{name => <<"web">>}]}');
  });

  it('versions: retired indexes decoded', () => {
    const out = decode('versions', `r3_hex_registry:decode_versions(Payload, <<"xrepo">>)`);
    expect(out).toMatch(/^\{ok,/);
    expect(out).toMatch(/retired => \[1\]/);
    expect(out).toContain('<<"1.1.0-rc.1">>');
  });

  it('packages/NAME: releases, dependencies, checksums, retirement', () => {
    const out = decode('web', `r3_hex_registry:decode_package(Payload, <<"xrepo">>, <<"web">>)`).replace(/\s+/g, ' ');
    expect(out).toMatch(/^\{ok,/);
    expect(out).toContain('version => <<"1.0.0">>');
    expect(out).toContain('version => <<"1.1.0-rc.1">>');
    expect(out).toMatch(/outer_checksum => <<(2,){31}2>>/);
    expect(out).toMatch(/inner_checksum => <<(3,){31}3>>/);
    expect(out).toContain("reason => 'RETIRED_SECURITY'");
    expect(out).toContain('<<"CVE-2026-1">>');
    expect(out).toContain('repository => <<"hexpm">>');
    expect(out).toContain('app => <<"json_app">>');
    expect(out).toContain('optional => true');
  });

  it('packages/NAME and versions with advisories still verify and decode (unknown fields skipped)', () => {
    // The file really carries them (so the equality below is about the old decoder skipping them).
    const ours = unpackPackage(readFileSync(join(dir, 'web-adv')), { publicKey: loadPublicKey(readFileSync(join(dir, 'public_key'))), repository: 'xrepo', name: 'web' });
    expect(ours.advisories.map((a) => a.id)).toEqual(['GHSA-aaaa-bbbb-cccc']);
    expect(ours.releases.every((r) => r.advisories?.length === 1)).toBe(true);
    const plain = decode('web', `r3_hex_registry:decode_package(Payload, <<"xrepo">>, <<"web">>)`);
    const withAdvisories = decode('web-adv', `r3_hex_registry:decode_package(Payload, <<"xrepo">>, <<"web">>)`);
    expect(withAdvisories).toMatch(/^\{ok,/);
    expect(withAdvisories).toBe(plain);
    const versions = decode('versions-adv', `r3_hex_registry:decode_versions(Payload, <<"xrepo">>)`);
    expect(versions).toBe(decode('versions', `r3_hex_registry:decode_versions(Payload, <<"xrepo">>)`));
  });

  it('refuses another repository name, another package name and another key', () => {
    expect(decode('names', `r3_hex_registry:decode_names(Payload, <<"acme">>)`)).toMatch(/^\{error,\s*unverified\}$/);
    expect(decode('web', `r3_hex_registry:decode_package(Payload, <<"xrepo">>, <<"other">>)`)).toMatch(/^\{error,\s*unverified\}$/);
    expect(decode('names', `r3_hex_registry:decode_names(Payload, <<"xrepo">>)`, 'other_key')).toMatch(/^\{error,\s*unverified\}$/);
  });
});
