import { OAuthStore } from '@hexrepo/repo';
import { type Command, usage } from '../command.js';
import { openCommandCredentials, STATE_HELP, STATE_OPTIONS } from '../credentials.js';

export const oauth: Command = {
  name: 'oauth',
  summary: 'List and revoke the OAuth sessions of the repository host (exchanged keys, device logins).',
  usage: 'hexrepo oauth list|revoke [DIR|PUBLIC] [options]',
  help: `
  hexrepo oauth list   [DIR|PUBLIC]
  hexrepo oauth revoke [DIR|PUBLIC] ID

"hexrepo serve" hands out short-lived OAuth tokens (docs/oauth.md): Hex exchanges an API key for one
when its repository has oauth_exchange set, and "mix hex.user auth" logs a host user in through the
device flow (approved at /oauth/device). Each such session has an access token (30 minutes) and a
refresh token (30 days, renewed on use), stored only as SHA-256 hashes in _hexrepo/host/oauth.json
beside the host's credentials. A session holds no more than the API key or user it came from:
revoking the key ("hexrepo token revoke") or removing the user ends it too. "revoke" ends one
session now; every server on the state store refuses its tokens within two seconds.

Options:
${STATE_HELP}
  --json              print JSON`,
  options: { ...STATE_OPTIONS, json: { type: 'boolean' } },
  async run({ values, positionals }, io) {
    const [action, ...rest] = positionals;
    if (action !== 'list' && action !== 'revoke') throw usage('oauth', `expected list or revoke, got ${action === undefined ? 'nothing' : JSON.stringify(action)}`);
    const id = action === 'revoke' ? rest.pop() : undefined;
    if (action === 'revoke' && !id) throw usage('oauth', 'revoke needs the ID of the session (see "hexrepo oauth list")');
    if (rest.length > 1) throw usage('oauth', `expected one DIR or PUBLIC folder, got ${rest.length}`);
    const { tokens } = await openCommandCredentials('oauth', io, rest[0], values);
    const sessions = await OAuthStore.open(tokens.store);
    if (action === 'list') {
      const list = sessions.list();
      if (values.json) io.out(`${JSON.stringify(list, null, 2)}\n`);
      else if (list.length === 0) io.err(`no OAuth sessions in ${sessions.where}\n`);
      else
        for (const s of list) {
          const who = s.subject.kind === 'key' ? `key ${s.subject.id}` : `user ${s.subject.username}`;
          io.out(`${s.id}  ${who.padEnd(20)}  ${(s.scopes.join(' ') || 'api').padEnd(18)}  ${s.repository ?? '*'}  ${s.createdAt.slice(0, 16)}  ${s.name}\n`);
        }
      return 0;
    }
    const revoked = await sessions.revokeId(id!);
    if (values.json) io.out(`${JSON.stringify({ id, revoked }, null, 2)}\n`);
    else io.err(revoked ? `revoked OAuth session ${id}\n` : `no OAuth session ${id} in ${sessions.where}\n`);
    return revoked ? 0 : 1;
  },
};
