import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { erlangUnavailable, erlBinary, runErlang } from '@hexrepo/test-support/erlang';
import { decodeEtf, encodeEtf, type Etf } from '../src/index.js';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

describe('ETF', () => {
  it('decodes the retire body Mix sends (HEX_SPEC.md §6.3)', () => {
    const body = Buffer.concat([hex('83 74 00000002 6d 00000007'), Buffer.from('message'), hex('6d 0000000f'), Buffer.from('use baz instead'), hex('6d 00000006'), Buffer.from('reason'), hex('6d 0000000a'), Buffer.from('deprecated')]);
    expect(body.length).toBe(64);
    expect(decodeEtf(body)).toEqual({ message: 'use baz instead', reason: 'deprecated' });
  });

  it('encodes maps with binary keys, nil/true/false atoms, integers, floats, lists', () => {
    expect(encodeEtf({ a: null })).toEqual(hex('83 74 00000001 6d 00000001 61 77 03 6e696c'));
    expect(decodeEtf(encodeEtf({ n: 300, neg: -5, big: 2 ** 40, f: 1.5, l: ['x', true, false], e: [] }))).toEqual({ n: 300, neg: -5, big: 2 ** 40, f: 1.5, l: ['x', true, false], e: [] });
  });

  it('refuses compressed, truncated, trailing and too deep terms', () => {
    expect(() => decodeEtf(hex('83 50 00000001 00'))).toThrow(/compressed/);
    expect(() => decodeEtf(hex('83 6d 00000005 61'))).toThrow(/truncated/);
    expect(() => decodeEtf(hex('83 6a 6a'))).toThrow(/trailing/);
    const deep = Buffer.concat([hex('83'), Buffer.from('6c00000001'.repeat(40), 'hex'), hex('6a'), Buffer.from('6a'.repeat(40), 'hex')]);
    expect(() => decodeEtf(deep)).toThrow(/deeper/);
    expect(() => decodeEtf(hex('82 6a'))).toThrow(/version/);
  });

  it('round-trips JSON-like values', () => {
    const leaf: fc.Arbitrary<Etf> = fc.oneof(
      fc.constant(null),
      fc.boolean(),
      fc.integer(),
      fc.double({ noNaN: true, noDefaultInfinity: true }).filter((d) => !Number.isInteger(d)),
      fc.string(),
    );
    const value = fc.letrec<{ v: Etf }>((tie) => ({
      v: fc.oneof({ depthSize: 'small' }, leaf, fc.array(tie('v'), { maxLength: 4 }), fc.dictionary(fc.string(), tie('v'), { maxKeys: 4 })),
    })).v;
    fc.assert(
      fc.property(value, (v) => {
        expect(decodeEtf(encodeEtf(v))).toEqual(v);
      }),
      { numRuns: 200 },
    );
  });

  const unavailable = erlangUnavailable();
  it.skipIf(unavailable)("Erlang's binary_to_term(_, [safe]) reads what hexrepo writes, as hex_core does", () => {
    const bytes = encodeEtf({ username: 'alice', organizations: [], n: 70000, big: 2 ** 40, ok: true, none: null, f: 2.5 });
    const out = runErlang(
      `T = binary_to_term(${erlBinary(bytes)}, [safe]), [maps:get(<<"username">>, T), maps:get(<<"organizations">>, T), maps:get(<<"n">>, T), maps:get(<<"big">>, T), maps:get(<<"ok">>, T), maps:get(<<"none">>, T), maps:get(<<"f">>, T)]`,
    );
    expect(out.replace(/\s+/g, '')).toBe('[<<"alice">>,[],70000,1099511627776,true,nil,2.5]');
  });

  it.skipIf(unavailable)('reads what Erlang writes (term_to_binary)', () => {
    const out = runErlang(`B = term_to_binary(#{<<"reason">> => <<"security">>, <<"message">> => <<"CVE">>, <<"list">> => [1, 2, 300, -1, 1 bsl 70], <<"atom">> => nil, <<"t">> => {1, <<"x">>}}), binary_to_list(B)`);
    const bytes = Uint8Array.from(JSON.parse(out.replace(/\s+/g, '')) as number[]);
    expect(decodeEtf(bytes)).toEqual({ reason: 'security', message: 'CVE', list: [1, 2, 300, -1, 2n ** 70n], atom: null, t: { tuple: [1, 'x'] } });
  });
});
