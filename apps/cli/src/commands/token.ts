import { resolve } from 'node:path';
import { SCOPES, TokenStore, type Scope } from '@hexrepo/repo';
import { type Command, str, usage } from '../command.js';
import { defaultTokensPath, resolvePublicDir } from '../project.js';

export const token: Command = {
  name: 'token',
  summary: 'Create, list and revoke API tokens for the repository server.',
  usage: 'hexrepo token create|list|revoke [DIR|PUBLIC] [options]',
  help: `
  hexrepo token create [DIR|PUBLIC] --label TEXT --scope SCOPE… [--package PATTERN…]
  hexrepo token list   [DIR|PUBLIC]
  hexrepo token revoke [DIR|PUBLIC] ID

Tokens authenticate clients of "hexrepo serve": Mix ("mix hex.repo add NAME URL --auth-key TOKEN",
or HEX_API_KEY for publishing), rebar3 (repo_key in the repo map) and curl ("Authorization: TOKEN",
"Bearer TOKEN", or Basic with the token as password). The token is printed once: only its SHA-256
hash is stored, in DIR/.hexrepo/tokens.json (beside public/, never inside it, mode 0600). A
running server picks up changes within two seconds.

Scopes: read (fetch packages), write (publish, retire, revert), admin (everything). read and
write are separate: a CI job that fetches and publishes needs --scope read --scope write.

Options:
  --label TEXT        what the token is for (shown by list)
  --scope SCOPE       read, write or admin; repeatable
  --package PATTERN   limit the token to package names matching PATTERN ("*" wildcard); repeatable
  --tokens FILE       the token file (default: .hexrepo/tokens.json beside the public folder)
  --json              print JSON (create: the token and its record; list: the records)`,
  options: {
    label: { type: 'string' },
    scope: { type: 'string', multiple: true },
    package: { type: 'string', multiple: true },
    tokens: { type: 'string' },
    json: { type: 'boolean' },
  },
  async run({ values, positionals }, io) {
    const [action, ...rest] = positionals;
    if (action !== 'create' && action !== 'list' && action !== 'revoke') throw usage('token', `expected create, list or revoke, got ${action === undefined ? 'nothing' : JSON.stringify(action)}`);
    const id = action === 'revoke' ? rest.pop() : undefined;
    if (action === 'revoke' && !id) throw usage('token', 'revoke needs the ID of the token (see "hexrepo token list")');
    if (rest.length > 1) throw usage('token', `expected one DIR or PUBLIC folder, got ${rest.length}`);
    const tokensFlag = str(values, 'tokens');
    const path = tokensFlag ? resolve(io.cwd, tokensFlag) : defaultTokensPath((await resolvePublicDir('token', io.cwd, rest[0])).publicDir);
    const store = await TokenStore.open(path);

    if (action === 'create') {
      const label = str(values, 'label');
      if (!label) throw usage('token', 'create needs --label TEXT (what the token is for)');
      const scopes = (values.scope as string[] | undefined) ?? [];
      if (scopes.length === 0) throw usage('token', `create needs --scope (${SCOPES.join(', ')})`);
      for (const s of scopes) if (!(SCOPES as readonly string[]).includes(s)) throw usage('token', `unknown scope "${s}"; use ${SCOPES.join(', ')}`);
      const created = await store.create({ label, scopes: scopes as Scope[], packages: (values.package as string[] | undefined) ?? [] });
      if (values.json) io.out(`${JSON.stringify({ token: created.token, ...created.info, file: path }, null, 2)}\n`);
      else {
        io.out(`${created.token}\n`);
        io.err(`Created token ${created.info.id} (${created.info.scopes.join(', ')}${created.info.packages.length ? `; packages ${created.info.packages.join(', ')}` : ''}) in ${path}.\nIt is shown only this once: store it now.\n`);
      }
      return 0;
    }
    if (action === 'list') {
      const list = store.list();
      if (values.json) io.out(`${JSON.stringify(list, null, 2)}\n`);
      else if (list.length === 0) io.err(`no tokens in ${path}\n`);
      else for (const t of list) io.out(`${t.id}  ${t.scopes.join(',').padEnd(11)}  ${(t.packages.join(',') || '*').padEnd(12)}  ${t.createdAt.slice(0, 10)}  ${t.label}\n`);
      return 0;
    }
    const revoked = await store.revoke(id!);
    if (values.json) io.out(`${JSON.stringify({ id, revoked }, null, 2)}\n`);
    else io.err(revoked ? `revoked ${id}\n` : `no token ${id} in ${path}\n`);
    return revoked ? 0 : 1;
  },
};
