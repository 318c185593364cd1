/** The metadata.config term reader and writer, feature by feature, and every refusal. */
import { describe, expect, it } from 'vitest';
import { HexrepoError, type ErrorCode } from '@hexrepo/core';
import { parseConsult, printConsult, printTerm, type Term } from '../src/index.js';

const bin = (text: string): Term => ({ type: 'binary', value: new Uint8Array(Buffer.from(text, 'utf8')) });
const bytes = (...b: number[]): Term => ({ type: 'binary', value: Uint8Array.from(b) });
const int = (n: number | bigint): Term => ({ type: 'integer', value: BigInt(n) });
const atom = (value: string): Term => ({ type: 'atom', value });
const one = (text: string): Term => {
  const terms = parseConsult(text);
  expect(terms).toHaveLength(1);
  return terms[0]!;
};

function refusal(text: string | Uint8Array, limits: Parameters<typeof parseConsult>[1] = {}): HexrepoError {
  try {
    parseConsult(text, limits);
  } catch (err) {
    if (err instanceof HexrepoError) return err;
    throw err;
  }
  throw new Error(`parsed without error: ${String(text)}`);
}

describe('parseConsult: accepted syntax', () => {
  it('reads a sequence of forms', () => {
    expect(parseConsult('{<<"name">>,<<"foo">>}.\n{<<"version">>,<<"1.0.0">>}.\n')).toEqual([
      { type: 'tuple', items: [bin('name'), bin('foo')] },
      { type: 'tuple', items: [bin('version'), bin('1.0.0')] },
    ]);
    expect(parseConsult('')).toEqual([]);
    expect(parseConsult('  \n\t ')).toEqual([]);
  });

  it('builds the same bytes from all three binary spellings', () => {
    const expected = bytes(66, 195, 164, 114);
    expect(one('<<"Bär"/utf8>>.')).toEqual(expected);
    expect(one('<<66,195,164,114>>.')).toEqual(expected);
    expect(one('<< 66 , 195,164 ,114 >>.')).toEqual(expected);
    // latin-1 spelling: one byte per character
    expect(one('<<"B\u00c3\u00a4r">>.')).toEqual(expected);
    expect(one('<<"Bär">>.')).toEqual(bytes(66, 0xe4, 114));
  });

  it('reads empty binaries, mixed segments and /utf8 code points', () => {
    expect(one('<<>>.')).toEqual(bytes());
    expect(one('<< >>.')).toEqual(bytes());
    expect(one('<<"">>.')).toEqual(bytes());
    expect(one('<<"ab",1,"c"/utf8,228/utf8>>.')).toEqual(bytes(97, 98, 1, 99, 195, 164));
  });

  it('reads strings as char lists, with hex_core escapes', () => {
    expect(one('"abc".')).toEqual({ type: 'string', value: 'abc' });
    expect(one('"\\n\\r\\t\\v\\b\\f\\e\\s\\d".')).toEqual({ type: 'string', value: '\n\r\t\v\b\f\x1b \x7f' });
    expect(one('"\\101\\1012".')).toEqual({ type: 'string', value: 'AA2' });
    expect(one('"\\^a\\^Z".')).toEqual({ type: 'string', value: '\x01\x1a' });
    expect(one('"\\"\\\\\\q".')).toEqual({ type: 'string', value: '"\\q' });
    // not understood by hex_core: \x is just x, a short octal is the digit itself
    expect(one('"\\x{41}".')).toEqual({ type: 'string', value: 'x{41}' });
    expect(one('"\\0".')).toEqual({ type: 'string', value: '0' });
    // backslash before white space drops both
    expect(one('"a\\\nb".')).toEqual({ type: 'string', value: 'ab' });
    expect(one('"multi\nline".')).toEqual({ type: 'string', value: 'multi\nline' });
    expect(one('<<"a\\"b">>.')).toEqual(bin('a"b'));
  });

  it('reads atoms, bare and quoted', () => {
    expect(parseConsult('true. false. nil. undefined. foo_Bar@1.')).toEqual([atom('true'), atom('false'), atom('nil'), atom('undefined'), atom('foo_Bar@1')]);
    expect(one("'Hello world'.")).toEqual(atom('Hello world'));
    expect(one("'fun'.")).toEqual(atom('fun'));
    expect(one("'it\\'s'.")).toEqual(atom("it's"));
    expect(one("''.")).toEqual(atom(''));
  });

  it('reads integers, negative and big', () => {
    expect(parseConsult('0. 42. -7. - 7. +3. 123456789012345678901234567890.')).toEqual([int(0), int(42), int(-7), int(-7), int(3), int(123456789012345678901234567890n)]);
  });

  it('reads lists, tuples and maps', () => {
    expect(one('[].')).toEqual({ type: 'list', items: [] });
    expect(one('{}.')).toEqual({ type: 'tuple', items: [] });
    expect(one('#{}.')).toEqual({ type: 'map', entries: [] });
    expect(one('[1, [2], {3, <<"x">>}].')).toEqual({
      type: 'list',
      items: [int(1), { type: 'list', items: [int(2)] }, { type: 'tuple', items: [int(3), bin('x')] }],
    });
    expect(one('#{<<"a">> => 1, b=>[c]}.')).toEqual({
      type: 'map',
      entries: [
        [bin('a'), int(1)],
        [atom('b'), { type: 'list', items: [atom('c')] }],
      ],
    });
  });

  it('decodes input that is not UTF-8 as latin-1', () => {
    // "é" as one latin-1 byte inside a string: not valid UTF-8
    const input = Uint8Array.from([...Buffer.from('{<<"d">>,"caf'), 0xe9, ...Buffer.from('"}.')]);
    expect(parseConsult(input)).toEqual([{ type: 'tuple', items: [bin('d'), { type: 'string', value: 'café' }] }]);
    expect(parseConsult(Buffer.from('<<"é">>.', 'utf8'))).toEqual([bytes(0xe9)]);
  });

  it('treats control characters as white space, like hex_core', () => {
    expect(parseConsult('\0\x01a.\r\n')).toEqual([atom('a')]);
  });
});

