import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { cleanup, render } from 'ink-testing-library';
import { HexrepoError } from '@hexrepo/core';
import { App } from '../src/app.js';
import { FakeSource, release } from './fake.js';

const FIXTURES = fileURLToPath(new URL('../../../test-fixtures/tarballs/', import.meta.url));
const KEY = { up: '\u001B[A', down: '\u001B[B', enter: '\r', esc: '\u001B', tab: '\t', backspace: '\u007F' };

function sample(): FakeSource {
  return new FakeSource({
    hello: [release('0.1.0'), release('0.2.0'), release('1.0.0', { retired: { reason: 'security', message: 'CVE-2024-1' } })],
    greeter: [
      release('0.1.0', {
        dependencies: [
          { package: 'hello', requirement: '~> 0.2', optional: false, app: 'hello' },
          { package: 'jason', requirement: '>= 1.0.0', optional: true, app: 'jason', repository: 'hexpm' },
        ],
      }),
    ],
    bar: [release('1.0.0')],
    baz: [release('1.0.0'), release('1.1.0')],
  });
}

function start(source: FakeSource, extra: { onQuit?: () => void } = {}) {
  const app = render(<App source={source} cwd={FIXTURES} rows={24} columns={80} {...extra} />);
  const frame = (): string => app.lastFrame() ?? '';
  const waitFor = async (text: string | RegExp, timeoutMs = 3000): Promise<string> => {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const f = frame();
      if (typeof text === 'string' ? f.includes(text) : text.test(f)) return f;
      if (Date.now() > until) throw new Error(`timed out waiting for ${String(text)}; last frame:\n${f}`);
      await new Promise((r) => setTimeout(r, 5));
    }
  };
  // One key at a time, each after the previous one's frame (or 50 ms when it changed nothing).
  const press = async (...keys: string[]): Promise<void> => {
    for (const k of keys) {
      const before = app.frames.length;
      app.stdin.write(k);
      const until = Date.now() + 50;
      while (app.frames.length === before && Date.now() < until) await new Promise((r) => setTimeout(r, 1));
      await new Promise((r) => setImmediate(r));
    }
  };
  return { app, frame, waitFor, press };
}

afterEach(() => cleanup());

describe('package list', () => {
  it('lists packages sorted by name with latest version, release count, retired markers and the status bar', async () => {
    const { waitFor, frame } = start(sample());
    await waitFor('(4 of 4)');
    const lines = frame().split('\n');
    expect(lines.length).toBeLessThan(24);
    const rows = lines.filter((l) => /^[> ] [a-z]/.test(l));
    expect(rows.map((l) => l.slice(2).split(/\s+/)[0])).toEqual(['bar', 'baz', 'greeter', 'hello']);
    expect(rows[0]).toMatch(/^> bar\s+1\.0\.0\s+1/);
    expect(rows[1]).toMatch(/baz\s+1\.1\.0\s+2/);
    expect(rows[3]).toMatch(/hello\s+1\.0\.0\s+3\s+\[retired\]/);
    expect(frame()).toContain('fake | read-write | /memory/public | key SHA256:fakefingerprint');
    for (const l of lines) expect(l.length).toBeLessThanOrEqual(80);
  });

  it('filters as you type, Backspace and Esc undo it, and q quits only with an empty filter', async () => {
    const onQuit = vi.fn();
    const { waitFor, press, frame } = start(sample(), { onQuit });
    await waitFor('(4 of 4)');
    await press('b', 'a');
    await waitFor('(2 of 4)');
    expect(frame()).toContain('Search: ba_');
    expect(frame()).not.toContain('greeter');
    await press('z');
    await waitFor('(1 of 4)');
    await press(KEY.backspace);
    await waitFor('(2 of 4)');
    await press('q');
    await waitFor('no package matches "baq"');
    expect(onQuit).not.toHaveBeenCalled();
    await press(KEY.esc);
    await waitFor('(4 of 4)');
    await press('q');
    expect(onQuit).toHaveBeenCalledTimes(1);
  });

  it('windows a long list: only the rows that fit are rendered and the cursor stays visible', async () => {
    const pkgs: Record<string, ReturnType<typeof release>[]> = {};
    for (let i = 0; i < 300; i++) pkgs[`pkg_${String(i).padStart(3, '0')}`] = [release('1.0.0')];
    const { waitFor, press, frame } = start(new FakeSource(pkgs));
    await waitFor('(300 of 300)');
    expect(frame().match(/pkg_\d{3}/g)!.length).toBe(15);
    for (let i = 0; i < 20; i++) await press(KEY.down);
    await waitFor('> pkg_020');
    expect(frame()).not.toContain('pkg_000');
    expect(frame().match(/pkg_\d{3}/g)!.length).toBe(15);
  });
});

