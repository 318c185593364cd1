/** The built hexrepo binary, run as a subprocess the way users run it. */
import { spawnSync } from 'node:child_process';
import { copyFile, mkdtemp, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hexrepo } from '../../../e2e/support/cli.js';

const FIXTURES = new URL('../../../test-fixtures/', import.meta.url).pathname;
let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hexrepo-cli-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('hexrepo --help and usage errors', () => {
  it('lists the commands', async () => {
    const res = await hexrepo(['--help']);
    expect(res.status).toBe(0);
    for (const c of ['init', 'build', 'verify', 'serve', 'token']) expect(res.stdout).toContain(c);
  });

  it('every command has --help with its options', async () => {
    for (const c of ['init', 'build', 'verify']) {
      const res = await hexrepo([c, '--help']);
      expect(res.status).toBe(0);
      expect(res.stdout).toContain(`Usage: hexrepo ${c}`);
      expect(res.stdout).toContain('--json');
    }
  });

  it('an unknown command or option exits 2 with a hint', async () => {
    const a = await hexrepo(['bulid']);
    expect(a.status).toBe(2);
    expect(a.stderr).toMatch(/error\[USAGE\]: unknown command "bulid"[\s\S]*hint:/);
    const b = await hexrepo(['build', '--nmae', 'x']);
    expect(b.status).toBe(2);
    expect(b.stderr).toContain('--nmae');
  });

  it('docs/cli.md is generated from the current --help text', () => {
    const res = spawnSync(process.execPath, [new URL('../../../scripts/gen-cli-docs.mjs', import.meta.url).pathname, '--check'], { encoding: 'utf8' });
    expect(res.status, res.stderr).toBe(0);
  });
});

describe('hexrepo init', () => {
  it('writes the key outside public/ with mode 0600, an empty signed registry, and client set-up', async () => {
    const res = await hexrepo(['init', 'acme', '--name', 'acme', '--url', 'https://hex.example.com'], { cwd: dir });
    expect(res.status, res.stderr).toBe(0);
    expect((await stat(join(dir, 'acme/private_key.pem'))).mode & 0o777).toBe(0o600);
    for (const f of ['public/public_key', 'public/names', 'public/versions', 'hexrepo.json']) await stat(join(dir, 'acme', f));
    expect((await stat(join(dir, 'acme/public/tarballs'))).isDirectory()).toBe(true);
    expect(res.stdout).toContain('mix hex.repo add acme https://hex.example.com --public-key acme/public/public_key');
    expect(res.stdout).toMatch(/mix hex\.repo add acme https:\/\/hex\.example\.com --fetch-public-key SHA256:[A-Za-z0-9+/]{43}\n/);
    expect(res.stdout).toContain('{hex, [{repos, [#{name => <<"acme">>');
    expect(res.stdout).toContain('-----BEGIN RSA PUBLIC KEY-----\\n');
    const verify = await hexrepo(['verify', 'acme'], { cwd: dir });
    expect(verify.status, verify.stdout).toBe(0);
  });

  it('refuses to overwrite an existing repository or key', async () => {
    const res = await hexrepo(['init', 'acme', '--name', 'acme'], { cwd: dir });
    expect(res.status).toBe(1);
    expect(res.stderr).toContain('ALREADY_EXISTS');
  });

  it('refuses bad names', async () => {
    for (const name of ['Acme', 'hexpm', 'a b']) {
      const res = await hexrepo(['init', 'x', '--name', name], { cwd: dir });
      expect(res.status).toBe(1);
      expect(res.stderr).toContain('CONFIG_INVALID');
    }
  });

  it('--json reports paths and the fingerprint', async () => {
    const res = await hexrepo(['init', 'j', '--name', 'jay', '--json'], { cwd: dir });
    const out = JSON.parse(res.stdout) as { fingerprint: string; setup: { mix: string } };
    expect(out.fingerprint).toMatch(/^SHA256:/);
    expect(out.setup.mix).toContain('mix hex.repo add jay');
  });
});

