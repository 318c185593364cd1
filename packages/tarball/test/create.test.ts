/** createTarball: the layout hex_core writes, determinism, defaults, and the same refusals as reading. */
import { createHash } from 'node:crypto';
import { gunzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { HexrepoError, toHex, type ErrorCode } from '@hexrepo/core';
import { createTarball, parseTarball, readTar, type MetadataInput, type TarballFileInput } from '../src/index.js';

const enc = (s: string): Uint8Array => new Uint8Array(Buffer.from(s));
const meta: MetadataInput = { name: 'made', version: '1.2.3', description: 'Made in a test', licenses: ['MIT'] };
const files: TarballFileInput[] = [
  { path: 'mix.exs', contents: enc('defmodule Made.MixProject do\nend\n') },
  { path: 'lib/made.ex', contents: enc('defmodule Made do\nend\n') },
  { path: 'bin/tool', contents: enc('#!/bin/sh\n'), mode: 0o755 },
];

function refusal(fn: () => unknown): HexrepoError {
  try {
    fn();
  } catch (err) {
    if (err instanceof HexrepoError) return err;
    throw err;
  }
  throw new Error('accepted');
}

describe('createTarball', () => {
  const made = createTarball(meta, files);
  const members = readTar(made.tarball);

  it('writes VERSION, CHECKSUM (uppercase), metadata.config and contents.tar.gz, in that order', () => {
    expect(members.map((m) => m.name)).toEqual(['VERSION', 'CHECKSUM', 'metadata.config', 'contents.tar.gz']);
    expect(Buffer.from(members[0]!.data).toString()).toBe('3');
    expect(Buffer.from(members[1]!.data).toString()).toBe(toHex(made.innerChecksum).toUpperCase());
    expect(members.every((m) => m.mode === 0o644 && m.mtime === 946684800)).toBe(true);
    expect(made.tarball.byteLength % 512).toBe(0);
  });

  it('returns checksums that match the bytes', () => {
    expect(toHex(made.outerChecksum)).toBe(createHash('sha256').update(made.tarball).digest('hex'));
    const inner = createHash('sha256').update(members[0]!.data).update(members[2]!.data).update(members[3]!.data).digest('hex');
    expect(toHex(made.innerChecksum)).toBe(inner);
  });

  it('is deterministic: gzip header mtime 0, tar mtimes 2000-01-01', () => {
    expect(createTarball(meta, files).tarball).toEqual(made.tarball);
    const gz = members[3]!.data;
    expect([...gz.subarray(0, 8)]).toEqual([0x1f, 0x8b, 8, 0, 0, 0, 0, 0]);
    const inner = readTar(new Uint8Array(gunzipSync(gz)));
    expect(inner.map((e) => [e.name, e.mode, e.mtime])).toEqual([
      ['mix.exs', 0o644, 946684800],
      ['lib/made.ex', 0o644, 946684800],
      ['bin/tool', 0o755, 946684800],
    ]);
  });

  it('fills metadata defaults: app, files, build tools', () => {
    expect(made.metadata).toEqual({
      name: 'made',
      version: '1.2.3',
      app: 'made',
      description: 'Made in a test',
      licenses: ['MIT'],
      links: [],
      files: ['mix.exs', 'lib/made.ex', 'bin/tool'],
      buildTools: ['mix'],
      requirements: [],
      other: {},
    });
    expect(parseTarball(made.tarball).metadata).toEqual(made.metadata);
  });

  it('normalises paths it accepts', () => {
    const out = createTarball(meta, [
      { path: './lib//a.ex', contents: enc('a') },
      { path: 'lib/x/../b.ex', contents: enc('b') },
    ]);
    expect(parseTarball(out.tarball).files.map((f) => f.path)).toEqual(['lib/a.ex', 'lib/b.ex']);
  });

  const refused: [string, () => unknown, ErrorCode, RegExp][] = [
    ['an absolute path', () => createTarball(meta, [{ path: '/etc/passwd', contents: enc('x') }]), 'CONTENTS_UNSAFE_PATH', /it is absolute/],
    ['a drive path', () => createTarball(meta, [{ path: 'C:/x', contents: enc('x') }]), 'CONTENTS_UNSAFE_PATH', /it is absolute/],
    ['a .. path', () => createTarball(meta, [{ path: 'lib/../../x', contents: enc('x') }]), 'CONTENTS_UNSAFE_PATH', /outside the package/],
    ['a NUL byte', () => createTarball(meta, [{ path: 'a\0b', contents: enc('x') }]), 'CONTENTS_UNSAFE_PATH', /NUL byte/],
    ['an empty path', () => createTarball(meta, [{ path: './', contents: enc('x') }]), 'CONTENTS_UNSAFE_PATH', /names no file/],
    [
      'a duplicate path',
      () =>
        createTarball(meta, [
          { path: 'a', contents: enc('x') },
          { path: './a', contents: enc('y') },
        ]),
      'CONTENTS_DUPLICATE_PATH',
      /"a" twice/,
    ],
    [
      'a file used as a folder',
      () =>
        createTarball(meta, [
          { path: 'a', contents: enc('x') },
          { path: 'a/b', contents: enc('y') },
        ]),
      'CONTENTS_DUPLICATE_PATH',
      /uses it as a folder/,
    ],
    ['a bad mode', () => createTarball(meta, [{ path: 'a', contents: enc('x'), mode: 0o10000 }]), 'USAGE', /not a permission value/],
    ['a bad name', () => createTarball({ ...meta, name: 'Made' }, files), 'METADATA_BAD_NAME', /"Made"/],
    ['a bad version', () => createTarball({ ...meta, version: '1.2' }, files), 'METADATA_BAD_VERSION', /"1.2"/],
    ['a bad requirement', () => createTarball({ ...meta, requirements: [{ package: 'x y', requirement: '1.0.0' }] }, files), 'METADATA_BAD_REQUIREMENTS', /not a valid package name/],
    ['a tarball over the limit', () => createTarball(meta, files, { limits: { maxTarballSize: 2048 } }), 'TAR_TOO_BIG', /limit of 2048 bytes/],
    ['contents over the limit', () => createTarball(meta, files, { limits: { maxUncompressedSize: 1024 } }), 'TAR_UNCOMPRESSED_TOO_BIG', /limit of 1024 bytes/],
    ['metadata over the limit', () => createTarball(meta, files, { limits: { maxMetadataSize: 100 } }), 'TAR_MEMBER_TOO_BIG', /limit of 100 bytes/],
    ['extra nested too deep', () => createTarball({ ...meta, extra: { type: 'list', items: [{ type: 'list', items: [] }] } }, files, { limits: { maxTermDepth: 2 } }), 'TERM_TOO_DEEP', /nested more than 2/],
  ];
  it.each(refused)('refuses %s', (_name, fn, code, message) => {
    const err = refusal(fn);
    expect(err.code).toBe(code);
    expect(err.message).toMatch(message);
  });
});
