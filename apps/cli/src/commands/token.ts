import { type Command, str, usage } from '../command.js';
import { formatGrants, grantsFromFlags, openCommandCredentials, parseExpiry, STATE_HELP, STATE_OPTIONS } from '../credentials.js';

export const token: Command = {
  name: 'token',
  summary: 'Create, list and revoke API tokens of the repository host.',
  usage: 'hexrepo token create|list|revoke [DIR|PUBLIC] [options]',
  help: `
  hexrepo token create [DIR|PUBLIC] --label TEXT [--repo NAME…] --scope SCOPE… [--package PATTERN…] [--expires WHEN]
  hexrepo token list   [DIR|PUBLIC]
  hexrepo token revoke [DIR|PUBLIC] ID

Tokens authenticate clients of "hexrepo serve": Mix ("mix hex.repo add NAME URL --auth-key TOKEN",
or HEX_API_KEY for publishing), rebar3 (repo_key in the repo map) and curl ("Authorization: TOKEN",
"Bearer TOKEN", or Basic with the token as password). The token is printed once: only its SHA-256
hash is stored, in the host's credentials (_hexrepo/host/credentials.json in the state store:
DIR/.hexrepo/state/ for a folder project or a host of several repositories, the repository's store
with --store, a host's "state" or the store of its root repository). Every server on that state
store, every worker of each, picks up a new or revoked token within two seconds.

A token holds grants: for each --repo (default: the project's repository; on a host of several
repositories one of them, which is required; "*" for every repository of the host), the --scope scopes, limited to the --package patterns if given. Scopes: read (fetch
packages), write (publish, retire, revert), admin (everything). read and write are separate: a CI
job that fetches and publishes needs --scope read --scope write.

Options:
  --label TEXT        what the token is for (shown by list)
  --repo NAME         a repository the token may use; repeatable; "*" for every repository
  --scope SCOPE       read, write or admin; repeatable
  --package PATTERN   limit the token to package names matching PATTERN ("*" wildcard); repeatable
  --expires WHEN      refuse the token after WHEN: 30d, 12h, 2w or a date (2027-01-31)
${STATE_HELP}
  --json              print JSON (create: the token and its record; list: the records)`,
  options: {
    label: { type: 'string' },
    repo: { type: 'string', multiple: true },
    scope: { type: 'string', multiple: true },
    package: { type: 'string', multiple: true },
    expires: { type: 'string' },
    ...STATE_OPTIONS,
    json: { type: 'boolean' },
  },
  async run({ values, positionals }, io) {
    const [action, ...rest] = positionals;
    if (action !== 'create' && action !== 'list' && action !== 'revoke') throw usage('token', `expected create, list or revoke, got ${action === undefined ? 'nothing' : JSON.stringify(action)}`);
    const id = action === 'revoke' ? rest.pop() : undefined;
    if (action === 'revoke' && !id) throw usage('token', 'revoke needs the ID of the token (see "hexrepo token list")');
    if (rest.length > 1) throw usage('token', `expected one DIR or PUBLIC folder, got ${rest.length}`);

    if (action === 'create') {
      const label = str(values, 'label');
      if (!label) throw usage('token', 'create needs --label TEXT (what the token is for)');
      const expiresFlag = str(values, 'expires');
      const expiresAt = expiresFlag !== undefined ? parseExpiry('token', expiresFlag) : undefined;
      const { tokens, repository, repositories } = await openCommandCredentials('token', io, rest[0], values);
      const grants = grantsFromFlags('token', values, repository, repositories);
      const created = await tokens.create({ label, grants, ...(expiresAt ? { expiresAt } : {}) });
      if (values.json) io.out(`${JSON.stringify({ token: created.token, ...created.info, credentials: tokens.where }, null, 2)}\n`);
      else {
        io.out(`${created.token}\n`);
        io.err(`Created token ${created.info.id} (${formatGrants(created.info.grants)}${created.info.expiresAt ? `; expires ${created.info.expiresAt}` : ''}) in ${tokens.where}.\nIt is shown only this once: store it now.\n`);
      }
      return 0;
    }
    const { tokens } = await openCommandCredentials('token', io, rest[0], values);
    if (action === 'list') {
      const list = tokens.list();
      if (values.json) io.out(`${JSON.stringify(list, null, 2)}\n`);
      else if (list.length === 0) io.err(`no tokens in ${tokens.where}\n`);
      else for (const t of list) io.out(`${t.id}  ${formatGrants(t.grants).padEnd(24)}  ${t.createdAt.slice(0, 10)}  ${t.expiresAt ? `until ${t.expiresAt.slice(0, 10)}` : ''.padEnd(16)}  ${t.label}\n`);
      return 0;
    }
    const revoked = await tokens.revoke(id!);
    if (values.json) io.out(`${JSON.stringify({ id, revoked }, null, 2)}\n`);
    else io.err(revoked ? `revoked ${id}\n` : `no token ${id} in ${tokens.where}\n`);
    return revoked ? 0 : 1;
  },
};