describe('hexrepo build and verify', () => {
  it('builds incrementally and reports as JSON', async () => {
    await hexrepo(['init', 'b', '--name', 'bee'], { cwd: dir });
    for (const t of ['foo-0.1.0.tar', 'foo-0.2.0.tar', 'bar-1.0.0.tar']) await copyFile(join(FIXTURES, 'tarballs', t), join(dir, 'b/public/tarballs', t));
    const first = await hexrepo(['build', 'b', '--json'], { cwd: dir });
    expect(first.status, first.stderr).toBe(0);
    expect(JSON.parse(first.stdout)).toMatchObject({ ok: true, packages: 2, releases: 3, read: 3 });
    const second = await hexrepo(['build', 'b', '--json'], { cwd: dir });
    expect(JSON.parse(second.stdout)).toMatchObject({ ok: true, read: 0, written: [], upToDate: true });
    const text = await hexrepo(['build', 'b'], { cwd: dir });
    expect(text.stdout).toMatch(/^"bee" is up to date: 2 packages, 3 releases, nothing changed since the last build/);
    await copyFile(join(FIXTURES, 'tarballs/baz-1.0.0.tar'), join(dir, 'b/public/tarballs/baz-1.0.0.tar'));
    const third = await hexrepo(['build', 'b'], { cwd: dir });
    expect(third.stdout).toMatch(/Built "bee": 3 packages, 4 releases; read 1 tarball\(s\)/);
    const verify = await hexrepo(['verify', 'b', '--json'], { cwd: dir });
    expect(JSON.parse(verify.stdout)).toMatchObject({ ok: true, releases: 4, tarballsChecked: 4 });
  });

  it('--no-cache counts by bytes: files whose bytes are the same are unchanged and left alone', async () => {
    await hexrepo(['init', 'n', '--name', 'enn'], { cwd: dir });
    for (const t of ['foo-0.1.0.tar', 'foo-0.2.0.tar', 'bar-1.0.0.tar']) await copyFile(join(FIXTURES, 'tarballs', t), join(dir, 'n/public/tarballs', t));
    expect((await hexrepo(['build', 'n'], { cwd: dir })).status).toBe(0);
    const files = ['names', 'versions', 'packages/foo', 'packages/bar'].map((f) => join(dir, 'n/public', f));
    const mtimes = async (): Promise<bigint[]> => Promise.all(files.map(async (f) => (await stat(f, { bigint: true })).mtimeNs));
    const before = await mtimes();
    const same = await hexrepo(['build', 'n', '--no-cache', '--json'], { cwd: dir });
    expect(same.status, same.stderr).toBe(0);
    expect(JSON.parse(same.stdout)).toMatchObject({ ok: true, read: 3, written: [], removed: [], unchanged: 4, publicKey: 'unchanged' });
    expect(await mtimes()).toEqual(before);
    // A newer tarball mtime changes names (updated_at) and nothing else.
    await utimes(join(dir, 'n/public/tarballs/foo-0.2.0.tar'), new Date('2030-01-01T00:00:00Z'), new Date('2030-01-01T00:00:00Z'));
    const touched = await hexrepo(['build', 'n', '--no-cache', '--json'], { cwd: dir });
    expect(JSON.parse(touched.stdout)).toMatchObject({ ok: true, written: ['names'], unchanged: 3 });
    const text = await hexrepo(['build', 'n', '--no-cache'], { cwd: dir });
    expect(text.stdout).not.toContain('* writing');
    expect(text.stdout).toMatch(/wrote 0 file\(s\), 4 unchanged/);
  });

  it('works with explicit PUBLIC, --name and --private-key like mix hex.registry build', async () => {
    await hexrepo(['init', 'm', '--name', 'emm'], { cwd: dir });
    await copyFile(join(FIXTURES, 'tarballs/baz-1.0.0.tar'), join(dir, 'm/public/tarballs/baz-1.0.0.tar'));
    const res = await hexrepo(['build', 'm/public', '--name', 'emm', '--private-key', 'm/private_key.pem'], { cwd: dir });
    expect(res.status, res.stderr).toBe(0);
    expect(res.stdout).toContain('* writing m/public/packages/baz');
  });

  it('a bad tarball fails the build with its name and reason; the registry is untouched', async () => {
    await writeFile(join(dir, 'b/public/tarballs/broken-1.0.0.tar'), 'nope');
    const before = await readFile(join(dir, 'b/public/names'));
    const res = await hexrepo(['build', 'b'], { cwd: dir });
    expect(res.status).toBe(1);
    expect(res.stderr).toMatch(/BUILD_INVALID_INPUT[\s\S]*tarballs\/broken-1\.0\.0\.tar: \[TAR_CORRUPT\]/);
    expect(res.stderr).toContain('--skip-invalid');
    expect(await readFile(join(dir, 'b/public/names'))).toEqual(before);
    const json = await hexrepo(['build', 'b', '--json'], { cwd: dir });
    expect(JSON.parse(json.stdout)).toMatchObject({ ok: false, error: { code: 'BUILD_INVALID_INPUT' } });
    const skip = await hexrepo(['build', 'b', '--skip-invalid'], { cwd: dir });
    expect(skip.status).toBe(0);
    expect(skip.stderr).toContain('warning: skipped tarballs/broken-1.0.0.tar');
  });

  it('refuses a private key inside the public folder', async () => {
    await copyFile(join(dir, 'm/private_key.pem'), join(dir, 'm/public/private_key.pem'));
    const res = await hexrepo(['build', 'm/public', '--name', 'emm', '--private-key', 'm/public/private_key.pem'], { cwd: dir });
    expect(res.status).toBe(1);
    expect(res.stderr).toContain('KEY_UNSAFE_LOCATION');
    await rm(join(dir, 'm/public/private_key.pem'));
  });

  it('verify exits 1 and names the file when a tarball does not match', async () => {
    await writeFile(join(dir, 'm/public/tarballs/baz-1.0.0.tar'), 'tampered');
    const res = await hexrepo(['verify', 'm'], { cwd: dir });
    expect(res.status).toBe(1);
    expect(res.stdout).toMatch(/tarballs\/baz-1\.0\.0\.tar: \[REGISTRY_CHECKSUM_MISMATCH\]/);
  });

  it('verify against the wrong repository name fails', async () => {
    const res = await hexrepo(['verify', 'b/public', '--name', 'other'], { cwd: dir });
    expect(res.status).toBe(1);
    expect(res.stdout).toContain('REGISTRY_BAD_REPO_NAME');
  });
});
