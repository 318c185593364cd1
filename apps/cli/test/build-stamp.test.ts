/**
 * `hexrepo build` from the built binary answers a rebuild with nothing to do from the registry
 * stamp beside its cache, and still sees each kind of change: a tarball copied over another in
 * place (its folder's mtime does not move), a torn or foreign cache.
 */
import { execFileSync } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { hexrepo } from '../../../e2e/support/cli.js';

const FIXTURES = new URL('../../../test-fixtures/tarballs/', import.meta.url).pathname;
const KEY = new URL('../../../test-fixtures/golden-acme/test-only-rsa.pem', import.meta.url).pathname;
const dirs: string[] = [];
afterAll(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

interface Summary {
  upToDate: boolean;
  read: number;
  written: string[];
  removed: string[];
  skipped: { file: string }[];
}

async function build(pub: string, cache: string): Promise<Summary> {
  const res = await hexrepo(['build', pub, '--name', 'acme', '--private-key', KEY, '--cache', cache, '--json', '--skip-invalid']);
  expect(res.status, res.stderr).toBe(0);
  return JSON.parse(res.stdout) as Summary;
}

describe('hexrepo build and the registry stamp', () => {
  it('a tarball overwritten in place with cp is read again, though the folder looks the same', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hexrepo-cli-stamp-'));
    dirs.push(dir);
    const pub = join(dir, 'public');
    const cache = join(dir, 'cache.bin');
    await mkdir(join(pub, 'tarballs'), { recursive: true });
    for (const f of ['foo-0.1.0.tar', 'bar-1.0.0.tar']) await copyFile(join(FIXTURES, f), join(pub, 'tarballs', f));
    expect(await build(pub, cache)).toMatchObject({ upToDate: false, read: 2 });
    expect((await stat(`${cache}.stamp`)).isFile()).toBe(true);
    expect(await build(pub, cache)).toMatchObject({ upToDate: true, read: 0, written: [] });

    const folderMtime = (await stat(join(pub, 'tarballs'))).mtimeMs;
    // cp onto an existing file truncates and rewrites it: same inode, same folder entry.
    execFileSync('cp', [join(FIXTURES, 'bar-1.0.0.tar'), join(pub, 'tarballs/foo-0.1.0.tar')]);
    expect((await stat(join(pub, 'tarballs'))).mtimeMs).toBe(folderMtime);
    const after = await build(pub, cache);
    expect(after).toMatchObject({ upToDate: false, read: 1, removed: ['packages/foo'] });
    expect(after.skipped.map((s) => s.file)).toEqual(['foo-0.1.0.tar']);

    // Back to the real foo: read, signed, and current again.
    execFileSync('cp', [join(FIXTURES, 'foo-0.1.0.tar'), join(pub, 'tarballs/foo-0.1.0.tar')]);
    expect(await build(pub, cache)).toMatchObject({ upToDate: false, read: 1, written: expect.arrayContaining(['packages/foo']) as unknown });
    expect(await build(pub, cache)).toMatchObject({ upToDate: true });

    // A torn cache and a stale stamp: the build checks everything, and the registry's bytes stay.
    await truncate(cache, (await stat(cache)).size - 5);
    await writeFile(`${cache}.stamp`, (await readFile(`${cache}.stamp`, 'utf8')).replace(/"stamp":"[^"]*"/, '"stamp":"stale"'));
    expect(await build(pub, cache)).toMatchObject({ upToDate: false, written: [] });
    expect(await build(pub, cache)).toMatchObject({ upToDate: true });
  });
});
