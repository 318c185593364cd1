import { describe, expect, it } from 'vitest';
import {
  assertPackageName,
  assertReleaseVersion,
  assertRepoName,
  bytesEqual,
  compareVersions,
  DEFAULT_LIMITS,
  ERROR_CODES,
  errorToJson,
  formatError,
  fromHex,
  HexrepoError,
  isHexrepoError,
  isRetirementReason,
  MiB,
  parseProjectConfig,
  parseSize,
  parseVersion,
  toHex,
} from '../src/index.js';

const codeOf = (fn: () => unknown): string | undefined => {
  try {
    fn();
  } catch (err) {
    return isHexrepoError(err) ? err.code : 'not a HexrepoError';
  }
  return undefined;
};

describe('SemVer', () => {
  it('orders as Elixir Version.compare: pre-releases before the release, numeric ids numerically', () => {
    const sorted = ['1.0.0', '1.0.0-rc.10', '0.9.9', '1.0.0-alpha', '1.0.0-rc.2', '1.0.0-alpha.1', '1.0.0-beta', '10.0.0', '2.0.0'].sort(compareVersions);
    expect(sorted).toEqual(['0.9.9', '1.0.0-alpha', '1.0.0-alpha.1', '1.0.0-beta', '1.0.0-rc.2', '1.0.0-rc.10', '1.0.0', '2.0.0', '10.0.0']);
  });

  it('parses and refuses', () => {
    expect(parseVersion('1.2.3-rc.1+build.5')).toEqual({ major: 1, minor: 2, patch: 3, pre: ['rc', 1], build: 'build.5' });
    for (const bad of ['1.2', '01.2.3', '1.2.3-01', 'v1.2.3', '1.2.3-', '']) expect(parseVersion(bad)).toBeNull();
    expect(codeOf(() => assertReleaseVersion('1.0.0+build'))).toBe('METADATA_BAD_VERSION');
    expect(codeOf(() => assertReleaseVersion(`1.0.0-${'a'.repeat(65)}`))).toBe('METADATA_BAD_VERSION');
    expect(codeOf(() => compareVersions('1.0', '1.0.0'))).toBe('METADATA_BAD_VERSION');
  });

  it('package names as hex.pm allows them', () => {
    expect(codeOf(() => assertPackageName('plug_cowboy'))).toBeUndefined();
    for (const bad of ['Plug', '1abc', 'a-b', '../x', '']) expect(codeOf(() => assertPackageName(bad))).toBe('METADATA_BAD_NAME');
  });
});

describe('errors', () => {
  it('formats one way, with the hint', () => {
    const err = new HexrepoError('KEY_INVALID', 'bad key', { hint: 'make one' });
    expect(formatError(err)).toBe('error[KEY_INVALID]: bad key\n  hint: make one');
    expect(formatError(new Error('boom'))).toMatch(/^error\[INTERNAL\]: boom/);
    expect(errorToJson(new HexrepoError('NOT_FOUND', 'x', { checksum: new Uint8Array([1, 255]) }))).toEqual({ code: 'NOT_FOUND', message: 'x', details: { checksum: '01ff' } });
  });

  it('withContext prefixes the message and keeps the code', () => {
    const err = new HexrepoError('TAR_CORRUPT', 'truncated').withContext('foo-1.0.0.tar', { file: 'foo-1.0.0.tar' });
    expect(err.message).toBe('foo-1.0.0.tar: truncated');
    expect(err.code).toBe('TAR_CORRUPT');
    expect(err.details.file).toBe('foo-1.0.0.tar');
  });

  it('every code has a description', () => {
    for (const [code, text] of Object.entries(ERROR_CODES)) {
      expect(code).toMatch(/^[A-Z][A-Z0-9_]+$/);
      expect(text.length).toBeGreaterThan(5);
    }
  });
});

describe('sizes, hex, config', () => {
  it('parseSize', () => {
    expect(parseSize('8MiB')).toBe(8 * MiB);
    expect(parseSize('512 KiB')).toBe(512 * 1024);
    expect(parseSize('1000')).toBe(1000);
    expect(parseSize('1.5MB')).toBe(1_500_000);
    expect(parseSize('lots')).toBeNull();
    expect(DEFAULT_LIMITS.maxTarballSize).toBe(8 * MiB);
    expect(DEFAULT_LIMITS.maxUncompressedSize).toBe(64 * MiB);
  });

  it('hex', () => {
    expect(toHex(new Uint8Array([0, 171]))).toBe('00ab');
    expect(fromHex('00AB')).toEqual(new Uint8Array([0, 171]));
    expect(fromHex('0g')).toBeNull();
    expect(bytesEqual(new Uint8Array([1]), new Uint8Array([1]))).toBe(true);
    expect(bytesEqual(new Uint8Array([1]), new Uint8Array([2]))).toBe(false);
  });

  it('repository names: what the clients accept, never hexpm', () => {
    expect(codeOf(() => assertRepoName('acme'))).toBeUndefined();
    for (const bad of ['hexpm', 'Acme', 'a b', '', '-x', 'a'.repeat(65)]) expect(codeOf(() => assertRepoName(bad))).toBe('CONFIG_INVALID');
  });

  it('project config names the bad setting', () => {
    expect(parseProjectConfig({ name: 'acme' }, 'hexrepo.json')).toEqual({ name: 'acme', publicDir: 'public', privateKey: 'private_key.pem', limits: DEFAULT_LIMITS });
    expect(parseProjectConfig({ name: 'acme', limits: { maxTarballSize: '16MiB' } }, 'f').limits.maxTarballSize).toBe(16 * MiB);
    expect(() => parseProjectConfig({ name: 'acme', colour: 'red' }, 'f')).toThrow(/"colour" is not a known setting/);
    expect(() => parseProjectConfig({ name: 'acme', limits: { maxTarballSize: -1 } }, 'f')).toThrow(/limits.maxTarballSize/);
    expect(() => parseProjectConfig([], 'f')).toThrow(/must be a JSON object/);
  });
});

describe('retirement reasons', () => {
  it('the five Hex knows, and no property of Object.prototype', () => {
    for (const r of ['other', 'invalid', 'security', 'deprecated', 'renamed']) expect(isRetirementReason(r)).toBe(true);
    for (const r of ['toString', 'valueOf', 'constructor', '__proto__', 'hasOwnProperty', 'Security', '', 0, null, undefined]) expect(isRetirementReason(r)).toBe(false);
  });
});
