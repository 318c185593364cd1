/**
 * `hexrepo build` writes the registry in durable batches (temp files fsync'ed together, renamed in
 * order, one folder fsync). A real build of 200 packages (seven batches) is killed with SIGKILL at
 * chosen moments of those waves, seen through the folder itself: while the first package files
 * are temp files, right after the first package file was renamed into place, and while `versions`
 * and `names` are temp files. After each kill every registry file there is whole and signed (old or
 * new, never torn), and the next build leaves a registry that `hexrepo verify` accepts, with no temp
 * or lock file left.
 */
import { spawn } from 'node:child_process';
import { readFileSync, watch } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadPublicKey, unpackNames, unpackPackage, unpackVersions } from '@hexrepo/registry';
import { createTarball } from '@hexrepo/tarball';
import { afterAll, describe, expect, it } from 'vitest';
import { CLI, hexrepo } from './support/cli.js';

const PACKAGES = 200;
const REPO = 'killbuild';
const dirs: string[] = [];
afterAll(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

async function dropVersion(pub: string, version: string): Promise<void> {
  await Promise.all(
    Array.from({ length: PACKAGES }, (_, i) => {
      const name = `pkg_${String(i).padStart(3, '0')}`;
      const { tarball } = createTarball({ name, version }, [{ path: `src/${name}.erl`, contents: Buffer.from(`-module(${name}). %% ${version}\n`) }]);
      return writeFile(join(pub, 'tarballs', `${name}-${version}.tar`), tarball);
    }),
  );
}

/** Where in the build's writes to kill it: the folder to watch and the file name that marks the moment. */
type Moment = { what: string; folder: string; at: (file: string) => boolean };

/** Run `hexrepo build` and SIGKILL it as soon as `moment` shows in the folder; how it ended. */
async function buildKilledAt(dir: string, moment: Moment): Promise<{ signal: NodeJS.Signals | null; code: number | null }> {
  const child = spawn(process.execPath, [CLI, 'build', dir, '--quiet'], { stdio: 'ignore' });
  const watcher = watch(moment.folder, (_event, file) => {
    if (file && moment.at(file.toString())) child.kill('SIGKILL');
  });
  try {
    return await new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  } finally {
    watcher.close();
  }
}

async function leftovers(folder: string): Promise<string[]> {
  const entries = await readdir(folder, { recursive: true, withFileTypes: true });
  return entries.filter((e) => e.isFile() && (e.name.startsWith('.tmp-') || e.name.startsWith('.lock-'))).map((e) => e.name);
}

describe('kill -9 during a batched build', () => {
  it('leaves only whole signed registry files, and the next build leaves a registry that verifies', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hexrepo-build-kill-'));
    dirs.push(dir);
    const pub = join(dir, 'public');
    expect((await hexrepo(['init', dir, '--name', REPO])).status).toBe(0);
    const publicKey = loadPublicKey(await readFile(join(pub, 'public_key')));
    await dropVersion(pub, '1.0.0');
    expect((await hexrepo(['build', dir, '--quiet'])).status).toBe(0);

    const moments: Moment[] = [
      { what: 'first package temp files', folder: join(pub, 'packages'), at: (f) => f.startsWith('.tmp-') },
      { what: 'first package file renamed', folder: join(pub, 'packages'), at: (f) => f.startsWith('pkg_') },
      { what: 'versions and names temp files', folder: pub, at: (f) => f.startsWith('.tmp-') && (f.endsWith('-versions') || f.endsWith('-names')) },
    ];
    let killed = 0;
    for (const [round, moment] of moments.entries()) {
      // A new version of every package: every package file, versions and names are rewritten.
      await dropVersion(pub, `1.${round + 1}.0`);
      const ended = await buildKilledAt(dir, moment);
      if (round < 2) expect(ended.signal, `killed at: ${moment.what}`).toBe('SIGKILL');
      if (ended.signal === 'SIGKILL') killed++;
      else expect(ended.code, `the build ran to its end before the kill at: ${moment.what}`).toBe(0);

      // Old or new, never torn: every registry file in place decodes and carries a valid signature.
      for (const file of await readdir(join(pub, 'packages'))) {
        if (file.startsWith('.')) continue;
        expect(() => unpackPackage(readFileSyncBytes(join(pub, 'packages', file)), { publicKey, repository: REPO, name: file }), `packages/${file}`).not.toThrow();
      }
      expect(() => unpackVersions(readFileSyncBytes(join(pub, 'versions')), { publicKey, repository: REPO })).not.toThrow();
      expect(() => unpackNames(readFileSyncBytes(join(pub, 'names')), { publicKey, repository: REPO })).not.toThrow();

      const rebuilt = await hexrepo(['build', dir, '--quiet']);
      expect(rebuilt.status, rebuilt.stderr).toBe(0);
      const verify = await hexrepo(['verify', dir]);
      expect(verify.status, `${verify.stdout}${verify.stderr}`).toBe(0);
      expect(await leftovers(pub), `after the build that followed the kill at: ${moment.what}`).toEqual([]);
      const versions = unpackVersions(readFileSyncBytes(join(pub, 'versions')), { publicKey, repository: REPO });
      expect(versions.packages).toHaveLength(PACKAGES);
      for (const p of versions.packages) expect(p.versions).toHaveLength(round + 2);
    }
    expect(killed).toBeGreaterThanOrEqual(2);
  }, 180_000);
});

function readFileSyncBytes(path: string): Uint8Array {
  return new Uint8Array(readFileSync(path));
}
