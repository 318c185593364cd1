import { access } from 'node:fs/promises';
import type { KeyObject } from 'node:crypto';
import { HexrepoError, isHexrepoError } from '@hexrepo/core';
import type { DataSource } from '@hexrepo/tui';
import { type Command, str, usage } from '../command.js';
import { defaultCachePath, loadSigningKey, repoSettings, resolvePublicDir } from '../project.js';

export const tui: Command = {
  name: 'tui',
  summary: 'Browse, publish, retire and unretire in a terminal UI, on a local folder or a server.',
  usage: 'hexrepo tui [DIR|PUBLIC|URL] [--name NAME] [--private-key KEY] [--token TOKEN]',
  help: `
Opens a full-screen terminal UI on a repository: the package list (type to filter), a package's
releases (dependencies, checksums, retirement, metadata from the tarball), publishing a tarball
(a path with Tab completion, validated and shown before you confirm with y), retire and unretire,
a log pane and a status bar with the repository name, key fingerprint and location.

A local folder (a project DIR with hexrepo.json, or the public folder itself) is opened through
the repository service with the signing key; without a key it is read-only. A URL (http://…) is a
running "hexrepo serve": packages are read from the signed registry files and checked against the
server's public_key; writes go through its publish API with a token with the write scope.

Keys: type to filter, ↑↓ move, Enter open, P publish, r retire, u unretire, Esc back, ? help,
q quit. Colour is off with NO_COLOR; markers such as [retired] and the ">" cursor work without it.

Options:
  --name NAME          repository name (local: default hexrepo.json, else the one signed into
                       names; URL: checked against names)
  --private-key KEY    signing key for a local folder (default: the one hexrepo.json names)
  --token TOKEN        API token for a URL; prefer env HEXREPO_TOKEN (or HEX_API_KEY): a flag is
                       visible to other users of the machine`,
  options: { name: { type: 'string' }, 'private-key': { type: 'string' }, token: { type: 'string' } },
  async run({ values, positionals }, io) {
    if (positionals.length > 1) throw usage('tui', `expected at most one DIR, PUBLIC or URL, got ${positionals.length}`);
    if (!process.stdin.isTTY || !process.stdout.isTTY) throw usage('tui', 'needs a terminal (stdin and stdout must be a TTY)');
    const target = positionals[0];
    // Loaded here, not at start-up: the other commands need neither React nor Ink. Ink draws only
    // the last frame when it believes it runs in CI; this is an interactive terminal.
    if (io.env.CI) process.env.CI = 'false';
    const { openLocalSource, openRemoteSource, repositoryOfFolder, runTui } = await import('@hexrepo/tui');
    const initialLog: string[] = [];
    let source: DataSource;
    if (target && /^https?:\/\//i.test(target)) {
      const token = str(values, 'token') ?? io.env.HEXREPO_TOKEN ?? io.env.HEX_API_KEY;
      const name = str(values, 'name');
      source = await openRemoteSource({ url: target, ...(token ? { token } : {}), ...(name ? { repository: name } : {}) });
      initialLog.push(`connected to ${source.info.location} (repository ${source.info.repository})`);
    } else {
      const { publicDir, project } = await resolvePublicDir('tui', io.cwd, target);
      // A bare public folder still says which repository it is: the name is signed into names.
      const name = str(values, 'name') ?? project?.config.name ?? (await repositoryOfFolder(publicDir));
      const repo = { publicDir, ...repoSettings('tui', io.cwd, project, { ...values, name }, { key: false }) };
      let privateKey: KeyObject | undefined;
      let readOnlyReason: string | undefined;
      if (!repo.keyPath) readOnlyReason = 'no signing key (pass --private-key)';
      else if (
        !(await access(repo.keyPath).then(
          () => true,
          () => false,
        ))
      )
        readOnlyReason = `no signing key at ${repo.keyPath}`;
      else privateKey = await loadSigningKey(repo.keyPath, repo.publicDir);
      try {
        source = await openLocalSource({ publicDir: repo.publicDir, repository: repo.name, limits: repo.limits, ...(privateKey ? { privateKey, cachePath: defaultCachePath(repo.publicDir) } : { readOnlyReason: readOnlyReason! }) }, (line) =>
          initialLog.push(line),
        );
      } catch (err) {
        throw isHexrepoError(err) ? err : new HexrepoError('STORAGE_IO', `cannot open ${repo.publicDir}: ${(err as Error).message}`);
      }
      if (readOnlyReason) initialLog.push(`opened ${repo.publicDir} read-only: ${readOnlyReason}`);
    }
    await runTui(source, { cwd: io.cwd, colour: !io.env.NO_COLOR, initialLog });
    return 0;
  },
};
