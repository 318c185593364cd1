/**
 * Cross-checks against the reference implementation: hex_core 0.7.1 as vendored in Debian's rebar3
 * (`r3_hex_tarball`). hex_core builds tarballs that hexrepo must read with the same checksums and
 * metadata, and hex_core must accept the tarballs hexrepo builds. Skipped when erl or rebar3 is missing.
 */
import { Buffer } from 'node:buffer';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toHex, type Dependency } from '@hexrepo/core';
import { erlangUnavailable, erlBinary, erlString, hexCoreEbin, runErlang } from '@hexrepo/test-support/erlang';
import { createTarball, parseConsult, parseTarball, readTar, type MetadataInput, type TarballFileInput, type Term } from '../src/index.js';
import { files as filesArb, metadataInput, term } from './arbitraries.js';

const unavailable = erlangUnavailable();
const enc = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'utf8'));
const fromHex = (hex: string): Uint8Array => new Uint8Array(Buffer.from(hex, 'hex'));
const hexText = (hex: string): string => Buffer.from(hex, 'hex').toString('utf8');

/** What hex_core's `unpack(Tarball, memory)` reported, decoded from the lines `DESCRIBE` writes. */
interface Unpacked {
  inner: string;
  outer: string;
  fields: Record<string, string>;
  licenses: string[];
  requirements: Dependency[];
  files: [string, Uint8Array][];
  error?: string;
}

/**
 * Erlang funs: `Hex` (binary or chardata to uppercase hex) and `Describe` (an unpack result as
 * tab-separated lines, every value hex-encoded so any bytes survive). Requirements come back from
 * hex_core as a map keyed by name; they are listed sorted by name.
 */
const DESCRIBE = `
  Hex = fun(B) when is_binary(B) -> binary:encode_hex(B); (L) -> binary:encode_hex(unicode:characters_to_binary(L)) end,
  Describe = fun(Res) ->
    #{inner_checksum := I, outer_checksum := O, metadata := M} = Res,
    Reqs = maps:get(<<"requirements">>, M, #{}),
    [["inner\\t", Hex(I), "\\n"], ["outer\\t", Hex(O), "\\n"],
     [["field\\t", K, "\\t", Hex(maps:get(K, M)), "\\n"] || K <- [<<"name">>, <<"version">>, <<"app">>, <<"description">>], maps:is_key(K, M)],
     [["license\\t", Hex(L), "\\n"] || L <- maps:get(<<"licenses">>, M, [])],
     [["req\\t", Hex(N), "\\t", Hex(maps:get(<<"app">>, R, <<>>)), "\\t", atom_to_list(maps:get(<<"optional">>, R, false)), "\\t",
       Hex(maps:get(<<"requirement">>, R)), "\\t", case maps:find(<<"repository">>, R) of {ok, Repo} -> Hex(Repo); error -> "-" end, "\\n"]
      || {N, R} <- lists:sort(maps:to_list(Reqs))],
     [["file\\t", Hex(P), "\\t", Hex(C), "\\n"] || {P, C} <- maps:get(contents, Res, [])]]
  end,
  Unpack = fun(In, Out) ->
    {ok, T} = file:read_file(In),
    Text = case r3_hex_tarball:unpack(T, memory) of
      {ok, Res} -> Describe(Res);
      Other -> io_lib:format("error\\t~tp~n", [Other])
    end,
    ok = file:write_file(Out, unicode:characters_to_binary(Text))
  end,`;

function readUnpacked(path: string): Unpacked {
  const out: Unpacked = { inner: '', outer: '', fields: {}, licenses: [], requirements: [], files: [] };
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    const [kind, ...rest] = line.split('\t');
    if (kind === 'inner') out.inner = rest[0]!.toLowerCase();
    else if (kind === 'outer') out.outer = rest[0]!.toLowerCase();
    else if (kind === 'field') out.fields[rest[0]!] = hexText(rest[1]!);
    else if (kind === 'license') out.licenses.push(hexText(rest[0]!));
    else if (kind === 'req') {
      const [name, app, optional, requirement, repository] = rest as [string, string, string, string, string];
      const dep: Dependency = { package: hexText(name), requirement: hexText(requirement), optional: optional === 'true', app: hexText(app) };
      if (repository !== '-') dep.repository = hexText(repository);
      out.requirements.push(dep);
    } else if (kind === 'file') out.files.push([hexText(rest[0]!), fromHex(rest[1] ?? '')]);
    else if (kind === 'error') out.error = rest.join('\t');
  }
  return out;
}

