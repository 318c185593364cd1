/**
 * A running `hexrepo serve`: the package list and releases from the signed registry files
 * (verified against /public_key), metadata from the JSON API, writes through the publish API
 * with a token (HEXREPO_TOKEN or --token). The HTTP side is @hexrepo/client's.
 */
import { HexrepoError } from '@hexrepo/core';
import { ApiClient, httpFiles, repositoryRoot, SignedReader } from '@hexrepo/client';
import { fingerprint } from '@hexrepo/registry';
import { byName, summarize, type DataSource, type ReleaseMetadata } from './source.js';

export interface RemoteOptions {
  url: string;
  /** API token (write scope for writes; also sent on reads, for private repositories). */
  token?: string;
  /** Expected repository name; by default the one signed into `names`. */
  repository?: string;
  fetch?: typeof fetch;
}

export async function openRemoteSource(opts: RemoteOptions): Promise<DataSource> {
  const base = repositoryRoot(opts.url);
  const server = { url: base, userAgent: 'hexrepo-tui', ...(opts.token ? { token: opts.token } : {}), ...(opts.fetch ? { fetch: opts.fetch } : {}) };
  const api = new ApiClient(server);
  const reader = await SignedReader.open(httpFiles(server), { location: base, ...(opts.repository !== undefined ? { repository: opts.repository } : {}) });
  const needToken = (): void => {
    if (!opts.token) throw new HexrepoError('USAGE', 'read-only: writes to a server need a token with the write scope', { hint: 'set HEXREPO_TOKEN (see "hexrepo token create --scope write") or pass --token' });
  };
  return {
    info: { kind: 'remote', repository: reader.repository, fingerprint: fingerprint(reader.publicKey), location: base, ...(opts.token ? {} : { readOnly: 'no token (set HEXREPO_TOKEN)' }) },
    listPackages: async () => (await reader.packages()).map((p) => summarize(p.name, p.versions, new Set(p.retired), new Set(p.withAdvisories))).sort(byName),
    releases: (name) => reader.releases(name),
    metadata: async (name, version): Promise<ReleaseMetadata> => {
      const [pkg, rel] = await Promise.all([api.package(name), api.release(name, version)]);
      const newest = pkg.latest_version === version;
      return {
        ...(pkg.meta?.description ? { description: pkg.meta.description } : {}),
        licenses: pkg.meta?.licenses ?? [],
        links: Object.entries(pkg.meta?.links ?? {}),
        buildTools: rel.meta?.build_tools ?? [],
        ...(newest ? {} : { note: `description, licenses and links are those of ${pkg.latest_version ?? 'the newest release'} (the API gives them per package)` }),
      };
    },
    publish: async (bytes) => {
      needToken();
      return api.publish(bytes, { replace: false });
    },
    retire: async (name, version, retirement) => {
      needToken();
      await api.retire(name, version, retirement);
    },
    unretire: async (name, version) => {
      needToken();
      await api.unretire(name, version);
    },
    close: async () => undefined,
  };
}
