/**
 * What the commands that act either on a local repository folder or on a running `hexrepo serve`
 * (publish, retire, owner, advisory, policy) share: their options, the help for them, and how the
 * server and its token are found.
 */
import { HexrepoError } from '@hexrepo/core';
import type { Io } from './command.js';

export const REMOTE_OPTIONS = {
  url: { type: 'string' },
  token: { type: 'string' },
  'private-key': { type: 'string' },
  name: { type: 'string' },
  json: { type: 'boolean' },
} as const;

/** The help lines of REMOTE_OPTIONS, for a command whose token needs `scope`. */
export const remoteHelp = (scope: 'write' | 'admin'): string => `  --url URL            act on a running "hexrepo serve" at URL (env HEXREPO_URL, or HEX_API_URL
                       as Mix uses it) instead of a local folder
  --token TOKEN        API token with the ${scope} scope, for --url; prefer env HEXREPO_TOKEN (or
                       HEX_API_KEY): a flag is visible to other users of the machine
  --private-key KEY    signing key, for a local folder (default: the one hexrepo.json names)
  --name NAME          repository name, for a local folder (default: hexrepo.json)
  --json               print the result as JSON`;

/**
 * The server to act on and its token, or null for a local folder: --url, else HEXREPO_URL or
 * HEX_API_URL unless a folder was named. A server without a token is a usage error.
 */
export function remoteOf(cmd: string, values: Record<string, unknown>, dirArg: string | undefined, io: Io, scope: 'write' | 'admin'): { url: string; token: string } | null {
  const flagUrl = typeof values.url === 'string' ? values.url : undefined;
  const url = flagUrl ?? io.env.HEXREPO_URL ?? io.env.HEX_API_URL;
  if (!url || (!flagUrl && dirArg)) return null;
  const token = (typeof values.token === 'string' ? values.token : undefined) ?? io.env.HEXREPO_TOKEN ?? io.env.HEX_API_KEY;
  if (!token) throw new HexrepoError('USAGE', `hexrepo ${cmd}: ${url} needs a token with the ${scope} scope`, { hint: `set HEXREPO_TOKEN (see "hexrepo token create --scope ${scope}")` });
  return { url, token };
}
