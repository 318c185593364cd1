import { errorToJson, type ErrorCode, formatError, HexrepoError, isHexrepoError } from '@hexrepo/core';
import { type Command, helpText, type Io, parseCommandArgs } from './command.js';
import { advisory } from './commands/advisory.js';
import { build } from './commands/build.js';
import { deploy } from './commands/deploy.js';
import { dev } from './commands/dev.js';
import { init } from './commands/init.js';
import { owner } from './commands/owner.js';
import { policy } from './commands/policy.js';
import { mirror } from './commands/mirror.js';
import { publish } from './commands/publish.js';
import { repo } from './commands/repo.js';
import { retire, revert, unretire } from './commands/retire.js';
import { serve } from './commands/serve.js';
import { token } from './commands/token.js';
import { oauth } from './commands/oauth.js';
import { tui } from './commands/tui.js';
import { user } from './commands/user.js';
import { verify } from './commands/verify.js';

/** Every command, in help order. */
export const COMMANDS: Command[] = [init, build, verify, serve, repo, deploy, token, user, oauth, owner, publish, retire, unretire, revert, advisory, policy, mirror, dev, tui];

export const VERSION = '0.1.0';

/** The exit status of a failure by its error code; every other code exits 1. */
const EXIT_STATUS: Partial<Record<ErrorCode, number>> = { USAGE: 2, AUTH_INVALID: 3, PERMISSION_DENIED: 3, SERVER_ERROR: 4, RATE_LIMITED: 4, NETWORK_ERROR: 4 };

/** What the exit statuses mean, for the overview and docs/cli.md. */
export const EXIT_STATUS_HELP = `Exit status (every command):
  0  success
  1  failure: invalid input, not found, refused by the repository (e.g. error[ALREADY_EXISTS])
  2  wrong usage (error[USAGE])
  3  the server refused the credentials (error[AUTH_INVALID], HTTP 401) or they do not allow
     this action (error[PERMISSION_DENIED], HTTP 403)
  4  the server failed (error[SERVER_ERROR], HTTP 5xx), asks to retry later
     (error[RATE_LIMITED], HTTP 429) or cannot be reached (error[NETWORK_ERROR])
With --json a failure also prints {"ok": false, "exit": N, "error": {"code", "message", "details"}}
on stdout; the codes are stable.
`;

function overview(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length)) + 2;
  return [
    'hexrepo: self-host Hex package repositories for Elixir and Erlang.',
    '',
    'Usage: hexrepo <command> [options]',
    '',
    'Commands:',
    ...COMMANDS.map((c) => `  ${c.name.padEnd(width)}${c.summary}`),
    '',
    'Run "hexrepo <command> --help" for the options of one command.',
    '',
    EXIT_STATUS_HELP,
  ].join('\n');
}

/** The exit status for an error thrown by a command. */
export function exitStatusOf(err: unknown): number {
  return isHexrepoError(err) ? (EXIT_STATUS[err.code] ?? 1) : 1;
}

/** Run the CLI; returns the exit status. Never throws for a user error. */
export async function main(argv: string[], io: Io): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    const target = name === 'help' ? COMMANDS.find((c) => c.name === rest[0]) : undefined;
    io.out(target ? helpText(target) : overview());
    return 0;
  }
  if (name === '--version' || name === '-v') {
    io.out(`hexrepo ${VERSION}\n`);
    return 0;
  }
  const cmd = COMMANDS.find((c) => c.name === name);
  try {
    if (!cmd) throw new HexrepoError('USAGE', `unknown command "${name}"`, { hint: `commands: ${COMMANDS.map((c) => c.name).join(', ')}; run "hexrepo --help"` });
    const args = parseCommandArgs(cmd, rest);
    if (args.values.help) {
      io.out(helpText(cmd));
      return 0;
    }
    return await cmd.run(args, io);
  } catch (err) {
    const status = exitStatusOf(err);
    if (rest.includes('--json') && isHexrepoError(err)) io.out(`${JSON.stringify({ ok: false, exit: status, error: errorToJson(err) }, null, 2)}\n`);
    io.err(`${formatError(err, { stack: !isHexrepoError(err) })}\n`);
    return status;
  }
}
