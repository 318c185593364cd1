/**
 * The in-memory search index of one repository: every package's name and its latest release's
 * description, licenses and links, with the facts a package list shows (versions, publish times).
 * Built from the registry index (names, versions, publish times, retirements) plus one read of
 * `metadata.config` per package, and kept current by the registry index's change events: publish,
 * retire, revert and `refresh` all go through it. A query scans flat, pre-lowercased strings (a
 * few milliseconds for 20,000 packages) and never touches the store unless a package changed.
 */
import type { Retirement } from '@hexrepo/core';
import { parseMetadata, readTar, termText, type Metadata } from '@hexrepo/tarball';
import { tarballKey } from './layout.js';
import type { RepoService } from './service.js';

/** One package as a list or search result shows it. */
export interface PackageSummary {
  name: string;
  description: string | null;
  licenses: string[];
  links: [string, string][];
  maintainers: string[];
  /** Newest first. */
  versions: string[];
  latestVersion: string;
  latestStableVersion: string | null;
  /** The retirement of the latest release, if any. */
  retired: Retirement | null;
  /** Seconds since the epoch: the first and the latest publish, when known. */
  insertedAt: number | null;
  updatedAt: number | null;
}

/** How results are ordered: by name, newest update first, newest package first, or best match first. */
export const SEARCH_SORTS = ['name', 'recent_updated', 'inserted_at', 'relevance'] as const;
export type SearchSort = (typeof SEARCH_SORTS)[number];

export interface SearchQuery {
  /** Words that must all match a name or description; `name:WORD` and `description:WORD` narrow one. Empty: every package. */
  term?: string;
  sort?: SearchSort;
  /** 1-based. @default 1 */
  page?: number;
  /** @default 100 (hex.pm's page size) */
  perPage?: number;
  /** Keep only the packages this returns true for (what the caller may read). */
  visible?: (name: string) => boolean;
}

export interface SearchResult {
  packages: PackageSummary[];
  /** How many matched, over all pages. */
  total: number;
}

interface Entry extends PackageSummary {
  lowerName: string;
  lowerText: string;
  /** `file:size:mtime` of the release whose metadata was read (the latest stable, else the latest). */
  stamp: string;
}

const byService = new WeakMap<RepoService, SearchIndex>();

/** Read only metadata.config from a stored tarball (it was fully validated when it entered the registry). */
function metadataOf(bytes: Uint8Array): Metadata | null {
  try {
    const entry = readTar(bytes).find((e) => e.name === 'metadata.config');
    return entry ? parseMetadata(entry.data) : null;
  } catch {
    return null;
  }
}

function maintainersOf(meta: Metadata | null): string[] {
  const term = meta?.other.maintainers;
  if (term?.type !== 'list') return [];
  return term.items.map(termText).filter((t): t is string => t !== null);
}

export class SearchIndex {
  readonly #entries = new Map<string, Entry>();
  readonly #dirty = new Set<string>();
  #catchingUp: Promise<void> | null = null;
  #sorted = new Map<SearchSort, Entry[]>();
  #generation = 0;

  private constructor(readonly service: RepoService) {
    for (const name of service.packageNames()) this.#dirty.add(name);
    service.index.onChange((name) => {
      this.#dirty.add(name);
      this.#generation++;
    });
  }

  /** The one index of a service (created on first use; shared by the API and the web pages). */
  static of(service: RepoService): SearchIndex {
    let index = byService.get(service);
    if (!index) {
      index = new SearchIndex(service);
      byService.set(service, index);
    }
    return index;
  }

  /** Changes whenever a package changes: part of the ETag of anything derived from the index. */
  get generation(): number {
    return this.#generation;
  }

