/**
 * Fuzzing the ETF decoder the API reads retire bodies with: random bytes, valid terms with bytes
 * edited, deep nesting and huge declared lengths. `decodeEtf` returns plain data no larger than its
 * input, or throws its one typed error (USAGE); never another exception, never an allocation the
 * body size does not bound. `pnpm fuzz` runs the same properties for longer.
 */
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { HexrepoError } from '@hexrepo/core';
import { concat, fuzz, fuzzTimeout, MemoryWatch, mutate, mutations } from '@hexrepo/test-support/fuzz';
import { decodeEtf, encodeEtf, type Etf } from '../src/index.js';

const memory = new MemoryWatch();
afterAll(() => memory.report('etf'));

/** Values of every shape the decoder returns (tuples and bigints included). */
const { value } = fc.letrec<{ value: Etf }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small' },
    fc.constantFrom<Etf>(null, true, false),
    fc.integer(),
    fc.bigInt({ min: -(2n ** 300n), max: 2n ** 300n }),
    fc.double({ noNaN: true, noDefaultInfinity: true }),
    fc.string({ unit: 'binary', maxLength: 20 }),
    fc.uint8Array({ maxLength: 20 }),
    fc.array(tie('value'), { maxLength: 4 }),
    fc.array(tie('value'), { maxLength: 4 }).map((tuple): Etf => ({ tuple })),
    fc.dictionary(fc.oneof(fc.string({ maxLength: 8 }), fc.constantFrom('__proto__', 'constructor', 'toString', 'tuple')), tie('value'), { maxKeys: 4 }),
  ),
}));

/** Nodes of a decoded value (each needs at least one input byte). */
function nodes(v: Etf): number {
  if (Array.isArray(v)) return 1 + v.reduce<number>((n, x) => n + nodes(x), 0);
  if (v !== null && typeof v === 'object' && !(v instanceof Uint8Array)) {
    const items = 'tuple' in v && Array.isArray(v.tuple) && Object.keys(v).length === 1 ? v.tuple : Object.values(v);
    return 1 + items.reduce<number>((n, x) => n + nodes(x), 0);
  }
  return 1;
}

/** The property: plain data bounded by the input, or a USAGE HexrepoError. */
function decodeOrRefuse(bytes: Uint8Array): void {
  memory.sample();
  let decoded: Etf;
  try {
    decoded = decodeEtf(bytes);
  } catch (err) {
    if (!(err instanceof HexrepoError)) throw new Error(`decodeEtf threw a non-HexrepoError: ${String(err)}`, { cause: err });
    expect(err.code).toBe('USAGE');
    expect(err.message).toMatch(/^the request body is not a valid Erlang term: /);
    return;
  }
  expect(nodes(decoded)).toBeLessThanOrEqual(bytes.length);
  // maps are built without a prototype: a "__proto__" key is data, never an object's prototype
  expect(({} as Record<string, unknown>).polluted).toBeUndefined();
}

const u32 = (n: number): Uint8Array => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return new Uint8Array(b);
};

describe('fuzz: decodeEtf', () => {
  it(
    'random bytes after the version byte, and with any first byte',
    async () => {
      await fuzz(
        fc.property(fc.uint8Array({ maxLength: 200 }), fc.boolean(), (bytes, versioned) => decodeOrRefuse(versioned ? concat(Uint8Array.of(131), bytes) : bytes)),
        2000,
      );
    },
    fuzzTimeout(),
  );

  it(
    'valid terms with bytes flipped, cut, inserted, duplicated or spliced',
    async () => {
      await fuzz(
        fc.property(value, mutations(), (v, edits) => decodeOrRefuse(mutate(encodeEtf(v), edits))),
        2000,
      );
    },
    fuzzTimeout(),
  );

  it(
    'nesting of any depth is refused past the limit, never a stack overflow',
    async () => {
      const level = fc.constantFrom(
        Uint8Array.of(108, 0, 0, 0, 1), // a list of one
        Uint8Array.of(104, 1), // a tuple of one
        Uint8Array.of(116, 0, 0, 0, 1, 109, 0, 0, 0, 1, 107), // a map with one key "k"
      );
      await fuzz(
        fc.property(fc.array(level, { minLength: 33, maxLength: 5000 }), (levels) => {
          const body = concat(Uint8Array.of(131), ...levels, Uint8Array.of(106), new Uint8Array(levels.length).fill(106));
          expect(() => decodeEtf(body)).toThrow(/nested deeper than 32/);
        }),
        100,
      );
    },
    fuzzTimeout(),
  );

  it(
    'declared lengths up to 4 GiB (binaries, strings, atoms, lists, tuples, maps, bignums) never allocate beyond the body',
    async () => {
      const header = fc.oneof(
        fc.integer({ min: 0, max: 0xffffffff }).map((n) => concat(Uint8Array.of(109), u32(n))), // binary
        fc.integer({ min: 0, max: 0xffffffff }).map((n) => concat(Uint8Array.of(108), u32(n))), // list
        fc.integer({ min: 0, max: 0xffffffff }).map((n) => concat(Uint8Array.of(116), u32(n))), // map
        fc.integer({ min: 0, max: 0xffffffff }).map((n) => concat(Uint8Array.of(105), u32(n))), // large tuple
        fc.integer({ min: 0, max: 0xffffffff }).map((n) => concat(Uint8Array.of(111), u32(n), Uint8Array.of(0))), // large bignum
        fc.integer({ min: 0, max: 0xffff }).map((n) => Uint8Array.of(107, n >> 8, n & 255)), // string
        fc.integer({ min: 0, max: 0xffff }).map((n) => Uint8Array.of(118, n >> 8, n & 255)), // atom
      );
      await fuzz(
        fc.property(header, fc.uint8Array({ maxLength: 64 }), (head, tail) => decodeOrRefuse(concat(Uint8Array.of(131), head, tail))),
        2000,
      );
    },
    fuzzTimeout(),
  );

  it(
    'bodies over the size limit are refused before they are read',
    async () => {
      await fuzz(
        fc.property(fc.integer({ min: 1, max: 4096 }), (maxBytes) => {
          const body = concat(Uint8Array.of(131, 109), u32(maxBytes), new Uint8Array(maxBytes));
          expect(() => decodeEtf(body, { maxBytes })).toThrow(/larger than/);
        }),
        100,
      );
    },
    fuzzTimeout(),
  );
});
