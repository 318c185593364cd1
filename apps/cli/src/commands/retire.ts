import { isRetirementReason, RETIREMENT_MESSAGE_MAX, RETIREMENT_MESSAGE_MIN, RETIREMENT_REASONS, retirementMessageLength } from '@hexrepo/core';
import { type Command, str, usage } from '../command.js';
import { REMOTE_OPTIONS } from '../remote-target.js';
import { openTarget, REMOTE_HELP } from '../writes.js';

const REASONS = Object.keys(RETIREMENT_REASONS).join(', ');

/** One command definition per write that takes NAME VERSION. */
function releaseCommand(spec: { name: 'retire' | 'unretire' | 'revert'; summary: string; extra: string; help: string }): Command {
  return {
    name: spec.name,
    summary: spec.summary,
    usage: `hexrepo ${spec.name} NAME ${spec.name === 'revert' ? 'VERSION' : 'VERSION|--all'}${spec.extra} [DIR|PUBLIC] [--url URL] [--json]`,
    help: `${spec.help}\n\nOptions:\n${spec.name === 'retire' ? `  --message TEXT       why, shown by Mix and rebar3 next to the warning (${RETIREMENT_MESSAGE_MIN} to ${RETIREMENT_MESSAGE_MAX} characters)\n` : ''}${spec.name !== 'revert' ? `  --all                every release of the package instead of one VERSION${spec.name === 'retire' ? ' (a release already\n                       retired keeps its own reason)' : ''}\n` : ''}${REMOTE_HELP}`,
    options: { ...(spec.name === 'retire' ? { message: { type: 'string' } } : {}), ...(spec.name !== 'revert' ? { all: { type: 'boolean' } } : {}), ...REMOTE_OPTIONS },
    async run({ values, positionals }, io) {
      const all = values.all === true;
      const want = (spec.name === 'retire' ? 3 : 2) - (all ? 1 : 0);
      if (positionals.length < want) throw usage(spec.name, `expected NAME ${all ? '' : 'VERSION'}${spec.extra}`.replace('  ', ' '));
      const [name, version, reason] = (all ? [positionals[0], '*', positionals[1]] : positionals) as [string, string, string | undefined];
      const dir = positionals[want];
      if (positionals.length > want + 1) throw usage(spec.name, 'too many arguments');
      if (spec.name === 'retire' && !isRetirementReason(reason)) throw usage('retire', `REASON must be one of ${REASONS}, got "${reason}"`);
      const message = str(values, 'message');
      // core's rule, checked before anything is opened or sent; the service and the server check it again.
      const length = message ? retirementMessageLength(message) : 0;
      if (message && (length < RETIREMENT_MESSAGE_MIN || length > RETIREMENT_MESSAGE_MAX)) throw usage('retire', `--message is ${length} characters; it must be ${RETIREMENT_MESSAGE_MIN} to ${RETIREMENT_MESSAGE_MAX}`);
      const target = await openTarget(spec.name, values, dir, io);
      try {
        if (all) await target.retireAll(name, spec.name === 'retire' ? reason! : undefined, message);
        else if (spec.name === 'retire') await target.retire(name, version, reason!, message);
        else if (spec.name === 'unretire') await target.unretire(name, version);
        else await target.revert(name, version);
      } finally {
        await target.close();
      }
      const done = { retire: 'retired', unretire: 'unretired', revert: 'reverted' }[spec.name];
      if (values.json) io.out(`${JSON.stringify({ ok: true, action: done, name, ...(all ? { all: true } : { version }), target: target.describe }, null, 2)}\n`);
      else io.out(`${done} ${name} ${all ? '(every release)' : version} in ${target.describe}\n`);
      return 0;
    },
  };
}

export const retire = releaseCommand({
  name: 'retire',
  summary: 'Mark a release as retired (clients warn but still resolve locked versions).',
  extra: ' REASON',
  help: `
REASON is one of ${REASONS}. The retirement is signed into packages/NAME and versions, and kept
in _hexrepo/releases/NAME.json so "hexrepo build" never drops it.`,
});

export const unretire = releaseCommand({
  name: 'unretire',
  summary: 'Remove the retirement of a release.',
  extra: '',
  help: `
Clears the retirement set by "hexrepo retire" (or "mix hex.retire").`,
});

export const revert = releaseCommand({
  name: 'revert',
  summary: 'Remove a release: from the registry first, then its tarball and docs.',
  extra: '',
  help: `
The release leaves packages/NAME and versions before its tarball is deleted, so no client ever sees
an index pointing at a missing file; a package whose last release goes leaves names as well.`,
});
