/**
 * Eviction for bounded disks, and the store's status. Only tarballs and docs are ever evicted (the
 * registry files are small and a client needs them to resolve anything), least recently fetched
 * first, and never an object a pin names (what a lockfile bundle imported).
 */
import type { BlobStore } from '@hexrepo/storage';
import { META_PREFIX, metaKey, parseMeta, parsePin, PINS_PREFIX } from './layout.js';

/** A tarball or docs archive the store holds, with when it was last fetched. */
export interface EvictionCandidate {
  path: string;
  size: number;
  fetchedAt: number;
  pinned: boolean;
}

export interface EvictOptions {
  /** Keep tarballs + docs under this many bytes (pinned ones count, but stay). */
  maxSize?: number;
  /** Evict what was fetched longer ago than this (ms). */
  maxAgeMs?: number;
  /** Report only. @default false */
  dryRun?: boolean;
  /** @default Date.now() */
  now?: number;
}

export interface EvictResult {
  evicted: { path: string; size: number; fetchedAt: number }[];
  evictedBytes: number;
  /** Tarball + docs bytes before and after. */
  bytesBefore: number;
  bytesAfter: number;
  /** Objects kept only because a pin names them, though the limits would evict them. */
  keptPinned: number;
  dryRun: boolean;
}

/** Every path named by a pin of the store. */
export async function pinnedPaths(store: BlobStore): Promise<{ pins: { id: string; source: string; created: number; paths: number }[]; paths: Set<string> }> {
  const paths = new Set<string>();
  const pins: { id: string; source: string; created: number; paths: number }[] = [];
  for await (const info of store.list(PINS_PREFIX)) {
    const obj = await store.get(info.key);
    const pin = obj ? parsePin(obj.body) : null;
    if (!pin) continue;
    pins.push({ id: info.key.slice(PINS_PREFIX.length).replace(/\.json$/, ''), source: pin.source, created: pin.created, paths: pin.paths.length });
    for (const p of pin.paths) paths.add(p);
  }
  return { pins, paths };
}

/** The tarballs and docs of a mirror store, oldest fetch first. */
export async function evictionCandidates(store: BlobStore): Promise<EvictionCandidate[]> {
  const { paths: pinned } = await pinnedPaths(store);
  const out: EvictionCandidate[] = [];
  for (const prefix of ['tarballs/', 'docs/']) {
    for await (const info of store.list(prefix)) {
      const metaObj = await store.get(metaKey(info.key));
      const meta = metaObj ? parseMeta(metaObj.body) : null;
      // Without a meta, the object's write time is its fetch time (objects are written when fetched).
      out.push({ path: info.key, size: info.size, fetchedAt: meta?.fetchedAt ?? info.mtime.getTime(), pinned: pinned.has(info.key) });
    }
  }
  return out.sort((a, b) => a.fetchedAt - b.fetchedAt || (a.path < b.path ? -1 : 1));
}

/**
 * Evict tarballs and docs by age and/or total size, least recently fetched first, never pinned ones.
 * The object goes before its meta: a meta left by a crash describes nothing and is ignored by sync.
 */
export async function evict(store: BlobStore, opts: EvictOptions): Promise<EvictResult> {
  const now = opts.now ?? Date.now();
  const candidates = await evictionCandidates(store);
  const bytesBefore = candidates.reduce((n, c) => n + c.size, 0);
  let total = bytesBefore;
  const evicted: EvictResult['evicted'] = [];
  let keptPinned = 0;
  for (const c of candidates) {
    const tooOld = opts.maxAgeMs !== undefined && now - c.fetchedAt > opts.maxAgeMs;
    const tooBig = opts.maxSize !== undefined && total > opts.maxSize;
    if (!tooOld && !tooBig) continue;
    if (c.pinned) {
      keptPinned++;
      continue;
    }
    if (!opts.dryRun) {
      await store.delete(c.path);
      await store.delete(metaKey(c.path));
    }
    total -= c.size;
    evicted.push({ path: c.path, size: c.size, fetchedAt: c.fetchedAt });
  }
  return { evicted, evictedBytes: bytesBefore - total, bytesBefore, bytesAfter: total, keptPinned, dryRun: opts.dryRun ?? false };
}

export interface MirrorStatus {
  objects: Record<'names' | 'versions' | 'packages' | 'tarballs' | 'docs' | 'installs', { count: number; bytes: number }>;
  /** Objects without a meta (stored, verified when written, treated as stale). */
  withoutMeta: number;
  pins: { id: string; source: string; created: number; paths: number }[];
  pinnedPaths: number;
}

/** Counts and bytes of a mirror store by kind, and its pins. */
export async function mirrorStatus(store: BlobStore): Promise<MirrorStatus> {
  const objects: MirrorStatus['objects'] = {
    names: { count: 0, bytes: 0 },
    versions: { count: 0, bytes: 0 },
    packages: { count: 0, bytes: 0 },
    tarballs: { count: 0, bytes: 0 },
    docs: { count: 0, bytes: 0 },
    installs: { count: 0, bytes: 0 },
  };
  const metas = new Set<string>();
  for await (const info of store.list(META_PREFIX)) metas.add(info.key);
  let withoutMeta = 0;
  const count = (kind: keyof MirrorStatus['objects'], key: string, size: number): void => {
    objects[kind].count++;
    objects[kind].bytes += size;
    if (!metas.has(metaKey(key))) withoutMeta++;
  };
  for (const key of ['names', 'versions'] as const) {
    const h = await store.head(key);
    if (h) count(key, key, h.size);
  }
  for (const [prefix, kind] of [
    ['packages/', 'packages'],
    ['tarballs/', 'tarballs'],
    ['docs/', 'docs'],
    ['installs/', 'installs'],
  ] as const) {
    for await (const info of store.list(prefix)) count(kind, info.key, info.size);
  }
  const { pins, paths } = await pinnedPaths(store);
  return { objects, withoutMeta, pins, pinnedPaths: paths.size };
}
