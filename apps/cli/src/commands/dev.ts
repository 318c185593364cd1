import { resolve } from 'node:path';
import { assertRepoName } from '@hexrepo/core';
import { type Command, str, usage } from '../command.js';

export const dev: Command = {
  name: 'dev',
  summary: 'Watch a tarballs folder: every change is validated, signed and served at once, with live logs.',
  usage: 'hexrepo dev [DIR] [--name NAME] [--port N] [--host ADDR] [--no-seed]',
  help: `
Starts a repository for development in DIR (default: .hexrepo-dev). A new DIR gets a signing key
(outside the served folder), public/ with tarballs/, and — while tarballs/ is empty — two example
packages ("greeter" depends on "hello") so there is something to fetch at once.

Drop tarballs into DIR/public/tarballs/ (or "mix hex.build -o DIR/public/tarballs/…"): each added,
changed or removed file is validated and the signed registry updated incrementally, in a few
milliseconds. Bursts (copying 100 files) are coalesced into a few rebuilds; a file still being
written is not read half-way; a bad tarball is reported with its reason while the last good
registry keeps being served.

Live logs: one terminal line per rebuild (what changed, how long) and per request (method, path,
status, ms, client: mix, rebar3, curl or other), coloured on a terminal (NO_COLOR turns it off);
the same events as Server-Sent Events at /_dev/events; a page listing the packages and the live
log at /_dev/, which links to the web UI at /-/ (browse, search, package pages, docs). The
repository is public to read and listens on 127.0.0.1 unless --host says otherwise; the publish
API works with a token from "hexrepo token create DIR --scope write" (tokens
created or revoked while it runs take effect within a second, no restart needed).

Options:
  --name NAME      repository name for a new DIR (default: dev)
  --port N         port (default 4000; 0 picks a free one)
  --host ADDR      address to listen on (default 127.0.0.1)
  --no-seed        do not create the example packages`,
  options: { name: { type: 'string' }, port: { type: 'string' }, host: { type: 'string' }, 'no-seed': { type: 'boolean' } },
  async run({ values, positionals }, io) {
    if (positionals.length > 1) throw usage('dev', `expected at most one DIR, got ${positionals.length}`);
    const name = str(values, 'name');
    if (name) assertRepoName(name);
    const portText = str(values, 'port') ?? io.env.PORT ?? '4000';
    if (!/^\d+$/.test(portText) || Number(portText) > 65535) throw usage('dev', `--port ${JSON.stringify(portText)} is not a port number`);
    const colour = io.errIsTTY && !io.env.NO_COLOR;
    // Loaded here, not at start-up: chokidar and the dev server are this command's alone.
    const { startDevServer } = await import('@hexrepo/dev');
    const server = await startDevServer({
      dir: resolve(io.cwd, positionals[0] ?? '.hexrepo-dev'),
      ...(name ? { name } : {}),
      port: Number(portText),
      host: str(values, 'host') ?? '127.0.0.1',
      seed: values['no-seed'] !== true,
      colour,
      print: (line) => io.err(`${line}\n`),
    });
    io.out(
      [
        `hexrepo dev: ${server.url} (repository "${server.repository}", key ${server.fingerprint})`,
        `  live page:   ${server.url}/_dev/`,
        `  web UI:      ${server.url}/-/`,
        `  drop tarballs into ${server.publicDir}/tarballs/`,
        '',
        server.setup,
        '',
      ].join('\n'),
    );
    await new Promise<void>((done) => {
      const stop = (): void => {
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
        server.close().then(done, done);
      };
      process.on('SIGINT', stop);
      process.on('SIGTERM', stop);
    });
    return 0;
  },
};
