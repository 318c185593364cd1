/**
 * The write commands (publish, retire, unretire, revert) on a local repository folder (through
 * the repository service, with the signing key) or on a running `hexrepo serve` (through its
 * publish API, with a token).
 */
import { ERROR_CODES, HexrepoError, RETIREMENT_REASONS, type ErrorCode } from '@hexrepo/core';
import { openRepository } from '@hexrepo/repo';
import { FsStore } from '@hexrepo/storage';
import type { Io } from './command.js';
import { defaultCachePath, loadSigningKey, resolveRepo } from './project.js';

export const REMOTE_HELP = `  --url URL            act on a running "hexrepo serve" at URL (env HEXREPO_URL, or HEX_API_URL
                       as Mix uses it) instead of a local folder
  --token TOKEN        API token with the write scope, for --url; prefer env HEXREPO_TOKEN (or
                       HEX_API_KEY): a flag is visible to other users of the machine
  --private-key KEY    signing key, for a local folder (default: the one hexrepo.json names)
  --name NAME          repository name, for a local folder (default: hexrepo.json)
  --json               print the result as JSON

Exit status: 0 done, 1 refused or failed, 2 wrong usage, 3 token refused (401) or not allowed
(403), 4 server error (5xx), rate-limited (429) or server unreachable.`;

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
  const opened = await openRepository({ store: new FsStore(repo.publicDir), repository: repo.name, privateKey, cachePath: defaultCachePath(repo.publicDir), limits: repo.limits });
  const service = opened.service!;
  return {
    kind: 'local',
    describe: repo.publicDir,
    publish: async (bytes, replace) => service.publish(bytes, { replace }),
    retire: (name, version, reason, message) => service.retire(name, version, { reason: reason as keyof typeof RETIREMENT_REASONS, ...(message ? { message } : {}) }),
    unretire: (name, version) => service.unretire(name, version),
    revert: (name, version) => service.revert(name, version),
    close: () => opened.close(),
  };
}

/**
 * The error code for a refused API request, so scripts (and the exit status) can tell wrong
 * credentials and server trouble from a refused package. The server's own code travels in
 * `errors.tar` as "[CODE] …" for an invalid tarball.
 */
function failureOf(status: number, text: string, errors: Record<string, unknown> | undefined): { code: ErrorCode; hint?: string } {
  if (status === 401) return { code: 'AUTH_INVALID', hint: 'the token is unknown or revoked: check HEXREPO_TOKEN (or --token) against "hexrepo token list" on the server' };
  if (status === 403) return { code: 'PERMISSION_DENIED', hint: 'this needs a token with the write scope whose package patterns match: "hexrepo token create --scope write"' };
  if (status === 429) return { code: 'RATE_LIMITED', hint: 'too many failed logins from this address: wait (see retryAfterSeconds in --json) and retry with a valid token' };
  if (status >= 500) return { code: 'SERVER_ERROR' };
  if (status === 404) return { code: 'NOT_FOUND' };
  if (status === 409) return { code: 'STORAGE_CONFLICT' };
  if (status === 413) return { code: 'TAR_TOO_BIG' };
  if (status === 422) {
    if (/replace/.test(text)) return { code: 'ALREADY_EXISTS' };
    const tagged = typeof errors?.tar === 'string' ? /^\[([A-Z_]+)\]/.exec(errors.tar)?.[1] : undefined;
    if (tagged && tagged in ERROR_CODES) return { code: tagged as ErrorCode };
  }
  return { code: 'REQUEST_REJECTED' };
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
      // fetch says only "fetch failed"; the cause names what happened (ECONNREFUSED, ENOTFOUND, …).
      const cause = (err as Error).cause instanceof Error ? `: ${((err as Error).cause as Error).message}` : '';
      throw new HexrepoError('NETWORK_ERROR', `cannot reach ${api}: ${(err as Error).message}${cause}`, { hint: 'check --url and that "hexrepo serve" is running there' });
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
      const { code, hint } = failureOf(res.status, text, json?.errors);
      const retryAfter = /^\d+$/.exec(res.headers.get('retry-after') ?? '')?.[0];
      throw new HexrepoError(code, `${method} ${api}${path}: ${res.status} ${json?.message ?? res.statusText}${details}`, {
        status: res.status,
        ...(retryAfter ? { retryAfterSeconds: Number(retryAfter) } : {}),
        ...(hint ? { hint } : {}),
      });
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
