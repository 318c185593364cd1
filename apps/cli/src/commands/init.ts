import { join, resolve } from 'node:path';
import { assertRepoName, HexrepoError, PROJECT_FILE } from '@hexrepo/core';
import { fingerprint, publicKeyPem } from '@hexrepo/registry';
import { clientSetup, createProject, formatClientSetup } from '@hexrepo/repo';
import { type Command, usage } from '../command.js';
import { displayPath, readProject } from '../project.js';

export const init: Command = {
  name: 'init',
  summary: 'Create a repository: a signing key, public/ with public_key, tarballs/ and an empty signed registry.',
  usage: 'hexrepo init [DIR] --name NAME [--url URL] [--json]',
  help: `
Writes, inside DIR (default: the current folder):
  private_key.pem   2048-bit RSA key, mode 0600, OUTSIDE public/ (never serve or sync it)
  public/           the folder to serve: public_key, tarballs/, names, versions
  hexrepo.json      name and paths, so "hexrepo build" and "hexrepo verify" need no flags
Then prints the exact Mix and rebar3 configuration for the repository. Refuses to overwrite an
existing key or project.

Options:
  --name NAME   repository name (lowercase; clients must configure exactly this name)
  --url URL     the URL clients will use, for the printed set-up lines (default http://localhost:4000)
  --json        print paths, fingerprint and set-up lines as JSON`,
  options: { name: { type: 'string' }, url: { type: 'string' }, json: { type: 'boolean' } },
  async run({ values, positionals }, io) {
    if (positionals.length > 1) throw usage('init', `expected at most one DIR, got ${positionals.length}`);
    const name = typeof values.name === 'string' ? values.name : undefined;
    if (!name) throw usage('init', 'missing --name NAME (the repository name clients will configure)');
    assertRepoName(name);
    const url = typeof values.url === 'string' ? values.url : 'http://localhost:4000';
    if (!/^https?:\/\/[^/]+/.test(url)) throw usage('init', `--url ${JSON.stringify(url)} is not an http(s) URL`);
    const dir = resolve(io.cwd, positionals[0] ?? '.');
    if (await readProject(dir)) throw new HexrepoError('ALREADY_EXISTS', `${join(dir, PROJECT_FILE)} already exists; this folder holds a repository`, { hint: 'use "hexrepo build" there, or pick another DIR' });

    const { keyPath, publicDir, privateKey } = await createProject(dir, name);

    const shown = (p: string): string => displayPath(io.cwd, p);
    const setupInput = { repository: name, url, publicKeyPath: shown(join(publicDir, 'public_key')), publicKeyPem: publicKeyPem(privateKey), fingerprint: fingerprint(privateKey) };
    if (values.json) {
      io.out(`${JSON.stringify({ name, dir, privateKey: keyPath, publicDir, fingerprint: setupInput.fingerprint, setup: clientSetup(setupInput) }, null, 2)}\n`);
      return 0;
    }
    io.out(
      [
        `* creating ${shown(keyPath)} (mode 0600: keep it secret, keep it out of ${shown(publicDir)})`,
        `* creating ${shown(publicDir)}/public_key, tarballs/, names, versions`,
        `* creating ${shown(join(dir, PROJECT_FILE))}`,
        '',
        `Repository "${name}" is ready. Key fingerprint: ${setupInput.fingerprint}`,
        `Put tarballs (from "mix hex.build" or "rebar3 hex build") in ${shown(publicDir)}/tarballs/, then run "hexrepo build"${dir === io.cwd ? '' : ` in ${shown(dir)}`}.`,
        `Serve ${shown(publicDir)} at ${url} and configure the clients:`,
        '',
        formatClientSetup(setupInput),
        '',
      ].join('\n'),
    );
    return 0;
  },
};
