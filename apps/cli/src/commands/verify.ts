import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { HexrepoError } from '@hexrepo/core';
import { loadPublicKey } from '@hexrepo/registry';
import { verifyRepository } from '@hexrepo/repo';
import { FsStore } from '@hexrepo/storage';
import { type Command, str } from '../command.js';
import { resolveRepo } from '../project.js';
import { resolveStoreRepo } from '../stores.js';

export const verify: Command = {
  name: 'verify',
  summary: 'Check a repository the way a strict client would.',
  usage: 'hexrepo verify [DIR|PUBLIC] --name NAME [--public-key FILE] [--json]\n       hexrepo verify [DIR] --store URL [--name NAME] [--public-key FILE] [--json]',
  help: `
Checks every signature, the repository name in names, versions and packages/*, each package's
name, that names, versions and packages/* agree, and every tarball's SHA-256 against its
release's outer checksum; policies/* get the checks Mix makes (signature, repository and policy
name). Exits 1 on any problem. With --store URL it checks the repository in
that store (s3://BUCKET/PREFIX?region=R, gs://BUCKET/PREFIX, file:///ABS/PATH or a folder) instead of a
local folder; the name still comes from --name or hexrepo.json (of DIR or the current folder).

Options:
  --name NAME          the repository name clients configure (default: ./hexrepo.json)
  --store URL          verify the repository in this store instead of PUBLIC
  --public-key FILE    verify with this key instead of PUBLIC/public_key (recommended: a copy
                       you trust, since PUBLIC/public_key travels with the files it vouches for)
  --json               print the report as JSON`,
  options: { name: { type: 'string' }, store: { type: 'string' }, 'public-key': { type: 'string' }, json: { type: 'boolean' } },
  async run({ values, positionals }, io) {
    const storeUrl = str(values, 'store');
    const repo =
      storeUrl !== undefined
        ? await resolveStoreRepo('verify', io.cwd, storeUrl, positionals[0], values, { key: false })
        : await resolveRepo('verify', io.cwd, positionals[0], values, { key: false }).then((r) => ({ ...r, store: new FsStore(r.publicDir) }));
    let publicKey;
    if (typeof values['public-key'] === 'string') {
      const path = resolve(io.cwd, values['public-key']);
      const pem = await readFile(path, 'utf8').catch(() => {
        throw new HexrepoError('KEY_INVALID', `cannot read the public key ${path}`);
      });
      publicKey = loadPublicKey(pem);
    }
    const report = await verifyRepository(repo.store, { repository: repo.name, ...(publicKey ? { publicKey } : {}) });
    if (values.json) {
      io.out(`${JSON.stringify(report, null, 2)}\n`);
    } else {
      for (const p of report.problems) io.out(`✗ ${p.key}: [${p.code}] ${p.message}\n`);
      for (const f of report.unlisted) io.out(`! tarballs/${f} is not in the registry yet (run "hexrepo build")\n`);
      io.out(
        report.ok
          ? `✓ "${report.repository}" verified: ${report.packages} packages, ${report.releases} releases, ${report.tarballsChecked} tarballs match their outer checksums.\n`
          : `✗ "${report.repository}": ${report.problems.length} problem(s) found.\n`,
      );
    }
    return report.ok ? 0 : 1;
  },
};
