/**
 * A repository project on disk, as `hexrepo init` lays it out: DIR/private_key.pem (0600),
 * DIR/public/ (served), DIR/hexrepo.json, and per-repository state in DIR/.hexrepo/ — beside the
 * public folder, never inside it.
 */
import type { KeyObject } from 'node:crypto';
import { mkdir, open, writeFile } from 'node:fs/promises';
import { dirname, join, sep } from 'node:path';
import { assertRepoName, HexrepoError, PROJECT_FILE } from '@hexrepo/core';
import { generateKeyPair, loadPrivateKey } from '@hexrepo/registry';
import { FsStore } from '@hexrepo/storage';
import { buildRegistry } from './build.js';
import { saveCache } from './cache.js';

/** Where per-repository state lives: beside the public folder, never inside it. */
export function stateDir(publicDir: string): string {
  return join(dirname(publicDir), '.hexrepo');
}

/** Default build cache of a public folder. */
export function defaultCachePath(publicDir: string): string {
  const base = publicDir.split(sep).filter(Boolean).pop() ?? 'public';
  return join(stateDir(publicDir), `build-cache-${base}.json`);
}

/**
 * The host's state store of a folder project (tokens and users): `.hexrepo/state/`, beside the
 * public folder, never inside the served or synced folder.
 */
export function defaultHostStateDir(publicDir: string): string {
  return join(stateDir(publicDir), 'state');
}

/** The token file of hexrepo before host credentials (format 1), migrated once into the state store. */
export function defaultTokensPath(publicDir: string): string {
  return join(stateDir(publicDir), 'tokens.json');
}

export interface CreatedProject {
  dir: string;
  keyPath: string;
  publicDir: string;
  privateKey: KeyObject;
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
  await mkdir(join(publicDir, 'tarballs'), { recursive: true });
  const privateKey = loadPrivateKey(privateKeyPem);
  const { cache } = await buildRegistry({ store: new FsStore(publicDir), repository: name, privateKey });
  await saveCache(defaultCachePath(publicDir), cache);
  await writeFile(join(dir, PROJECT_FILE), `${JSON.stringify({ name, publicDir: 'public', privateKey: 'private_key.pem' }, null, 2)}\n`);
  return { dir, keyPath, publicDir, privateKey };
}
