/**
 * One HTTP request to a hexrepo (or Hex) server, and the one mapping from a refused response to a
 * stable error code, shared by the publish-API client and the repository-file reader.
 */
import { ERROR_CODES, HexrepoError, type ErrorCode } from '@hexrepo/core';

/** How to reach a server. */
export interface ServerOptions {
  /** The server's URL (the repository root; a trailing `/api` is accepted and dropped). */
  url: string;
  /** API token (sent on every request: private repositories need it for reads too). */
  token?: string;
  /** @default "hexrepo" */
  userAgent?: string;
  /** @default globalThis.fetch */
  fetch?: typeof fetch;
}

/** The repository root of a server URL: no trailing slash, no `/api`. */
export function repositoryRoot(url: string): string {
  return url.replace(/\/+$/, '').replace(/\/api$/, '');
}

/**
 * The error code for a refused request, so scripts (and the CLI's exit status) can tell wrong
 * credentials and server trouble from a refused package. The server's own code travels in
 * `errors.tar` as "[CODE] …" for an invalid tarball.
 */
export function failureOf(status: number, text: string, errors: Record<string, unknown> | undefined): { code: ErrorCode; hint?: string } {
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

type ApiBody = { message?: string; errors?: Record<string, unknown> } | null;

/** Send a request; a network failure becomes NETWORK_ERROR naming `where` (the base the user gave). */
export async function send(opts: ServerOptions, where: string, url: string, init: { method: string; headers?: Record<string, string>; body?: Uint8Array | string }): Promise<Response> {
  const doFetch = opts.fetch ?? fetch;
  try {
    return await doFetch(url, {
      method: init.method,
      headers: { 'user-agent': opts.userAgent ?? 'hexrepo', ...(opts.token ? { authorization: opts.token } : {}), ...init.headers },
      ...(init.body !== undefined ? { body: init.body } : {}),
    });
  } catch (err) {
    // fetch says only "fetch failed"; the cause names what happened (ECONNREFUSED, ENOTFOUND, …).
    const cause = (err as Error).cause instanceof Error ? `: ${((err as Error).cause as Error).message}` : '';
    throw new HexrepoError('NETWORK_ERROR', `cannot reach ${where}: ${(err as Error).message}${cause}`, { hint: 'check the URL (--url) and that "hexrepo serve" is running there' });
  }
}

/** The error for a response that is not ok: the server's message and field errors, with a stable code. */
export async function refused(method: string, url: string, res: Response): Promise<HexrepoError> {
  const text = await res.text().catch(() => '');
  let json: ApiBody = null;
  try {
    json = text ? (JSON.parse(text) as ApiBody) : null;
  } catch {
    json = null;
  }
  const details = json?.errors
    ? ` (${Object.entries(json.errors)
        .map(([k, v]) => `${k}: ${typeof v === 'string' ? v : JSON.stringify(v)}`)
        .join('; ')})`
    : '';
  const { code, hint } = failureOf(res.status, text, json?.errors ?? undefined);
  const retryAfter = /^\d+$/.exec(res.headers.get('retry-after') ?? '')?.[0];
  return new HexrepoError(code, `${method} ${url}: ${res.status} ${json?.message ?? res.statusText}${details}`, {
    status: res.status,
    ...(retryAfter ? { retryAfterSeconds: Number(retryAfter) } : {}),
    ...(hint ? { hint } : {}),
  });
}