  /** Bring every changed package up to date (the first call reads every package's metadata). */
  catchUp(): Promise<void> {
    if (this.#dirty.size === 0) return this.#catchingUp ?? Promise.resolve();
    this.#catchingUp ??= this.#run().finally(() => (this.#catchingUp = null));
    return this.#catchingUp;
  }

  async #run(): Promise<void> {
    while (this.#dirty.size > 0) {
      const names = [...this.#dirty];
      this.#dirty.clear();
      let next = 0;
      // Bounded: the store may be a bucket, and a first build of 20,000 packages must not open 20,000 requests.
      const worker = async (): Promise<void> => {
        while (next < names.length) await this.#update(names[next++]!);
      };
      await Promise.all(Array.from({ length: Math.min(8, names.length) }, worker));
      this.#sorted = new Map();
    }
  }

  async #update(name: string): Promise<void> {
    const records = this.service.index.releasesOf(name);
    // The description shown is the latest stable release's (else the latest's), as on the package page.
    const latestRecord = [...records].reverse().find((r) => !r.facts.version.includes('-')) ?? records[records.length - 1];
    if (!latestRecord) {
      this.#entries.delete(name);
      return;
    }
    const releases = this.service.releases(name);
    const newest = [...releases].reverse();
    const stamp = `${latestRecord.file}:${latestRecord.size}:${latestRecord.mtimeMs}`;
    const previous = this.#entries.get(name);
    let meta: Pick<PackageSummary, 'description' | 'licenses' | 'links' | 'maintainers'>;
    if (previous && previous.stamp === stamp) meta = previous;
    else {
      const obj = await this.service.store.get(tarballKey(name, latestRecord.facts.version));
      const m = obj ? metadataOf(obj.body) : null;
      meta = { description: m?.description ?? null, licenses: m?.licenses ?? [], links: m?.links ?? [], maintainers: maintainersOf(m) };
    }
    const times = releases.map((r) => r.publishedAt).filter((t): t is number => t !== undefined);
    const entry: Entry = {
      name,
      description: meta.description,
      licenses: meta.licenses,
      links: meta.links,
      maintainers: meta.maintainers,
      versions: newest.map((r) => r.version),
      latestVersion: newest[0]!.version,
      latestStableVersion: newest.find((r) => !r.version.includes('-'))?.version ?? null,
      retired: newest[0]!.retired ?? null,
      insertedAt: times.length ? Math.min(...times) : null,
      updatedAt: times.length ? Math.max(...times) : null,
      lowerName: name.toLowerCase(),
      lowerText: (meta.description ?? '').toLowerCase(),
      stamp,
    };
    this.#entries.set(name, entry);
  }

  #ordered(sort: SearchSort): Entry[] {
    const key = sort === 'relevance' ? 'name' : sort;
    let list = this.#sorted.get(key);
    if (!list) {
      list = [...this.#entries.values()];
      const byName = (a: Entry, b: Entry): number => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
      if (key === 'name') list.sort(byName);
      else {
        const field = key === 'recent_updated' ? 'updatedAt' : 'insertedAt';
        list.sort((a, b) => (b[field] ?? 0) - (a[field] ?? 0) || byName(a, b));
      }
      this.#sorted.set(key, list);
    }
    return list;
  }

  /** Packages matching `query.term`, one page of them, in the order asked for. */
  async search(query: SearchQuery = {}): Promise<SearchResult> {
    await this.catchUp();
    const sort = query.sort ?? 'name';
    const perPage = query.perPage ?? 100;
    const page = Math.max(1, Math.floor(query.page ?? 1));
    const words = (query.term ?? '')
      .toLowerCase()
      .split(/\s+/)
      .filter((w) => w !== '');
    const tests = words.map((w): ((e: Entry) => boolean) => {
      const field = /^(name|description):/.exec(w)?.[1];
      // hex.pm's search syntax allows `*` as a wildcard; a substring match covers its common use (`name:phx*`).
      const text = (field ? w.slice(field.length + 1) : w).replaceAll('*', '');
      if (text === '') return () => true;
      if (field === 'name') return (e) => e.lowerName.includes(text);
      if (field === 'description') return (e) => e.lowerText.includes(text);
      return (e) => e.lowerName.includes(text) || e.lowerText.includes(text);
    });
    let matched = this.#ordered(sort).filter((e) => tests.every((t) => t(e)) && (!query.visible || query.visible(e.name)));
    if (sort === 'relevance' && words.length > 0) {
      // The exact name first, then names starting with the term, then names containing it, then descriptions; each by name.
      const plain = words.filter((w) => !w.includes(':')).join('_');
      const rank = (e: Entry): number => (e.lowerName === plain ? 0 : plain && e.lowerName.startsWith(plain) ? 1 : words.some((w) => e.lowerName.includes(w)) ? 2 : 3);
      matched = matched
        .map((e) => [rank(e), e] as const)
        .sort((a, b) => a[0] - b[0])
        .map(([, e]) => e);
    }
    const slice = matched.slice((page - 1) * perPage, page * perPage);
    return { packages: slice.map(summaryOf), total: matched.length };
  }

  /** One package's summary, or null when the repository has none by that name. */
  async get(name: string): Promise<PackageSummary | null> {
    await this.catchUp();
    const e = this.#entries.get(name);
    return e ? summaryOf(e) : null;
  }

  /** Package count. */
  get size(): number {
    return this.service.index.size.packages;
  }

  /** The `count` packages updated last, newest first. */
  async recent(count: number): Promise<PackageSummary[]> {
    await this.catchUp();
    return this.#ordered('recent_updated').slice(0, count).map(summaryOf);
  }
}

function summaryOf(e: Entry): PackageSummary {
  return {
    name: e.name,
    description: e.description,
    licenses: e.licenses,
    links: e.links,
    maintainers: e.maintainers,
    versions: e.versions,
    latestVersion: e.latestVersion,
    latestStableVersion: e.latestStableVersion,
    retired: e.retired,
    insertedAt: e.insertedAt,
    updatedAt: e.updatedAt,
  };
}
