/**
 * A running `hexrepo serve`: the package list and releases from the signed registry files
 * (verified against /public_key), metadata from the JSON API, writes through the publish API
 * with a token (HEXREPO_TOKEN or --token).
 */
import { HexrepoError, RETIREMENT_REASONS } from '@hexrepo/core';
import { fingerprint, loadPublicKey } from '@hexrepo/registry';
import { repositoryOfNames, SignedReader } from './signed-reader.js';
import type { DataSource, ReleaseMetadata } from './source.js';

export interface RemoteOptions {
  url: string;
  /** API token (write scope for writes; also sent on reads, for private repositories). */
  token?: string;
  /** Expected repository name; by default the one signed into `names`. */
  repository?: string;
  fetch?: typeof fetch;
}

export async function openRemoteSource(opts: RemoteOptions): Promise<DataSource> {
  const base = opts.url.replace(/\/+$/, '').replace(/\/api$/, '');
  const doFetch = opts.fetch ?? fetch;
  const headers = (extra: Record<string, string> = {}): Record<string, string> => ({ 'user-agent': 'hexrepo-tui', ...(opts.token ? { authorization: opts.token } : {}), ...extra });
  const request = async (method: string, path: string, init: { body?: Uint8Array | string; headers?: Record<string, string> } = {}): Promise<Response> => {
    try {
      return await doFetch(`${base}${path}`, { method, headers: headers(init.headers), ...(init.body !== undefined ? { body: init.body } : {}) });
    } catch (err) {
      throw new HexrepoError('STORAGE_IO', `cannot reach ${base}${path}: ${(err as Error).message}`, { hint: 'check the URL and that "hexrepo serve" is running' });
    }
  };
  const failure = async (method: string, path: string, res: Response): Promise<HexrepoError> => {
    const text = await res.text().catch(() => '');
    let message = res.statusText;
    try {
      const json = JSON.parse(text) as { message?: string; errors?: Record<string, unknown> };
      message = json.message ?? message;
      if (json.errors) message += ` (${Object.entries(json.errors).map(([k, v]) => `${k}: ${typeof v === 'string' ? v : JSON.stringify(v)}`).join('; ')})`;
    } catch {
      // not JSON: keep the status text
    }
    const code = res.status === 404 ? 'NOT_FOUND' : res.status === 422 && /already|replace/.test(text) ? 'ALREADY_EXISTS' : res.status === 401 || res.status === 403 ? 'USAGE' : 'STORAGE_IO';
    return new HexrepoError(code, `${method} ${path}: ${res.status} ${message}`, { status: res.status });
  };
  const file = async (path: string): Promise<Uint8Array | null> => {
    const res = await request('GET', `/${path}`);
    if (res.status === 404) return null;
    if (!res.ok) throw await failure('GET', `/${path}`, res);
    return new Uint8Array(await res.arrayBuffer());
  };
  const api = async (method: string, path: string, body?: Uint8Array | object): Promise<unknown> => {
    const init = body instanceof Uint8Array ? { body, headers: { 'content-type': 'application/octet-stream', accept: 'application/json' } } : body ? { body: JSON.stringify(body), headers: { 'content-type': 'application/json', accept: 'application/json' } } : { headers: { accept: 'application/json' } };
    const res = await request(method, `/api${path}`, init);
    if (!res.ok) throw await failure(method, `/api${path}`, res);
    const text = await res.text();
    return text ? (JSON.parse(text) as unknown) : null;
  };

  const keyBytes = await file('public_key');
  if (!keyBytes) throw new HexrepoError('REGISTRY_MISSING', `${base}/public_key is missing`);
  const publicKey = loadPublicKey(keyBytes);
  const names = await file('names');
  if (!names) throw new HexrepoError('REGISTRY_MISSING', `${base}/names is missing`);
  const repository = repositoryOfNames(names, publicKey, opts.repository);
  const reader = new SignedReader(file, publicKey, repository);
  const needToken = (): void => {
    if (!opts.token) throw new HexrepoError('USAGE', 'read-only: writes to a server need a token with the write scope', { hint: 'set HEXREPO_TOKEN (see "hexrepo token create --scope write") or pass --token' });
  };
  return {
    info: { kind: 'remote', repository, fingerprint: fingerprint(publicKey), location: base, ...(opts.token ? {} : { readOnly: 'no token (set HEXREPO_TOKEN)' }) },
    listPackages: () => reader.listPackages(),
    releases: (name) => reader.releases(name),
    metadata: async (name, version): Promise<ReleaseMetadata> => {
      type Pkg = { latest_version?: string; meta?: { description?: string | null; licenses?: string[]; links?: Record<string, string> } };
      type Rel = { meta?: { build_tools?: string[] } };
      const [pkg, rel] = (await Promise.all([api('GET', `/packages/${name}`), api('GET', `/packages/${name}/releases/${version}`)])) as [Pkg, Rel];
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
      const r = (await api('POST', '/publish?replace=false', bytes)) as { version: string; checksum: string; url: string };
      const name = /\/packages\/([^/]+)\/releases\//.exec(r.url)?.[1] ?? '?';
      return { created: true, name, version: r.version, checksum: r.checksum };
    },
    retire: async (name, version, retirement) => {
      needToken();
      if (!(retirement.reason in RETIREMENT_REASONS)) throw new HexrepoError('USAGE', `unknown reason ${retirement.reason}`);
      await api('POST', `/packages/${name}/releases/${version}/retire`, { reason: retirement.reason, ...(retirement.message ? { message: retirement.message } : {}) });
    },
    unretire: async (name, version) => {
      needToken();
      await api('DELETE', `/packages/${name}/releases/${version}/retire`);
    },
    close: async () => undefined,
  };
}
