/**
 * Repository-side state of releases that tarballs cannot carry: retirement, publish time and
 * security advisories (each advisory stored once per package, releases naming it by id). Kept
 * per package in the store at `_hexrepo/releases/NAME.json` (never served: not a repository path),
 * written by the publish API and read by `hexrepo build`, so a rebuild never drops a retirement.
 */
import { HexrepoError, isHexrepoError, isRetirementReason, validateAdvisory, type Advisory, type Retirement } from '@hexrepo/core';
import { contentEtag, putMany, type BatchEntry, type BlobStore, type PutResult } from '@hexrepo/storage';
import type { ReleaseState, ReleaseStateLookup } from './registry-index.js';

export const STATE_PREFIX = '_hexrepo/releases/';
export const stateKey = (name: string): string => `${STATE_PREFIX}${name}.json`;

/** Per package, per version. */
export type ReleaseStates = Map<string, Map<string, ReleaseState>>;

interface StateFile {
  format: 1;
  package: string;
  releases: Record<string, { publishedAt?: number; retired?: Retirement; advisories?: string[]; publisher?: string }>;
  /** By id; present only when a release names one. */
  advisories?: Record<string, Advisory>;
}

function parseState(key: string, body: Uint8Array): Map<string, ReleaseState> {
  let file: StateFile;
  try {
    file = JSON.parse(new TextDecoder().decode(body)) as StateFile;
  } catch {
    throw new HexrepoError('REGISTRY_CORRUPT', `${key} is not valid JSON`, { key, hint: 'restore it or delete it (retirements and publish times of that package are then lost)' });
  }
  if (file.format !== 1 || typeof file.releases !== 'object' || file.releases === null) throw new HexrepoError('REGISTRY_CORRUPT', `${key} has an unknown format`, { key });
  const advisories = new Map<string, Advisory>();
  for (const [id, a] of Object.entries(file.advisories ?? {})) {
    try {
      advisories.set(id, validateAdvisory({ ...a, id }));
    } catch (err) {
      throw new HexrepoError('REGISTRY_CORRUPT', `${key}: advisory ${id} is not valid: ${(err as Error).message}`, { key, hint: 'fix it by hand or remove it with "hexrepo advisory remove"' });
    }
  }
  const out = new Map<string, ReleaseState>();
  for (const [version, s] of Object.entries(file.releases)) {
    const state: ReleaseState = {};
    if (typeof s.publishedAt === 'number') state.publishedAt = s.publishedAt;
    if (typeof s.publisher === 'string') state.publisher = s.publisher;
    if (s.retired && isRetirementReason(s.retired.reason)) state.retired = { reason: s.retired.reason, ...(typeof s.retired.message === 'string' ? { message: s.retired.message } : {}) };
    const own = (Array.isArray(s.advisories) ? s.advisories : []).flatMap((id) => advisories.get(id) ?? []);
    if (own.length > 0) state.advisories = own;
    out.set(version, state);
  }
  return out;
}

/** The state file's JSON: each advisory once at package level, releases naming theirs by id. */
function serializeState(name: string, releases: Map<string, ReleaseState>): StateFile {
  const advisories = new Map<string, Advisory>();
  const entries = [...releases]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([version, state]) => {
      const { advisories: own, ...rest } = state;
      for (const a of own ?? []) advisories.set(a.id, a);
      return [version, own && own.length > 0 ? { ...rest, advisories: own.map((a) => a.id).sort() } : rest] as const;
    });
  return {
    format: 1,
    package: name,
    releases: Object.fromEntries(entries),
    ...(advisories.size > 0 ? { advisories: Object.fromEntries([...advisories].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) } : {}),
  };
}

/** Every package's state in the store. */
export async function loadReleaseStates(store: BlobStore): Promise<ReleaseStates> {
  const states: ReleaseStates = new Map();
  const keys: string[] = [];
  for await (const o of store.list(STATE_PREFIX)) if (o.key.endsWith('.json')) keys.push(o.key);
  await Promise.all(
    keys.map(async (key) => {
      const obj = await store.get(key);
      if (obj) states.set(key.slice(STATE_PREFIX.length, -'.json'.length), parseState(key, obj.body));
    }),
  );
  return states;
}

/**
 * Change one package's state safely when several writers share the store: read the current file,
 * apply `change`, write it back only if nobody wrote in between (conditional put), else start over.
 * Returns the state as written.
 */
export async function updatePackageState(store: BlobStore, name: string, change: (releases: Map<string, ReleaseState>) => void): Promise<Map<string, ReleaseState>> {
  return (await updatePackageStateAfter(store, name, change, [])).releases;
}

/**
 * `updatePackageState`, with `before` (a release's tarball) written in the same durable batch just
 * ahead of the state file, so both cost one fsync wave. A failure of a `before` entry (its own
 * condition included) throws with nothing of the state written; once they are stored, a state file
 * changed by another writer is merged and retried alone. `known`: the state as this process last
 * wrote or read it, with that version's etag (null: no file); the first attempt changes it instead
 * of reading the file, on the condition that the file is still that version. Returns the state as
 * written, its etag and the puts of `before`.
 */
export async function updatePackageStateAfter(
  store: BlobStore,
  name: string,
  change: (releases: Map<string, ReleaseState>) => void,
  before: readonly BatchEntry[],
  known?: { etag: string | null; releases: ReadonlyMap<string, ReleaseState> },
): Promise<{ releases: Map<string, ReleaseState>; etag: string; before: PutResult[] }> {
  let pending = before;
  let stored: PutResult[] = [];
  for (let attempt = 0; ; attempt++) {
    const current = attempt === 0 && known ? (known.etag === null ? null : { etag: known.etag }) : await store.get(stateKey(name));
    // The changes set and delete entries; they never modify a state object in place.
    const releases = attempt === 0 && known ? new Map(known.releases) : current && 'body' in current ? parseState(stateKey(name), current.body) : new Map<string, ReleaseState>();
    change(releases);
    const file = serializeState(name, releases);
    const entry: BatchEntry = {
      key: stateKey(name),
      body: new TextEncoder().encode(`${JSON.stringify(file, null, 2)}\n`),
      opts: { contentType: 'application/json', ...(current ? { ifMatch: current.etag } : { ifNoneMatch: '*' as const }) },
    };
    try {
      const puts = await putMany(store, [...pending, entry]);
      return { releases, etag: puts[pending.length]!.etag, before: [...stored, ...puts.slice(0, pending.length)] };
    } catch (err) {
      if (!isHexrepoError(err, 'STORAGE_CONFLICT') || err.details.key !== entry.key || attempt >= 20) throw err;
      // The entries before the state file are stored (a batch stops at its first failure).
      if (pending.length > 0) {
        stored = await Promise.all(pending.map(async (e) => ({ etag: contentEtag(e.body), ...(await store.head(e.key).then((h) => (h ? { mtime: h.mtime } : {}))) })));
        pending = [];
      }
      // A lost write over a known version is retried at once, from the file: it is not a collision in step.
      if (!(attempt === 0 && known)) await new Promise((r) => setTimeout(r, Math.random() * 10 * (attempt + 1)));
    }
  }
}

export function stateLookup(states: ReleaseStates): ReleaseStateLookup {
  return (name, version) => states.get(name)?.get(version);
}
