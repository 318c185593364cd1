/** Every real tarball made by mix and by rebar3's hex_core parses, with the expected facts. */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { toHex } from '@hexrepo/core';
import { parseTarball } from '../src/index.js';

const dir = fileURLToPath(new URL('../../../test-fixtures/tarballs/', import.meta.url));
const sums = new Map(
  readFileSync(join(dir, 'SHA256SUMS'), 'utf8')
    .trim()
    .split('\n')
    .map((line) => {
      const [sum, file] = line.split(/\s+/);
      return [file!, sum!] as const;
    }),
);
const files = readdirSync(dir)
  .filter((f) => f.endsWith('.tar'))
  .sort();
const parse = (file: string) => parseTarball(new Uint8Array(readFileSync(join(dir, file))));

describe('fixture tarballs', () => {
  it('has all nine fixtures', () => {
    expect(files).toHaveLength(9);
  });

  it.each(files)('%s parses with the outer checksum of SHA256SUMS', (file) => {
    const bytes = new Uint8Array(readFileSync(join(dir, file)));
    const parsed = parseTarball(bytes);
    expect(toHex(parsed.outerChecksum)).toBe(sums.get(file));
    expect(toHex(parsed.outerChecksum)).toBe(createHash('sha256').update(bytes).digest('hex'));
    expect(`${parsed.facts.name}-${parsed.facts.version}.tar`).toBe(file);
    expect(parsed.innerChecksum).toHaveLength(32);
    expect(parsed.facts.innerChecksum).toEqual(parsed.innerChecksum);
    // CHECKSUM holds the inner checksum in uppercase
    expect(parsed.metadataConfig.byteLength).toBeGreaterThan(0);
    expect(parsed.files.length).toBeGreaterThan(0);
    expect(parsed.files.every((f) => f.type === 'file' && f.mode === 0o644)).toBe(true);
  });

  it('foo 0.1.0 has no dependencies and the mix metadata', () => {
    const { metadata } = parse('foo-0.1.0.tar');
    expect(metadata).toMatchObject({
      name: 'foo',
      version: '0.1.0',
      app: 'foo',
      description: 'Tiny test package foo (0.1.0) for a self-hosted Hex repo',
      licenses: ['Apache-2.0'],
      links: [['GitHub', 'https://github.com/example/foo']],
      files: ['lib', 'lib/foo.ex', 'mix.exs', 'README.md'],
      buildTools: ['mix'],
      elixir: '~> 1.12',
      requirements: [],
      other: {},
    });
    expect(parse('foo-0.2.0.tar').metadata.version).toBe('0.2.0');
  });

  it('bar depends on foo ~> 0.1 in repository acme (Mix shape)', () => {
    expect(parse('bar-1.0.0.tar').facts.dependencies).toEqual([{ package: 'foo', requirement: '~> 0.1', optional: false, app: 'foo', repository: 'acme' }]);
  });

  it('opt has app opt_app, an optional dep on foo and a dep on a pre-release', () => {
    const { metadata, facts } = parse('opt-0.1.0.tar');
    expect(metadata.name).toBe('opt');
    expect(metadata.app).toBe('opt_app');
    expect(facts.dependencies).toEqual([
      { package: 'foo', requirement: '~> 0.2', optional: true, app: 'foo', repository: 'acme' },
      { package: 'pre', requirement: '~> 1.0-rc', optional: false, app: 'pre', repository: 'acme' },
    ]);
    expect(parse('pre-1.0.0-rc.1.tar').facts.version).toBe('1.0.0-rc.1');
  });

  it('unicode_pkg decodes its byte-list description as UTF-8', () => {
    expect(parse('unicode_pkg-0.1.0.tar').metadata.description).toBe('Bär — ünïcode ✓ description');
  });

  it('qux has name-keyed requirements with repository acme', () => {
    expect(parse('qux-0.1.0.tar').facts.dependencies).toEqual([{ package: 'baz', requirement: '~> 1.0', optional: false, app: 'baz', repository: 'acme' }]);
  });

  it('quux has name-keyed requirements without repository', () => {
    const [dep, ...rest] = parse('quux-0.1.0.tar').facts.dependencies;
    expect(rest).toEqual([]);
    expect(dep).toEqual({ package: 'baz', requirement: '~> 1.0', optional: false, app: 'baz' });
    expect(dep).not.toHaveProperty('repository');
  });

  it('baz is built with rebar3 and has no dependencies', () => {
    const { metadata } = parse('baz-1.0.0.tar');
    expect(metadata.buildTools).toEqual(['rebar3']);
    expect(metadata.requirements).toEqual([]);
    expect(metadata).not.toHaveProperty('elixir');
    expect(parse('baz-1.0.0.tar').files.map((f) => f.path)).toEqual(['rebar.config', 'README.md', 'src/baz.app.src', 'src/baz.erl']);
  });
});
