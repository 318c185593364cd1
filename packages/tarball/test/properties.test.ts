/** Property tests: terms survive print → parse, and tarballs survive create → parse, byte for byte. */
import { Buffer } from 'node:buffer';
import { createHash } from 'node:crypto';
import { gunzipSync } from 'node:zlib';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Dependency } from '@hexrepo/core';
import { createTarball, guessBuildTools, parseConsult, parseTarball, printConsult, printTerm, readTar, type DependencyInput } from '../src/index.js';
import { files, metadataInput, term } from './arbitraries.js';

const RUNS = { numRuns: 100 };

describe('property: terms round-trip through the printer', () => {
  it('parseConsult(printConsult(terms)) gives the terms back, from text and from UTF-8 bytes', () => {
    fc.assert(
      fc.property(fc.array(term, { maxLength: 5 }), (terms) => {
        const printed = printConsult(terms);
        expect(parseConsult(printed)).toEqual(terms);
        expect(parseConsult(new Uint8Array(Buffer.from(printed, 'utf8')))).toEqual(terms);
      }),
      RUNS,
    );
  });

  it('printTerm writes one form that reads back as the same term', () => {
    fc.assert(
      fc.property(term, (t) => {
        expect(parseConsult(`${printTerm(t)}.`)).toEqual([t]);
      }),
      RUNS,
    );
  });

  it('printing is canonical: print → parse → print is stable', () => {
    fc.assert(
      fc.property(fc.array(term, { maxLength: 5 }), (terms) => {
        const printed = printConsult(terms);
        expect(printConsult(parseConsult(printed))).toBe(printed);
      }),
      RUNS,
    );
  });
});

/** The requirements a reader must see for what was written. */
function expectedDependencies(deps: readonly DependencyInput[]): Dependency[] {
  return deps.map((d) => {
    const dep: Dependency = { package: d.package, requirement: d.requirement, optional: d.optional === true, app: d.app ?? d.package };
    if (d.repository !== undefined) dep.repository = d.repository;
    return dep;
  });
}

const sha256 = (...parts: Uint8Array[]): Uint8Array => {
  const hash = createHash('sha256');
  for (const part of parts) hash.update(part);
  return new Uint8Array(hash.digest());
};

describe('property: tarballs round-trip through createTarball and parseTarball', () => {
  it('parseTarball gives back the metadata, files and checksums', () => {
    fc.assert(
      fc.property(metadataInput, files, (meta, input) => {
        const made = createTarball(meta, input);
        const parsed = parseTarball(made.tarball);
        const paths = input.map((f) => f.path);

        expect(parsed.metadata).toEqual(made.metadata);
        const expected: Record<string, unknown> = {
          name: meta.name,
          version: meta.version,
          app: meta.name,
          licenses: meta.licenses,
          links: meta.links,
          files: paths,
          buildTools: guessBuildTools(paths),
          requirements: expectedDependencies(meta.requirements ?? []),
          other: {},
        };
        if (meta.description !== undefined) expected.description = meta.description;
        expect(parsed.metadata).toEqual(expected);
        expect(parsed.facts).toMatchObject({ name: meta.name, version: meta.version, dependencies: expected.requirements });

        // checksums: the ones returned, the ones parsed, and ones computed here all agree
        const [versionMember, checksumMember, metadataMember, contentsMember] = readTar(made.tarball);
        expect(parsed.innerChecksum).toEqual(made.innerChecksum);
        expect(parsed.outerChecksum).toEqual(made.outerChecksum);
        expect(made.outerChecksum).toEqual(sha256(made.tarball));
        expect(made.innerChecksum).toEqual(sha256(versionMember!.data, metadataMember!.data, contentsMember!.data));
        expect(Buffer.from(checksumMember!.data).toString('latin1')).toBe(Buffer.from(made.innerChecksum).toString('hex').toUpperCase());

        // files: paths, modes and sizes as parsed; bytes as stored in contents.tar.gz
        expect(parsed.files).toEqual(input.map((f) => ({ path: f.path, type: 'file', size: f.contents.byteLength, mode: f.mode ?? 0o644 })));
        const stored = readTar(new Uint8Array(gunzipSync(contentsMember!.data)));
        expect(stored.map((e) => [e.name, e.data])).toEqual(input.map((f) => [f.path, f.contents]));
      }),
      RUNS,
    );
  });

  it('is deterministic: the same input gives the same bytes', () => {
    fc.assert(
      fc.property(metadataInput, files, (meta, input) => {
        const a = createTarball(meta, input);
        // fresh copies, so nothing depends on object identity
        const b = createTarball(
          structuredClone(meta),
          input.map((f) => ({ ...f, contents: Uint8Array.from(f.contents) })),
        );
        expect(Buffer.from(b.tarball).equals(Buffer.from(a.tarball))).toBe(true);
        expect(b.innerChecksum).toEqual(a.innerChecksum);
        expect(b.outerChecksum).toEqual(a.outerChecksum);
      }),
      RUNS,
    );
  });
});
