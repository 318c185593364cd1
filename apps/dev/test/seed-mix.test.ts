/**
 * The dev server's example packages compile with Mix alone (no rebar3 anywhere Mix could find it),
 * as a Mix user gets them: the tarball contents unpacked where Mix puts a dependency, compiled with
 * `mix compile`. Hex cannot be installed offline, so greeter is compiled against hello as a path
 * dependency, which is the dependency a Hex consumer's lock supplies. (rebar3 compiling the same
 * packages is e2e/dev-rebar3.test.ts.)
 */
import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { parseTarball, readTar } from '@hexrepo/tarball';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { examplePackages } from '../src/index.js';

const mixUnavailable = spawnSync('mix', ['--version'], { stdio: 'ignore' }).status === 0 ? null : 'mix not found (apt-get install elixir)';
if (mixUnavailable) console.warn(`skipping the Mix test of the dev example packages: ${mixUnavailable}`);

let dir: string;
let env: Record<string, string>;

/** Unpack a tarball's contents into `dest`, as Hex does into deps/NAME. */
async function unpack(tarball: Uint8Array, dest: string): Promise<void> {
  const inner = readTar(tarball).find((e) => e.name === 'contents.tar.gz');
  for (const entry of readTar(gunzipSync(inner!.data))) {
    if (entry.type !== 'file') continue;
    await mkdir(dirname(join(dest, entry.name)), { recursive: true });
    await writeFile(join(dest, entry.name), entry.data);
  }
}

function mix(cwd: string, args: string[]): { status: number | null; output: string } {
  const res = spawnSync('mix', args, { cwd, env, encoding: 'utf8', input: '' });
  return { status: res.status, output: `${res.stdout}${res.stderr}` };
}

describe.skipIf(mixUnavailable !== null)('the dev example packages with Mix alone', () => {
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'hexrepo-seed-mix-'));
    // A PATH with every program of the current one except rebar/rebar3: Mix falls back to a rebar3
    // on PATH or in MIX_HOME for a rebar3-managed dependency, and neither may exist here.
    const bin = join(dir, 'bin');
    await mkdir(bin);
    const seen = new Set<string>();
    for (const p of (process.env.PATH ?? '/usr/bin:/bin').split(delimiter)) {
      for (const name of await readdir(p).catch(() => [])) {
        if (seen.has(name) || name.startsWith('rebar')) continue;
        seen.add(name);
        await symlink(join(p, name), join(bin, name));
      }
    }
    env = { PATH: bin, HOME: join(dir, 'home'), MIX_HOME: join(dir, 'home/.mix'), LANG: 'C.UTF-8', MIX_ENV: 'prod' };
    for (const { file, tarball } of examplePackages()) await unpack(tarball, join(dir, 'deps', file.replace(/-[^-]+\.tar$/, '')));
  }, 60_000);

  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('lists mix first among the build tools, so Mix (not rebar3) compiles them', () => {
    for (const { tarball } of examplePackages()) {
      const { metadata, files } = parseTarball(tarball);
      expect(metadata.buildTools).toEqual(['mix', 'rebar3']);
      expect(files.map((f) => f.path)).toEqual(expect.arrayContaining(['mix.exs', 'rebar.config']));
    }
    expect(spawnSync('rebar3', ['version'], { env, stdio: 'ignore' }).error).toBeDefined();
  });

  it('compiles hello with mix compile', async () => {
    const res = mix(join(dir, 'deps/hello'), ['compile']);
    expect(res.status, res.output).toBe(0);
    expect(res.output).not.toMatch(/rebar/i);
    await expect(readFile(join(dir, 'deps/hello/_build/prod/lib/hello/ebin/hello.beam'))).resolves.toBeTruthy();
    const app = await readFile(join(dir, 'deps/hello/_build/prod/lib/hello/ebin/hello.app'), 'utf8');
    expect(app).toMatch(/\{vsn,"0\.1\.0"\}/);
  }, 120_000);

  it('compiles greeter against hello and runs it', async () => {
    const greeter = join(dir, 'deps/greeter');
    const mixExs = await readFile(join(greeter, 'mix.exs'), 'utf8');
    // The one change: hello from the path instead of from Hex (a Hex consumer gets it from its lock).
    const local = mixExs.replace('{:hello, "~> 0.1"}', `{:hello, path: ${JSON.stringify(join(dir, 'deps/hello'))}}`);
    expect(local).not.toBe(mixExs);
    await writeFile(join(greeter, 'mix.exs'), local);
    const res = mix(greeter, ['compile']);
    expect(res.status, res.output).toBe(0);
    expect(res.output).not.toMatch(/rebar/i);
    const run = mix(greeter, ['run', '--no-compile', '-e', 'IO.puts(:greeter.greet())']);
    expect(run.status, run.output).toBe(0);
    expect(run.output.trim().split('\n').at(-1)).toBe('hello, world');
  }, 120_000);
});
