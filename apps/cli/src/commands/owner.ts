import { isOwnerLevel } from '@hexrepo/repo';
import { type Command, str, usage } from '../command.js';
import { openCommandCredentials } from '../credentials.js';
import { REMOTE_OPTIONS } from '../remote-target.js';
import { openTarget, REMOTE_HELP } from '../writes.js';

export const owner: Command = {
  name: 'owner',
  summary: 'List, add and remove the owners of a package (host users).',
  usage: 'hexrepo owner list|add|remove NAME [USER] [DIR|PUBLIC] [--level full|maintainer] [--transfer] [--url URL] [--json]',
  help: `
  hexrepo owner list   NAME      [DIR|PUBLIC]
  hexrepo owner add    NAME USER [DIR|PUBLIC] [--level full|maintainer] [--transfer]
  hexrepo owner remove NAME USER [DIR|PUBLIC]

Owners are users of the host ("hexrepo user add"), kept per package in the repository's store
(_hexrepo/owners/NAME.json), as "mix hex.owner" and the API's /packages/NAME/owners show them. The
first user to publish a package becomes its full owner. Over the API (--url), a full owner of the
package or a token with the admin scope on the repository may change owners; on a local folder,
whoever can write the folder may. Owners do not decide who may publish: grants do.

Options:
  --level LEVEL        full (default: manages owners) or maintainer
  --transfer           make USER the only owner (the others are removed)
${REMOTE_HELP}`,
  options: { level: { type: 'string' }, transfer: { type: 'boolean' }, ...REMOTE_OPTIONS },
  async run({ values, positionals }, io) {
    const [action, name, ...rest] = positionals;
    if (action !== 'list' && action !== 'add' && action !== 'remove') throw usage('owner', `expected list, add or remove, got ${action === undefined ? 'nothing' : JSON.stringify(action)}`);
    if (!name) throw usage('owner', `${action} needs the package NAME`);
    const username = action === 'list' ? undefined : rest.shift();
    if (action !== 'list' && !username) throw usage('owner', `${action} needs the USER`);
    if (rest.length > 1) throw usage('owner', 'too many arguments');
    const level = str(values, 'level') ?? 'full';
    if (!isOwnerLevel(level)) throw usage('owner', `--level must be full or maintainer, got ${JSON.stringify(level)}`);
    const target = await openTarget('owner', values, rest[0], io);
    try {
      if (action === 'add' && target.kind === 'local') {
        // The server checks this for the API; a local folder checks against the host's credentials.
        const { tokens } = await openCommandCredentials('owner', io, rest[0], { ...values, name: undefined });
        if (!tokens.hasUser(username!)) throw usage('owner', `no user ${username} in ${tokens.where}: add one with "hexrepo user add ${username}"`);
      }
      if (action === 'add') await target.addOwner(name, username!, level, values.transfer === true);
      if (action === 'remove') await target.removeOwner(name, username!);
      const owners = await target.owners(name);
      if (values.json)
        io.out(
          `${JSON.stringify(
            owners.map((o) => ({ username: o.username, level: o.level })),
            null,
            2,
          )}\n`,
        );
      else {
        if (action !== 'list') io.err(`${action === 'add' ? `added ${username} (${level}) to` : `removed ${username} from`} the owners of ${name} in ${target.describe}\n`);
        if (owners.length === 0) io.err(`${name} has no owners\n`);
        for (const o of owners) io.out(`${o.username.padEnd(24)}  ${o.level}\n`);
      }
    } finally {
      await target.close();
    }
    return 0;
  },
};
