/**
 * Where the advisory and policy commands act: a local folder (through the repository service,
 * with the signing key, as the local write commands in writes.ts) or a running `hexrepo serve`
 * (through its API, with a token: write scope for advisories, admin for policies).
 */
import { ApiClient, httpFiles, repositoryRoot, SignedReader } from '@hexrepo/client';
import { HexrepoError, type Advisory, type PolicyDefinition } from '@hexrepo/core';
import { openRepository, type AdvisoryView } from '@hexrepo/repo';
import { FsStore } from '@hexrepo/storage';
import type { Io } from './command.js';
import { defaultCachePath, loadSigningKey, resolveRepo } from './project.js';
import { remoteOf } from './remote-target.js';

export interface StateTarget {
  describe: string;
  /** The repository name the registry is signed with (for HEX_POLICY lines). */
  repository: string;
  /** Which of `names` are packages of the repository. */
  existing(names: readonly string[]): Promise<Set<string>>;
  addAdvisory(name: string, advisory: Advisory, versions: readonly string[]): Promise<AdvisoryView>;
  /** Of one package (NOT_FOUND when there is no such package), or of all (local only). */
  advisories(name?: string): Promise<AdvisoryView[]>;
  removeAdvisory(name: string, id: string): Promise<void>;
  listPolicies(): Promise<PolicyDefinition[]>;
  getPolicy(name: string): Promise<PolicyDefinition | null>;
  putPolicy(input: Record<string, unknown>, mode: 'create' | 'edit'): Promise<PolicyDefinition>;
  deletePolicy(name: string): Promise<void>;
  close(): Promise<void>;
}

/** Open DIR|PUBLIC (or the project of the current folder), or the server of --url / HEXREPO_URL / HEX_API_URL. */
export async function openStateTarget(cmd: string, values: Record<string, unknown>, dirArg: string | undefined, io: Io): Promise<StateTarget> {
  const remote = remoteOf(cmd, values, dirArg, io, cmd === 'policy' ? 'admin' : 'write');
  if (remote) return remoteTarget(remote.url, remote.token);
  const repo = await resolveRepo(cmd, io.cwd, dirArg, values, { key: true });
  const privateKey = await loadSigningKey(repo.keyPath!, repo.publicDir);
  const opened = await openRepository({ store: new FsStore(repo.publicDir), repository: repo.name, privateKey, cachePath: defaultCachePath(repo.publicDir), limits: repo.limits });
  const service = opened.service!;
  const one = (name: string, id: string): AdvisoryView => service.advisories(name).find((a) => a.advisory.id === id)!;
  return {
    describe: repo.publicDir,
    repository: repo.name,
    existing: async (names) => new Set(names.filter((n) => service.releases(n).length > 0)),
    addAdvisory: async (name, advisory, versions) => {
      await service.addAdvisory(name, advisory, versions);
      return one(name, advisory.id);
    },
    advisories: async (name) => {
      if (name !== undefined && service.releases(name).length === 0) throw new HexrepoError('NOT_FOUND', `no package ${name} in repository ${repo.name}`);
      return service.advisories(name);
    },
    removeAdvisory: (name, id) => service.removeAdvisory(name, id),
    listPolicies: () => service.listPolicies(),
    getPolicy: (name) => service.getPolicy(name),
    putPolicy: (input, mode) => service.putPolicy(input, mode),
    deletePolicy: (name) => service.deletePolicy(name),
    close: () => opened.close(),
  };
}

async function remoteTarget(url: string, token: string): Promise<StateTarget> {
  const server = { url, token, userAgent: 'hexrepo-cli' };
  const api = new ApiClient(server);
  // The signed name of the repository, for HEX_POLICY lines; the API does not say it.
  const repository = await SignedReader.open(httpFiles(server), { location: repositoryRoot(url) }).then(
    (r) => r.repository,
    () => 'REPO',
  );
  return {
    describe: api.api,
    repository,
    existing: async (names) => {
      const found = await Promise.all(
        names.map((n) =>
          api.package(n).then(
            () => n,
            (err: unknown) => (err instanceof HexrepoError && err.code === 'NOT_FOUND' ? null : Promise.reject(err)),
          ),
        ),
      );
      return new Set(found.filter((n): n is string => n !== null));
    },
    addAdvisory: async (name, advisory, versions) => ({ package: name, ...(await api.addAdvisory(name, advisory, versions)) }),
    advisories: async (name) => {
      if (name === undefined) throw new HexrepoError('USAGE', 'hexrepo advisory list: with --url, give the package NAME (the API lists advisories per package)');
      return (await api.advisories(name)).map((a) => ({ package: name, ...a }));
    },
    removeAdvisory: (name, id) => api.removeAdvisory(name, id),
    listPolicies: () => api.policies(),
    getPolicy: (name) => api.policy(name),
    putPolicy: async (input, mode) => {
      if (mode === 'edit' && !(await api.policy(String(input.name)))) throw new HexrepoError('NOT_FOUND', `no policy ${String(input.name)} on ${api.api}`);
      return api.putPolicy(input, mode === 'create' ? 'create' : 'upsert');
    },
    deletePolicy: (name) => api.deletePolicy(name),
    close: async () => undefined,
  };
}
