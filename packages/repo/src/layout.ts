/** Repository paths, as the Hex repository endpoint names them (also the storage keys). */
export const NAMES_KEY = 'names';
export const VERSIONS_KEY = 'versions';
export const PUBLIC_KEY_KEY = 'public_key';
export const TARBALLS_PREFIX = 'tarballs/';
export const PACKAGES_PREFIX = 'packages/';
export const DOCS_PREFIX = 'docs/';

export const packageKey = (name: string): string => `${PACKAGES_PREFIX}${name}`;
export const tarballKey = (name: string, version: string): string => `${TARBALLS_PREFIX}${name}-${version}.tar`;
export const docsKey = (name: string, version: string): string => `${DOCS_PREFIX}${name}-${version}.tar.gz`;

/**
 * The file name of a tarball key that `mix hex.registry build` would read (`tarballs/*.tar`, not
 * recursive, no dotfiles), or null for anything else in the folder.
 */
export function tarballFileOf(key: string): string | null {
  if (!key.startsWith(TARBALLS_PREFIX)) return null;
  const file = key.slice(TARBALLS_PREFIX.length);
  return file.endsWith('.tar') && !file.includes('/') && !file.startsWith('.') ? file : null;
}

/** The package name a `packages/NAME` key holds, or null. */
export function packageNameOf(key: string): string | null {
  if (!key.startsWith(PACKAGES_PREFIX)) return null;
  const name = key.slice(PACKAGES_PREFIX.length);
  return name && !name.includes('/') ? name : null;
}