describe('package view', () => {
  it('shows versions newest first with dependencies, checksums, retirement and metadata; Esc goes back', async () => {
    const { waitFor, press, frame } = start(sample());
    await waitFor('(4 of 4)');
    await press('h', 'e', KEY.enter);
    let f = await waitFor('description: The hello package, version 1.0.0');
    expect(f).toContain('hello: 3 releases (newest first)');
    const versions = f
      .split('\n')
      .filter((l) => /^[> ] \d+\.\d+\.\d+/.test(l))
      .map((l) => l.slice(2).split(/\s+/)[0]);
    expect(versions).toEqual(['1.0.0', '0.2.0', '0.1.0']);
    expect(f).toContain('[retired: security]');
    expect(f).toContain('retired: [security] "CVE-2024-1"');
    expect(f).toMatch(/outer checksum: [0-9a-f]{64}/);
    expect(f).toMatch(/inner checksum: [0-9a-f]{64}/);
    expect(f).toContain('licenses: Apache-2.0');
    expect(f).toContain('build tools: mix');
    expect(f).toContain('link: GitHub: https://example.com/hello');
    await press(KEY.down);
    f = await waitFor('description: The hello package, version 0.2.0');
    expect(f).toContain('retired: no');
    await press(KEY.esc);
    await waitFor('Search: he_');
    await press(KEY.esc, 'g', KEY.enter);
    f = await waitFor('dependencies: 2');
    expect(f).toContain('hello ~> 0.2');
    expect(f).toContain('jason >= 1.0.0 [optional] (repository hexpm)');
    expect(frame()).not.toContain('error');
  });

  it('retires with a reason and message, and unretires after y', async () => {
    const source = sample();
    const { waitFor, press } = start(source);
    await waitFor('(4 of 4)');
    await press('b', 'a', 'r', KEY.enter);
    await waitFor('bar: 1 release');
    await press('r');
    await waitFor('Retire bar 1.0.0');
    await press(KEY.down, 'u', 's', 'e', ' ', 'b', 'a', 'z');
    await waitFor('> (x) invalid');
    await waitFor('Message (7/140): use baz_');
    await press(KEY.enter);
    await waitFor('[retired: invalid]');
    expect(source.calls).toContain('retire bar 1.0.0 invalid use baz');
    await waitFor('retired bar 1.0.0 [invalid] "use baz"');
    await press('u');
    await waitFor('Unretire bar 1.0.0? (y/n)');
    await press('y');
    await waitFor('unretired bar 1.0.0');
    expect(source.calls).toContain('unretire bar 1.0.0');
  });

  it('shows a read-only source error in place instead of opening the retire form', async () => {
    const source = sample();
    source.info = { ...source.info, readOnly: 'no signing key' };
    const { waitFor, press, frame } = start(source);
    await waitFor('read-only: no signing key');
    await press('b', 'a', 'r', KEY.enter);
    await waitFor('bar: 1 release');
    await press('r');
    await waitFor('error: read-only: no signing key');
    expect(frame()).not.toContain('Retire bar');
  });
});

describe('advisories', () => {
  it('are marked with a word in the list and on each affected release, with their details', async () => {
    const advisory = { id: 'GHSA-aaaa-bbbb-cccc', summary: 'Atom exhaustion', htmlUrl: 'https://example.test/a', apiUrl: 'https://example.test/a', severity: 'high' as const, cvssScore: 7.5, aliases: [] };
    const low = { id: 'ACME-1', summary: 'Minor leak', htmlUrl: 'https://example.test/b', apiUrl: 'https://example.test/b', severity: 'low' as const, aliases: ['CVE-2026-2'] };
    const source = new FakeSource({ vuln: [release('1.0.0', { advisories: [low, advisory] }), release('1.1.0')], safe: [release('1.0.0')] });
    const { waitFor, press } = start(source, {});
    let f = await waitFor('(2 of 2)');
    expect(f.split('\n').find((l) => l.includes('vuln'))).toContain('[1 advisory]');
    expect(f.split('\n').find((l) => l.includes('safe'))).not.toContain('advisory');
    await press('v', KEY.enter, KEY.down);
    f = await waitFor('description: The vuln package, version 1.0.0');
    expect(f.split('\n').find((l) => /^> 1\.0\.0/.test(l))).toContain('[advisory: high]');
    expect(f).toContain('advisory: [high] GHSA-aaaa-bbbb-cccc CVSS 7.5: Atom exhaustion');
    expect(f).toContain('  https://example.test/a');
    expect(f).toContain('advisory: [low] ACME-1: Minor leak');
    expect(f).toContain('  https://example.test/b (CVE-2026-2)');
  });
});

