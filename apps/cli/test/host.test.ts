/** The host form of hexrepo.json: `hexrepo repo add|list`, and the settings `hexrepo serve` reads from it. */
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { loadPrivateKey, unpackNames } from '@hexrepo/registry';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hexrepo } from '../../../e2e/support/cli.js';
import { resolveServeConfig } from '../src/serve-config.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hexrepo-host-cli-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const failure = async (p: Promise<unknown>): Promise<{ code: string; message: string; details: Record<string, unknown> }> => {
  try {
    await p;
  } catch (err) {
    return err as { code: string; message: string; details: Record<string, unknown> };
  }
  throw new Error('expected a failure');
};

describe('hexrepo repo add and list', () => {
  it('turns an "init" project into the host\'s root repository, adds repositories with their keys, folders and URLs', async () => {
    const host = join(dir, 'host');
    expect((await hexrepo(['init', 'host', '--name', 'acme'], { cwd: dir })).status).toBe(0);
    const beta = await hexrepo(['repo', 'add', 'beta', '--url', 'https://hex.example.com'], { cwd: host });
    expect(beta.status, beta.stderr).toBe(0);
    expect(beta.stdout).toContain('mix hex.repo add beta https://hex.example.com/repos/beta --public-key repos/beta/public/public_key');
    expect(beta.stdout).toContain('repo_url => <<"https://hex.example.com/repos/beta">>');
    const gamma = await hexrepo(['repo', 'add', 'gamma', 'shared/gamma', '--access', 'public'], { cwd: host });
    expect(gamma.status, gamma.stderr).toBe(0);
    expect(gamma.stdout).toContain('repo_url => <<"http://localhost:4000/repos/gamma">>');

    // The key is 0600 and outside the served folder; the folder holds a registry signed for its name.
    expect((await stat(join(host, 'keys/beta.pem'))).mode & 0o777).toBe(0o600);
    const key = loadPrivateKey(await readFile(join(host, 'keys/beta.pem'), 'utf8'));
    expect(unpackNames(await readFile(join(host, 'repos/beta/public/names')), { publicKey: key, repository: 'beta' }).packages).toEqual([]);
    expect(await readFile(join(host, 'shared/gamma/public_key'), 'utf8')).toMatch(/^-----BEGIN RSA PUBLIC KEY-----/);

    expect(JSON.parse(await readFile(join(host, 'hexrepo.json'), 'utf8'))).toEqual({
      repositories: [
        { name: 'acme', publicDir: 'public', privateKey: 'private_key.pem', root: true },
        { name: 'beta', publicDir: 'repos/beta/public', privateKey: 'keys/beta.pem', access: 'private' },
        { name: 'gamma', publicDir: 'shared/gamma', privateKey: 'keys/gamma.pem', access: 'public' },
      ],
    });
    const list = await hexrepo(['repo', 'list', '--json'], { cwd: host });
    expect(JSON.parse(list.stdout)).toEqual([
      { name: 'acme', access: 'auto', root: true, publicDir: 'public', privateKey: 'private_key.pem', url: 'http://localhost:4000' },
      { name: 'beta', access: 'private', root: false, publicDir: 'repos/beta/public', privateKey: 'keys/beta.pem', url: 'http://localhost:4000/repos/beta' },
      { name: 'gamma', access: 'public', root: false, publicDir: 'shared/gamma', privateKey: 'keys/gamma.pem', url: 'http://localhost:4000/repos/gamma' },
    ]);
  });

  it('adds a repository kept in a store (here a file:// URL), with a local copy of its public key for Mix', async () => {
    const host = join(dir, 'store-host');
    await mkdir(host);
    const url = pathToFileURL(join(dir, 'bucket/vendor')).href;
    const res = await hexrepo(['repo', 'add', 'vendor', '--store', url, '--url', 'https://hex.example.com/'], { cwd: host });
    expect(res.status, res.stderr).toBe(0);
    expect(res.stdout).toContain('mix hex.repo add vendor https://hex.example.com/repos/vendor --public-key keys/vendor.pub');
    expect(await readFile(join(host, 'keys/vendor.pub'), 'utf8')).toBe(await readFile(join(dir, 'bucket/vendor/public_key'), 'utf8'));
    const key = loadPrivateKey(await readFile(join(host, 'keys/vendor.pem'), 'utf8'));
    expect(unpackNames(await readFile(join(dir, 'bucket/vendor/names')), { publicKey: key, repository: 'vendor' }).packages).toEqual([]);
    expect(JSON.parse(await readFile(join(host, 'hexrepo.json'), 'utf8'))).toEqual({ repositories: [{ name: 'vendor', store: url, privateKey: 'keys/vendor.pem', access: 'private' }] });
  });

  it('refuses a second root, a name taken, and a folder that already holds a repository', async () => {
    const host = join(dir, 'host');
    const root = await hexrepo(['repo', 'add', 'delta', '--root'], { cwd: host });
    expect(root.status).toBe(1);
    expect(root.stderr).toContain('acme is already mounted at /');
    expect((await hexrepo(['repo', 'add', 'beta'], { cwd: host })).stderr).toContain('already has a repository beta');
    const taken = await hexrepo(['repo', 'add', 'epsilon', 'repos/beta/public'], { cwd: host });
    expect(taken.stderr).toContain('already holds a repository');
    // Nothing was written for the refused ones.
    await expect(stat(join(host, 'keys/epsilon.pem'))).rejects.toThrow();
    expect((JSON.parse(await readFile(join(host, 'hexrepo.json'), 'utf8')) as { repositories: unknown[] }).repositories).toHaveLength(3);
  });
});

