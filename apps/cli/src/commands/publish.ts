import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { HexrepoError } from '@hexrepo/core';
import { type Command, usage } from '../command.js';
import { REMOTE_OPTIONS } from '../remote-target.js';
import { openTarget, REMOTE_HELP } from '../writes.js';

export const publish: Command = {
  name: 'publish',
  summary: 'Publish package tarballs to a local repository or a running server.',
  usage: 'hexrepo publish [DIR|PUBLIC] TARBALL.tar… [--replace] [--url URL] [--json]',
  help: `
Validates each tarball fully (limits, checksums, metadata, paths) before storing anything, stores
it byte for byte as tarballs/NAME-VERSION.tar, and updates packages/NAME, versions and names.
A version that already exists is refused unless --replace is given. Locally this needs the signing
key; with --url it uses the server's publish API (the same one "mix hex.publish" uses).

Options:
  --replace            overwrite an existing release of the same version
${REMOTE_HELP}`,
  options: { replace: { type: 'boolean' }, ...REMOTE_OPTIONS },
  async run({ values, positionals }, io) {
    const tarballs = positionals.filter((p) => p.endsWith('.tar'));
    const dirs = positionals.filter((p) => !p.endsWith('.tar'));
    if (tarballs.length === 0) throw usage('publish', 'give at least one TARBALL.tar');
    if (dirs.length > 1) throw usage('publish', `expected at most one DIR, got ${dirs.join(', ')}`);
    const target = await openTarget('publish', values, dirs[0], io);
    const results = [];
    try {
      for (const file of tarballs) {
        const path = resolve(io.cwd, file);
        const bytes = await readFile(path).catch((err: NodeJS.ErrnoException) => {
          throw new HexrepoError('NOT_FOUND', `cannot read ${path}: ${err.code ?? err.message}`);
        });
        try {
          const r = await target.publish(bytes, values.replace === true);
          results.push({ file, ...r });
          if (!values.json) io.out(`${r.created ? 'published' : 'replaced'} ${r.name} ${r.version} (${r.checksum}) to ${target.describe}\n`);
        } catch (err) {
          throw err instanceof HexrepoError ? err.withContext(file) : err;
        }
      }
    } finally {
      await target.close();
    }
    if (values.json) io.out(`${JSON.stringify({ ok: true, target: target.describe, published: results }, null, 2)}\n`);
    return 0;
  },
};
