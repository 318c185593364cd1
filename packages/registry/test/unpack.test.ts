/** Unpacking refuses what a verifying client refuses, with a specific code. */
import { readFileSync } from 'node:fs';
import { gunzipSync, gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { generateKeyPair, proto, signAndWrap, unpackNames, unpackPackage, unpackVersions, unwrapAndVerify } from '../src/index.js';
import { GOLDEN, goldenKey, goldenPublicKey } from './helpers.js';

const names = readFileSync(`${GOLDEN}names`);
const foo = readFileSync(`${GOLDEN}packages/foo`);
const opts = { publicKey: goldenPublicKey, repository: 'acme' };

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return (err as { code?: string }).code;
  }
  return 'no error';
}

describe('unpack refuses', () => {
  it('another repository name (REGISTRY_BAD_REPO_NAME), as Mix and rebar3 do', () => {
    expect(codeOf(() => unpackNames(names, { ...opts, repository: 'other' }))).toBe('REGISTRY_BAD_REPO_NAME');
    expect(codeOf(() => unpackVersions(readFileSync(`${GOLDEN}versions`), { ...opts, repository: 'other' }))).toBe('REGISTRY_BAD_REPO_NAME');
    expect(codeOf(() => unpackPackage(foo, { ...opts, repository: 'other', name: 'foo' }))).toBe('REGISTRY_BAD_REPO_NAME');
  });

  it('packages/NAME holding another package (REGISTRY_BAD_PACKAGE_NAME)', () => {
    expect(codeOf(() => unpackPackage(foo, { ...opts, name: 'bar' }))).toBe('REGISTRY_BAD_PACKAGE_NAME');
  });

  it('a signature by another key (REGISTRY_BAD_SIGNATURE)', async () => {
    const other = await generateKeyPair(1024);
    expect(codeOf(() => unpackNames(names, { ...opts, publicKey: other.privateKey }))).toBe('REGISTRY_BAD_SIGNATURE');
  });

  it('a tampered payload (REGISTRY_BAD_SIGNATURE)', () => {
    const signed = proto.signed.Signed.decode(gunzipSync(names));
    const payload = Buffer.from(signed.payload);
    payload[payload.length - 1]! ^= 1;
    const file = gzipSync(proto.signed.Signed.encode({ payload, signature: signed.signature }).finish());
    expect(codeOf(() => unpackNames(file, opts))).toBe('REGISTRY_BAD_SIGNATURE');
  });

  it('an unsigned file (REGISTRY_BAD_SIGNATURE)', () => {
    const signed = proto.signed.Signed.decode(gunzipSync(names));
    const file = gzipSync(proto.signed.Signed.encode({ payload: signed.payload }).finish());
    expect(codeOf(() => unpackNames(file, opts))).toBe('REGISTRY_BAD_SIGNATURE');
  });

  it('non-gzip, truncated gzip, and a gzip of garbage (REGISTRY_CORRUPT)', () => {
    expect(codeOf(() => unwrapAndVerify(new TextEncoder().encode('<html>'), goldenPublicKey))).toBe('REGISTRY_CORRUPT');
    expect(codeOf(() => unwrapAndVerify(names.subarray(0, names.length - 20), goldenPublicKey))).toBe('REGISTRY_CORRUPT');
    expect(codeOf(() => unwrapAndVerify(gzipSync(Buffer.from([0xff, 0xff, 0xff])), goldenPublicKey))).toBe('REGISTRY_CORRUPT');
  });

  it('a verified payload that is not the message (REGISTRY_CORRUPT)', () => {
    const file = signAndWrap(Buffer.from([0x0a, 0x02, 0x08]), goldenKey);
    expect(codeOf(() => unpackPackage(file, { ...opts, name: 'foo' }))).toBe('REGISTRY_CORRUPT');
  });

  it('a names file given where packages/NAME is expected (required fields missing)', () => {
    expect(codeOf(() => unpackPackage(names, { ...opts, name: 'foo' }))).toMatch(/^REGISTRY_(CORRUPT|BAD_REPO_NAME|BAD_PACKAGE_NAME)$/);
  });
});
