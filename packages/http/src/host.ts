/**
 * The repositories of one host and where each is mounted, as hex.pm lays them out: repository NAME
 * at `/repos/NAME/…` with its API at `/api/repos/NAME/…`, and one repository (the root) also at
 * `/` and `/api/…`.
 */
import { HexrepoError } from '@hexrepo/core';
import type { MirrorCache } from '@hexrepo/mirror';
import type { RepoService } from '@hexrepo/repo';
import type { BlobStore } from '@hexrepo/storage';

/** One repository served by the host. */
export interface HostedRepository {
  /** The repository name clients configure; its mount is `/repos/NAME/`. */
  name: string;
  store: BlobStore;
  /** The write side of its publish API; absent: API writes answer 503. */
  service?: RepoService;
  /** `private`: every read needs credentials. `public`: reads are open, writes need credentials. */
  visibility: 'public' | 'private';
  /** Also mounted at `/` and `/api`. At most one repository is the root. */
  root?: boolean;
  /** A mirror: served from this pull-through cache of its upstream, read-only (mirror-route.ts). */
  mirror?: MirrorCache;
}

/** What a request path names: the API or the repository endpoint of one repository, the rest of the path, and the mount's roots. */
export type Mount =
  | { kind: 'repository' | 'api'; repo: HostedRepository; rest: string; apiRoot: string; repoRoot: string }
  /** A `/repos/NAME` or `/api/repos/NAME` prefix naming no repository of the host. */
  | { kind: 'unknown'; api: boolean; name: string }
  | null;

/** The repositories by name, checked: names unique, at most one root. */
export function hostRepositories(repositories: readonly HostedRepository[]): { byName: Map<string, HostedRepository>; root: HostedRepository | undefined } {
  const byName = new Map<string, HostedRepository>();
  for (const r of repositories) {
    if (byName.has(r.name)) throw new HexrepoError('CONFIG_INVALID', `the repository ${r.name} is listed twice; give each repository of the host its own name`, { setting: 'repositories' });
    byName.set(r.name, r);
  }
  const roots = repositories.filter((r) => r.root);
  if (roots.length > 1) throw new HexrepoError('CONFIG_INVALID', `only one repository can be mounted at /, and ${roots.map((r) => r.name).join(' and ')} both ask for it`, { setting: 'root' });
  return { byName, root: roots[0] };
}

const REPOS = '/repos/';
const API = '/api';

/**
 * Resolve a request path (query included) to a mount. Only the prefix is read here: what follows
 * is checked by the resource whitelist (routes.ts) or the API router.
 */
export function resolveMount(url: string, host: { byName: Map<string, HostedRepository>; root: HostedRepository | undefined }): Mount {
  const api = url === API || url.startsWith('/api/') || url.startsWith('/api?');
  const path = api ? url.slice(API.length) : url;
  if (path.startsWith(REPOS)) {
    const match = /[/?]/.exec(path.slice(REPOS.length));
    const end = match ? REPOS.length + match.index : -1;
    const name = path.slice(REPOS.length, end === -1 ? undefined : end);
    const repo = host.byName.get(name);
    if (!repo) return { kind: 'unknown', api, name };
    // `/repos/NAME` itself is no resource.
    if (path[end] !== '/') return null;
    const repoRoot = `/repos/${name}`;
    return { kind: api ? 'api' : 'repository', repo, rest: path.slice(end), apiRoot: `${API}${repoRoot}`, repoRoot };
  }
  if (!host.root) return null;
  return { kind: api ? 'api' : 'repository', repo: host.root, rest: path === '' || path.startsWith('?') ? `/${path}` : path, apiRoot: API, repoRoot: '' };
}
