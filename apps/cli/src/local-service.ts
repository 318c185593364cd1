/**
 * The repository service of a local folder, for commands that change repository-side state
 * (advisories, policies): the same opening as the local write commands (writes.ts).
 */
import { openRepository, type RepoService } from '@hexrepo/repo';
import { FsStore } from '@hexrepo/storage';
import type { Io } from './command.js';
import { defaultCachePath, loadSigningKey, resolveRepo } from './project.js';

export interface LocalService {
  service: RepoService;
  repository: string;
  describe: string;
  close(): Promise<void>;
}

/** Open DIR|PUBLIC (or the project of the current folder) with its signing key. */
export async function openLocalService(cmd: string, values: Record<string, unknown>, dirArg: string | undefined, io: Io): Promise<LocalService> {
  const repo = await resolveRepo(cmd, io.cwd, dirArg, values, { key: true });
  const privateKey = await loadSigningKey(repo.keyPath!, repo.publicDir);
  const opened = await openRepository({ store: new FsStore(repo.publicDir), repository: repo.name, privateKey, cachePath: defaultCachePath(repo.publicDir), limits: repo.limits });
  return { service: opened.service!, repository: repo.name, describe: repo.publicDir, close: () => opened.close() };
}

/** The options every such command takes for a local folder. */
export const LOCAL_OPTIONS = {
  'private-key': { type: 'string' },
  name: { type: 'string' },
  json: { type: 'boolean' },
} as const;

export const LOCAL_HELP = `  --private-key KEY    signing key (default: the one hexrepo.json names)
  --name NAME          repository name (default: hexrepo.json)
  --json               print the result as JSON`;
