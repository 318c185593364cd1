/**
 * The write commands (publish, retire, unretire, revert) on a local repository folder (through
 * the repository service, with the signing key) or on a running `hexrepo serve` (through its
 * publish API, with a token).
 */
import { HexrepoError, RETIREMENT_REASONS } from '@hexrepo/core';
import { fingerprint } from '@hexrepo/registry';
import { loadCache, RepoService, saveCache } from '@hexrepo/repo';
import { FsStore } from '@hexrepo/storage';
import type { Io } from './command.js';
import { defaultCachePath, loadSigningKey, resolveRepo } from './project.js';

export const REMOTE_HELP = `  --url URL            act on a running "hexrepo serve" at URL (env HEXREPO_URL, or HEX_API_URL
                       as Mix uses it) instead of a local folder
  --token TOKEN        API token with the write scope, for --url; prefer env HEXREPO_TOKEN (or
                       HEX_API_KEY): a flag is visible to other users of the machine
  --private-key KEY    signing key, for a local folder (default: the one hexrepo.json names)
  --name NAME          repository name, for a local folder (default: hexrepo.json)
  --json               print the result as JSON`;

export const REMOTE_OPTIONS = {
  url: { type: 'string' },
  token: { type: 'string' },
  'private-key': { type: 'string' },
  name: { type: 'string' },
  json: { type: 'boolean' },
} as const;

export interface Target {
  kind: 'local' | 'remote';
  describe: string;
  publish(bytes: Uint8Array, replace: boolean): Promise<{ created: boolean; name: string; version: string; checksum: string }>;
  retire(name: string, version: string, reason: string, message: string | undefined): Promise<void>;
  unretire(name: string, version: string): Promise<void>;
  revert(name: string, version: string): Promise<void>;
  close(): Promise<void>;
}

export async function openTarget(cmd: string, values: Record<string, unknown>, dirArg: string | undefined, io: Io): Promise<Target> {
  const flagUrl = typeof values.url === 'string' ? values.url : undefined;
  const url = flagUrl ?? io.env.HEXREPO_URL ?? io.env.HEX_API_URL;
  if (url && (flagUrl || !dirArg)) {
    const token = (typeof values.token === 'string' ? values.token : undefined) ?? io.env.HEXREPO_TOKEN ?? io.env.HEX_API_KEY;
    if (!token) throw new HexrepoError('USAGE', `hexrepo ${cmd}: ${url} needs a token with the write scope`, { hint: 'set HEXREPO_TOKEN (see "hexrepo token create --scope write")' });
    return remoteTarget(url, token);
  }
  const repo = await resolveRepo(cmd, io.cwd, dirArg, values, { key: true });
  const privateKey = await loadSigningKey(repo.keyPath!, repo.publicDir);
  const cachePath = defaultCachePath(repo.publicDir);
  const { cache } = await loadCache(cachePath, repo.name, fingerprint(privateKey));
  const { service } = await RepoService.open({ store: new FsStore(repo.publicDir), repository: repo.name, privateKey, cache, limits: repo.limits });
  return {
    kind: 'local',
    describe: repo.publicDir,
    publish: async (bytes, replace) => service.publish(bytes, { replace }),
    retire: (name, version, reason, message) => service.retire(name, version, { reason: reason as keyof typeof RETIREMENT_REASONS, ...(message ? { message } : {}) }),
    unretire: (name, version) => service.unretire(name, version),
    revert: (name, version) => service.revert(name, version),
    close: async () => {
      await service.flushed();
      await saveCache(cachePath, service.cache);
    },
  };
}

function remoteTarget(url: string, token: string): Target {
  const api = url.replace(/\/+$/, '').replace(/\/api$/, '') + '/api';
  const call = async (method: string, path: string, body?: Uint8Array | object, contentType?: string): Promise<{ status: number; json: unknown }> => {
    let res: Response;
    try {
      res = await fetch(`${api}${path}`, {
        method,
        headers: { authorization: token, accept: 'application/json', 'user-agent': 'hexrepo-cli', ...(contentType ? { 'content-type': contentType } : {}) },
        ...(body instanceof Uint8Array ? { body } : body ? { body: JSON.stringify(body) } : {}),
      });
    } catch (err) {
      throw new HexrepoError('STORAGE_IO', `cannot reach ${api}: ${(err as Error).message}`, { hint: 'check --url and that "hexrepo serve" is running' });
    }
    const text = await res.text();
    type ApiBody = { message?: string; errors?: Record<string, unknown> } | null;
    let json: ApiBody = null;
    try {
      json = text ? (JSON.parse(text) as ApiBody) : null;
    } catch {
      json = null;
    }
    if (!res.ok) {
      const details = json?.errors ? ` (${Object.entries(json.errors).map(([k, v]) => `${k}: ${typeof v === 'string' ? v : JSON.stringify(v)}`).join('; ')})` : '';
      const code = res.status === 404 ? 'NOT_FOUND' : res.status === 422 && /replace/.test(text) ? 'ALREADY_EXISTS' : res.status === 401 || res.status === 403 ? 'USAGE' : 'STORAGE_IO';
      throw new HexrepoError(code, `${method} ${api}${path}: ${res.status} ${json?.message ?? res.statusText}${details}`, { status: res.status });
    }
    return { status: res.status, json };
  };
  return {
    kind: 'remote',
    describe: api,
    publish: async (bytes, replace) => {
      const { status, json } = await call('POST', `/publish?replace=${replace}`, bytes, 'application/octet-stream');
      const r = json as { version: string; checksum: string; url: string };
      const name = /\/packages\/([^/]+)\/releases\//.exec(r.url)?.[1] ?? '?';
      return { created: status === 201, name, version: r.version, checksum: r.checksum };
    },
    retire: async (name, version, reason, message) => void (await call('POST', `/packages/${name}/releases/${version}/retire`, { reason, ...(message ? { message } : {}) }, 'application/json')),
    unretire: async (name, version) => void (await call('DELETE', `/packages/${name}/releases/${version}/retire`)),
    revert: async (name, version) => void (await call('DELETE', `/packages/${name}/releases/${version}`)),
    close: async () => undefined,
  };
}
