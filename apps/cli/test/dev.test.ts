/** `hexrepo dev` as users start it: the lines it prints lead to the live page and the web UI. */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, cliBuilt } from '../../../e2e/support/cli.js';

let dir: string;
let child: ChildProcess | undefined;
let stdout = '';

beforeAll(async () => {
  if (!cliBuilt()) throw new Error(`${CLI} is missing: run "pnpm build" first`);
  dir = await mkdtemp(join(tmpdir(), 'hexrepo-cli-dev-'));
  child = spawn(process.execPath, [CLI, 'dev', join(dir, 'dev'), '--port', '0'], { env: { ...process.env, NO_COLOR: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
  await new Promise<void>((resolve, reject) => {
    child!.stdout!.on('data', (d: Buffer) => {
      stdout += d.toString();
      if (stdout.includes('web UI:') || stdout.includes('drop tarballs')) resolve();
    });
    child!.on('exit', (code) => reject(new Error(`hexrepo dev exited with ${code}`)));
  });
});

afterAll(async () => {
  if (child && child.exitCode === null) {
    const exited = new Promise((resolve) => child!.once('exit', resolve));
    child.kill('SIGTERM');
    await exited;
  }
  await rm(dir, { recursive: true, force: true });
});

describe('hexrepo dev', () => {
  it('prints the web UI beside the live page, and both answer', async () => {
    const live = /live page: +(http:\/\/\S+\/_dev\/)/.exec(stdout);
    const web = /web UI: +(http:\/\/\S+\/-\/)/.exec(stdout);
    expect(live, stdout).not.toBeNull();
    expect(web, stdout).not.toBeNull();
    const page = await fetch(web![1]!, { headers: { accept: 'text/html' } });
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('data-name="hello"');
    const devPage = await (await fetch(live![1]!)).text();
    expect(devPage).toContain('href="/-/"');
  });
});
