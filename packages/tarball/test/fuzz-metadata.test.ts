/**
 * Fuzzing the metadata.config reader: random bytes, soups of Erlang tokens, and real and generated
 * configs with bytes and tokens edited in. `parseConsult` returns terms that print and read back
 * the same, or throws TERM_*; `parseMetadata` adds only METADATA_* refusals. Nothing else, and no
 * stack overflow however deep the nesting. `pnpm fuzz` runs the same properties for longer.
 */
import { readdirSync, readFileSync } from 'node:fs';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { HexrepoError } from '@hexrepo/core';
import { concat, fuzz, fuzzTimeout, MemoryWatch, mutate, mutations } from '@hexrepo/test-support/fuzz';
import { metadataToTerms, parseConsult, parseMetadata, printConsult, readTar, type Term } from '../src/index.js';
import { metadataInput } from './arbitraries.js';

const FIXTURES = new URL('../../../test-fixtures/tarballs/', import.meta.url);
/** metadata.config of every real tarball (mix and rebar3). */
const REAL = readdirSync(FIXTURES)
  .filter((f) => f.endsWith('.tar'))
  .sort()
  .map((f) => Uint8Array.from(readTar(new Uint8Array(readFileSync(new URL(f, FIXTURES)))).find((e) => e.name === 'metadata.config')!.data));

const LIMITS = { maxMetadataSize: 64 * 1024, maxTermDepth: 32 };
const memory = new MemoryWatch();
afterAll(() => memory.report('metadata.config'));

const enc = (text: string): Uint8Array => new Uint8Array(Buffer.from(text, 'utf8'));

/**
 * The property: terms that print canonically and read back as themselves, or a TERM_* refusal;
 * as metadata, additionally a METADATA_* refusal.
 */
function readOrRefuse(bytes: Uint8Array): void {
  memory.sample();
  let terms: Term[] | undefined;
  try {
    terms = parseConsult(bytes, LIMITS);
  } catch (err) {
    if (!(err instanceof HexrepoError)) throw new Error(`parseConsult threw a non-HexrepoError: ${String(err)}`, { cause: err });
    expect(err.code, err.message).toMatch(/^TERM_/);
  }
  if (terms !== undefined) expect(parseConsult(printConsult(terms), LIMITS)).toEqual(terms);
  try {
    parseMetadata(bytes, LIMITS);
  } catch (err) {
    if (!(err instanceof HexrepoError)) throw new Error(`parseMetadata threw a non-HexrepoError: ${String(err)}`, { cause: err });
    expect(err.code, err.message).toMatch(terms === undefined ? /^TERM_/ : /^METADATA_/);
  }
}

/** Pieces of Erlang term syntax, valid and not, that the reader has to tell apart. */
const TOKENS = [
  '{',
  '}',
  '[',
  ']',
  '<<',
  '>>',
  '#{',
  '=>',
  ':=',
  ',',
  '.',
  '|',
  '"',
  "'",
  '\\',
  '$a',
  '%',
  '/utf8',
  '/binary',
  ':',
  '<<"',
  '">>',
  '{<<"name">>,',
  '{<<"version">>,<<"1.0.0">>}.',
  '{<<"app">>,<<"x">>}.',
  '[]',
  '{}',
  '#{}',
  '<<>>',
  'true',
  'nil',
  'fun',
  'end',
  'Var',
  '_',
  'a@b',
  'foo(',
  'erlang:halt()',
  '16#FF',
  '2#101',
  '1.5',
  '1e9',
  '-',
  '+',
  '0',
  '255',
  '256',
  '-1',
  '99999999999999999999999999',
  '\\x{1F600}',
  '\\377',
  '\\^A',
  '\\e',
  '\n',
  ' ',
  '\t',
  '\r\n',
  'é',
  '日本',
  '\u{1F600}',
  '\u0000',
  '<<1,2,3>>',
  '<<"a"/utf8>>',
  '<<300>>',
  '<<16#D800/utf8>>',
];
const token = fc.oneof({ arbitrary: fc.constantFrom(...TOKENS), weight: 6 }, fc.string({ unit: 'binary', maxLength: 6 }), fc.stringMatching(/^[a-z][a-z0-9_]{0,10}$/));
const tokenSoup = fc.array(token, { maxLength: 40 }).map((parts) => enc(parts.join('')));

/** A valid config: a real one, or one printed from arbitrary metadata. */
const validConfig: fc.Arbitrary<Uint8Array> = fc.oneof({ arbitrary: fc.constantFrom(...REAL), weight: 2 }, { arbitrary: metadataInput.map((meta) => enc(printConsult(metadataToTerms(meta)))), weight: 1 });

/** Tokens spliced into a config at random offsets. */
const withTokens = fc.tuple(validConfig, fc.array(fc.tuple(fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), token), { minLength: 1, maxLength: 4 })).map(([config, inserts]) => {
  let bytes = config;
  for (const [at, t] of inserts) {
    const i = Math.floor(at * bytes.length);
    bytes = concat(bytes.subarray(0, i), enc(t), bytes.subarray(i));
  }
  return bytes;
});

describe('fuzz: metadata.config', () => {
  it(
    'random bytes',
    async () => {
      await fuzz(fc.property(fc.uint8Array({ maxLength: 300 }), readOrRefuse), 800);
    },
    fuzzTimeout(),
  );

  it(
    'soups of Erlang tokens',
    async () => {
      await fuzz(fc.property(tokenSoup, readOrRefuse), 1000);
    },
    fuzzTimeout(),
  );

  it(
    'valid configs with bytes flipped, cut, duplicated or spliced between configs',
    async () => {
      await fuzz(
        fc.property(validConfig, mutations(), (config, edits) => readOrRefuse(mutate(config, edits, REAL))),
        700,
      );
    },
    fuzzTimeout(),
  );

  it(
    'valid configs with tokens inserted',
    async () => {
      await fuzz(fc.property(withTokens, readOrRefuse), 700);
    },
    fuzzTimeout(),
  );

  it(
    'nesting of any depth is refused as TERM_TOO_DEEP, never a stack overflow',
    async () => {
      const opener = fc.constantFrom('[', '{', '#{<<"k">>=>', '[{', '{<<"name">>,');
      await fuzz(
        fc.property(opener, fc.integer({ min: LIMITS.maxTermDepth + 1, max: 200_000 }), fc.boolean(), (open, depth, closed) => {
          const closing = closed
            ? [...open.replace(/#\{<<"k">>=>/g, '{').replace(/<<"name">>,/g, '')]
                .reverse()
                .map((c) => ({ '[': ']', '{': '}' })[c]!)
                .join('')
            : '';
          const bytes = enc(`${open.repeat(depth)}1${closing.repeat(depth)}.`);
          let code: string | undefined;
          try {
            parseConsult(bytes, { ...LIMITS, maxMetadataSize: bytes.length });
          } catch (err) {
            if (!(err instanceof HexrepoError)) throw err;
            code = err.code;
          }
          expect(code).toBe('TERM_TOO_DEEP');
        }),
        20,
      );
    },
    fuzzTimeout(),
  );
});
