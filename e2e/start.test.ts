/**
 * The README's first command, run as written (plus a workspace folder and --port 0, which it passes
 * to `hexrepo dev`), on an already built workspace: it starts the dev server, prints the URL and the
 * client set-up, serves the signed registry and the seeded tarballs, and Ctrl-C (SIGINT) stops it
 * with exit 0 and nothing left running.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadPublicKey, unpackNames } from '@hexrepo/registry';
import { parseTarball } from '@hexrepo/tarball';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, cliBuilt } from './support/cli.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const unavailable = cliBuilt() ? null : `${CLI} is missing: run "pnpm build" first`;
if (unavailable) console.warn(`skipping the README first-command test: ${unavailable}`);

/** The first command of the README's "Two commands on a fresh machine" block. */
async function firstCommand(): Promise<string[]> {
  const readme = await readFile(join(ROOT, 'README.md'), 'utf8');
  const block = /## Two commands on a fresh machine[\s\S]*?```sh\n([\s\S]*?)```/.exec(readme)?.[1] ?? '';
  return (block.split('\n')[0] ?? '').replace(/#.*/, '').trim().split(/\s+/);
}

/** Process ids whose parent is `pid`. */
function children(pid: number): string[] {
  return spawnSync('ps', ['--ppid', String(pid), '-o', 'pid='], { encoding: 'utf8' })
    .stdout.split('\n')
    .filter((l) => l.trim() !== '');
}

describe.skipIf(unavailable !== null)('the README first command', () => {
  let dir: string;
  let child: ChildProcess;
  let url: string;
  let stdout = '';
  let stderr = '';
  let exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'hexrepo-e2e-start-'));
    const [cmd, script, ...rest] = await firstCommand();
    expect([cmd, script, ...rest]).toEqual(['node', 'scripts/start.mjs']);
    child = spawn(process.execPath, [script!, join(dir, 'workspace'), '--port', '0'], { cwd: ROOT, env: { ...process.env, NO_COLOR: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
    exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    url = await new Promise<string>((resolve, reject) => {
      child.once('exit', () => reject(new Error(`the first command exited before serving:\n${stdout}\n${stderr}`)));
      child.stdout!.on('data', (d: Buffer) => {
        stdout += d.toString();
        const m = /hexrepo dev: (http:\/\/\S+)/.exec(stdout);
        if (m) resolve(m[1]!);
      });
    });
  }, 180_000);

  afterAll(async () => {
    if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('prints the URL and the Mix and rebar3 set-up lines', () => {
    expect(stdout).toContain(`mix hex.repo add dev ${url} --public-key ${join(dir, 'workspace/public/public_key')}`);
    expect(stdout).toContain(`repo_url => <<"${url}">>`);
  });

  it('serves the signed names and the seeded tarballs', async () => {
    const publicKey = loadPublicKey(await readFile(join(dir, 'workspace/public/public_key')));
    const names = await fetch(`${url}/names`);
    expect(names.status).toBe(200);
    const decoded = unpackNames(new Uint8Array(await names.arrayBuffer()), { publicKey, repository: 'dev' });
    expect(decoded.packages.map((p) => p.name).sort()).toEqual(['greeter', 'hello']);
    const tarball = await fetch(`${url}/tarballs/hello-0.1.0.tar`);
    expect(tarball.status).toBe(200);
    expect(parseTarball(new Uint8Array(await tarball.arrayBuffer())).metadata).toMatchObject({ name: 'hello', version: '0.1.0' });
  });

  it('runs the server in its own process and stops on SIGINT with exit 0, leaving nothing running', async () => {
    expect(children(child.pid!)).toEqual([]);
    child.kill('SIGINT');
    expect(await exited).toEqual({ code: 0, signal: null });
    await expect(fetch(`${url}/names`)).rejects.toThrow();
  }, 30_000);
});
