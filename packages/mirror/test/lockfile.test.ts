import { isHexrepoError } from '@hexrepo/core';
import { describe, expect, it } from 'vitest';
import { parseLockfile, parseMixLock, parseRebarLock } from '../src/lockfile.js';

const A = 'ff9ffeff91dae4ae270dd975642997afe2a1179d94b1887863e43f681a203e26';
const B = '3afdccb7183cc6f143cb14d3cf51fa00e53db9ec80cdcd525482f5e99bc41d6b';

// As Hex 2.x writes it (mix format of a real Phoenix project, checksums shortened to two values).
const MIX_LOCK = `%{
  "castore": {:hex, :castore, "1.0.5", "${A}", [:mix], [], "hexpm", "${B}"},
  "cowboy": {:hex, :cowboy, "2.10.0", "${A}", [:make, :rebar3], [{:cowlib, "2.12.1", [hex: :cowlib, repo: "hexpm", optional: false]}, {:ranch, "1.8.0", [hex: :ranch, repo: "hexpm", optional: false]}], "hexpm", "${B}"},
  "heroicons": {:git, "https://github.com/tailwindlabs/heroicons.git", "88ab3a0d790e6a47404cba02800a6b25d2afae50", [tag: "v2.1.1", sparse: "optimized", depth: 1]},
  "jason": {:hex, :jason, "1.4.1", "${A.toUpperCase()}", [:mix], [{:decimal, "~> 1.0 or ~> 2.0", [hex: :decimal, repo: "hexpm", optional: true]}], "hexpm"},
  "local": {:path, "../local", []},
  "my_poison": {:hex, :poison, "3.1.0", "${A}", [:mix], []},
  "secret": {:hex, :secret, "0.2.0", "${A}", [:mix], [], "hexpm:acme", "${B}"},
  "weird": {:hex, :"weird", "0.1.0-rc.1", "${A}", [:mix], [], "hexpm", "${B}"}, # trailing comment
}
`;

describe('parseMixLock', () => {
  it('reads 8-, 7- and 6-tuples, the repository, renamed packages, and skips non-Hex entries with a note', () => {
    const lock = parseMixLock(MIX_LOCK);
    expect(lock.format).toBe('mix');
    expect(lock.packages).toEqual([
      { name: 'castore', version: '1.0.5', repository: 'hexpm', innerChecksum: A, outerChecksum: B },
      { name: 'cowboy', version: '2.10.0', repository: 'hexpm', innerChecksum: A, outerChecksum: B },
      { name: 'jason', version: '1.4.1', repository: 'hexpm', innerChecksum: A },
      { name: 'poison', version: '3.1.0', repository: 'hexpm', innerChecksum: A },
      { name: 'secret', version: '0.2.0', repository: 'hexpm:acme', innerChecksum: A, outerChecksum: B },
      { name: 'weird', version: '0.1.0-rc.1', repository: 'hexpm', innerChecksum: A, outerChecksum: B },
    ]);
    expect(lock.skipped).toEqual([
      { name: 'heroicons', reason: 'a :git dependency (not from a Hex repository)' },
      { name: 'local', reason: 'a :path dependency (not from a Hex repository)' },
    ]);
  });

  it('refuses code: calls, interpolation, aliases, with the line number', () => {
    const cases = ['%{"a": File.read!("x")}', '%{"a": {:hex, :a, "#{System.cmd()}"}}', '%{\n"a": IO}', '%{"a": {:hex, :a, "1.0.0"}', '%{"a" => 1} extra'];
    for (const c of cases) {
      let err: unknown;
      try {
        parseMixLock(c);
      } catch (e) {
        err = e;
      }
      expect(isHexrepoError(err, 'LOCKFILE_INVALID'), `${c}: ${String(err)}`).toBe(true);
    }
    expect(() => parseMixLock('%{\n\n"a": IO}')).toThrow(/mix\.lock:3: "IO" is not a literal/);
  });

  it('refuses a Hex entry without a valid version', () => {
    expect(() => parseMixLock('%{"a": {:hex, :a, "one", "x", [:mix], []}}')).toThrow(/"a" has no valid package name and version/);
  });
});

// As rebar3 3.19 writes it.
const REBAR_LOCK = `{"1.2.0",
[{<<"cowboy">>,{pkg,<<"cowboy">>,<<"2.10.0">>},0},
 {<<"cowlib">>,{pkg,<<"cowlib">>,<<"2.12.1">>},1},
 {<<"erlydtl">>,
  {git,"https://github.com/erlydtl/erlydtl.git",
       {ref,"4a2c3ccc9bfc71543dbd8e3b4d4ee0cb41d6dbeb"}},
  0},
 {<<"my_ranch">>,{pkg,<<"ranch">>,<<"1.8.0">>},1}]}.
[
{pkg_hash,[
 {<<"cowboy">>, <<"${A.toUpperCase()}">>},
 {<<"cowlib">>, <<"${A.toUpperCase()}">>},
 {<<"my_ranch">>, <<"${A.toUpperCase()}">>}]},
{pkg_hash_ext,[
 {<<"cowboy">>, <<"${B.toUpperCase()}">>},
 {<<"cowlib">>, <<"${B.toUpperCase()}">>},
 {<<"my_ranch">>, <<"${B.toUpperCase()}">>}]}
].
`;

describe('parseRebarLock', () => {
  it('reads entries with both hash sections, renamed packages, and skips git with a note', () => {
    const lock = parseRebarLock(REBAR_LOCK);
    expect(lock.packages).toEqual([
      { name: 'cowboy', version: '2.10.0', repository: 'hexpm', innerChecksum: A, outerChecksum: B },
      { name: 'cowlib', version: '2.12.1', repository: 'hexpm', innerChecksum: A, outerChecksum: B },
      { name: 'ranch', version: '1.8.0', repository: 'hexpm', innerChecksum: A, outerChecksum: B },
    ]);
    expect(lock.skipped).toEqual([{ name: 'erlydtl', reason: 'a git dependency (not from a Hex repository)' }]);
  });

  it('reads the old bare-list format, comments and utf8 binaries', () => {
    const lock = parseRebarLock(`%% old rebar3\n[{<<"jsx">>,{pkg,<<"jsx"/utf8>>,<<"2.9.0">>},0}].\n`);
    expect(lock.packages).toEqual([{ name: 'jsx', version: '2.9.0', repository: 'hexpm' }]);
  });

  it('reads an empty lockfile and refuses garbage', () => {
    expect(parseRebarLock('[].\n').packages).toEqual([]);
    expect(() => parseRebarLock('{"1.2.0", [{<<"a">>, {pkg, <<"a">>, <<"1.0.0">>}, 0}]}')).toThrow(/expected "\."/);
    expect(() => parseRebarLock('os:cmd("rm").')).toThrow(/LOCKFILE|unexpected/);
  });
});

describe('parseLockfile', () => {
  it('picks the format by file name, else by content', () => {
    expect(parseLockfile(MIX_LOCK, '/x/mix.lock').format).toBe('mix');
    expect(parseLockfile(REBAR_LOCK, '/x/rebar.lock').format).toBe('rebar');
    expect(parseLockfile(MIX_LOCK, 'deps.lock').format).toBe('mix');
    expect(parseLockfile(REBAR_LOCK, 'deps.lock').format).toBe('rebar');
  });
});
