import { errorToJson, formatError, HexrepoError, isHexrepoError } from '@hexrepo/core';
import { type Command, helpText, type Io, parseCommandArgs } from './command.js';
import { build } from './commands/build.js';
import { deploy } from './commands/deploy.js';
import { dev } from './commands/dev.js';
import { init } from './commands/init.js';
import { publish } from './commands/publish.js';
import { retire, revert, unretire } from './commands/retire.js';
import { serve } from './commands/serve.js';
import { token } from './commands/token.js';
import { tui } from './commands/tui.js';
import { verify } from './commands/verify.js';

/** Every command, in help order. */
export const COMMANDS: Command[] = [init, build, verify, serve, deploy, token, publish, retire, unretire, revert, dev, tui];

export const VERSION = '0.1.0';

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
    'Exit status: 0 success, 1 failure, 2 wrong usage.',
    '',
  ].join('\n');
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
    if (rest.includes('--json') && isHexrepoError(err)) io.out(`${JSON.stringify({ ok: false, error: errorToJson(err) }, null, 2)}\n`);
    io.err(`${formatError(err, { stack: !isHexrepoError(err) })}\n`);
    return isHexrepoError(err, 'USAGE') ? 2 : 1;
  }
}