describe('parseConsult: refusals', () => {
  const cases: [string, string, ErrorCode, RegExp][] = [
    ['float', '{<<"x">>, 1.5}.', 'TERM_UNSUPPORTED', /floats are not allowed/],
    ['comment', '% hello\n{a, b}.', 'TERM_UNSUPPORTED', /comments/],
    ['trailing comment', '{a, b}. % note', 'TERM_UNSUPPORTED', /comments/],
    ['variable', '{a, Foo}.', 'TERM_UNSUPPORTED', /variables/],
    ['underscore variable', '{a, _}.', 'TERM_UNSUPPORTED', /variables/],
    ['fun', '{a, fun() -> ok end}.', 'TERM_UNSUPPORTED', /keyword/],
    ['function call', '{a, os:cmd("rm")}.', 'TERM_UNSUPPORTED', /function call/],
    ['local call', '{a, list_to_atom("x")}.', 'TERM_UNSUPPORTED', /function call/],
    ['char literal', '{a, $a}.', 'TERM_UNSUPPORTED', /character literals/],
    ['based integer', '{a, 16#FF}.', 'TERM_UNSUPPORTED', /based integers/],
    ['improper list', '[a | b].', 'TERM_UNSUPPORTED', /improper lists/],
    ['record', '#rec{a = 1}.', 'TERM_UNSUPPORTED', /records/],
    ['byte out of range', '<<256>>.', 'TERM_UNSUPPORTED', /not a byte/],
    ['negative byte', '<<-1>>.', 'TERM_UNSUPPORTED', /not a byte/],
    ['wide char without /utf8', '<<"€">>.', 'TERM_UNSUPPORTED', /\/utf8/],
    ['other segment type', '<<"a"/binary>>.', 'TERM_UNSUPPORTED', /\/binary is not supported/],
    ['bad code point', '<<55296/utf8>>.', 'TERM_UNSUPPORTED', /code point/],
    ['long atom', `${'a'.repeat(256)}.`, 'TERM_UNSUPPORTED', /atom longer than 255/],
    ['missing dot', '{a, b}', 'TERM_SYNTAX', /expected '\.' to end the term but found the end of the file/],
    ['missing comma', '{a b}.', 'TERM_SYNTAX', /expected ',' or '}'/],
    ['trailing comma', '[a,].', 'TERM_SYNTAX', /expected a term but found "]"/],
    ['unclosed tuple', '{a, b.', 'TERM_SYNTAX', /expected ',' or '}'/],
    ['unclosed string', '"abc.', 'TERM_SYNTAX', /never closed/],
    ['unclosed binary', '<<"abc".', 'TERM_SYNTAX', /',' or '>>'/],
    ['single <', '<a>.', 'TERM_SYNTAX', /'<<'/],
    ['map without arrow', '#{a, b}.', 'TERM_SYNTAX', /'=>'/],
    ['map with :=', '#{a := b}.', 'TERM_SYNTAX', /'=>'/],
    ['stray character', '{a, ;}.', 'TERM_SYNTAX', /expected a term but found ";"/],
    ['pid', '<0.1.0>.', 'TERM_SYNTAX', /'<<'/],
    ['integer glued to a name', '12ab.', 'TERM_SYNTAX', /separator/],
    ['float exponent', '1e5.', 'TERM_SYNTAX', /separator/],
    ['sign without digits', '-a.', 'TERM_SYNTAX', /digits after the sign/],
  ];
  it.each(cases)('%s', (_name, text, code, message) => {
    const err = refusal(text);
    expect(err.code).toBe(code);
    expect(err.message).toMatch(message);
    expect(err.message).toMatch(/^line \d+, column \d+: /);
  });

  it('reports the line and column of the problem', () => {
    const err = refusal('{<<"a">>,1}.\n{<<"b">>,\n   2.5}.');
    expect(err.code).toBe('TERM_UNSUPPORTED');
    expect(err.details).toMatchObject({ line: 3, column: 4 });
    expect(err.message).toMatch(/^line 3, column 4: /);
  });

  it('bounds the nesting depth', () => {
    const deep = (n: number): string => `${'['.repeat(n)}${']'.repeat(n)}.`;
    expect(parseConsult(deep(32))).toHaveLength(1);
    const err = refusal(deep(33));
    expect(err.code).toBe('TERM_TOO_DEEP');
    expect(err.message).toMatch(/nested more than 32 levels/);
    expect(refusal(deep(5), { maxTermDepth: 4 }).code).toBe('TERM_TOO_DEEP');
    expect(refusal('#{a => {[x]}}.', { maxTermDepth: 2 }).code).toBe('TERM_TOO_DEEP');
    // a hostile nesting far beyond the limit fails fast, without overflowing the stack
    expect(refusal(deep(400_000)).code).toBe('TERM_TOO_DEEP');
  });

  it('bounds the size', () => {
    const err = refusal('a.'.repeat(100), { maxMetadataSize: 100 });
    expect(err.code).toBe('TERM_TOO_LARGE');
    expect(err.message).toMatch(/200 bytes, more than the limit of 100 bytes/);
    expect(refusal(Buffer.from('"é".'), { maxMetadataSize: 4 }).code).toBe('TERM_TOO_LARGE');
    expect(refusal(`${'9'.repeat(5000)}.`).code).toBe('TERM_TOO_LARGE');
  });
});

