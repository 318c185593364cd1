/**
 * Where hexrepo keeps local state on disk: a `.hexrepo/` folder beside the public folder (or in
 * the project folder of a store-backed repository), never inside anything that is served or
 * synced. Every path of that layout is spelled here and nowhere else.
 */
import { createHash } from 'node:crypto';
import { dirname, join, sep } from 'node:path';

/** The name of the local state folder. */
export const STATE_DIR_NAME = '.hexrepo';

/** The state folder of a project folder (the one holding hexrepo.json), or of any base folder. */
export function projectStateDir(projectDir: string): string {
  return join(projectDir, STATE_DIR_NAME);
}

/** Where per-repository state lives: beside the public folder, never inside it. */
export function stateDir(publicDir: string): string {
  return projectStateDir(dirname(publicDir));
}

/** Default build cache of a public folder: `.hexrepo/build-cache-PUBLIC.json` beside it. */
export function defaultCachePath(publicDir: string): string {
  const base = publicDir.split(sep).filter(Boolean).pop() ?? 'public';
  return join(stateDir(publicDir), `build-cache-${base}.json`);
}

/**
 * Default build cache of a repository in a store: `.hexrepo/build-cache-HASH.json` in `baseDir`
 * (the project or current folder), HASH naming the store's canonical URL so two stores never share one.
 */
export function storeCachePath(baseDir: string, storeUrl: string): string {
  const hash = createHash('sha256').update(storeUrl).digest('hex').slice(0, 12);
  return join(projectStateDir(baseDir), `build-cache-${hash}.json`);
}

/** Default token file of a public folder: `.hexrepo/tokens.json` beside it. */
export function defaultTokensPath(publicDir: string): string {
  return join(stateDir(publicDir), 'tokens.json');
}

/** Default token file of a store-backed repository: `.hexrepo/tokens.json` in `baseDir`. */
export function storeTokensPath(baseDir: string): string {
  return join(projectStateDir(baseDir), 'tokens.json');
}

/** The host's state store of a folder project: `DIR/.hexrepo/state/` (beside public/, never served). */
export function hostStateDir(projectDir: string): string {
  return join(projectStateDir(projectDir), 'state');
}

/**
 * The host's state store of a single-repository folder project, from its public folder:
 * `.hexrepo/state/` beside it (the same folder as `hostStateDir` of the project folder).
 */
export function defaultHostStateDir(publicDir: string): string {
  return hostStateDir(dirname(publicDir));
}
