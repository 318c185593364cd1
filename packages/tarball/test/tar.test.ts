/** The ustar reader and writer, against our own archives and those of GNU tar and erl_tar. */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { HexrepoError } from '@hexrepo/core';
import { readTar, TAR_MTIME, writeTar } from '../src/index.js';

const enc = (s: string): Uint8Array => new Uint8Array(Buffer.from(s));
const tmp = mkdtempSync(join(tmpdir(), 'hexrepo-tar-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const fixture = (file: string): Uint8Array => new Uint8Array(readFileSync(new URL(`../../../test-fixtures/tarballs/${file}`, import.meta.url)));

function corruptCode(bytes: Uint8Array): string {
  try {
    readTar(bytes);
  } catch (err) {
    if (err instanceof HexrepoError) return `${err.code}: ${err.message}`;
    throw err;
  }
  return 'accepted';
}

describe('writeTar', () => {
  it('writes hex_core-style headers: mode 0644, uid/gid 0, mtime 2000-01-01, two zero blocks, no padding', () => {
    const tar = writeTar([{ name: 'VERSION', data: enc('3') }]);
    expect(tar.byteLength).toBe(512 * 4);
    expect(tar.subarray(1024).every((b) => b === 0)).toBe(true);
    const text = Buffer.from(tar.subarray(0, 512)).toString('latin1');
    expect(text.slice(100, 108)).toBe('0000644\0');
    expect(text.slice(108, 124)).toBe('0000000\u00000000000\0');
    expect(text.slice(136, 148)).toBe(`${TAR_MTIME.toString(8).padStart(11, '0')}\0`);
    expect(text.slice(257, 265)).toBe('ustar\u000000');
    expect(text[156]).toBe('0');
  });

  it('round-trips every entry type, modes and long names', () => {
    const deep = `${'d'.repeat(60)}/${'e'.repeat(60)}/${'f'.repeat(60)}/file.txt`;
    const wide = `${'w'.repeat(130)}.txt`;
    const entries = readTar(
      writeTar([
        { name: 'a.txt', data: enc('hello') },
        { name: 'bin/run', data: enc('#!/bin/sh\n'), mode: 0o755 },
        { name: 'dir/', type: 'dir' },
        { name: 'link', type: 'symlink', linkname: 'a.txt' },
        { name: 'hard', type: 'hardlink', linkname: 'a.txt' },
        { name: deep, data: enc('deep') },
        { name: wide, data: enc('wide') },
        { name: 'farlink', type: 'symlink', linkname: `${'t'.repeat(150)}` },
        { name: 'ünï.txt', data: enc('u') },
        { name: 'empty', data: new Uint8Array(0) },
        { name: 'block', data: new Uint8Array(512).fill(7) },
      ]),
    );
    expect(entries.map((e) => [e.name, e.type, e.mode, e.size, e.linkname])).toEqual([
      ['a.txt', 'file', 0o644, 5, ''],
      ['bin/run', 'file', 0o755, 10, ''],
      ['dir/', 'dir', 0o755, 0, ''],
      ['link', 'symlink', 0o644, 0, 'a.txt'],
      ['hard', 'hardlink', 0o644, 0, 'a.txt'],
      [deep, 'file', 0o644, 4, ''],
      [wide, 'file', 0o644, 4, ''],
      ['farlink', 'symlink', 0o644, 0, 't'.repeat(150)],
      ['ünï.txt', 'file', 0o644, 1, ''],
      ['empty', 'file', 0o644, 0, ''],
      ['block', 'file', 0o644, 512, ''],
    ]);
    expect(Buffer.from(entries[5]!.data).toString()).toBe('deep');
    expect(entries[10]!.data).toEqual(new Uint8Array(512).fill(7));
    expect(entries.every((e) => e.mtime === TAR_MTIME)).toBe(true);
  });

  it('writes archives GNU tar reads', () => {
    const file = join(tmp, 'ours.tar');
    writeFileSync(
      file,
      writeTar([
        { name: 'lib/x.ex', data: enc('x') },
        { name: `${'p'.repeat(70)}/${'q'.repeat(70)}`, data: enc('y') },
        { name: `${'z'.repeat(120)}`, data: enc('z') },
      ]),
    );
    const listing = execFileSync('tar', ['-tvf', file], { encoding: 'utf8' });
    expect(listing).toContain('lib/x.ex');
    expect(listing).toContain(`${'p'.repeat(70)}/${'q'.repeat(70)}`);
    expect(listing).toContain('z'.repeat(120));
    expect(listing).toMatch(/-rw-r--r-- 0\/0 +1 2000-01-01/);
  });
});

describe('readTar', () => {
  it('reads the archives erl_tar wrote for Hex', () => {
    const outer = readTar(fixture('foo-0.1.0.tar'));
    expect(outer.map((e) => [e.name, e.type, e.mode])).toEqual([
      ['VERSION', 'file', 0o644],
      ['CHECKSUM', 'file', 0o644],
      ['metadata.config', 'file', 0o644],
      ['contents.tar.gz', 'file', 0o644],
    ]);
    const inner = readTar(new Uint8Array(gunzipSync(outer[3]!.data)));
    expect(inner.map((e) => e.name)).toEqual(['lib/foo.ex', 'mix.exs', 'README.md']);
  });

  it.each(['gnu', 'pax', 'ustar'])('reads GNU tar --format=%s archives with long names and links', (format) => {
    const src = join(tmp, `src-${format}`);
    const long = `${'n'.repeat(80)}/${'m'.repeat(90)}`;
    const wide = 'w'.repeat(format === 'ustar' ? 99 : 140);
    mkdirSync(join(src, long), { recursive: true });
    writeFileSync(join(src, long, 'f.txt'), 'long');
    writeFileSync(join(src, wide), 'wide');
    symlinkSync(format === 'ustar' ? 'f.txt' : `../../${wide}`, join(src, long, 'link'));
    const file = join(tmp, `${format}.tar`);
    execFileSync('tar', [`--format=${format}`, '-C', src, '-cf', file, '--sort=name', '.']);
    const entries = readTar(new Uint8Array(readFileSync(file)));
    const byName = new Map(entries.map((e) => [e.name.replace(/^\.\//, ''), e]));
    expect(Buffer.from(byName.get(wide)!.data).toString()).toBe('wide');
    expect(Buffer.from(byName.get(`${long}/f.txt`)!.data).toString()).toBe('long');
    expect(byName.get(`${long}/link`)).toMatchObject({ type: 'symlink', linkname: format === 'ustar' ? 'f.txt' : `../../${wide}` });
    expect([...byName.values()].some((e) => e.type === 'dir')).toBe(true);
  });

  it('reads GNU long name and long link records', () => {
    const name = `${'g'.repeat(200)}.txt`;
    const entries = readTar(
      writeTar([
        { name: '././@LongLink', typeflag: 'L', data: enc(`${name}\0`) },
        { name: name.slice(0, 100), data: enc('g') },
        { name: '././@LongLink', typeflag: 'K', data: enc(`${'k'.repeat(150)}\0`) },
        { name: 'l', type: 'symlink', linkname: 'k'.repeat(100) },
      ]),
    );
    expect(entries.map((e) => [e.name, e.linkname])).toEqual([
      [name, ''],
      ['l', 'k'.repeat(150)],
    ]);
  });

  it('applies pax path, linkpath and size to the next entry only', () => {
    const record = (k: string, v: string): string => {
      const body = ` ${k}=${v}\n`;
      return `${body.length + String(body.length + 2).length}${body}`;
    };
    const entries = readTar(
      writeTar([
        { name: 'PaxHeader', typeflag: 'x', data: enc(record('path', 'from/pax.txt') + record('mtime', '1.5')) },
        { name: 'short', data: enc('p') },
        { name: 'next', data: enc('n') },
        { name: 'global', typeflag: 'g', data: enc(record('path', 'ignored')) },
        { name: 'last', data: enc('l') },
      ]),
    );
    expect(entries.map((e) => e.name)).toEqual(['from/pax.txt', 'next', 'last']);
  });

  it('accepts an archive that ends without zero blocks at a block boundary', () => {
    const tar = writeTar([{ name: 'a', data: enc('a') }]);
    expect(readTar(tar.subarray(0, 1024)).map((e) => e.name)).toEqual(['a']);
  });

  it('refuses damage with TAR_CORRUPT and says what is wrong', () => {
    const tar = writeTar([{ name: 'a', data: enc('a'.repeat(600)) }]);
    expect(corruptCode(new Uint8Array(0))).toMatch(/^TAR_CORRUPT: .*empty/);
    expect(corruptCode(tar.subarray(0, 100))).toMatch(/^TAR_CORRUPT: .*too short/);
    expect(corruptCode(tar.subarray(0, 800))).toMatch(/^TAR_CORRUPT: .*claims 600 bytes .*truncated/);
    expect(corruptCode(tar.subarray(0, 1200))).toMatch(/^TAR_CORRUPT: .*middle of a block/);
    const bad = tar.slice();
    bad[0] = 'b'.charCodeAt(0);
    expect(corruptCode(bad)).toMatch(/^TAR_CORRUPT: .*checksum/);
    const badSize = writeTar([{ name: 'a', data: enc('a') }]);
    badSize.set(enc('9'), 124); // not octal: checksum recomputed below
    let sum = 256;
    for (let i = 0; i < 512; i++) if (i < 148 || i >= 156) sum += badSize[i]!;
    badSize.set(enc(`${sum.toString(8).padStart(6, '0')}\0 `), 148);
    expect(corruptCode(badSize)).toMatch(/^TAR_CORRUPT: .*size field/);
    expect(corruptCode(writeTar([{ name: 'x', typeflag: 'x', data: enc('garbage') }, { name: 'a' }]))).toMatch(/^TAR_CORRUPT: .*pax header/);
    expect(corruptCode(writeTar([{ name: 'x', typeflag: 'L', data: enc('dangling') }]))).toMatch(/^TAR_CORRUPT: /);
  });
});
