import { SESSION_LABEL } from '@hexrepo/http';
import { type Command, usage } from '../command.js';
import { formatGrants, grantsFromFlags, openCommandCredentials, STATE_HELP, STATE_OPTIONS } from '../credentials.js';
import { readNewPassword } from '../password-input.js';

export const user: Command = {
  name: 'user',
  summary: 'Add, list, remove users of the repository host, and change their passwords.',
  usage: 'hexrepo user add|list|remove|passwd [NAME] [DIR|PUBLIC] [options]',
  help: `
  hexrepo user add    NAME [DIR|PUBLIC] [--repo NAME…] --scope SCOPE… [--package PATTERN…]
  hexrepo user list        [DIR|PUBLIC]
  hexrepo user remove NAME [DIR|PUBLIC]
  hexrepo user passwd NAME [DIR|PUBLIC]

Users authenticate with Basic auth: user:password in the repository URL (Mix, rebar3) or in
~/.netrc. The password is read from the terminal (typed twice, not echoed) or from the first line
of stdin when it is piped (printf '%s\\n' "$PASSWORD" | hexrepo user add …), never from a flag;
at least 8 characters. Only a scrypt hash (random salt, cost parameters kept with it) is stored,
in the host's credentials beside the tokens (see "hexrepo token --help"). Every server on that
state store picks up a change within two seconds. Removing a user also revokes the API keys they
created (POST /api/keys, e.g. by "rebar3 hex user auth").

Grants work as for tokens: for each --repo (default: the project's repository; "*" for every
repository of the host) the --scope scopes, limited to the --package patterns if given. The user of
AUTH_USERNAME/AUTH_PASSWORD (the Hex self-hosting guide's) is not stored: it has every scope on
every repository of the server it is given to.

Options:
  --repo NAME         a repository the user may use; repeatable; "*" for every repository
  --scope SCOPE       read, write or admin; repeatable
  --package PATTERN   limit the user to package names matching PATTERN ("*" wildcard); repeatable
${STATE_HELP}
  --json              print JSON`,
  options: {
    repo: { type: 'string', multiple: true },
    scope: { type: 'string', multiple: true },
    package: { type: 'string', multiple: true },
    ...STATE_OPTIONS,
    json: { type: 'boolean' },
  },
  async run({ values, positionals }, io) {
    const [action, ...rest] = positionals;
    if (action !== 'add' && action !== 'list' && action !== 'remove' && action !== 'passwd') throw usage('user', `expected add, list, remove or passwd, got ${action === undefined ? 'nothing' : JSON.stringify(action)}`);
    const username = action === 'list' ? undefined : rest.shift();
    if (action !== 'list' && !username) throw usage('user', `${action} needs the user NAME`);
    if (rest.length > 1) throw usage('user', `expected one DIR or PUBLIC folder, got ${rest.length}`);
    const { tokens, repository, repositories } = await openCommandCredentials('user', io, rest[0], values);
    const say = (text: string, json: unknown): void => (values.json ? io.out(`${JSON.stringify(json, null, 2)}\n`) : io.err(text));

    if (action === 'add') {
      const grants = grantsFromFlags('user', values, repository, repositories);
      const added = await tokens.addUser({ username: username!, password: await readNewPassword(), grants });
      say(`Added user ${added.username} (${formatGrants(added.grants)}) in ${tokens.where}.\n`, added);
      return 0;
    }
    if (action === 'list') {
      const list = tokens.users();
      if (values.json) io.out(`${JSON.stringify(list, null, 2)}\n`);
      else if (list.length === 0) io.err(`no users in ${tokens.where}\n`);
      else for (const u of list) io.out(`${u.username.padEnd(16)}  ${formatGrants(u.grants).padEnd(24)}  ${u.createdAt.slice(0, 10)}\n`);
      return 0;
    }
    if (action === 'passwd') {
      if (!tokens.hasUser(username!)) throw usage('user', `no user ${username} in ${tokens.where} (see "hexrepo user list")`);
      const changed = await tokens.setPassword(username!, await readNewPassword());
      // A new password ends the user's web UI logins too (whoever knew the old one may hold one); their API keys stay.
      const ended = changed ? await tokens.revokeWhere((t) => t.user === username && t.label === SESSION_LABEL) : [];
      say(changed ? `changed the password of ${username}${ended.length ? ` and ended ${ended.length} web ${ended.length === 1 ? 'session' : 'sessions'}` : ''}\n` : `no user ${username} in ${tokens.where}\n`, {
        username,
        changed,
        endedSessions: ended.length,
      });
      return changed ? 0 : 1;
    }
    const removed = await tokens.removeUser(username!);
    say(removed ? `removed ${username}\n` : `no user ${username} in ${tokens.where}\n`, { username, removed });
    return removed ? 0 : 1;
  },
};