/** Unpack each `<base>.tar` with hex_core in one Erlang run (`<base>.out` gets the description). */
function unpackWithHexCore(bases: readonly string[]): Unpacked[] {
  runErlang(`${DESCRIBE}
    lists:foreach(fun(B) -> Unpack(B ++ ".tar", B ++ ".out") end, [${bases.map(erlString).join(', ')}]), ok`);
  return bases.map((b) => readUnpacked(`${b}.out`));
}

/** The requirements hex_core reports for what hexrepo wrote: sorted by name, `app` filled in. */
function expectedRequirements(meta: MetadataInput): Dependency[] {
  return (meta.requirements ?? [])
    .map((d) => {
      const dep: Dependency = { package: d.package, requirement: d.requirement, optional: d.optional === true, app: d.app ?? d.package };
      if (d.repository !== undefined) dep.repository = d.repository;
      return dep;
    })
    .sort((a, b) => (a.package < b.package ? -1 : a.package > b.package ? 1 : 0));
}

/**
 * A term in a form that compares equal however Erlang spells it: char lists become lists of code
 * points (Erlang prints some int lists as strings), maps keep the last value per key, sorted by key.
 */
function normalise(t: Term): unknown {
  switch (t.type) {
    case 'string':
      return ['list', [...t.value].map((ch) => ['integer', BigInt(ch.codePointAt(0)!)])];
    case 'list':
    case 'tuple':
      return [t.type, t.items.map(normalise)];
    case 'map': {
      const byKey = new Map<string, [unknown, unknown]>();
      for (const [k, v] of t.entries) {
        const key = normalise(k);
        byKey.set(canonical(key), [key, normalise(v)]);
      }
      return ['map', [...byKey].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, kv]) => kv)];
    }
    case 'binary':
      return ['binary', Buffer.from(t.value).toString('hex')];
    default:
      return [t.type, t.value];
  }
}

/**
 * hex_core's lexer reads atoms with list_to_existing_atom, so an atom unknown to the client's VM
 * makes the whole metadata.config unreadable. Sampled atoms are mapped onto ones every VM has.
 */
const EXISTING_ATOMS = ['true', 'false', 'ok', 'error', 'undefined', 'infinity', 'EXIT', 'DOWN', 'nonode@nohost'];
function withExistingAtoms(t: Term): Term {
  switch (t.type) {
    case 'atom':
      return { type: 'atom', value: EXISTING_ATOMS[[...t.value].reduce((n, ch) => n + ch.codePointAt(0)!, 0) % EXISTING_ATOMS.length]! };
    case 'list':
    case 'tuple':
      return { type: t.type, items: t.items.map(withExistingAtoms) };
    case 'map':
      return { type: 'map', entries: t.entries.map(([k, v]): [Term, Term] => [withExistingAtoms(k), withExistingAtoms(v)]) };
    default:
      return t;
  }
}

/** hex_core's unpack turns a top-level `extra` that is a list of pairs (or empty) into a map. */
function asHexCoreExtra(t: Term): Term {
  const items = t.type === 'list' ? t.items : t.type === 'string' && t.value === '' ? [] : null;
  if (items === null || !items.every((i) => i.type === 'tuple' && i.items.length === 2)) return t;
  return { type: 'map', entries: items.map((i) => [(i as { items: Term[] }).items[0]!, (i as { items: Term[] }).items[1]!]) };
}

function canonical(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v));
}

function contentsOf(tarball: Uint8Array): ReturnType<typeof readTar> {
  const gz = readTar(tarball).find((m) => m.name === 'contents.tar.gz')!;
  return readTar(new Uint8Array(gunzipSync(gz.data)));
}