describe('serve settings from a host config', () => {
  it("reads every repository of hexrepo.json's host form, paths resolved from its folder", async () => {
    const host = join(dir, 'host');
    const c = await resolveServeConfig({ values: {}, env: {}, cwd: host, positional: undefined });
    expect(c.repositories).toEqual([
      { name: 'acme', publicDir: join(host, 'public'), privateKey: join(host, 'private_key.pem'), keyRequired: true, access: 'auto', root: true },
      { name: 'beta', publicDir: join(host, 'repos/beta/public'), privateKey: join(host, 'keys/beta.pem'), keyRequired: true, access: 'private', root: false },
      { name: 'gamma', publicDir: join(host, 'shared/gamma'), privateKey: join(host, 'keys/gamma.pem'), keyRequired: true, access: 'public', root: false },
    ]);
    expect(c.tokensFile).toBe(join(host, '.hexrepo/tokens.json'));
    // DIR names the host folder too; the guide's PORT and AUTH_* still apply to the whole host.
    const fromDir = await resolveServeConfig({ values: {}, env: { PORT: '8080', AUTH_USERNAME: 'ops', AUTH_PASSWORD: 'long-password' }, cwd: dir, positional: 'host' });
    expect(fromDir).toMatchObject({ port: 8080, users: [{ username: 'ops' }] });
    expect(fromDir.repositories).toHaveLength(3);
  });

  it('HEXREPO_CONFIG names a host config for containers, with stores and the listen address', async () => {
    await mkdir(join(dir, 'etc'), { recursive: true });
    await writeFile(
      join(dir, 'etc/host.json'),
      JSON.stringify({
        host: '0.0.0.0',
        port: 4100,
        repositories: [
          { name: 'beta', store: 'file:///srv/beta', privateKey: 'beta.pem', access: 'private' },
          { name: 'gamma', publicDir: '../host/shared/gamma', root: true },
        ],
      }),
    );
    const c = await resolveServeConfig({ values: {}, env: { HEXREPO_CONFIG: 'etc/host.json' }, cwd: dir, positional: undefined });
    expect(c).toMatchObject({ host: '0.0.0.0', port: 4100 });
    expect(c.repositories).toEqual([
      { name: 'beta', store: { url: 'file:///srv/beta', cwd: join(dir, 'etc'), stateBase: join(dir, 'etc') }, privateKey: join(dir, 'etc/beta.pem'), keyRequired: true, access: 'private', root: false },
      { name: 'gamma', publicDir: join(dir, 'host/shared/gamma'), keyRequired: true, access: 'auto', root: true },
    ]);
  });

  it('one clear message for settings of one repository given to a host, and for a bad host config', async () => {
    const host = join(dir, 'host');
    const resolveIn = (env: Record<string, string>, values: Record<string, unknown> = {}) => resolveServeConfig({ values, env, cwd: host, positional: undefined });
    expect(await failure(resolveIn({ PUBLIC_DIR: '/data/public' }))).toMatchObject({
      code: 'CONFIG_INVALID',
      message: expect.stringMatching(/^publicDir \(from PUBLIC_DIR\) cannot be used with the host config/),
      details: { hint: expect.stringContaining('-e PUBLIC_DIR=') },
    });
    expect(await failure(resolveIn({}, { name: 'x' }))).toMatchObject({ message: expect.stringMatching(/^name \(from --name\) cannot be used with the host config/) });
    await writeFile(
      join(dir, 'etc/bad.json'),
      JSON.stringify({
        repositories: [
          { name: 'a', publicDir: 'x', root: true },
          { name: 'b', store: 's3://b/p', root: true },
        ],
      }),
    );
    expect(await failure(resolveIn({ HEXREPO_CONFIG: join(dir, 'etc/bad.json') }))).toMatchObject({ message: expect.stringContaining('"repositories" mounts a and b at /; only one repository can be the root') });
    await writeFile(join(dir, 'etc/bad.json'), JSON.stringify({ repositories: [{ name: 'a', publicDir: 'x', store: 's3://b/p' }] }));
    expect(await failure(resolveIn({ HEXREPO_CONFIG: join(dir, 'etc/bad.json') }))).toMatchObject({ message: expect.stringContaining('"repositories[0]" must name exactly one of "publicDir"') });
  });

  it('other commands say that a host config is not a repository', async () => {
    const res = await hexrepo(['build'], { cwd: join(dir, 'host') });
    expect(res.status).toBe(1);
    expect(res.stderr).toContain('"repositories" makes this the config of a host of several repositories');
  });
});
