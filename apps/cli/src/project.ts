import { readFile, stat } from 'node:fs/promises';
import { dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import type { KeyObject } from 'node:crypto';
import { DEFAULT_LIMITS, HexrepoError, parseProjectConfig, parseSize, PROJECT_FILE, type ProjectConfig, type TarballLimits } from '@hexrepo/core';
import { loadPrivateKey } from '@hexrepo/registry';
import { usage } from './command.js';

/** Find and read `hexrepo.json` in `dir` (no search upwards: explicit is better). */
export async function readProject(dir: string): Promise<{ config: ProjectConfig; root: string } | null> {
  const path = join(dir, PROJECT_FILE);
  let raw: string;
  try {
    raw = await readFile(path, 'utf8');
  } catch {
    return null;
  }
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch (err) {
    throw new HexrepoError('CONFIG_INVALID', `${path} is not valid JSON: ${(err as Error).message}`, { path });
  }
  return { config: parseProjectConfig(json, path), root: dir };
}

export interface Resolved {
  publicDir: string;
  name: string;
  keyPath: string | undefined;
  limits: TarballLimits;
}

/**
 * Resolve the public folder, repository name and key from flags, falling back to `hexrepo.json`
 * in the current folder (as written by `hexrepo init`). Flags always win.
 */
export async function resolveRepo(cmd: string, cwd: string, positional: string | undefined, values: Record<string, unknown>, need: { key: boolean }): Promise<Resolved> {
  const { publicDir, project } = await resolvePublicDir(cmd, cwd, positional);
  return { publicDir, ...repoSettings(cmd, cwd, project, values, need) };
}

/**
 * Name, signing key and size limits of a repository: flags first, then its hexrepo.json. Shared by
 * commands on a public folder and commands on a store (--store).
 */
export function repoSettings(cmd: string, cwd: string, project: { config: ProjectConfig; root: string } | null, values: Record<string, unknown>, need: { key: boolean }): { name: string; keyPath: string | undefined; limits: TarballLimits } {
  const name = (typeof values.name === 'string' ? values.name : undefined) ?? project?.config.name;
  if (!name) throw usage(cmd, 'missing --name (the repository name clients configure)');
  const keyFlag = typeof values['private-key'] === 'string' ? values['private-key'] : undefined;
  const keyPath = keyFlag ? resolve(cwd, keyFlag) : project ? resolve(project.root, project.config.privateKey) : undefined;
  if (need.key && !keyPath) throw usage(cmd, 'missing --private-key KEY.pem');
  const limits = { ...(project?.config.limits ?? DEFAULT_LIMITS) };
  for (const [flag, key] of [
    ['max-tarball-size', 'maxTarballSize'],
    ['max-uncompressed-size', 'maxUncompressedSize'],
  ] as const) {
    const v = values[flag];
    if (typeof v === 'string') {
      const n = parseSize(v);
      if (n === null || n <= 0) throw usage(cmd, `--${flag} ${JSON.stringify(v)} is not a size (examples: 8MiB, 65536)`);
      limits[key] = n;
    }
  }
  return { name, keyPath, limits };
}

/**
 * The public folder named by a positional, which is either a project folder (holding hexrepo.json)
 * or the public folder itself; without one, the project in the current folder.
 */
export async function resolvePublicDir(cmd: string, cwd: string, positional: string | undefined): Promise<{ publicDir: string; project: { config: ProjectConfig; root: string } | null }> {
  const positionalProject = positional ? await readProject(resolve(cwd, positional)) : null;
  const project = positionalProject ?? (await readProject(cwd));
  const publicDir = positional && !positionalProject ? resolve(cwd, positional) : project ? resolve(project.root, project.config.publicDir) : undefined;
  if (!publicDir) throw usage(cmd, 'missing PUBLIC folder (or run it where hexrepo.json is, as written by "hexrepo init")');
  const st = await stat(publicDir).catch(() => null);
  if (!st?.isDirectory()) throw new HexrepoError('NOT_FOUND', `${publicDir} is not a folder`, { hint: 'create it with "hexrepo init", or pass the folder that holds tarballs/' });
  return { publicDir, project };
}

export { defaultCachePath, defaultHostStateDir, defaultTokensPath, stateDir, storeCachePath, storeTokensPath } from '@hexrepo/repo';

/** True when `path` is `dir` or inside it. */
export function isInside(path: string, dir: string): boolean {
  const rel = relative(resolve(dir), resolve(path));
  return rel === '' || (!rel.startsWith('..') && !isAbsolute(rel) && !rel.startsWith(sep));
}

/** Load the signing key, refusing one that sits inside the served folder. */
export async function loadSigningKey(keyPath: string, publicDir: string): Promise<KeyObject> {
  if (isInside(keyPath, publicDir)) {
    throw new HexrepoError('KEY_UNSAFE_LOCATION', `the private key ${keyPath} is inside the public folder ${publicDir}, which is served and synced as it is`, {
      hint: `move it out, e.g. to ${join(dirname(publicDir), 'private_key.pem')}, and pass that path to --private-key`,
    });
  }
  let pem: string;
  try {
    pem = await readFile(keyPath, 'utf8');
  } catch (err) {
    throw new HexrepoError('KEY_INVALID', `cannot read the private key ${keyPath}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { hint: 'create one with "hexrepo init", or pass the right path to --private-key' });
  }
  try {
    return loadPrivateKey(pem);
  } catch (err) {
    throw err instanceof HexrepoError ? err.withContext(keyPath) : err;
  }
}

/** A path as users read it best: relative to `cwd` when inside it, absolute otherwise. */
export function displayPath(cwd: string, path: string): string {
  const rel = relative(cwd, path);
  return rel === '' ? '.' : rel.startsWith('..') || isAbsolute(rel) ? resolve(path) : rel;
}
