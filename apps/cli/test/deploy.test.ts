/** `hexrepo deploy`, `--store` on build/verify/serve, and store URLs: the built binary on file:// targets. */
import { createHash } from 'node:crypto';
import { copyFile, cp, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isHexrepoError } from '@hexrepo/core';
import { FsStore } from '@hexrepo/storage';
import { GcsStore } from '@hexrepo/storage-gcs';
import { S3Store } from '@hexrepo/storage-s3';
import { startFakeGcs } from '@hexrepo/test-support/fake-gcs';
import { hexrepo } from '../../../e2e/support/cli.js';
import { resolveServeConfig } from '../src/serve-config.js';
import { openStore } from '../src/stores.js';

const FIXTURES = new URL('../../../test-fixtures/tarballs/', import.meta.url).pathname;
let dir: string;

interface DeployJson {
  ok: boolean;
  dryRun: boolean;
  uploaded: string[];
  skipped: string[];
  ignored: string[];
  deleted?: string[];
}

async function deployJson(args: string[]): Promise<DeployJson> {
  const res = await hexrepo(['deploy', ...args, '--json'], { cwd: dir });
  expect(res.status, res.stderr).toBe(0);
  return JSON.parse(res.stdout) as DeployJson;
}

/** key → sha256 of every file under `root`. */
async function snapshot(root: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const walk = async (rel: string): Promise<void> => {
    for (const e of await readdir(join(root, rel), { withFileTypes: true }).catch(() => [])) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) await walk(r);
      else
        out.set(
          r,
          createHash('sha256')
            .update(await readFile(join(root, r)))
            .digest('hex'),
        );
    }
  };
  await walk('');
  return out;
}

const changedKeys = (before: Map<string, string>, after: Map<string, string>): string[] =>
  [...after]
    .filter(([k, h]) => before.get(k) !== h)
    .map(([k]) => k)
    .sort();

/** The position of every key's group in the upload order. */
function rank(key: string): number {
  if (key.startsWith('tarballs/') || key.startsWith('docs/')) return 0;
  if (key.startsWith('_hexrepo/releases/') || key.startsWith('_hexrepo/owners/')) return 1;
  if (key.startsWith('packages/')) return 2;
  return ['versions', 'names', 'public_key'].indexOf(key) + 3;
}

