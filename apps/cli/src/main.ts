import { errorToJson, type ErrorCode, formatError, HexrepoError, isHexrepoError } from '@hexrepo/core';
import { type Command, helpText, type Io, parseCommandArgs } from './command.js';

/**
 * Every command by name, in help order, each loaded only when it runs: a command's module brings
 * its own dependencies (the HTTP server, the mirror's HTTP client, the API client), which the others
 * do not need. Loading them all costs a `hexrepo build` about 0.3 s of CPU at start.
 */
const COMMAND_LOADERS: readonly (readonly [string, () => Promise<Command>])[] = [
  ['init', async () => (await import('./commands/init.js')).init],
  ['build', async () => (await import('./commands/build.js')).build],
  ['verify', async () => (await import('./commands/verify.js')).verify],
  ['serve', async () => (await import('./commands/serve.js')).serve],
  ['repo', async () => (await import('./commands/repo.js')).repo],
  ['deploy', async () => (await import('./commands/deploy.js')).deploy],
  ['token', async () => (await import('./commands/token.js')).token],
  ['user', async () => (await import('./commands/user.js')).user],
  ['oauth', async () => (await import('./commands/oauth.js')).oauth],
  ['owner', async () => (await import('./commands/owner.js')).owner],
  ['publish', async () => (await import('./commands/publish.js')).publish],
  ['retire', async () => (await import('./commands/retire.js')).retire],
  ['unretire', async () => (await import('./commands/retire.js')).unretire],
  ['revert', async () => (await import('./commands/retire.js')).revert],
  ['advisory', async () => (await import('./commands/advisory.js')).advisory],
  ['policy', async () => (await import('./commands/policy.js')).policy],
  ['mirror', async () => (await import('./commands/mirror.js')).mirror],
  ['dev', async () => (await import('./commands/dev.js')).dev],
  ['tui', async () => (await import('./commands/tui.js')).tui],
];

/** The command names, in help order. */
export const COMMAND_NAMES: readonly string[] = COMMAND_LOADERS.map(([name]) => name);

/** One command, loaded; undefined for an unknown name. */
export async function loadCommand(name: string): Promise<Command | undefined> {
  return COMMAND_LOADERS.find(([n]) => n === name)?.[1]();
}

/** Every command, loaded, in help order (for the overview and docs/cli.md). */
export async function loadCommands(): Promise<Command[]> {
  return Promise.all(COMMAND_LOADERS.map(([, load]) => load()));
}

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

async function overview(): Promise<string> {
  const commands = await loadCommands();
  const width = Math.max(...commands.map((c) => c.name.length)) + 2;
  return [
    'hexrepo: self-host Hex package repositories for Elixir and Erlang.',
    '',
    'Usage: hexrepo <command> [options]',
    '',
    'Commands:',
    ...commands.map((c) => `  ${c.name.padEnd(width)}${c.summary}`),
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
    const target = name === 'help' && rest[0] !== undefined ? await loadCommand(rest[0]) : undefined;
    io.out(target ? helpText(target) : await overview());
    return 0;
  }
  if (name === '--version' || name === '-v') {
    io.out(`hexrepo ${VERSION}\n`);
    return 0;
  }
  try {
    const cmd = await loadCommand(name);
    if (!cmd) throw new HexrepoError('USAGE', `unknown command "${name}"`, { hint: `commands: ${COMMAND_NAMES.join(', ')}; run "hexrepo --help"` });
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
