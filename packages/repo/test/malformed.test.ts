/**
 * Every malformed tarball of the tarball package's corpus, dropped into a built repository: the
 * build refuses it with the corpus's specific code and the file name, and the registry on disk is
 * byte-identical afterwards.
 */
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { isHexrepoError } from '@hexrepo/core';
import { loadPrivateKey } from '@hexrepo/registry';
import { FsStore } from '@hexrepo/storage';
import { malformedTarballs } from '../../tarball/test/malformed-corpus.js';
import { buildRegistry, type BuildCache } from '../src/index.js';
import { fixturePublic, GOLDEN_KEY, snapshot } from './helpers.js';

const key = loadPrivateKey(await readFile(GOLDEN_KEY, 'utf8'));
const corpus = malformedTarballs();
const limits = { maxTarballSize: 64 * 1024, maxUncompressedSize: 256 * 1024 };

describe('malformed tarballs are refused and the registry stays byte-identical', () => {
  let pub: string;
  let cache: BuildCache;
  let before: Map<string, string>;

  beforeAll(async () => {
    pub = await fixturePublic(['foo-0.1.0.tar', 'bar-1.0.0.tar', 'baz-1.0.0.tar']);
    ({ cache } = await buildRegistry({ store: new FsStore(pub), repository: 'acme', privateKey: key, limits }));
    before = await snapshot(pub);
  });

  it('has at least 25 distinct malformed inputs', () => {
    expect(corpus.length).toBeGreaterThanOrEqual(25);
    expect(new Set(corpus.map((c) => c.id)).size).toBe(corpus.length);
  });

  it.each(corpus.map((c) => [c.id, c] as const))('%s', async (_id, bad) => {
    const path = join(pub, 'tarballs', bad.fileName);
    await writeFile(path, bad.bytes);
    try {
      const err = await buildRegistry({ store: new FsStore(pub), repository: 'acme', privateKey: key, cache, limits }).then(
        () => null,
        (e: unknown) => e,
      );
      expect(isHexrepoError(err, 'BUILD_INVALID_INPUT'), String(err)).toBe(true);
      const problems = (err as { details: { problems: { file: string; code: string }[] } }).details.problems;
      expect(problems).toEqual([expect.objectContaining({ file: bad.fileName, code: bad.code })]);
      expect((err as Error).message).toContain(bad.fileName);
    } finally {
      await rm(path);
    }
    expect(await snapshot(pub)).toEqual(before);
  });
});
