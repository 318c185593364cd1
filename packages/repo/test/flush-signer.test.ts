/**
 * A server's flushes sign and gzip on worker threads (RepoServiceOptions.flushThreads): the files
 * must be byte for byte those signed on the main thread, a stopped worker must not stop publishing,
 * and idle workers must not keep a process alive. The workers run the compiled
 * packages/repo/dist/build-worker.js: `pnpm build` first.
 */
import { spawnSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { signAndWrap } from '@hexrepo/registry';
import { FsStore } from '@hexrepo/storage';
import { createTarball } from '@hexrepo/tarball';
import { describe, expect, it } from 'vitest';
import { FlushSigner } from '../src/flush-signer.js';
import { RepoService } from '../src/index.js';
import { snapshot, tempDir } from './helpers.js';

const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const tarball = (name: string, version: string): Uint8Array => createTarball({ name, version, description: `${name} ${version}`, licenses: ['MIT'] }, [{ path: `src/${name}.erl`, contents: Buffer.from(`-module(${name}).\n`) }]).tarball;

/** Publish the same releases, concurrently, into a fresh folder; the files of the repository afterwards. */
async function publishAll(flushThreads: number): Promise<Map<string, string>> {
  const dir = await tempDir();
  const { service } = await RepoService.open({ store: new FsStore(dir), repository: 'acme', privateKey, now: () => 1_700_000_000, flushThreads });
  const jobs = ['alpha', 'beta', 'gamma'].flatMap((name) => ['1.0.0', '1.1.0', '2.0.0'].map((version) => ({ name, version })));
  await Promise.all(jobs.map((j) => service.publish(tarball(j.name, j.version))));
  await service.retire('beta', '1.0.0', { reason: 'security', message: 'CVE' });
  await service.close();
  const files = await snapshot(dir);
  // Tarball mtimes (and so `names`' updated_at) differ between the two folders: compare what does not depend on them.
  for (const key of files.keys()) if (key === 'names' || key.startsWith('tarballs/')) files.delete(key);
  return files;
}

describe('flush threads', () => {
  it('a service whose flushes sign on worker threads writes the same bytes as one signing on its own thread', async () => {
    const [threaded, inline] = await Promise.all([publishAll(2), publishAll(0)]);
    expect([...threaded.keys()].sort()).toEqual([...inline.keys()].sort());
    expect(threaded.has('versions') && threaded.has('packages/beta')).toBe(true);
    for (const [key, bytes] of inline) expect(threaded.get(key), key).toBe(bytes);
  });

  it('signs on its own thread, with the same bytes, once its workers are stopped', async () => {
    const signer = new FlushSigner(privateKey, 2);
    const payload = new Uint8Array(50_000).map((_, i) => (i * 7) % 251);
    const expected = Buffer.from(signAndWrap(payload, privateKey));
    expect(Buffer.from(await signer.signAndWrap(payload)).equals(expected)).toBe(true);
    await signer.close();
    expect(Buffer.from(await signer.signAndWrap(payload)).equals(expected)).toBe(true);
  });

  it('idle workers do not keep a process alive: a script that signed once exits on its own', () => {
    const dist = fileURLToPath(new URL('../dist/flush-signer.js', import.meta.url));
    const script = [
      `import { generateKeyPairSync } from 'node:crypto';`,
      `const { FlushSigner } = await import(${JSON.stringify(dist)});`,
      `const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });`,
      `const bytes = await new FlushSigner(privateKey, 2).signAndWrap(new Uint8Array(1000));`,
      `console.log('signed', bytes.byteLength > 0);`,
    ].join('\n');
    const res = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 30_000 });
    expect(res.stderr).toBe('');
    expect(res.stdout.trim()).toBe('signed true');
    expect(res.status).toBe(0);
  });
});
