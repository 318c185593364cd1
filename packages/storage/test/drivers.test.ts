import { mkdtemp, rm, symlink, writeFile, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FsStore, MemoryStore } from '../src/index.js';
import { testDriver } from '../src/testing/contract.js';

const dirs: string[] = [];
async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'hexrepo-store-'));
  dirs.push(d);
  return d;
}
afterAll(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

testDriver('memory', async () => new MemoryStore());
testDriver('fs', async () => new FsStore(await tempDir()));
testDriver('fs (not durable)', async () => new FsStore(await tempDir(), { durable: false }));

describe('FsStore specifics', () => {
  it('reads a symlink inside the root but not one pointing outside', async () => {
    const root = await tempDir();
    const outside = await tempDir();
    await writeFile(join(outside, 'secret'), 'secret');
    const store = new FsStore(root);
    await store.put('tarballs/a-1.0.0.tar', new Uint8Array([1]));
    await symlink(join(root, 'tarballs', 'a-1.0.0.tar'), join(root, 'tarballs', 'b-1.0.0.tar'));
    await symlink(join(outside, 'secret'), join(root, 'names'));
    expect((await store.get('tarballs/b-1.0.0.tar'))?.size).toBe(1);
    expect(await store.get('names')).toBeNull();
    expect(await store.head('names')).toBeNull();
  });

  it('leaves no temp or lock files behind', async () => {
    const root = await tempDir();
    const store = new FsStore(root);
    const { etag } = await store.put('packages/foo', new Uint8Array([1]));
    await store.put('packages/foo', new Uint8Array([2]), { ifMatch: etag });
    await store.put('packages/bar', new Uint8Array([3]), { ifNoneMatch: '*' });
    await store.put('packages/bar', new Uint8Array([4]), { ifNoneMatch: '*' }).catch(() => undefined);
    expect((await readdir(join(root, 'packages'))).sort()).toEqual(['bar', 'foo']);
  });
});
