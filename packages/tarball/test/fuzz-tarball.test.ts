/**
 * Fuzzing the tarball reader: whatever bytes arrive, `parseTarball` returns a package whose every
 * path is safe, or throws a HexrepoError with a tarball/metadata code; never another exception,
 * never an allocation the limits do not bound. Inputs are real tarballs (from mix and rebar3)
 * mutated at every level: raw bytes, one member with its checksum fixed up (so the mutation reaches
 * the metadata and contents readers), members spliced between tarballs, and hand-made tar headers.
 * `pnpm fuzz` runs the same properties for longer (test-support/fuzz.ts).
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { gunzipSync, gzipSync } from 'node:zlib';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { HexrepoError, type ErrorCode } from '@hexrepo/core';
import { fuzz, fuzzTimeout, MemoryWatch, mutate, mutations } from '@hexrepo/test-support/fuzz';
import { createTarball, parseTarball, readTar, safeEntryPath, writeTar, type TarWriteEntry } from '../src/index.js';
import { files, metadataInput } from './arbitraries.js';
import { CORPUS_LIMITS } from './malformed-corpus.js';

const FIXTURES = new URL('../../../test-fixtures/tarballs/', import.meta.url);
const REAL = readdirSync(FIXTURES)
  .filter((f) => f.endsWith('.tar'))
  .sort()
  .map((f) => new Uint8Array(readFileSync(new URL(f, FIXTURES))));
const MEMBERS = REAL.map((t) => new Map(readTar(t).map((e) => [e.name, Uint8Array.from(e.data)])));
const member = (i: number, name: string): Uint8Array => MEMBERS[i % MEMBERS.length]!.get(name)!;

/** Small limits keep every run fast; the size checks themselves are part of what is fuzzed. */
const LIMITS = { ...CORPUS_LIMITS, maxMetadataSize: 16 * 1024 };
const memory = new MemoryWatch();
afterAll(() => memory.report('tarball'));

const enc = (text: string): Uint8Array => new Uint8Array(Buffer.from(text, 'latin1'));

/** The outer tar around three member bodies, with a CHECKSUM that matches them. */
function wrap(version: Uint8Array, metadata: Uint8Array, contents: Uint8Array): Uint8Array {
  const checksum = createHash('sha256').update(version).update(metadata).update(contents).digest('hex').toUpperCase();
  return writeTar([
    { name: 'VERSION', data: version },
    { name: 'CHECKSUM', data: enc(checksum) },
    { name: 'metadata.config', data: metadata },
    { name: 'contents.tar.gz', data: contents },
  ]);
}

const isTarballCode = (code: ErrorCode): boolean => /^(TAR|CONTENTS|TERM|METADATA)_/.test(code);

/**
 * The property every input must satisfy: a parse gives only safe, normalised paths and the
 * facts the metadata names; a refusal is a HexrepoError with a tarball code and a message.
 */
function parseOrRefuse(bytes: Uint8Array): void {
  memory.sample();
  let parsed;
  try {
    parsed = parseTarball(bytes, { limits: LIMITS });
  } catch (err) {
    if (!(err instanceof HexrepoError)) throw new Error(`parseTarball threw a non-HexrepoError: ${String(err)}`, { cause: err });
    expect(err.code, err.message).toSatisfy(isTarballCode);
    expect(err.message.length).toBeGreaterThan(0);
    return;
  }
  for (const file of parsed.files) {
    expect(safeEntryPath(file.path, { allowRoot: file.type === 'dir' })).toBe(file.path);
    expect(['file', 'dir', 'symlink', 'hardlink']).toContain(file.type);
  }
  expect(parsed.facts.name).toBe(parsed.metadata.name);
  expect(parsed.facts.version).toBe(parsed.metadata.version);
}

