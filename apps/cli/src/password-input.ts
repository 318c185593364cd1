/**
 * Reading a password: typed at a prompt that does not echo it when stdin is a terminal, else the
 * first line of stdin (for scripts: `printf '%s\n' "$PASSWORD" | hexrepo user add …`). Never a flag:
 * every user of the machine can read another's command line.
 */
import { HexrepoError } from '@hexrepo/core';

async function readLine(input: NodeJS.ReadStream): Promise<string> {
  let text = '';
  for await (const chunk of input) {
    text += (chunk as Buffer).toString('utf8');
    if (text.includes('\n')) break;
  }
  return text.split(/\r?\n/)[0] ?? '';
}

function promptHidden(input: NodeJS.ReadStream, output: NodeJS.WriteStream, question: string): Promise<string> {
  output.write(question);
  input.setRawMode(true);
  input.resume();
  return new Promise((resolve, reject) => {
    let typed = '';
    const done = (): void => {
      input.off('data', onData);
      input.setRawMode(false);
      input.pause();
      output.write('\n');
    };
    const onData = (data: Buffer): void => {
      for (const ch of data.toString('utf8')) {
        if (ch === '\r' || ch === '\n') return (done(), resolve(typed));
        if (ch === '\u0003' || ch === '\u0004') return (done(), reject(new HexrepoError('USAGE', 'cancelled')));
        if (ch === '\u007f' || ch === '\b') typed = typed.slice(0, -1);
        else typed += ch;
      }
    };
    input.on('data', onData);
  });
}

/** The new password, typed twice at a terminal, or the first line of piped stdin. */
export async function readNewPassword(input: NodeJS.ReadStream = process.stdin, output: NodeJS.WriteStream = process.stderr): Promise<string> {
  if (!input.isTTY) {
    const line = await readLine(input);
    if (line === '') throw new HexrepoError('USAGE', 'no password on stdin', { hint: 'pipe it in (printf \'%s\\n\' "$PASSWORD" | hexrepo user …) or run the command in a terminal to be prompted' });
    return line;
  }
  const first = await promptHidden(input, output, 'Password: ');
  const second = await promptHidden(input, output, 'Password (again): ');
  if (first !== second) throw new HexrepoError('USAGE', 'the two passwords differ; nothing was changed');
  return first;
}
