/** fast-check arbitraries shared by the property tests and the hex_core cross-checks. */
import { Buffer } from 'node:buffer';
import fc from 'fast-check';
import type { DependencyInput, MetadataInput, TarballFileInput, Term } from '../src/index.js';

/**
 * Any text UTF-8 can hold (full code point range, no lone surrogates), sometimes ending in a
 * backslash (hex_core's lexer misreads `\\"` at the end of a string, so the printer avoids it).
 */
export const text = (maxLength = 40): fc.Arbitrary<string> =>
  fc.oneof({ arbitrary: fc.string({ unit: 'binary', maxLength }), weight: 4 }, { arbitrary: fc.string({ unit: 'binary', maxLength: maxLength - 1 }).map((s) => `${s}\\`), weight: 1 });

/** Binaries with a bias to each of the three printed spellings: plain, /utf8, byte list. */
const binaryBytes: fc.Arbitrary<Uint8Array> = fc.oneof(
  fc.uint8Array({ maxLength: 24 }),
  fc.string({ maxLength: 24 }).map((s) => new Uint8Array(Buffer.from(s, 'latin1'))),
  fc.string({ maxLength: 8 }).map((s) => new Uint8Array(Buffer.from(`${s}\\`, 'latin1'))),
  text(16).map((s) => new Uint8Array(Buffer.from(s, 'utf8'))),
);

const atomName: fc.Arbitrary<string> = fc.oneof(fc.constantFrom('true', 'false', 'nil', 'undefined', 'end', 'fun', 'Foo', '', 'a b', "it's", 'back\\'), fc.stringMatching(/^[a-z][A-Za-z0-9_@]{0,12}$/), text(20));

export const { term } = fc.letrec<{ term: Term }>((tie) => ({
  term: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    binaryBytes.map((value): Term => ({ type: 'binary', value })),
    text(20).map((value): Term => ({ type: 'string', value })),
    atomName.map((value): Term => ({ type: 'atom', value })),
    fc.bigInt({ min: -(2n ** 200n), max: 2n ** 200n }).map((value): Term => ({ type: 'integer', value })),
    fc.array(tie('term'), { maxLength: 4 }).map((items): Term => ({ type: 'list', items })),
    fc.array(tie('term'), { maxLength: 4 }).map((items): Term => ({ type: 'tuple', items })),
    fc.array(fc.tuple(tie('term'), tie('term')), { maxLength: 3 }).map((entries): Term => ({ type: 'map', entries })),
  ),
}));

export const packageName = fc.stringMatching(/^[a-z][a-z0-9_]{1,24}$/);
const numeric = fc.oneof(fc.nat({ max: 20 }), fc.nat({ max: 99_999_999_999_999 }));
const preIdentifier = fc.oneof(fc.nat({ max: 1000 }).map(String), fc.stringMatching(/^[0-9A-Za-z-]{0,5}[A-Za-z-][0-9A-Za-z-]{0,5}$/));
export const version = fc
  .tuple(numeric, numeric, numeric, fc.option(fc.array(preIdentifier, { minLength: 1, maxLength: 3 }), { nil: undefined }))
  .map(([a, b, c, pre]) => `${a}.${b}.${c}${pre ? `-${pre.join('.')}` : ''}`)
  .filter((v) => !v.includes('-') || v.length - v.indexOf('-') - 1 <= 64);

const requirementText = fc.oneof(
  fc.tuple(fc.constantFrom('~>', '>=', '==', '<', ''), version).map(([op, v]) => (op ? `${op} ${v}` : v)),
  text(20).filter((s) => s !== ''),
);

const dependency: fc.Arbitrary<DependencyInput> = fc
  .record({
    package: packageName,
    requirement: requirementText,
    optional: fc.option(fc.boolean(), { nil: undefined }),
    app: fc.option(packageName, { nil: undefined }),
    repository: fc.option(fc.constantFrom('hexpm', 'hexpm:acme', 'internal'), { nil: undefined }),
  })
  .map((d) => {
    // exactOptionalPropertyTypes: leave absent fields out rather than set them to undefined.
    const dep: DependencyInput = { package: d.package, requirement: d.requirement };
    if (d.optional !== undefined) dep.optional = d.optional;
    if (d.app !== undefined) dep.app = d.app;
    if (d.repository !== undefined) dep.repository = d.repository;
    return dep;
  });

/** Folders never hold a '.', file names always do, so no file path is also used as a folder. */
const segment = fc.oneof(fc.stringMatching(/^[a-z0-9_][a-z0-9_-]{0,12}$/), fc.constantFrom('a-very-long-folder-name-that-pushes-the-path-past-one-hundred-bytes', 'ünïcödé', '日本語'));
const fileName = fc.oneof(
  fc.tuple(fc.stringMatching(/^[A-Za-z0-9_][A-Za-z0-9_ -]{0,12}$/), fc.constantFrom('ex', 'exs', 'erl', 'hrl', 'md', 'txt')).map(([b, e]) => `${b}.${e}`),
  fc.constantFrom('mix.exs', 'rebar.config', 'Makefile.win', 'Ünïcödé.md', `${'n'.repeat(120)}.ex`),
);
const filePath = fc.tuple(fc.array(segment, { maxLength: 3 }), fileName).map(([dirs, name]) => [...dirs, name].join('/'));

export const files: fc.Arbitrary<TarballFileInput[]> = fc
  .uniqueArray(
    fc.record({
      path: filePath,
      contents: fc.uint8Array({ maxLength: 600 }),
      mode: fc.option(fc.constantFrom(0o644, 0o755, 0o600, 0o444, 0o4755), { nil: undefined }),
    }),
    { selector: (f) => f.path, minLength: 1, maxLength: 6 },
  )
  .map((list) => list.map((f): TarballFileInput => (f.mode === undefined ? { path: f.path, contents: f.contents } : { path: f.path, contents: f.contents, mode: f.mode })));

export const metadataInput: fc.Arbitrary<MetadataInput> = fc
  .record({
    name: packageName,
    version,
    description: fc.option(text(80), { nil: undefined }),
    licenses: fc.array(fc.oneof(fc.constantFrom('MIT', 'Apache-2.0', 'BSD-3-Clause'), text(12)), { maxLength: 3 }),
    links: fc.array(fc.tuple(text(10), fc.webUrl()), { maxLength: 3 }),
    requirements: fc.uniqueArray(dependency, { selector: (d) => d.package, maxLength: 4 }),
  })
  .map((m) => {
    const meta: MetadataInput = { name: m.name, version: m.version, licenses: m.licenses, links: m.links, requirements: m.requirements };
    if (m.description !== undefined) meta.description = m.description;
    return meta;
  });