/** A real tarball, or one built from arbitrary metadata and files. */
const seedTarball: fc.Arbitrary<Uint8Array> = fc.oneof(
  { arbitrary: fc.nat({ max: REAL.length - 1 }).map((i) => REAL[i]!), weight: 3 },
  { arbitrary: fc.tuple(metadataInput, files).map(([meta, input]) => createTarball(meta, input).tarball), weight: 1 },
);

describe('fuzz: parseTarball', () => {
  it(
    'mutated real tarballs (bit flips, truncations, inserted, duplicated and spliced bytes)',
    async () => {
      await fuzz(
        fc.property(seedTarball, mutations(), (tarball, edits) => parseOrRefuse(mutate(tarball, edits, REAL))),
        600,
      );
    },
    fuzzTimeout(),
  );

  it(
    'one member mutated and the checksum fixed up, so the mutation reaches the metadata and contents readers',
    async () => {
      const target = fc.constantFrom('version', 'metadata', 'contents-gz', 'contents-tar');
      await fuzz(
        fc.property(fc.nat(), target, mutations(3), (i, which, edits) => {
          const version = member(i, 'VERSION');
          const metadata = member(i, 'metadata.config');
          const contentsGz = member(i, 'contents.tar.gz');
          const donors = MEMBERS.map((m) => m.get('metadata.config')!);
          switch (which) {
            case 'version':
              return parseOrRefuse(wrap(mutate(version, edits), metadata, contentsGz));
            case 'metadata':
              return parseOrRefuse(wrap(version, mutate(metadata, edits, donors), contentsGz));
            case 'contents-gz':
              return parseOrRefuse(wrap(version, metadata, mutate(contentsGz, edits)));
            case 'contents-tar': {
              const tar = new Uint8Array(gunzipSync(contentsGz));
              return parseOrRefuse(wrap(version, metadata, gzipSync(mutate(tar, edits))));
            }
          }
        }),
        600,
      );
    },
    fuzzTimeout(),
  );

  it(
    'members spliced between tarballs: renamed, repeated, missing, of other types, in any order',
    async () => {
      const names = fc.constantFrom('VERSION', 'CHECKSUM', 'metadata.config', 'contents.tar.gz', 'README.md', './VERSION', 'x/../CHECKSUM', '', 'metadata.config\0');
      const entry = fc.record({
        name: names,
        source: fc.nat(),
        part: fc.constantFrom('VERSION', 'CHECKSUM', 'metadata.config', 'contents.tar.gz'),
        type: fc.constantFrom('file', 'file', 'file', 'dir', 'symlink', 'hardlink', 'other'),
      });
      await fuzz(
        fc.property(fc.array(entry, { maxLength: 6 }), fc.boolean(), (entries, fixChecksum) => {
          const list: TarWriteEntry[] = entries.map((e) => ({ name: e.name, type: e.type, ...(e.type === 'other' ? { typeflag: '6' } : {}), data: e.type === 'file' ? member(e.source, e.part) : new Uint8Array(0), linkname: 'VERSION' }));
          if (fixChecksum) {
            // Whatever the three hashed members are, CHECKSUM matches them, so later checks run.
            const pick = (name: string): Uint8Array => list.find((e) => e.name === name)?.data ?? new Uint8Array(0);
            const sum = createHash('sha256').update(pick('VERSION')).update(pick('metadata.config')).update(pick('contents.tar.gz')).digest('hex');
            for (const e of list) if (e.name === 'CHECKSUM' && e.type === 'file') e.data = enc(sum);
          }
          parseOrRefuse(writeTar(list));
        }),
        400,
      );
    },
    fuzzTimeout(),
  );

  it(
    'hand-made tar headers (any type, size, name, magic, pax and GNU long names) as the outer archive and as contents.tar.gz',
    async () => {
      await fuzz(
        fc.property(rawTar, fc.boolean(), fc.nat(), (tar, asContents, i) => {
          if (!asContents) return parseOrRefuse(tar);
          parseOrRefuse(wrap(member(i, 'VERSION'), member(i, 'metadata.config'), gzipSync(tar)));
        }),
        800,
      );
    },
    fuzzTimeout(),
  );

  it(
    'readTar alone: any header sequence is read or refused with TAR_CORRUPT, and entries stay inside the input',
    async () => {
      await fuzz(
        fc.property(rawTar, (tar) => {
          memory.sample();
          let entries;
          try {
            entries = readTar(tar);
          } catch (err) {
            if (!(err instanceof HexrepoError)) throw err;
            expect(err.code).toBe('TAR_CORRUPT');
            return;
          }
          for (const e of entries) {
            // data is a view of the input: a declared size never allocates beyond what was sent
            expect(e.data.buffer).toBe(tar.buffer);
            expect(e.data.byteOffset + e.data.byteLength).toBeLessThanOrEqual(tar.byteLength);
          }
        }),
        1000,
      );
    },
    fuzzTimeout(),
  );

  it(
    'huge declared sizes and decompression bombs are refused by the limits',
    async () => {
      const bomb = fc.integer({ min: LIMITS.maxUncompressedSize + 1, max: 4 * LIMITS.maxUncompressedSize });
      await fuzz(
        fc.property(bomb, fc.nat(), (size, i) => {
          // zeros compress about 1000:1, so the tarball is small and the contents are not
          const tar = writeTar([{ name: 'priv/zeros.bin', data: new Uint8Array(size) }]);
          const bytes = wrap(member(i, 'VERSION'), member(i, 'metadata.config'), gzipSync(tar));
          let code: string | undefined;
          try {
            parseTarball(bytes, { limits: LIMITS });
          } catch (err) {
            code = (err as HexrepoError).code;
          }
          expect(code).toBe('TAR_UNCOMPRESSED_TOO_BIG');
        }),
        10,
      );
    },
    fuzzTimeout(),
  );
});

