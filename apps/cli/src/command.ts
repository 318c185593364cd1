import { parseArgs, type ParseArgsConfig } from 'node:util';
import { HexrepoError } from '@hexrepo/core';

/** Where a command writes; tests pass their own. */
export interface Io {
  out(text: string): void;
  err(text: string): void;
  /** stderr is a terminal (progress bars, colour). */
  readonly errIsTTY: boolean;
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly cwd: string;
}

export type Options = NonNullable<ParseArgsConfig['options']>;

/** One CLI command: its help text is the documentation (`hexrepo help CMD`, docs/cli.md). */
export interface Command {
  name: string;
  summary: string;
  usage: string;
  /** Option descriptions, in help order. */
  help: string;
  options: Options;
  run(args: { values: Record<string, string | boolean | string[] | undefined>; positionals: string[] }, io: Io): Promise<number>;
}

/** Parse argv for a command, turning node's parse errors into USAGE errors that name the command. */
export function parseCommandArgs(cmd: Command, argv: string[]): { values: Record<string, string | boolean | string[] | undefined>; positionals: string[] } {
  try {
    const { values, positionals } = parseArgs({ args: argv, options: { ...cmd.options, help: { type: 'boolean', short: 'h' } }, allowPositionals: true, strict: true });
    return { values: values as Record<string, string | boolean | string[] | undefined>, positionals };
  } catch (err) {
    throw new HexrepoError('USAGE', `hexrepo ${cmd.name}: ${(err as Error).message}`, { hint: `run "hexrepo ${cmd.name} --help"` });
  }
}

/** The help page of a command. */
export function helpText(cmd: Command): string {
  return `${cmd.summary}\n\nUsage: ${cmd.usage}\n\n${cmd.help.trim()}\n  -h, --help               show this help\n`;
}

/** A string option's value, or undefined. */
export function str(values: Record<string, unknown>, key: string): string | undefined {
  const v = values[key];
  return typeof v === 'string' ? v : undefined;
}

export function usage(cmd: string, message: string): HexrepoError {
  return new HexrepoError('USAGE', `hexrepo ${cmd}: ${message}`, { hint: `run "hexrepo ${cmd} --help"` });
}
