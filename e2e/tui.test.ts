/**
 * `hexrepo tui` in a real pseudo-terminal (tmux): the built CLI on a fresh repository made with
 * `hexrepo init`; a tarball is published through the UI (P, type the path with Tab completion,
 * Enter, y), then the registry is checked with `hexrepo verify` and by reading packages/foo.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadPublicKey, unpackPackage } from '@hexrepo/registry';
import { CLI, cliBuilt, hexrepo } from './support/cli.js';

const FIXTURES = new URL('../test-fixtures/tarballs/', import.meta.url).pathname;
const TMUX = ['/usr/bin/tmux', '/usr/local/bin/tmux'].find((p) => existsSync(p)) ?? null;
const unavailable = !TMUX ? 'tmux is not installed' : !cliBuilt() ? `${CLI} is missing: run "pnpm build" first` : null;
if (unavailable) console.warn(`skipping the tui e2e test: ${unavailable}`);

const SOCKET = `hexrepo-tui-e2e-${process.pid}`;
const SESSION = 'tui';

function tmux(...args: string[]): string {
  return execFileSync(TMUX!, ['-L', SOCKET, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

function screen(): string {
  return tmux('capture-pane', '-p', '-t', SESSION);
}

async function waitForScreen(test: string | RegExp, timeoutMs = 10_000): Promise<string> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const s = screen();
    if (typeof test === 'string' ? s.includes(test) : test.test(s)) return s;
    if (Date.now() > until) throw new Error(`timed out waiting for ${String(test)} on the screen:\n${s}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe.skipIf(unavailable !== null)('hexrepo tui in tmux', () => {
  let dir: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'hexrepo-e2e-tui-'));
    const init = await hexrepo(['init', join(dir, 'repo'), '--name', 'tuie2e']);
    expect(init.status, init.stderr).toBe(0);
    // The pane keeps its text after the app exits, with the exit status, until the session is killed.
    // CI=false: Ink renders only the last frame when it believes it runs in CI, and CI runs this test.
    const command = `CI=false NO_COLOR=1 ${JSON.stringify(process.execPath)} ${JSON.stringify(CLI)} tui ${JSON.stringify(join(dir, 'repo'))}; echo "EXIT=$?"; sleep 600`;
    tmux('new-session', '-d', '-s', SESSION, '-x', '100', '-y', '30', '-c', FIXTURES, command);
  });

  afterAll(async () => {
    try {
      tmux('kill-session', '-t', SESSION);
    } catch {
      // already gone
    }
    try {
      tmux('kill-server');
    } catch {
      // no server left
    }
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('publishes test-fixtures/tarballs/foo-0.1.0.tar through the UI', async () => {
    let s = await waitForScreen('no packages yet');
    expect(s).toMatch(/tuie2e \| read-write \| .*\/repo\/public \| key SHA256:/);
    tmux('send-keys', '-t', SESSION, 'P');
    await waitForScreen('Tarball to publish');
    tmux('send-keys', '-t', SESSION, '-l', 'foo-0.1');
    await waitForScreen('> foo-0.1_');
    tmux('send-keys', '-t', SESSION, 'Tab');
    await waitForScreen('> foo-0.1.0.tar_');
    tmux('send-keys', '-t', SESSION, 'Enter');
    s = await waitForScreen('Publish foo 0.1.0 to');
    expect(s).toContain('name:     foo');
    expect(s).toContain('version:  0.1.0');
    tmux('send-keys', '-t', SESSION, 'y');
    await waitForScreen('published foo 0.1.0');
    tmux('send-keys', '-t', SESSION, 'Enter');
    s = await waitForScreen(/> foo\s+0\.1\.0\s+1/);
    expect(s).toContain('(1 of 1)');
    tmux('send-keys', '-t', SESSION, 'q');
    await waitForScreen('EXIT=0');

    const verify = await hexrepo(['verify', join(dir, 'repo'), '--json']);
    expect(verify.status, `${verify.stdout}\n${verify.stderr}`).toBe(0);
    const publicDir = join(dir, 'repo', 'public');
    const publicKey = loadPublicKey(await readFile(join(publicDir, 'public_key')));
    const pkg = unpackPackage(await readFile(join(publicDir, 'packages', 'foo')), { publicKey, repository: 'tuie2e', name: 'foo' });
    expect(pkg.releases.map((r) => r.version)).toEqual(['0.1.0']);
  }, 60_000);

  it('opens a bare public folder without --name: the name is the one signed into names', async () => {
    // Run from the temp folder, which has no hexrepo.json, on the public folder itself.
    const command = `CI=false NO_COLOR=1 ${JSON.stringify(process.execPath)} ${JSON.stringify(CLI)} tui repo/public; echo "EXIT=$?"; sleep 600`;
    tmux('new-session', '-d', '-s', 'bare', '-x', '100', '-y', '30', '-c', dir, command);
    const until = Date.now() + 10_000;
    let s = '';
    while (!/> foo\s+0\.1\.0/.test(s) && !s.includes('EXIT=')) {
      if (Date.now() > until) break;
      await new Promise((r) => setTimeout(r, 50));
      s = tmux('capture-pane', '-p', '-t', 'bare');
    }
    expect(s).toMatch(/> foo\s+0\.1\.0/);
    expect(s).toMatch(/tuie2e \| read-only/);
    tmux('send-keys', '-t', 'bare', 'q');
    while (!tmux('capture-pane', '-p', '-t', 'bare').includes('EXIT=0')) {
      if (Date.now() > until + 10_000) throw new Error(`tui did not quit:\n${tmux('capture-pane', '-p', '-t', 'bare')}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }, 60_000);
});