/** A number field as tar writes it, or some way it can be broken. */
const numberField = (width: number, value: number): fc.Arbitrary<Uint8Array> =>
  fc.oneof(
    {
      arbitrary: fc.constant(
        enc(
          `${value
            .toString(8)
            .padStart(width - 1, '0')
            .slice(-(width - 1))}\0`,
        ),
      ),
      weight: 6,
    },
    {
      arbitrary: fc.nat().map((n) =>
        enc(
          `${n
            .toString(8)
            .padStart(width - 1, '0')
            .slice(-(width - 1))}\0`,
        ),
      ),
      weight: 1,
    },
    // GNU base-256: up to 2^(8*width-1), far beyond any file
    { arbitrary: fc.uint8Array({ minLength: width - 1, maxLength: width - 1 }).map((rest) => Uint8Array.of(0x80 | (rest[0]! & 0x7f), ...rest.subarray(1), 0xff)), weight: 1 },
    { arbitrary: fc.uint8Array({ minLength: width, maxLength: width }), weight: 1 },
    { arbitrary: fc.constantFrom(enc(' '.repeat(width)), new Uint8Array(width), enc('9'.repeat(width)), enc(`${'7'.repeat(width - 1)}\0`)), weight: 1 },
  );

const pathText = fc.oneof(
  fc.constantFrom('VERSION', 'CHECKSUM', 'metadata.config', 'contents.tar.gz', 'lib/a.ex', 'mix.exs', '../escape', '/etc/passwd', 'a/../../b', './x', 'C:\\win', 'a//b/', '.', '', 'dir/', 'link', 'a\0b'),
  fc.string({ unit: 'binary', maxLength: 30 }),
  fc.string({ maxLength: 8 }).map((s) => `${'d/'.repeat(60)}${s}`),
);

interface RawEntry {
  name: string;
  typeflag: number;
  mode: Uint8Array;
  sizeOverride: Uint8Array | null;
  linkname: string;
  magic: 'posix' | 'gnu' | 'none';
  prefix: string;
  data: Uint8Array;
  checksum: 'good' | 'signed' | 'bad';
}

