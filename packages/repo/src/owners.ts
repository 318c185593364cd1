/**
 * Package owners: host users recorded per package in the repository's store, at
 * `_hexrepo/owners/NAME.json` (never served: not a repository path), so every server on that store
 * sees the same owners. Levels are hex.pm's: `full` owners manage ownership, `maintainer` owners
 * are listed as owners only. Who may publish is decided by grants, not by ownership.
 */
import { HexrepoError } from '@hexrepo/core';
import type { BlobStore } from '@hexrepo/storage';
import { readJsonState, updateJsonState } from './json-state.js';

export const OWNERS_PREFIX = '_hexrepo/owners/';
export const ownersKey = (name: string): string => `${OWNERS_PREFIX}${name}.json`;

export const OWNER_LEVELS = ['full', 'maintainer'] as const;
export type OwnerLevel = (typeof OWNER_LEVELS)[number];

export interface Owner {
  username: string;
  level: OwnerLevel;
  /** ISO-8601, when the user became an owner (or last changed level). */
  addedAt: string;
}

interface OwnersFile {
  format: 1;
  package: string;
  owners: Owner[];
}

/** True for hex.pm's ownership levels. */
export function isOwnerLevel(level: unknown): level is OwnerLevel {
  return typeof level === 'string' && (OWNER_LEVELS as readonly string[]).includes(level);
}

function parseOwners(key: string, value: unknown): Owner[] {
  if (value === undefined) return [];
  const file = value as Partial<OwnersFile> | null;
  if (file?.format !== 1 || !Array.isArray(file.owners)) throw new HexrepoError('REGISTRY_CORRUPT', `${key} has an unknown format`, { key, hint: 'restore it from a backup, or delete it (the package then has no owners)' });
  return file.owners.filter((o) => typeof o.username === 'string' && isOwnerLevel(o.level));
}

/** The owners of a package, in the order they were added (none: an empty list). */
export async function readOwners(store: BlobStore, name: string): Promise<Owner[]> {
  const key = ownersKey(name);
  return parseOwners(key, (await readJsonState(store, key))?.value);
}

/** Per store: each package's owners as last read, with the size and mtime of the file read. */
const ownersRead = new WeakMap<BlobStore, Map<string, { size: number; mtimeMs: number; owners: Owner[] }>>();

/**
 * The packages `username` owns in this store, by name, with the level (`mix hex.owner packages`
 * lists them from GET /users/me). Mix asks for /users/me before every publish, so an owners file
 * is read again only when the listing shows it changed (another size or mtime); the listing itself
 * is one walk of `_hexrepo/owners/`.
 */
export async function ownedPackages(store: BlobStore, username: string): Promise<{ name: string; level: OwnerLevel }[]> {
  let known = ownersRead.get(store);
  if (!known) ownersRead.set(store, (known = new Map()));
  const listed = new Set<string>();
  const owned: { name: string; level: OwnerLevel }[] = [];
  for await (const o of store.list(OWNERS_PREFIX)) {
    if (!o.key.endsWith('.json')) continue;
    const name = o.key.slice(OWNERS_PREFIX.length, -'.json'.length);
    if (name.includes('/')) continue;
    listed.add(name);
    let entry = known.get(name);
    if (!entry || entry.size !== o.size || entry.mtimeMs !== o.mtime.getTime()) {
      // Changed after the listing: the next call sees another stat and reads it again.
      entry = { size: o.size, mtimeMs: o.mtime.getTime(), owners: await readOwners(store, name) };
      known.set(name, entry);
    }
    const mine = entry.owners.find((owner) => owner.username === username);
    if (mine) owned.push({ name, level: mine.level });
  }
  for (const name of [...known.keys()]) if (!listed.has(name)) known.delete(name);
  return owned.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/**
 * Make `username` an owner of `name` at `level` (a second call changes the level). With `transfer`,
 * the user becomes the only owner (hex.pm's ownership transfer). OWNERSHIP_INVALID when a package
 * with a full owner would be left without one. Returns the owners as written.
 */
export async function addOwner(store: BlobStore, name: string, username: string, level: OwnerLevel, opts: { transfer?: boolean; now?: () => number } = {}): Promise<Owner[]> {
  const key = ownersKey(name);
  const addedAt = new Date((opts.now ?? Date.now)()).toISOString();
  return updateJsonState(store, key, (current) => {
    const before = opts.transfer ? [] : parseOwners(key, current);
    const owners = before.some((o) => o.username === username) ? before.map((o) => (o.username === username ? { ...o, level, addedAt } : o)) : [...before, { username, level, addedAt }];
    // Demoting the last full owner (or transferring to a maintainer) would strand the package as
    // surely as removing that owner: nobody but an admin could manage it any more.
    const hadFull = parseOwners(key, current).some((o) => o.level === 'full');
    if (hadFull && !owners.some((o) => o.level === 'full')) {
      throw new HexrepoError('OWNERSHIP_INVALID', `${name} would have no full owner left: make another user a full owner first, or transfer with level "full"`, { field: 'level', problem: 'cannot demote last full owner of package' });
    }
    const file: OwnersFile = { format: 1, package: name, owners };
    return { value: file, result: owners };
  });
}

/**
 * Remove `username` from the owners of `name`. OWNERSHIP_INVALID when they are not an owner, or are
 * the last full owner (hex.pm refuses to leave a package without one). Returns the owners as written.
 */
export async function removeOwner(store: BlobStore, name: string, username: string): Promise<Owner[]> {
  const key = ownersKey(name);
  return updateJsonState(store, key, (current) => {
    const before = parseOwners(key, current);
    const owner = before.find((o) => o.username === username);
    if (!owner) throw new HexrepoError('OWNERSHIP_INVALID', `${username} is not an owner of ${name}`, { field: 'username', problem: 'user is not an owner of package' });
    const owners = before.filter((o) => o.username !== username);
    if (owner.level === 'full' && !owners.some((o) => o.level === 'full')) {
      throw new HexrepoError('OWNERSHIP_INVALID', `${username} is the last full owner of ${name}; add another full owner first`, { field: 'username', problem: 'cannot remove last owner of package' });
    }
    const file: OwnersFile = { format: 1, package: name, owners };
    return { value: file, result: owners };
  });
}
