/**
 * Drive the real rebar3 client (Debian's 3.19) against a repository on loopback, fully isolated:
 * its own HOME and cache, and `{repos, replace, [...]}` so it never contacts hex.pm.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/** Why rebar3 end-to-end tests cannot run here, or null. */
export function rebar3Unavailable(): string | null {
  return spawnSync('rebar3', ['version'], { stdio: 'ignore', env: { ...process.env, HOME: process.env.HOME ?? '/tmp' } }).status === 0 ? null : 'rebar3 not found (apt-get install rebar3)';
}

export interface RepoEntry {
  name: string;
  url: string;
  publicKeyPem: string;
  /** Sent raw as Authorization (rebar3's repo_key). */
  repoKey?: string;
}

function erlBin(text: string): string {
  return `<<${JSON.stringify(text)}>>`;
}

/** Write an Erlang consumer app `consumer` depending on `deps` (name → requirement). */
export async function writeConsumer(dir: string, repo: RepoEntry, deps: Record<string, string>, extraSrc = ''): Promise<void> {
  await mkdir(join(dir, 'src'), { recursive: true });
  const repoMap = [`name => ${erlBin(repo.name)}`, `repo_url => ${erlBin(repo.url)}`, `repo_public_key => ${erlBin(repo.publicKeyPem)}`, ...(repo.repoKey ? [`repo_key => ${erlBin(repo.repoKey)}`] : [])].join(',\n                  ');
  const depList = Object.entries(deps)
    .map(([n, r]) => `{${n}, ${JSON.stringify(r)}}`)
    .join(', ');
  await writeFile(join(dir, 'rebar.config'), `{deps, [${depList}]}.\n{hex, [{repos, replace, [#{${repoMap}}]}]}.\n`);
  await writeFile(
    join(dir, 'src', 'consumer.app.src'),
    `{application, consumer, [{vsn, "0.1.0"}, {applications, [kernel, stdlib${Object.keys(deps)
      .map((d) => `, ${d}`)
      .join('')}]}]}.\n`,
  );
  await writeFile(join(dir, 'src', 'consumer.erl'), `-module(consumer).\n-export([hello/0]).\nhello() -> ok.\n${extraSrc}`);
}

/** Run rebar3 in `dir` with an isolated HOME and cache. Resolves with the exit status and output. */
export function runRebar3(dir: string, args: string[], home: string, extraEnv: Record<string, string> = {}): Promise<{ status: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn('rebar3', args, {
      cwd: dir,
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: home, REBAR_CACHE_DIR: join(home, 'rebar3-cache'), REBAR_COLOR: 'none', DIAGNOSTIC: '1', LANG: 'C.UTF-8', ...extraEnv },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
    child.on('close', (status) => {
      clearTimeout(timer);
      resolve({ status, output });
    });
  });
}