async function build(): Promise<void> {
  const res = await hexrepo(['build', '--quiet'], { cwd: join(dir, 'repo') });
  expect(res.status, res.stderr).toBe(0);
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hexrepo-deploy-'));
  const init = await hexrepo(['init', 'repo', '--name', 'acme'], { cwd: dir });
  expect(init.status, init.stderr).toBe(0);
  for (const t of ['baz-1.0.0.tar', 'qux-0.1.0.tar']) await copyFile(join(FIXTURES, t), join(dir, 'repo/public/tarballs', t));
  await build();
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('hexrepo deploy to a file:// store', () => {
  const pub = (): string => join(dir, 'repo/public');
  const target = (): string => join(dir, 'target');
  const to = (): string => pathToFileURL(target()).href;

  it('uploads tarballs, then retirement records, then packages/*, versions, names, public_key; ignores the rest', async () => {
    // Not repository files: never uploaded, listed as ignored.
    await writeFile(join(pub(), 'README.txt'), 'hello\n');
    await mkdir(join(pub(), 'tarballs/nested'), { recursive: true });
    await writeFile(join(pub(), 'tarballs/nested/x-1.0.0.tar'), 'x');
    await writeFile(join(pub(), 'tarballs/.baz-1.0.0.tar.tmp'), 'partial');
    await writeFile(join(pub(), 'tarballs/baz-1.0.0.tar.bak'), 'backup');
    await writeFile(join(pub(), '.DS_Store'), '');
    // The retirement sidecar the publish API keeps.
    await mkdir(join(pub(), '_hexrepo/releases'), { recursive: true });
    await writeFile(join(pub(), '_hexrepo/releases/baz.json'), `${JSON.stringify({ format: 1, package: 'baz', releases: { '1.0.0': { publishedAt: 1700000000000 } } })}\n`);
    await writeFile(join(pub(), '_hexrepo/notes.txt'), 'not a release record');
    await mkdir(join(pub(), '_hexrepo/owners'), { recursive: true });
    await writeFile(join(pub(), '_hexrepo/owners/baz.json'), `${JSON.stringify({ format: 1, package: 'baz', owners: [{ username: 'alice', level: 'full', addedAt: '2026-01-01T00:00:00.000Z' }] })}\n`);

    const res = await deployJson([join(dir, 'repo'), '--to', to()]);
    expect(res.uploaded).toEqual(['tarballs/baz-1.0.0.tar', 'tarballs/qux-0.1.0.tar', '_hexrepo/owners/baz.json', '_hexrepo/releases/baz.json', 'packages/baz', 'packages/qux', 'versions', 'names', 'public_key']);
    const ranks = res.uploaded.map(rank);
    expect(ranks).toEqual([...ranks].sort((a, b) => a - b));
    expect(res.skipped).toEqual([]);
    expect(res.ignored.sort()).toEqual(['.DS_Store', 'README.txt', '_hexrepo/notes.txt', 'tarballs/.baz-1.0.0.tar.tmp', 'tarballs/baz-1.0.0.tar.bak', 'tarballs/nested/x-1.0.0.tar'].sort());
    // The target holds exactly the repository files, byte for byte.
    const local = await snapshot(pub());
    const remote = await snapshot(target());
    expect([...remote.keys()].sort()).toEqual([...res.uploaded].sort());
    for (const [k, h] of remote) expect(h, k).toBe(local.get(k));
    const verify = await hexrepo(['verify', 'repo', '--store', to()], { cwd: dir });
    expect(verify.status, verify.stdout + verify.stderr).toBe(0);
  });

  it('uploads nothing the second time', async () => {
    const res = await deployJson(['repo', '--to', to()]);
    expect(res.uploaded).toEqual([]);
    expect(res.skipped).toHaveLength(9);
    const text = await hexrepo(['deploy', 'repo', '--to', to()], { cwd: dir });
    expect(text.status).toBe(0);
    expect(text.stdout).toMatch(/0 uploaded, 9 unchanged, 6 ignored/);
    expect(text.stderr).toContain('not a repository file, not uploaded: README.txt');
  });

  it('after a new tarball and a rebuild, uploads only the changed objects, in order', async () => {
    const before = await snapshot(pub());
    await copyFile(join(FIXTURES, 'quux-0.1.0.tar'), join(pub(), 'tarballs/quux-0.1.0.tar'));
    await build();
    const changed = changedKeys(before, await snapshot(pub()));
    expect(changed).toContain('tarballs/quux-0.1.0.tar');
    expect(changed).toContain('packages/quux');
    expect(changed).not.toContain('tarballs/baz-1.0.0.tar');
    const res = await deployJson(['repo', '--to', to()]);
    expect([...res.uploaded].sort()).toEqual(changed);
    expect(res.uploaded[0]).toBe('tarballs/quux-0.1.0.tar');
    expect(res.uploaded.slice(-2)).toEqual(['versions', 'names']);
    expect(res.skipped).toContain('tarballs/baz-1.0.0.tar');
  });

  it('--dry-run prints the plan and uploads nothing', async () => {
    await copyFile(join(FIXTURES, 'foo-0.1.0.tar'), join(pub(), 'tarballs/foo-0.1.0.tar'));
    await build();
    const before = await snapshot(target());
    const res = await deployJson(['repo', '--to', to(), '--dry-run']);
    expect(res.dryRun).toBe(true);
    expect(res.uploaded).toEqual(['tarballs/foo-0.1.0.tar', 'packages/foo', 'versions', 'names']);
    const text = await hexrepo(['deploy', 'repo', '--to', to(), '--dry-run'], { cwd: dir });
    expect(text.stdout).toContain('* would upload tarballs/foo-0.1.0.tar');
    expect(text.stdout).toMatch(/Dry run: would deploy .*: 4 uploaded/);
    expect(await snapshot(target())).toEqual(before);
  });

  it('--delete removes packages/ and tarballs/ that are gone locally, after names', async () => {
    await deployJson(['repo', '--to', to()]);
    await rm(join(pub(), 'tarballs/foo-0.1.0.tar'));
    await build();
    const dry = await deployJson(['repo', '--to', to(), '--delete', '--dry-run']);
    expect(dry.deleted).toEqual(['packages/foo', 'tarballs/foo-0.1.0.tar']);
    await stat(join(target(), 'tarballs/foo-0.1.0.tar'));
    const res = await deployJson(['repo', '--to', to(), '--delete']);
    expect(res.uploaded).toEqual(['versions', 'names']);
    expect(res.deleted).toEqual(['packages/foo', 'tarballs/foo-0.1.0.tar']);
    await expect(stat(join(target(), 'tarballs/foo-0.1.0.tar'))).rejects.toThrow();
    await expect(stat(join(target(), 'packages/foo'))).rejects.toThrow();
    // Without --delete nothing is ever removed.
    const again = await deployJson(['repo', '--to', to()]);
    expect(again.deleted).toBeUndefined();
  });

  for (const [label, file, content] of [
    ['a stray private_key.pem', 'private_key.pem', 'whatever'],
    ['a file named *.key', 'tarballs/server.key', 'x'],
    ['a file containing a PEM private key', 'notes/backup.txt', '-----BEGIN RSA PRIVATE KEY-----\nMIIE...\n-----END RSA PRIVATE KEY-----\n'],
  ] as const) {
    it(`refuses a folder holding ${label}, uploading nothing`, async () => {
      const copy = await mkdtemp(join(dir, 'keyed-'));
      await cp(pub(), join(copy, 'public'), { recursive: true });
      await mkdir(join(copy, 'public', file, '..'), { recursive: true });
      await writeFile(join(copy, 'public', file), content);
      const fresh = join(copy, 'target');
      const res = await hexrepo(['deploy', join(copy, 'public'), '--to', fresh, '--json'], { cwd: dir });
      expect(res.status).toBe(1);
      expect(res.stderr).toContain('KEY_UNSAFE_LOCATION');
      expect(res.stderr).toContain(file);
      expect(JSON.parse(res.stdout)).toMatchObject({ ok: false, error: { code: 'KEY_UNSAFE_LOCATION' } });
      expect((await snapshot(fresh)).size).toBe(0);
    });
  }

  it('needs --to and a supported URL', async () => {
    const none = await hexrepo(['deploy', 'repo'], { cwd: dir });
    expect(none.status).toBe(2);
    expect(none.stderr).toContain('--to');
    const ftp = await hexrepo(['deploy', 'repo', '--to', 'ftp://bucket/repo'], { cwd: dir });
    expect(ftp.status).toBe(1);
    expect(ftp.stderr).toMatch(/CONFIG_INVALID.*ftp:\/\/bucket\/repo/);
    expect(ftp.stderr).toContain('s3://');
  });

  it('deploys to Google Cloud Storage (gs://, against a local JSON API server)', async () => {
    const fake = await startFakeGcs();
    try {
      fake.createBucket('hexbucket');
      const url = `gs://hexbucket/repo?endpoint=${encodeURIComponent(fake.endpoint)}&project=hexrepo-test`;
      const first = await hexrepo(['deploy', 'repo', '--to', url, '--json'], { cwd: dir, env: { STORAGE_EMULATOR_HOST: '' } });
      expect(first.status, first.stderr).toBe(0);
      const plan = JSON.parse(first.stdout) as DeployJson;
      expect(plan.uploaded.at(-2)).toBe('names');
      expect(fake.object('hexbucket', 'repo/names')?.contentType).toBe('application/octet-stream');
      expect(fake.object('hexbucket', 'repo/names')?.contentEncoding).toBeUndefined();
      const again = JSON.parse((await hexrepo(['deploy', 'repo', '--to', url, '--json'], { cwd: dir, env: { STORAGE_EMULATOR_HOST: '' } })).stdout) as DeployJson;
      expect(again.uploaded).toEqual([]);
    } finally {
      await fake.stop();
    }
  });
});

describe('openStore', () => {
  it('opens folders, file:// and s3:// URLs', async () => {
    const plain = await openStore('repo/public', { cwd: dir });
    expect(plain).toBeInstanceOf(FsStore);
    expect((plain as FsStore).root).toBe(join(dir, 'repo/public'));
    const file = await openStore(pathToFileURL(join(dir, 'x y')).href, { cwd: '/' });
    expect((file as FsStore).root).toBe(join(dir, 'x y'));
    const s3 = await openStore('s3://bucket/a/b?region=eu-west-1&endpoint=http://127.0.0.1:9', { cwd: dir });
    expect(s3).toBeInstanceOf(S3Store);
    expect(s3.url).toBe('s3://bucket/a/b/');
    const gs = await openStore('gs://bucket/a?endpoint=http://127.0.0.1:9&project=hexrepo-test', { cwd: dir });
    expect(gs).toBeInstanceOf(GcsStore);
  });

  it('refuses unknown schemes with CONFIG_INVALID naming the URL and the supported schemes', async () => {
    for (const url of ['ftp://b/p', 'http://example.com/repo', 'file://host/x', 's3://b/../x', 'gs://b/../x', '']) {
      const err = await openStore(url, { cwd: dir }).then(
        () => null,
        (e: unknown) => e,
      );
      expect(isHexrepoError(err, 'CONFIG_INVALID'), url).toBe(true);
    }
    const err = (await openStore('ftp://b/p', { cwd: dir }).then(
      () => null,
      (e: unknown) => e,
    )) as Error & { details: { hint: string } };
    expect(err.message).toContain('ftp://b/p');
    expect(err.details.hint).toContain('s3://');
    expect(err.details.hint).toContain('gs://');
    expect(err.details.hint).toContain('file://');
  });
});

describe('--store on build, verify and serve', () => {
  it('hexrepo build --store builds into the store, with the cache beside hexrepo.json', async () => {
    const store = join(dir, 'store-build');
    await mkdir(join(store, 'tarballs'), { recursive: true });
    await copyFile(join(FIXTURES, 'baz-1.0.0.tar'), join(store, 'tarballs/baz-1.0.0.tar'));
    const url = pathToFileURL(store).href;
    const first = await hexrepo(['build', '--store', url, '--json'], { cwd: join(dir, 'repo') });
    expect(first.status, first.stderr).toBe(0);
    const summary = JSON.parse(first.stdout) as { written: string[]; cache: string; store: string };
    expect(summary.written.sort()).toEqual(['names', 'packages/baz', 'versions']);
    expect(summary.cache).toMatch(new RegExp(`^${join(dir, 'repo/.hexrepo/build-cache-')}[0-9a-f]{12}\\.json$`));
    await stat(summary.cache);
    const again = await hexrepo(['build', '--store', url, '--json'], { cwd: join(dir, 'repo') });
    expect((JSON.parse(again.stdout) as { written: string[]; read: number }).written).toEqual([]);
    const verify = await hexrepo(['verify', 'repo', '--store', url], { cwd: dir });
    expect(verify.status, verify.stdout + verify.stderr).toBe(0);
    expect(verify.stdout).toContain('1 packages, 1 releases');
  });

  it('with --store, DIR must hold hexrepo.json', async () => {
    const res = await hexrepo(['build', 'repo/public', '--store', join(dir, 'store-build')], { cwd: dir });
    expect(res.status).toBe(2);
    expect(res.stderr).toContain('hexrepo.json');
  });

  it('serve: --store, HEXREPO_STORE or config "store"; never together with a public folder', async () => {
    const cwd = join(dir, 'repo');
    const flag = await resolveServeConfig({ values: { store: 's3://b/p' }, env: {}, cwd, positional: undefined });
    expect(flag).toMatchObject({ store: { url: 's3://b/p', stateBase: cwd }, publicDir: undefined, name: 'acme', tokensFile: join(cwd, '.hexrepo/tokens.json') });
    expect(flag.sources.store).toBe('--store');
    const env = await resolveServeConfig({ values: {}, env: { HEXREPO_STORE: 'file:///srv/x' }, cwd, positional: undefined });
    expect(env.store?.url).toBe('file:///srv/x');
    await writeFile(join(dir, 'serve.json'), JSON.stringify({ store: 'public-copy' }));
    const file = await resolveServeConfig({ values: { config: join(dir, 'serve.json') }, env: {}, cwd, positional: undefined });
    expect(file.store).toMatchObject({ url: 'public-copy', cwd: dir });
    for (const [values, envs] of [
      [{ store: 's3://b/p', 'public-dir': 'public' }, {}],
      [{ store: 's3://b/p' }, { PUBLIC_DIR: 'public' }],
      [{}, { HEXREPO_STORE: 's3://b/p', PUBLIC_DIR: 'public' }],
    ] as const) {
      const err = await resolveServeConfig({ values, env: envs, cwd, positional: undefined }).then(
        () => null,
        (e: unknown) => e,
      );
      expect(isHexrepoError(err, 'CONFIG_INVALID'), JSON.stringify([values, envs])).toBe(true);
    }
  });
});
