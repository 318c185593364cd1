/**
 * `hexrepo build --threads N` from the built binary: the pool's worker script is found next to the
 * compiled module (apps/cli/dist → packages/repo/dist/build-worker.js), and the output is the same
 * bytes as on one thread.
 */
import { cp, mkdir, mkdtemp, readdir, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTarball } from '@hexrepo/tarball';
import { hexrepo } from '../../../e2e/support/cli.js';

const KEY = new URL('../../../test-fixtures/golden-acme/test-only-rsa.pem', import.meta.url).pathname;
let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hexrepo-cli-threads-'));
  const pub = join(dir, 'source/public/tarballs');
  await mkdir(pub, { recursive: true });
  for (let i = 0; i < 50; i++) {
    for (let v = 0; v < 4; v++) {
      const name = `pkg_${String(i).padStart(3, '0')}`;
      const { tarball } = createTarball({ name, version: `1.${v}.0`, app: name, description: `generated ${i}`, licenses: ['MIT'], buildTools: ['rebar3'] }, [
        { path: `src/${name}.erl`, contents: new TextEncoder().encode(`-module(${name}).\n% ${'y'.repeat(i + v)}\n`) },
      ]);
      await writeFile(join(pub, `${name}-1.${v}.0.tar`), tarball);
      const t = new Date(Date.UTC(2026, 1, 1 + i, v));
      await utimes(join(pub, `${name}-1.${v}.0.tar`), t, t);
    }
  }
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A copy of the generated public folder (cp keeps the mtimes the registry's timestamps come from). */
async function copy(label: string): Promise<string> {
  const to = join(dir, label, 'public');
  await cp(join(dir, 'source/public'), to, { recursive: true, preserveTimestamps: true });
  return to;
}

async function registryFiles(pub: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const f of ['names', 'versions', 'public_key']) out.set(f, (await readFile(join(pub, f))).toString('base64'));
  for (const f of await readdir(join(pub, 'packages'))) out.set(`packages/${f}`, (await readFile(join(pub, 'packages', f))).toString('base64'));
  return out;
}

const args = (pub: string) => ['build', pub, '--name', 'acme', '--private-key', KEY, '--cache', `${pub}.cache.json`, '--json'];

describe('hexrepo build --threads', () => {
  it('--threads 2 and HEXREPO_BUILD_THREADS=2 write the same bytes as --threads 1', async () => {
    const one = await copy('one');
    const two = await copy('two');
    const env = await copy('env');
    const a = await hexrepo([...args(one), '--threads', '1']);
    const b = await hexrepo([...args(two), '--threads', '2']);
    const c = await hexrepo(args(env), { env: { HEXREPO_BUILD_THREADS: '2' } });
    for (const res of [a, b, c]) expect(res.status, res.stderr).toBe(0);
    expect(JSON.parse(b.stdout)).toMatchObject({ ok: true, packages: 50, releases: 200, read: 200 });
    const expected = await registryFiles(one);
    expect(expected.size).toBe(53);
    expect(await registryFiles(two)).toEqual(expected);
    expect(await registryFiles(env)).toEqual(expected);
  });

  it('a bad tarball fails the same way on two threads and on one', async () => {
    const one = await copy('bad-one');
    const two = await copy('bad-two');
    for (const pub of [one, two]) await writeFile(join(pub, 'tarballs/broken-1.0.0.tar'), 'not a tarball');
    const a = await hexrepo([...args(one), '--threads', '1']);
    const b = await hexrepo([...args(two), '--threads', '2']);
    expect(a.status).toBe(1);
    expect(b.status).toBe(1);
    expect(b.stdout).toBe(a.stdout);
    expect(JSON.parse(b.stdout).error.code).toBe('BUILD_INVALID_INPUT');
    expect(b.stdout).toContain('[TAR_CORRUPT]');
    expect(await readdir(two)).toEqual(['tarballs']);
  });

  it('refuses a thread count that is not a whole number of at least 1', async () => {
    const pub = await copy('usage');
    const flag = await hexrepo([...args(pub), '--threads', '0']);
    expect(flag.status).toBe(2);
    expect(flag.stderr).toContain('--threads must be a whole number of threads');
    const env = await hexrepo(args(pub), { env: { HEXREPO_BUILD_THREADS: 'many' } });
    expect(env.status).toBe(2);
    expect(env.stderr).toContain('HEXREPO_BUILD_THREADS must be a whole number of threads, 1-256 (1: build on the main thread only), got "many"');
  });
});