describe.skipIf(unavailable !== null)(`hex_core cross-checks${unavailable ? ` (skipped: ${unavailable})` : ''}`, () => {
  let work: string;
  beforeAll(() => {
    hexCoreEbin(); // extract rebar3's beams once, outside the first test's timeout
    work = mkdtempSync(join(tmpdir(), 'hexrepo-hexcore-'));
  });
  afterAll(() => {
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('reads a tarball made by hex_core create/2 with the same checksums and metadata', () => {
    const src = join(work, 'src');
    const tool = join(src, 'bin', 'tool');
    mkdirSync(dirname(tool), { recursive: true });
    writeFileSync(tool, '#!/bin/sh\necho hi\n');
    chmodSync(tool, 0o755);
    const description = 'Made by hex_core — ü ✓';
    const fileBodies: [string, string][] = [
      ['rebar.config', '{deps, [dep_a]}.\n'],
      ['src/hexcore_made.erl', '-module(hexcore_made).\n-export([hi/0]).\nhi() -> ok.\n'],
      ['src/hexcore_made.app.src', '{application, hexcore_made, [{vsn, "1.2.3-rc.1"}]}.\n'],
    ];
    const tarPath = join(work, 'made-by-hex-core.tar');
    const outPath = join(work, 'made-by-hex-core.out');
    // Debian's hex_core (0.7.1) returns {ok, #{tarball, inner_checksum, outer_checksum}};
    // hex_core before 0.6 returned {ok, {Tarball, Checksum}} instead.
    runErlang(`
      Meta = #{<<"name">> => <<"hexcore_made">>, <<"version">> => <<"1.2.3-rc.1">>, <<"app">> => <<"hexcore_made">>,
               <<"description">> => ${erlBinary(enc(description))}, <<"licenses">> => [<<"Apache-2.0">>, <<"MIT">>],
               <<"links">> => #{<<"GitHub">> => <<"https://github.com/example/hexcore_made">>},
               <<"requirements">> => #{
                 <<"dep_a">> => #{<<"app">> => <<"dep_a">>, <<"optional">> => false, <<"requirement">> => <<"~> 1.0">>},
                 <<"dep_b">> => #{<<"app">> => <<"bee">>, <<"optional">> => true, <<"requirement">> => <<">= 0.2.0 and < 2.0.0">>,
                                  <<"repository">> => <<"hexpm">>}}},
      Files = [${fileBodies.map(([p, body]) => `{${erlString(p)}, ${erlBinary(enc(body))}}`).join(', ')},
               {"bin/tool", ${erlString(tool)}}],
      {ok, #{tarball := T, inner_checksum := I, outer_checksum := O}} = r3_hex_tarball:create(Meta, Files),
      ok = file:write_file(${erlString(tarPath)}, T),
      ok = file:write_file(${erlString(outPath)}, [binary:encode_hex(I), "\\n", binary:encode_hex(O), "\\n"]),
      ok`);
    const [inner, outer] = readFileSync(outPath, 'latin1')
      .trim()
      .split('\n')
      .map((h) => h.toLowerCase());
    const tarball = new Uint8Array(readFileSync(tarPath));
    const parsed = parseTarball(tarball);

    expect(toHex(parsed.innerChecksum)).toBe(inner);
    expect(toHex(parsed.outerChecksum)).toBe(outer);
    expect(parsed.metadata).toMatchObject({
      name: 'hexcore_made',
      version: '1.2.3-rc.1',
      app: 'hexcore_made',
      description,
      licenses: ['Apache-2.0', 'MIT'],
      links: [['GitHub', 'https://github.com/example/hexcore_made']],
      buildTools: ['rebar3'],
    });
    expect(parsed.metadata.requirements).toEqual([
      { package: 'dep_a', requirement: '~> 1.0', optional: false, app: 'dep_a' },
      { package: 'dep_b', requirement: '>= 0.2.0 and < 2.0.0', optional: true, app: 'bee', repository: 'hexpm' },
    ]);
    expect(parsed.facts).toMatchObject({ name: 'hexcore_made', version: '1.2.3-rc.1', dependencies: parsed.metadata.requirements });

    // the files, their bytes, and the mode hex_core took from the file on disk
    const paths = [...fileBodies.map(([p]) => p), 'bin/tool'];
    expect(
      parsed.files
        .filter((f) => f.type === 'file')
        .map((f) => f.path)
        .sort(),
    ).toEqual([...paths].sort());
    expect(parsed.files.find((f) => f.path === 'bin/tool')?.mode).toBe(0o755);
    const stored = new Map(
      contentsOf(tarball)
        .filter((e) => e.type === 'file')
        .map((e) => [e.name, Buffer.from(e.data).toString('utf8')]),
    );
    for (const [p, body] of fileBodies) expect(stored.get(p)).toBe(body);
    expect(stored.get('bin/tool')).toBe('#!/bin/sh\necho hi\n');
  });

  it('hex_core unpack/2 accepts a tarball made by createTarball, with the same checksums and metadata', () => {
    const meta: MetadataInput = {
      name: 'made_here',
      version: '0.3.0-beta.2',
      description: 'Made by hexrepo — ü ✓ "quoted" \\ back\nslash',
      licenses: ['Apache-2.0'],
      links: [['Docs', 'https://example.com/docs']],
      requirements: [
        { package: 'zeta', requirement: '~> 2.1' },
        { package: 'alpha', requirement: '>= 1.0.0 and < 3.0.0', optional: true, app: 'alpha_app', repository: 'hexpm:acme' },
      ],
    };
    const files: TarballFileInput[] = [
      { path: 'mix.exs', contents: enc('defmodule MadeHere.MixProject do\nend\n') },
      { path: 'lib/made_here.ex', contents: enc('defmodule MadeHere do\n  def hi, do: :ok\nend\n') },
      { path: 'priv/blob.bin', contents: Uint8Array.from({ length: 300 }, (_, i) => (i * 37) % 256) },
      { path: 'bin/run', contents: enc('#!/bin/sh\n'), mode: 0o755 },
    ];
    const made = createTarball(meta, files);
    const base = join(work, 'made-here');
    writeFileSync(`${base}.tar`, made.tarball);
    const dir = join(work, 'made-here-unpacked');
    runErlang(`${DESCRIBE}
      Unpack(${erlString(`${base}.tar`)}, ${erlString(`${base}.out`)}),
      {ok, _} = r3_hex_tarball:unpack(element(2, file:read_file(${erlString(`${base}.tar`)})), ${erlString(dir)}),
      ok`);
    const got = readUnpacked(`${base}.out`);

    expect(got.error).toBeUndefined();
    expect(got.inner).toBe(toHex(made.innerChecksum));
    expect(got.outer).toBe(toHex(made.outerChecksum));
    expect(got.fields).toEqual({ name: meta.name, version: meta.version, app: meta.name, description: meta.description });
    expect(got.licenses).toEqual(meta.licenses);
    expect(got.requirements).toEqual(expectedRequirements(meta));
    expect(got.files).toEqual(files.map((f) => [f.path, f.contents]));
    // unpacked to disk, the files keep their bytes and modes
    for (const f of files) {
      expect(new Uint8Array(readFileSync(join(dir, f.path)))).toEqual(f.contents);
      expect(statSync(join(dir, f.path)).mode & 0o777).toBe(f.mode ?? 0o644);
    }
  });

  it('hex_core accepts arbitrary tarballs made by createTarball (sampled with fast-check)', () => {
    const samples = fc.sample(fc.tuple(metadataInput, filesArb), { numRuns: 30, seed: 20240611 });
    const bases = samples.map(([meta, files], i) => {
      const base = join(work, `sample-${i}`);
      writeFileSync(`${base}.tar`, createTarball(meta, files).tarball);
      return base;
    });
    const results = unpackWithHexCore(bases);
    samples.forEach(([meta, files], i) => {
      const made = createTarball(meta, files);
      const got = results[i]!;
      const where = `sample ${i}: ${JSON.stringify(meta)}`;
      expect(got.error, where).toBeUndefined();
      expect(got.inner, where).toBe(toHex(made.innerChecksum));
      expect(got.outer, where).toBe(toHex(made.outerChecksum));
      const fields: Record<string, string> = { name: meta.name, version: meta.version, app: meta.name };
      if (meta.description !== undefined) fields.description = meta.description;
      expect(got.fields, where).toEqual(fields);
      expect(got.licenses, where).toEqual(meta.licenses);
      expect(got.requirements, where).toEqual(expectedRequirements(meta));
      expect(got.files, where).toEqual(files.map((f) => [f.path, f.contents]));
    });
  });

  it('hex_core reads arbitrary extra terms written by hexrepo as the same values (sampled with fast-check)', () => {
    const extras = fc.sample(term, { numRuns: 40, seed: 7 }).map(withExistingAtoms);
    const base = join(work, 'extra');
    const bases = extras.map((extra, i) => {
      const b = `${base}-${i}`;
      writeFileSync(`${b}.tar`, createTarball({ name: 'extra_terms', version: '1.0.0', extra }, [{ path: 'README.md', contents: enc('x') }]).tarball);
      return b;
    });
    // hex_core parses metadata.config itself; the extra it read is printed back with ~tp and read here.
    runErlang(`
      lists:foreach(fun(B) ->
        {ok, T} = file:read_file(B ++ ".tar"),
        Text = case r3_hex_tarball:unpack(T, memory) of
          {ok, #{metadata := #{<<"extra">> := Extra}}} -> io_lib:format("~tp.~n", [Extra]);
          Other -> io_lib:format("{hex_core_error, ~tp}.~n", [Other])
        end,
        ok = file:write_file(B ++ ".extra", unicode:characters_to_binary(Text))
      end, [${bases.map(erlString).join(', ')}]), ok`);
    extras.forEach((extra, i) => {
      const printed = readFileSync(`${bases[i]}.extra`, 'utf8');
      const back = parseConsult(printed);
      expect(back, `sample ${i}: hex_core printed ${printed}`).toHaveLength(1);
      expect(normalise(back[0]!), `sample ${i}: hex_core printed ${printed}`).toEqual(normalise(asHexCoreExtra(extra)));
    });
  });

  it('documents a known difference: hex_core refuses atoms its VM has never seen, hexrepo reads them', () => {
    const extra: Term = {
      type: 'tuple',
      items: [
        { type: 'atom', value: 'ok' },
        { type: 'atom', value: 'hexrepo_never_seen_atom_q7z' },
      ],
    };
    const made = createTarball({ name: 'odd_atom', version: '1.0.0', extra }, [{ path: 'README.md', contents: enc('x') }]);
    expect(parseTarball(made.tarball).metadata.extra).toEqual(extra);
    const path = join(work, 'odd-atom.tar');
    writeFileSync(path, made.tarball);
    const out = runErlang(`{ok, T} = file:read_file(${erlString(path)}), r3_hex_tarball:unpack(T, memory)`);
    expect(out).toMatch(/\{error,\{metadata,\{user,"illegal atom hexrepo_never_seen_atom_q7z"\}\}\}/);
  });

  it('hex_core reads text that ends in a backslash (written as \\134, not \\\\)', () => {
    const extra: Term = {
      type: 'list',
      items: [
        { type: 'binary', value: enc('C:\\') },
        { type: 'atom', value: 'ok' },
        { type: 'string', value: 'x\\' },
      ],
    };
    const meta: MetadataInput = { name: 'back_slash', version: '1.0.0', description: 'ends in \\', licenses: ['\\'], extra };
    const made = createTarball(meta, [{ path: 'README.md', contents: enc('x') }]);
    const base = join(work, 'back-slash');
    writeFileSync(`${base}.tar`, made.tarball);
    const [got] = unpackWithHexCore([base]);
    expect(got!.error).toBeUndefined();
    expect(got!.inner).toBe(toHex(made.innerChecksum));
    expect(got!.fields).toEqual({ name: 'back_slash', version: '1.0.0', app: 'back_slash', description: 'ends in \\' });
    expect(got!.licenses).toEqual(['\\']);
    expect(parseTarball(made.tarball).metadata).toMatchObject({ description: 'ends in \\', licenses: ['\\'], extra });
  });
});
