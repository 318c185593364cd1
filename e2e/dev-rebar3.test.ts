/**
 * `hexrepo dev` as `pnpm dev` runs it (the built CLI, a fresh workspace): rebar3 fetches and
 * compiles the seeded example packages, then a dropped tarball is picked up and fetched too.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { copyFile, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI } from './support/cli.js';
import { rebar3Unavailable, runRebar3, writeConsumer } from './support/rebar3.js';

const FIXTURES = new URL('../test-fixtures/tarballs/', import.meta.url).pathname;
const unavailable = rebar3Unavailable();
if (unavailable) console.warn(`skipping the dev server's rebar3 test: ${unavailable}`);

describe.skipIf(unavailable !== null)('hexrepo dev with rebar3', () => {
  let dir: string;
  let child: ChildProcess;
  let url: string;
  let stderr = '';

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'hexrepo-e2e-dev-'));
    child = spawn(process.execPath, [CLI, 'dev', '--port', '0'], { cwd: dir, env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: dir }, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    url = await new Promise<string>((resolve, reject) => {
      let out = '';
      const timer = setTimeout(() => reject(new Error(`hexrepo dev did not start:\n${stderr}`)), 20_000);
      child.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        const m = /hexrepo dev: (http:\/\/\S+)/.exec(out);
        if (m) {
          clearTimeout(timer);
          resolve(m[1]!);
        }
      });
    });
  }, 30_000);

  afterAll(async () => {
    child?.kill('SIGTERM');
    await new Promise((r) => child?.once('exit', r));
    await rm(dir, { recursive: true, force: true });
  });

  it('serves the seeded packages to rebar3, in the default workspace .hexrepo-dev/', async () => {
    const publicKeyPem = await readFile(join(dir, '.hexrepo-dev/public/public_key'), 'utf8');
    const project = join(dir, 'consumer');
    await writeConsumer(project, { name: 'dev', url, publicKeyPem }, { greeter: '~> 0.1' });
    const res = await runRebar3(project, ['compile'], join(dir, 'home'));
    expect(res.status, res.output).toBe(0);
    await expect(readFile(join(project, '_build/default/lib/hello/ebin/hello.beam'))).resolves.toBeTruthy();
    expect(stderr).toMatch(/GET\s+\/packages\/greeter 200 .* rebar3/);
  }, 120_000);

  it('picks up a dropped tarball, and rebar3 fetches it', async () => {
    for (const t of ['baz-1.0.0.tar', 'qux-0.1.0.tar']) await copyFile(join(FIXTURES, t), join(dir, '.hexrepo-dev/public/tarballs', t));
    const deadline = Date.now() + 10_000;
    while ((await fetch(`${url}/packages/qux`)).status !== 200) {
      if (Date.now() > deadline) throw new Error(`qux not served:\n${stderr}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    const publicKeyPem = await readFile(join(dir, '.hexrepo-dev/public/public_key'), 'utf8');
    const project = join(dir, 'consumer2');
    await writeConsumer(project, { name: 'dev', url, publicKeyPem }, { qux: '~> 0.1' });
    const res = await runRebar3(project, ['compile'], join(dir, 'home2'));
    expect(res.status, res.output).toBe(0);
    expect(stderr).toMatch(/rebuild .*\+qux 0\.1\.0/);
  }, 120_000);
});