describe('printConsult', () => {
  it('writes forms the way hex_core does', () => {
    expect(
      printConsult([
        { type: 'tuple', items: [bin('name'), bin('foo')] },
        { type: 'tuple', items: [bin('links'), { type: 'list', items: [] }] },
      ]),
    ).toBe('{<<"name">>,<<"foo">>}.\n{<<"links">>,[]}.\n');
  });

  it('chooses the binary spelling by content', () => {
    expect(printTerm(bin('plain "text"\n'))).toBe('<<"plain \\"text\\"\\n">>');
    expect(printTerm(bin('Bär ✓'))).toBe('<<"Bär ✓"/utf8>>');
    expect(printTerm(bytes(0xe9, 0x00))).toBe('<<233,0>>');
    expect(printTerm(bytes(1, 2))).toBe('<<1,2>>');
    expect(printTerm(bytes())).toBe('<<>>');
  });

  it('quotes atoms only when needed and writes the other terms', () => {
    expect(printTerm(atom('true'))).toBe('true');
    expect(printTerm(atom('Foo'))).toBe("'Foo'");
    expect(printTerm(atom('end'))).toBe("'end'");
    expect(printTerm(atom("it's"))).toBe("'it\\'s'");
    expect(printTerm(int(-12))).toBe('-12');
    expect(printTerm({ type: 'string', value: 'a\u0001\u0085é' })).toBe('"a\\001\\205é"');
    expect(printTerm({ type: 'map', entries: [[atom('a'), int(1)]] })).toBe('#{a => 1}');
  });

  it('refuses text that UTF-8 cannot hold', () => {
    expect(() => printTerm({ type: 'string', value: 'a\ud800' })).toThrow(expect.objectContaining({ code: 'TERM_UNSUPPORTED' }));
  });

  it('round-trips what it writes', () => {
    const terms: Term[] = [bin('x'), bytes(0, 255, 128), bin('ü'), { type: 'string', value: '\\"\'\n' }, atom('a b'), int(-3)];
    expect(parseConsult(printConsult(terms))).toEqual(terms);
  });
});
