/**
 * A repository project on disk, as `hexrepo init` lays it out: DIR/private_key.pem (0600),
 * DIR/public/ (served), DIR/hexrepo.json, and per-repository state in DIR/.hexrepo/ — beside the
 * public folder, never inside it.
 */
import type { KeyObject } from 'node:crypto';
import { mkdir, open, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { assertRepoName, HexrepoError, PROJECT_FILE } from '@hexrepo/core';
import { generateKeyPair, loadPrivateKey } from '@hexrepo/registry';
import { FsStore } from '@hexrepo/storage';
import { buildRegistry } from './build.js';
import { saveCache } from './cache.js';
import { defaultCachePath } from './state-layout.js';

export interface CreatedProject {
  dir: string;
  keyPath: string;
  publicDir: string;
  privateKey: KeyObject;
}

/** Generate a 2048-bit signing key into `keyPath` with mode 0600 from the first byte, never overwriting one. */
export async function writeNewKey(keyPath: string): Promise<KeyObject> {
  await mkdir(dirname(keyPath), { recursive: true });
  const { privateKeyPem } = await generateKeyPair();
  // 'wx': never overwrite a key; mode 0600 from the first byte.
  const fh = await open(keyPath, 'wx', 0o600).catch((err: NodeJS.ErrnoException) => {
    throw err.code === 'EEXIST'
      ? new HexrepoError('ALREADY_EXISTS', `${keyPath} already exists; refusing to overwrite a signing key`, { hint: 'move it away first if you really mean to start over' })
      : new HexrepoError('STORAGE_IO', `cannot write ${keyPath}: ${err.message}`);
  });
  try {
    await fh.writeFile(privateKeyPem);
  } finally {
    await fh.close();
  }
  return loadPrivateKey(privateKeyPem);
}

/**
 * Create a repository in `dir`: a fresh 2048-bit key written with mode 0600 (never overwriting
 * one), `public/` with `public_key`, `tarballs/` and an empty signed registry, and `hexrepo.json`.
 */
export async function createProject(dir: string, name: string): Promise<CreatedProject> {
  assertRepoName(name);
  await mkdir(dir, { recursive: true });
  const keyPath = join(dir, 'private_key.pem');
  const publicDir = join(dir, 'public');
  const privateKey = await writeNewKey(keyPath);
  await mkdir(join(publicDir, 'tarballs'), { recursive: true });
  const { cache } = await buildRegistry({ store: new FsStore(publicDir), repository: name, privateKey });
  await saveCache(defaultCachePath(publicDir), cache);
  await writeFile(join(dir, PROJECT_FILE), `${JSON.stringify({ name, publicDir: 'public', privateKey: 'private_key.pem' }, null, 2)}\n`);
  return { dir, keyPath, publicDir, privateKey };
}
