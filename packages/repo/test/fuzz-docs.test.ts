/**
 * Fuzzing the docs unpacker (`RepoService.putDocs`) over a real folder: gzip'd tars with random
 * and hostile entries, mutated before or after compression, random bytes and decompression bombs.
 * Docs are stored, byte for byte, exactly when every entry path is safe by an independent check;
 * otherwise a HexrepoError with a tarball code is thrown and the docs stored before are untouched.
 * `pnpm fuzz` runs the same property for longer.
 */
import { gunzipSync, gzipSync } from 'node:zlib';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HexrepoError } from '@hexrepo/core';
import { loadPrivateKey } from '@hexrepo/registry';
import { FsStore } from '@hexrepo/storage';
import { readTar, writeTar, type TarWriteEntry } from '@hexrepo/tarball';
import { readFile } from 'node:fs/promises';
import { fuzz, fuzzTimeout, MemoryWatch, mutate, mutations } from '@hexrepo/test-support/fuzz';
import { docsKey, RepoService } from '../src/index.js';
import { fixturePublic, GOLDEN_KEY } from './helpers.js';

/** Small limits: every run stays fast, and the size checks are fuzzed too. */
const LIMITS = { maxTarballSize: 64 * 1024, maxUncompressedSize: 256 * 1024 };
const KEY = docsKey('foo', '0.1.0');
const memory = new MemoryWatch();
let store: FsStore;
let service: RepoService;

beforeAll(async () => {
  store = new FsStore(await fixturePublic(['foo-0.1.0.tar']));
  ({ service } = await RepoService.open({ store, repository: 'acme', privateKey: loadPrivateKey(await readFile(GOLDEN_KEY, 'utf8')), limits: LIMITS }));
  await service.putDocs('foo', '0.1.0', gzipSync(writeTar([{ name: 'index.html', data: Buffer.from('<h1>foo</h1>') }])));
});
afterAll(() => memory.report('docs'));

/**
 * What an independent reader concludes about the archive: `safe` when it unpacks and every path
 * stays inside the docs folder (a directory entry for the root itself, `./`, included); `unsafe` when
 * a path is empty, absolute, holds a NUL, or climbs out;
 * `corrupt` when it does not unpack; `links` for link and special entries, which this check leaves
 * to the unpacker's own rules.
 */
function verdict(bytes: Uint8Array): 'safe' | 'unsafe' | 'corrupt' | 'links' {
  let names: { name: string; type: string }[];
  try {
    names = readTar(new Uint8Array(gunzipSync(bytes, { maxOutputLength: LIMITS.maxUncompressedSize }))).map((e) => ({ name: e.name, type: e.type }));
  } catch {
    return 'corrupt';
  }
  let links = false;
  for (const { name, type } of names) {
    if (name.includes('\0') || /^([/\\]|[A-Za-z]:)/.test(name)) return 'unsafe';
    let depth = 0;
    let segments = 0;
    for (const seg of name.split('/')) {
      if (seg === '' || seg === '.') continue;
      depth += seg === '..' ? -1 : 1;
      segments++;
      if (depth < 0) return 'unsafe';
    }
    // A directory entry naming the root itself (`./`, as `tar -C docs -czf … .` writes, an empty
    // name, `a/..`) creates nothing: package contents accept it too.
    if (depth === 0 && type === 'dir') continue;
    if (segments === 0 || depth === 0) return 'unsafe';
    if (type !== 'file' && type !== 'dir') links = true;
  }
  return links ? 'links' : 'safe';
}

const pathText = fc.oneof(
  { arbitrary: fc.constantFrom('index.html', 'dist/app.js', 'a/b/c.css', './index.html', 'a/./b', '.build', 'Elixir.Foo.html', `${'d'.repeat(90)}/${'f'.repeat(90)}.html`, `${'x'.repeat(150)}.html`), weight: 4 },
  { arbitrary: fc.constantFrom('../x', '../../etc/passwd', 'a/../../b', 'a/b/../../..', '/abs', '\\win', 'C:\\x', 'c:x', '', '.', './', 'a/..', 'nul\0byte', '..'), weight: 2 },
  { arbitrary: fc.array(fc.constantFrom('a', '..', '.', '', 'ü', '日本', 'x y'), { maxLength: 6 }).map((s) => s.join('/')), weight: 2 },
  { arbitrary: fc.string({ unit: 'binary', maxLength: 20 }), weight: 1 },
);

const entry: fc.Arbitrary<TarWriteEntry> = fc
  .record({
    name: pathText,
    kind: fc.constantFrom('file', 'file', 'file', 'dir', 'symlink', 'hardlink', 'fifo', 'device'),
    data: fc.uint8Array({ maxLength: 200 }),
    linkname: pathText,
  })
  .map(({ name, kind, data, linkname }): TarWriteEntry => {
    if (kind === 'file') return { name, data };
    if (kind === 'dir') return { name, type: 'dir' };
    if (kind === 'symlink' || kind === 'hardlink') return { name, type: kind, linkname };
    return { name, type: 'other', typeflag: kind === 'fifo' ? '6' : '3' };
  });

/** A docs upload: a real gzip'd tar, one edited before or after compression, random bytes, or a bomb. */
const upload: fc.Arbitrary<Uint8Array> = fc.oneof(
  { arbitrary: fc.array(entry, { maxLength: 5 }).map((entries) => new Uint8Array(gzipSync(writeTar(entries)))), weight: 6 },
  { arbitrary: fc.tuple(fc.array(entry, { minLength: 1, maxLength: 4 }), mutations(3)).map(([entries, edits]) => new Uint8Array(gzipSync(mutate(writeTar(entries), edits)))), weight: 2 },
  { arbitrary: fc.tuple(fc.array(entry, { minLength: 1, maxLength: 4 }), mutations(3)).map(([entries, edits]) => mutate(gzipSync(writeTar(entries)), edits)), weight: 2 },
  { arbitrary: fc.uint8Array({ maxLength: 600 }), weight: 1 },
  { arbitrary: fc.integer({ min: LIMITS.maxUncompressedSize + 1, max: 2 * LIMITS.maxUncompressedSize }).map((n) => new Uint8Array(gzipSync(writeTar([{ name: 'big.bin', data: new Uint8Array(n) }])))), weight: 1 },
);

describe('fuzz: docs unpacker', () => {
  it(
    'stores docs exactly when every path is safe, else refuses with a HexrepoError and leaves the stored docs alone',
    async () => {
      await fuzz(
        fc.asyncProperty(upload, async (bytes) => {
          memory.sample();
          const before = (await store.get(KEY))!.body;
          const expected = verdict(bytes);
          let refused: HexrepoError | null = null;
          try {
            await service.putDocs('foo', '0.1.0', bytes);
          } catch (err) {
            if (!(err instanceof HexrepoError)) throw new Error(`putDocs threw a non-HexrepoError: ${String(err)}`, { cause: err });
            refused = err;
          }
          const stored = (await store.get(KEY))!.body;
          if (refused) {
            expect(refused.code).toMatch(/^(TAR|CONTENTS)_/);
            expect(Buffer.from(stored).equals(Buffer.from(before))).toBe(true);
            expect(expected, `refused ${refused.code}: ${refused.message}`).not.toBe('safe');
          } else {
            expect(Buffer.from(stored).equals(Buffer.from(bytes))).toBe(true);
            expect(['safe', 'links']).toContain(expected);
          }
        }),
        600,
      );
    },
    fuzzTimeout(),
  );
});
