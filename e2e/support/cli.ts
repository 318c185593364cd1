/** Run the built `hexrepo` binary (apps/cli/dist/bin.js) as a user would. */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const CLI = fileURLToPath(new URL('../../apps/cli/dist/bin.js', import.meta.url));

export function cliBuilt(): boolean {
  return existsSync(CLI);
}

/** `input`: written to the command's stdin (a pipe, not a terminal), which is then closed. */
export function hexrepo(args: string[], opts: { cwd?: string; env?: Record<string, string>; input?: string } = {}): Promise<{ status: number | null; stdout: string; stderr: string }> {
  if (!cliBuilt()) throw new Error(`${CLI} is missing: run "pnpm build" first (the test command does)`);
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd: opts.cwd, env: { ...process.env, ...opts.env, NO_COLOR: '1' }, stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
    if (opts.input !== undefined) child.stdin!.end(opts.input);
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}
