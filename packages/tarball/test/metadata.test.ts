/** Normalising metadata.config: both requirements shapes, the map form, defaults and refusals. */
import { describe, expect, it } from 'vitest';
import { HexrepoError, type ErrorCode } from '@hexrepo/core';
import { metadataToTerms, parseConsult, parseMetadata, printConsult } from '../src/index.js';

const base = (extra = ''): string => `{<<"app">>,<<"pkg">>}.\n{<<"name">>,<<"pkg">>}.\n{<<"version">>,<<"1.0.0">>}.\n${extra}`;

function refusal(text: string): HexrepoError {
  try {
    parseMetadata(text);
  } catch (err) {
    if (err instanceof HexrepoError) return err;
    throw err;
  }
  throw new Error('accepted');
}

describe('parseMetadata', () => {
  it('fills defaults for a minimal file', () => {
    expect(parseMetadata(base())).toEqual({
      name: 'pkg',
      version: '1.0.0',
      app: 'pkg',
      licenses: [],
      links: [],
      files: [],
      buildTools: [],
      requirements: [],
      other: {},
    });
  });

  it('reads the Mix requirements shape', () => {
    const meta = parseMetadata(base('{<<"requirements">>,[[{<<"app">>,<<"dec">>},{<<"name">>,<<"decimal">>},{<<"optional">>,true},{<<"repository">>,<<"hexpm">>},{<<"requirement">>,<<"~> 2.0">>}]]}.\n'));
    expect(meta.requirements).toEqual([{ package: 'decimal', app: 'dec', optional: true, repository: 'hexpm', requirement: '~> 2.0' }]);
  });

  it('reads the name-keyed shape of rebar3_hex', () => {
    const meta = parseMetadata(base('{<<"requirements">>,[{<<"cowlib">>,[{<<"app">>,<<"cowlib">>},{<<"optional">>,false},{<<"requirement">>,<<"2.12.1">>}]}]}.\n'));
    expect(meta.requirements).toEqual([{ package: 'cowlib', app: 'cowlib', optional: false, requirement: '2.12.1' }]);
  });

  it('reads the map form, with proplist or map values', () => {
    const meta = parseMetadata(base('{<<"requirements">>,#{<<"a_dep">> => #{<<"requirement">> => <<"~> 1.0">>}, <<"b_dep">> => [{<<"requirement">>,<<">= 0.0.0">>},{<<"optional">>,true}]}}.\n'));
    expect(meta.requirements).toEqual([
      { package: 'a_dep', app: 'a_dep', optional: false, requirement: '~> 1.0' },
      { package: 'b_dep', app: 'b_dep', optional: true, requirement: '>= 0.0.0' },
    ]);
  });

  it('treats only the atom true as optional and defaults app to the package name', () => {
    const deps = parseMetadata(base('{<<"requirements">>,[{<<"x_a">>,[{<<"requirement">>,<<"1.0.0">>},{<<"optional">>,<<"true">>}]},{<<"x_b">>,[{<<"requirement">>,<<"1.0.0">>},{<<"optional">>,yes}]}]}.\n')).requirements;
    expect(deps.map((d) => [d.optional, d.app])).toEqual([
      [false, 'x_a'],
      [false, 'x_b'],
    ]);
  });

  it('reads links as tuples or a map, and strings like binaries', () => {
    expect(parseMetadata(base('{<<"links">>,[{<<"GitHub">>,<<"https://x">>}]}.\n')).links).toEqual([['GitHub', 'https://x']]);
    expect(parseMetadata(base('{<<"links">>,#{"Docs" => "https://d"}}.\n')).links).toEqual([['Docs', 'https://d']]);
    expect(parseMetadata(base('{"description","char list text"}.\n')).description).toBe('char list text');
  });

  it('guesses build tools from top-level files when absent, as hex_core does', () => {
    expect(parseMetadata(base('{<<"files">>,[<<"mix.exs">>,<<"lib/rebar.config">>]}.\n')).buildTools).toEqual(['mix']);
    expect(parseMetadata(base('{<<"files">>,[<<"rebar.config">>,<<"Makefile">>]}.\n')).buildTools).toEqual(['rebar3', 'make']);
    expect(parseMetadata(base('{<<"files">>,[<<"mix.exs">>]}.\n{<<"build_tools">>,[]}.\n')).buildTools).toEqual([]);
  });

  it('keeps extra and unmodelled entries as read; a repeated key takes the last value', () => {
    const meta = parseMetadata(base('{<<"extra">>,[{<<"k">>,1}]}.\n{<<"maintainers">>,[<<"Ann">>]}.\n{<<"app">>,<<"other_app">>}.\n'));
    expect(meta.extra).toEqual({
      type: 'list',
      items: [
        {
          type: 'tuple',
          items: [
            { type: 'binary', value: new Uint8Array(Buffer.from('k')) },
            { type: 'integer', value: 1n },
          ],
        },
      ],
    });
    expect(Object.keys(meta.other)).toEqual(['maintainers']);
    expect(meta.app).toBe('other_app');
  });

  it('does not let a "__proto__" key reach the prototype', () => {
    const meta = parseMetadata(base('{<<"__proto__">>,[<<"x">>]}.\n'));
    expect(Object.keys(meta.other)).toEqual(['__proto__']);
    expect(Object.getPrototypeOf(meta.other)).toBe(Object.prototype);
  });

  const cases: [string, string, ErrorCode, RegExp][] = [
    ['missing name', '{<<"app">>,<<"a">>}.{<<"version">>,<<"1.0.0">>}.', 'METADATA_INVALID', /no "name"/],
    ['empty app', base().replace('<<"pkg">>}', '<<>>}'), 'METADATA_INVALID', /"app" is empty/],
    ['name not a binary', '{<<"name">>,pkg}.', 'METADATA_INVALID', /"name" is the atom pkg/],
    ['form not a pair', `${base()}{a,b,c}.`, 'METADATA_INVALID', /form 4 .* is a 3-tuple/],
    ['licenses not a list', base('{<<"licenses">>,<<"MIT">>}.'), 'METADATA_INVALID', /"licenses" is a binary/],
    ['files with an integer', base('{<<"files">>,[1]}.'), 'METADATA_INVALID', /"files" holds an integer/],
    ['links malformed', base('{<<"links">>,[<<"x">>]}.'), 'METADATA_INVALID', /"links" is a list/],
    ['bad name', base().replace(/<<"pkg">>}\.\n\{<<"version/, '<<"My-Pkg">>}.\n{<<"version'), 'METADATA_BAD_NAME', /"My-Pkg"/],
    ['bad version', base().replace('1.0.0', 'v1'), 'METADATA_BAD_VERSION', /"v1"/],
    ['requirement missing', base('{<<"requirements">>,[{<<"foo">>,[]}]}.'), 'METADATA_BAD_REQUIREMENTS', /requirement 1 \("foo"\) has no "requirement"/],
    ['requirement not text', base('{<<"requirements">>,[{<<"foo">>,[{<<"requirement">>,1}]}]}.'), 'METADATA_BAD_REQUIREMENTS', /"requirement" that is an integer/],
    ['dependency name invalid', base('{<<"requirements">>,[{<<"Foo">>,[{<<"requirement">>,<<"1.0.0">>}]}]}.'), 'METADATA_BAD_REQUIREMENTS', /not a valid package name/],
    ['dependency twice', base('{<<"requirements">>,[{<<"foo">>,[{<<"requirement">>,<<"1.0.0">>}]},{<<"foo">>,[{<<"requirement">>,<<"2.0.0">>}]}]}.'), 'METADATA_BAD_REQUIREMENTS', /listed twice/],
    ['dependency an atom', base('{<<"requirements">>,[foo]}.'), 'METADATA_BAD_REQUIREMENTS', /requirement 1 is the atom foo/],
    ['dependency fields not pairs', base('{<<"requirements">>,[{<<"foo">>,<<"~> 1.0">>}]}.'), 'METADATA_BAD_REQUIREMENTS', /is a binary, expected a list/],
  ];
  it.each(cases)('refuses %s', (_name, text, code, message) => {
    const err = refusal(text);
    expect(err.code).toBe(code);
    expect(err.message).toMatch(message);
  });
});

describe('metadataToTerms', () => {
  it('writes keys alphabetically, requirements in Mix shape, like hex_core', () => {
    const text = printConsult(
      metadataToTerms({
        name: 'bar',
        version: '1.0.0',
        description: 'Bär',
        elixir: '~> 1.12',
        files: ['lib', 'mix.exs'],
        licenses: ['MIT'],
        links: [['GitHub', 'https://github.com/example/bar']],
        requirements: [
          { package: 'foo', requirement: '~> 0.1', repository: 'acme' },
          { package: 'baz', requirement: '1.0.0', optional: true },
        ],
      }),
    );
    expect(text).toBe(
      [
        '{<<"app">>,<<"bar">>}.',
        '{<<"build_tools">>,[<<"mix">>]}.',
        '{<<"description">>,<<"Bär"/utf8>>}.',
        '{<<"elixir">>,<<"~> 1.12">>}.',
        '{<<"files">>,[<<"lib">>,<<"mix.exs">>]}.',
        '{<<"licenses">>,[<<"MIT">>]}.',
        '{<<"links">>,[{<<"GitHub">>,<<"https://github.com/example/bar">>}]}.',
        '{<<"name">>,<<"bar">>}.',
        '{<<"requirements">>,[[{<<"app">>,<<"foo">>},{<<"name">>,<<"foo">>},{<<"optional">>,false},{<<"repository">>,<<"acme">>},{<<"requirement">>,<<"~> 0.1">>}],[{<<"app">>,<<"baz">>},{<<"name">>,<<"baz">>},{<<"optional">>,true},{<<"requirement">>,<<"1.0.0">>}]]}.',
        '{<<"version">>,<<"1.0.0">>}.',
        '',
      ].join('\n'),
    );
  });

  it('round-trips through the parser', () => {
    const input = {
      name: 'rt',
      version: '0.1.0-beta.2',
      app: 'rt_app',
      description: '✓ "quoted"\n',
      licenses: ['Apache-2.0'],
      links: [['a', 'b']] as [string, string][],
      files: ['x'],
      buildTools: ['rebar3'],
      elixir: '>= 1.0.0',
      requirements: [{ package: 'dep', requirement: '~> 1.0', optional: false, app: 'dep' }],
      extra: { type: 'map' as const, entries: [] },
      other: { maintainers: { type: 'list' as const, items: [] } },
    };
    expect(parseMetadata(printConsult(metadataToTerms(input)))).toEqual(input);
    expect(parseConsult(printConsult(metadataToTerms(input)))).toEqual(metadataToTerms(input));
  });

  it('refuses "other" entries that repeat a modelled field, and unencodable text', () => {
    expect(() => metadataToTerms({ name: 'a_b', version: '1.0.0', other: { name: { type: 'atom', value: 'x' } } })).toThrow(expect.objectContaining({ code: 'METADATA_INVALID' }));
    expect(() => metadataToTerms({ name: 'a_b', version: '1.0.0', description: '\ud800' })).toThrow(expect.objectContaining({ code: 'METADATA_INVALID' }));
  });
});