describe('publish', () => {
  it('completes the path with Tab, validates, shows what will be published and publishes after y', async () => {
    const source = sample();
    const { waitFor, press, frame } = start(source);
    await waitFor('(4 of 4)');
    await press('P');
    await waitFor('Tarball to publish');
    await press('f', 'o', 'o', KEY.tab);
    await waitFor('> foo-0._');
    expect(frame()).toContain('matches: foo-0.1.0.tar  foo-0.2.0.tar');
    await press('1', KEY.tab);
    await waitFor('> foo-0.1.0.tar_');
    await press(KEY.enter);
    const f = await waitFor('Publish foo 0.1.0 to /memory/public? (y/n)');
    expect(f).toContain('name:     foo');
    expect(f).toContain('version:  0.1.0');
    expect(f).toMatch(/size: +\d+(\.\d)? (B|KiB)/);
    expect(f).toMatch(/deps: +\w+/);
    expect(source.calls).toEqual([]);
    await press('y');
    await waitFor('published foo 0.1.0');
    expect(source.published).toEqual([{ name: 'foo', version: '0.1.0' }]);
    await press(KEY.enter);
    await waitFor('(5 of 5)');
    expect(frame()).toMatch(/foo\s+0\.1\.0\s+1/);
  });

  it('takes a path and Enter sent as one chunk (a paste, tmux send-keys)', async () => {
    const source = sample();
    const { app, waitFor, press } = start(source);
    await waitFor('(4 of 4)');
    await press('P');
    await waitFor('Tarball to publish');
    app.stdin.write('foo-0.2.0.tar\r');
    await waitFor('Publish foo 0.2.0');
    await press('y');
    await waitFor('published foo 0.2.0');
    expect(source.published).toEqual([{ name: 'foo', version: '0.2.0' }]);
  });

  it('n cancels without publishing', async () => {
    const source = sample();
    const { waitFor, press } = start(source);
    await waitFor('(4 of 4)');
    await press('P', ...'foo-0.2.0.tar', KEY.enter);
    await waitFor('Publish foo 0.2.0');
    await press('n');
    await waitFor('publish of foo 0.2.0 cancelled');
    await waitFor('> foo-0.2.0.tar_');
    expect(source.calls).toEqual([]);
  });

  it('shows errors in place: a missing file, an invalid tarball and a refused publish', async () => {
    const source = sample();
    const { waitFor, press, frame } = start(source);
    await waitFor('(4 of 4)');
    await press('P', ...'nope.tar', KEY.enter);
    await waitFor('error: nope.tar: cannot read nope.tar: ENOENT');
    await press(...Array(8).fill(KEY.backspace), ...'SHA256SUMS', KEY.enter);
    await waitFor(/error: SHA256SUMS: .+/);
    await press(...Array(10).fill(KEY.backspace), ...'bar-1.0.0.tar', KEY.enter);
    await waitFor('Publish bar 1.0.0');
    source.failPublish = new HexrepoError('ALREADY_EXISTS', 'bar 1.0.0 is already published; publish with --replace to overwrite it, or bump the version');
    await press('y');
    const f = await waitFor('error: publish bar 1.0.0: bar 1.0.0 is already published');
    expect(f).toContain('Tarball to publish');
    expect(frame()).toMatch(/\d\d:\d\d:\d\d error: publish bar 1.0.0/);
    await press(KEY.esc);
    await waitFor('(4 of 4)');
  });
});

describe('help and colour', () => {
  it('? shows the key bindings and Esc returns', async () => {
    const { waitFor, press } = start(sample());
    await waitFor('(4 of 4)');
    await press('?');
    await waitFor('type to filter (Backspace deletes, Esc clears)');
    await press(KEY.esc);
    await waitFor('(4 of 4)');
  });

  it('writes no escape codes for styling when colour is off', async () => {
    const { waitFor, frame } = start(sample());
    await waitFor('(4 of 4)');
    expect(frame()).not.toMatch(/\u001B\[/);
    expect(frame()).toMatch(/^> bar/m);
  });
});
