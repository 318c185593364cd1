import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { generateKeyPair, loadPrivateKey } from '@hexrepo/registry';
import { FsStore } from '@hexrepo/storage';
import { defaultCachePath, hostStateDir, openRepository, stateDir, storeCachePath, storeTokensPath, defaultTokensPath } from '../src/index.js';
import { FIXTURES, fixturePublic, GOLDEN_KEY } from './helpers.js';

const key = loadPrivateKey(await readFile(GOLDEN_KEY, 'utf8'));

describe('openRepository', () => {
  it('builds with the key, saves the cache on close, and a second open finds it current', async () => {
    const pub = await fixturePublic();
    const cachePath = defaultCachePath(pub);
    const first = await openRepository({ store: new FsStore(pub), repository: 'acme', privateKey: key, cachePath });
    expect(first.summary).toMatchObject({ packages: 8, releases: 9, read: 9 });
    expect(first.cacheCurrent).toBe(false);
    await first.close();
    expect((await stat(cachePath)).isFile()).toBe(true);

    const second = await openRepository({ store: new FsStore(pub), repository: 'acme', privateKey: key, cachePath });
    expect(second.summary).toMatchObject({ read: 0, reused: 9, written: [] });
    expect(second.cacheCurrent).toBe(true);
    expect(second.service?.packageNames()).toContain('foo');
  });

  it('close waits for a publish to reach the registry, and the saved cache holds it', async () => {
    const pub = await fixturePublic(['foo-0.1.0.tar']);
    const cachePath = defaultCachePath(pub);
    const opened = await openRepository({ store: new FsStore(pub), repository: 'acme', privateKey: key, cachePath });
    await opened.service!.publish(await readFile(join(FIXTURES, 'tarballs/bar-1.0.0.tar')));
    await opened.close();
    const again = await openRepository({ store: new FsStore(pub), repository: 'acme', privateKey: key, cachePath });
    expect(again.summary).toMatchObject({ read: 0, reused: 2, packages: 2 });
  });

  it('a cache made with another key is ignored; ignoreCache reads everything but still saves', async () => {
    const pub = await fixturePublic(['foo-0.1.0.tar', 'bar-1.0.0.tar']);
    const cachePath = defaultCachePath(pub);
    const other = loadPrivateKey((await generateKeyPair()).privateKeyPem);
    await (await openRepository({ store: new FsStore(pub), repository: 'acme', privateKey: other, cachePath })).close();
    const opened = await openRepository({ store: new FsStore(pub), repository: 'acme', privateKey: key, cachePath });
    expect(opened.summary).toMatchObject({ read: 2, reused: 0 });
    await opened.close();
    const fresh = await openRepository({ store: new FsStore(pub), repository: 'acme', privateKey: key, cachePath, ignoreCache: true });
    expect(fresh.summary).toMatchObject({ read: 2, reused: 0 });
    expect(fresh.cacheCurrent).toBe(false);
  });

  it('without a key, or read-only, opens no service and writes nothing', async () => {
    const pub = await fixturePublic(['foo-0.1.0.tar']);
    const cachePath = defaultCachePath(pub);
    for (const opts of [{}, { privateKey: key, readOnly: true }]) {
      const opened = await openRepository({ store: new FsStore(pub), repository: 'acme', cachePath, ...opts });
      expect(opened.service).toBeUndefined();
      expect(opened.summary).toBeUndefined();
      await opened.close();
    }
    await expect(stat(cachePath)).rejects.toThrow();
    await expect(stat(join(pub, 'names'))).rejects.toThrow();
  });

  it('skipInvalid: false refuses a bad tarball instead of leaving it out', async () => {
    const pub = await fixturePublic(['foo-0.1.0.tar']);
    await writeFile(join(pub, 'tarballs/bad-1.0.0.tar'), 'not a tarball');
    await expect(openRepository({ store: new FsStore(pub), repository: 'acme', privateKey: key, skipInvalid: false })).rejects.toThrow(/bad-1\.0\.0/);
    const lenient = await openRepository({ store: new FsStore(pub), repository: 'acme', privateKey: key });
    expect(lenient.summary?.skipped.map((p) => p.file)).toEqual(['bad-1.0.0.tar']);
  });
});

describe('the .hexrepo/ layout', () => {
  it('keeps every state path beside the public folder or in the project folder, never inside public/', () => {
    expect(stateDir('/p/acme/public')).toBe('/p/acme/.hexrepo');
    expect(defaultCachePath('/p/acme/public')).toBe('/p/acme/.hexrepo/build-cache-public.json');
    expect(defaultTokensPath('/p/acme/public')).toBe('/p/acme/.hexrepo/tokens.json');
    expect(storeTokensPath('/p/acme')).toBe('/p/acme/.hexrepo/tokens.json');
    expect(hostStateDir('/p/acme')).toBe('/p/acme/.hexrepo/state');
    expect(storeCachePath('/p/acme', 's3://b/p')).toMatch(/^\/p\/acme\/\.hexrepo\/build-cache-[0-9a-f]{12}\.json$/);
    expect(storeCachePath('/p/acme', 's3://b/p')).not.toBe(storeCachePath('/p/acme', 's3://b/q'));
  });
});
