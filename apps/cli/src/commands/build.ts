import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { errorToJson, HexrepoError, isHexrepoError } from '@hexrepo/core';
import { openRepository } from '@hexrepo/repo';
import type { KeyObject } from 'node:crypto';
import type { TarballLimits } from '@hexrepo/core';
import { FsStore, type BlobStore } from '@hexrepo/storage';
import { type Command, str } from '../command.js';
import { defaultCachePath, displayPath, loadSigningKey, resolveRepo, storeCachePath } from '../project.js';
import { progressBar } from '../progress.js';
import { loadStoreSigningKey, localRoot, resolveStoreRepo } from '../stores.js';

export const build: Command = {
  name: 'build',
  summary: 'Build the signed registry (names, versions, packages/NAME) from PUBLIC/tarballs/*.tar.',
  usage: 'hexrepo build [DIR|PUBLIC] --name NAME --private-key KEY.pem [options]\n       hexrepo build [DIR] --store URL [options]',
  help: `
Does what "mix hex.registry build" does, with the same inputs and output tree, but incrementally
(only new or changed tarballs are read, only their packages re-signed), atomically (temp file +
rename), and only after every tarball validated: a bad tarball is reported and nothing is written.
A change is a new size or mtime (of a tarball, or of a registry file): after replacing a file by
one of the same size with its mtime restored (touch -r, rsync -t), pass --no-cache.
DIR is a folder made by "hexrepo init" (its hexrepo.json gives PUBLIC, --name and --private-key);
PUBLIC is the served folder itself. With neither, ./hexrepo.json is used. Flags always win.

With --store URL the repository is built in place in a store instead of a local folder: tarballs
are read from the store's tarballs/, and only registry files whose bytes changed are written back
(an unchanged rebuild writes nothing). --name and --private-key still come from the flags or from
hexrepo.json (of DIR or the current folder); the build cache stays local. URL is one of
  s3://BUCKET/PREFIX?region=R[&endpoint=URL]   credentials from the AWS environment variables,
                                               profile or instance role
  gs://BUCKET/PREFIX[?project=ID]              credentials from Google Application Default
                                               Credentials
  file:///ABS/PATH, or a plain folder path
See docs/deploy.md.

Options:
  --name NAME                  repository name signed into the files (clients must use the same)
  --private-key FILE           RSA key (PKCS#1 or PKCS#8 PEM); must be outside PUBLIC
  --skip-invalid               leave invalid tarballs out with a warning instead of failing
  --max-tarball-size SIZE      largest accepted tarball (default 8MiB, what every client can install)
  --max-uncompressed-size SIZE largest accepted uncompressed contents (default 64MiB)
  --store URL                  build in this store (s3://…, gs://…, file://…) instead of PUBLIC
  --cache FILE                 build cache (default: PUBLIC/../.hexrepo/build-cache-PUBLIC.json;
                               with --store: .hexrepo/build-cache-HASH.json beside hexrepo.json,
                               or in the current folder, HASH naming the store URL); FILE.stamp
                               beside it says when nothing changed since the last build
  --no-cache                   ignore the cache and read every tarball (the result is the same)
  --threads N                  threads that validate tarballs and sign files (env
                               HEXREPO_BUILD_THREADS; default: every core when 2,000 or more
                               tarballs are to be read, else 1; 1: all on the main thread)
  --json                       print a JSON summary on stdout instead of the text report
  --quiet                      print nothing but errors

Exit status: 0 built, 1 invalid input or another error, 2 wrong usage.`,
  options: {
    name: { type: 'string' },
    'private-key': { type: 'string' },
    'skip-invalid': { type: 'boolean' },
    'max-tarball-size': { type: 'string' },
    'max-uncompressed-size': { type: 'string' },
    store: { type: 'string' },
    cache: { type: 'string' },
    'no-cache': { type: 'boolean' },
    threads: { type: 'string' },
    json: { type: 'boolean' },
    quiet: { type: 'boolean' },
  },
  async run({ values, positionals }, io) {
    if (positionals.length > 1) throw new HexrepoError('USAGE', `hexrepo build: expected one PUBLIC folder, got ${positionals.length}`);
    const threads = threadsOption(str(values, 'threads'), io.env.HEXREPO_BUILD_THREADS);
    const storeUrl = str(values, 'store');
    let store: BlobStore;
    let name: string;
    let limits: TarballLimits;
    let privateKey: KeyObject;
    let defaultCache: string;
    let shown: string;
    if (storeUrl !== undefined) {
      const repo = await resolveStoreRepo('build', io.cwd, storeUrl, positionals[0], values, { key: true });
      ({ store, name, limits } = repo);
      privateKey = await loadStoreSigningKey(repo.keyPath!, store);
      defaultCache = storeCachePath(repo.stateBase, store.url);
      const root = localRoot(store);
      if (root) await mkdir(join(root, 'tarballs'), { recursive: true });
      if (store instanceof FsStore) await store.sweep();
      shown = root ? displayPath(io.cwd, root) : store.url.replace(/\/$/, '');
    } else {
      const repo = await resolveRepo('build', io.cwd, positionals[0], values, { key: true });
      ({ name, limits } = repo);
      privateKey = await loadSigningKey(repo.keyPath!, repo.publicDir);
      await mkdir(join(repo.publicDir, 'tarballs'), { recursive: true }); // as mix does: the drop folder always exists
      const fsStore = new FsStore(repo.publicDir);
      await fsStore.sweep(); // temp files and locks a killed build or server left behind
      store = fsStore;
      defaultCache = defaultCachePath(repo.publicDir);
      shown = displayPath(io.cwd, repo.publicDir);
    }
    const cachePath = typeof values.cache === 'string' ? values.cache : defaultCache;
    const bar = progressBar(io);
    try {
      // Retirements and publish times recorded by the publish API are kept: opening reads them.
      const opened = await openRepository({
        store,
        repository: name,
        privateKey,
        cachePath,
        ignoreCache: values['no-cache'] === true,
        limits,
        skipInvalid: values['skip-invalid'] === true,
        onProgress: (e) => bar.update(e.phase, e.done, e.total),
        ...(threads !== undefined ? { threads } : {}),
        summaryOnly: true,
      });
      const summary = opened.summary!;
      bar.done();
      // Nothing read, written or removed: the cache on disk already says all of it.
      if (!opened.cacheCurrent) await opened.save();
      if (values.json) {
        io.out(`${JSON.stringify({ ok: true, ...summary, public: localRoot(store) ?? store.url, store: store.url, cache: cachePath }, null, 2)}\n`);
        return 0;
      }
      if (values.quiet) return 0;
      for (const p of summary.skipped) io.err(`warning: skipped tarballs/${p.file}: [${p.code}] ${p.message}\n`);
      if (summary.publicKey !== 'unchanged') io.out(`* ${summary.publicKey === 'created' ? 'creating' : 'updating'} ${shown}/public_key\n`);
      for (const key of summary.written) io.out(`* writing ${shown}/${key}\n`);
      for (const key of summary.removed) io.out(`* removing ${shown}/${key}\n`);
      if (summary.upToDate) {
        io.out(`"${summary.repository}" is up to date: ${summary.packages} packages, ${summary.releases} releases, nothing changed since the last build (checked in ${summary.durationMs} ms).\n`);
        return 0;
      }
      io.out(
        `Built "${summary.repository}": ${summary.packages} packages, ${summary.releases} releases; read ${summary.read} tarball(s), ` +
          `reused ${summary.reused}, wrote ${summary.written.length} file(s), ${summary.unchanged} unchanged, in ${summary.durationMs} ms.\n`,
      );
      return 0;
    } catch (err) {
      bar.done();
      if (values.json && isHexrepoError(err)) {
        io.out(`${JSON.stringify({ ok: false, error: errorToJson(err) }, null, 2)}\n`);
        return 1;
      }
      throw err;
    }
  },
};

/** --threads, else HEXREPO_BUILD_THREADS, else undefined (the build picks by the amount of work). */
function threadsOption(flag: string | undefined, env: string | undefined): number | undefined {
  const [value, source] = flag !== undefined ? [flag, '--threads'] : env !== undefined && env !== '' ? [env, 'HEXREPO_BUILD_THREADS'] : [undefined, ''];
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value) || Number(value) < 1 || Number(value) > 256) {
    throw new HexrepoError('USAGE', `hexrepo build: ${source} must be a whole number of threads, 1-256 (1: build on the main thread only), got ${JSON.stringify(value)}`);
  }
  return Number(value);
}