const paxBody = fc.oneof(
  fc.array(fc.tuple(fc.constantFrom('path', 'linkpath', 'size', 'mtime', 'comment'), fc.oneof(pathText, fc.constantFrom('99999999999999999999', '-1', '1e3', '0', '512')))).map((records) =>
    enc(
      records
        .map(([k, v]) => {
          const body = ` ${k}=${v}\n`;
          let len = body.length + 1;
          while (String(len).length + body.length !== len) len = String(len).length + body.length;
          return `${len}${body}`;
        })
        .join(''),
    ),
  ),
  fc.uint8Array({ maxLength: 64 }),
  fc.constantFrom(enc('999999999 path=x\n'), enc('5 a=\n'), enc('6 =b\n'), enc('0 path=x\n')),
);

const rawEntry: fc.Arbitrary<RawEntry> = fc
  .record({
    name: pathText,
    typeflag: fc.oneof(fc.constantFrom(...'0\u000012345677LKxg'.split('').map((c) => c.charCodeAt(0))), fc.integer({ min: 0, max: 255 })),
    mode: numberField(8, 0o644),
    sizeOverride: fc.oneof({ arbitrary: fc.constant(null), weight: 8 }, numberField(12, 0)),
    linkname: pathText,
    magic: fc.constantFrom('posix', 'posix', 'gnu', 'none'),
    prefix: fc.oneof(fc.constant(''), pathText),
    data: fc.oneof(fc.uint8Array({ maxLength: 1100 }), paxBody),
    checksum: fc.oneof({ arbitrary: fc.constant('good'), weight: 18 }, fc.constant('signed'), fc.constant('bad')),
  })
  .map((r): RawEntry => ({
    name: r.name,
    typeflag: r.typeflag,
    mode: r.mode,
    sizeOverride: r.sizeOverride,
    linkname: r.linkname,
    magic: r.magic as RawEntry['magic'],
    prefix: r.prefix,
    data: r.data,
    checksum: r.checksum as RawEntry['checksum'],
  }));

/** Serialise hand-made headers, checksums fixed up (or not), with or without the end blocks. */
const rawTar: fc.Arbitrary<Uint8Array> = fc.tuple(fc.array(rawEntry, { maxLength: 5 }), fc.constantFrom(0, 1, 2, 2, 2)).map(([entries, endBlocks]) => {
  const parts: Uint8Array[] = [];
  for (const e of entries) {
    const block = new Uint8Array(512);
    block.set(Buffer.from(e.name, 'utf8').subarray(0, 100), 0);
    block.set(e.mode.subarray(0, 8), 100);
    block.set(enc('0000000\0'), 108);
    block.set(enc('0000000\0'), 116);
    block.set((e.sizeOverride ?? enc(`${e.data.length.toString(8).padStart(11, '0')}\0`)).subarray(0, 12), 124);
    block.set(enc('07346545000\0'), 136);
    block[156] = e.typeflag;
    block.set(Buffer.from(e.linkname, 'utf8').subarray(0, 100), 157);
    if (e.magic === 'posix') block.set(enc('ustar\u000000'), 257);
    if (e.magic === 'gnu') block.set(enc('ustar  \0'), 257);
    block.set(Buffer.from(e.prefix, 'utf8').subarray(0, 155), 345);
    let sum = 8 * 32;
    let signed = 8 * 32;
    for (let i = 0; i < 512; i++) {
      if (i >= 148 && i < 156) continue;
      sum += block[i]!;
      signed += block[i]! > 127 ? block[i]! - 256 : block[i]!;
    }
    const stored = e.checksum === 'good' ? sum : e.checksum === 'signed' ? signed : sum + 1;
    block.set(enc(`${(stored < 0 ? 0 : stored).toString(8).padStart(6, '0')}\0 `), 148);
    parts.push(block, e.data, new Uint8Array((512 - (e.data.length % 512)) % 512));
  }
  parts.push(new Uint8Array(512 * endBlocks));
  return new Uint8Array(Buffer.concat(parts));
});
