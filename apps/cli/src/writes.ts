/**
 * The write commands (publish, retire, unretire, revert) on a local repository folder (through
 * the repository service, with the signing key) or on a running `hexrepo serve` (through its
 * publish API, with a token).
 */
import { ApiClient } from '@hexrepo/client';
import { HexrepoError, RETIREMENT_REASONS, type Retirement } from '@hexrepo/core';
import { addOwner, AuditLog, openRepository, packageAuditKey, readOwners, removeOwner, type AuditAction, type Owner, type OwnerLevel } from '@hexrepo/repo';
import { FsStore } from '@hexrepo/storage';
import type { Io } from './command.js';
import { defaultCachePath, loadSigningKey, resolveRepo } from './project.js';
import { remoteHelp, remoteOf } from './remote-target.js';

export const REMOTE_HELP = `${remoteHelp('write')}

Exit status: 0 done, 1 refused or failed, 2 wrong usage, 3 token refused (401) or not allowed
(403), 4 server error (5xx), rate-limited (429) or server unreachable.`;

export interface Target {
  kind: 'local' | 'remote';
  describe: string;
  publish(bytes: Uint8Array, replace: boolean): Promise<{ created: boolean; name: string; version: string; checksum: string }>;
  retire(name: string, version: string, reason: string, message: string | undefined): Promise<void>;
  unretire(name: string, version: string): Promise<void>;
  revert(name: string, version: string): Promise<void>;
  /** Retire every release not retired yet; with no reason, unretire them all. */
  retireAll(name: string, reason: string | undefined, message: string | undefined): Promise<void>;
  owners(name: string): Promise<Pick<Owner, 'username' | 'level'>[]>;
  addOwner(name: string, username: string, level: OwnerLevel, transfer: boolean): Promise<void>;
  removeOwner(name: string, username: string): Promise<void>;
  close(): Promise<void>;
}

export async function openTarget(cmd: string, values: Record<string, unknown>, dirArg: string | undefined, io: Io): Promise<Target> {
  const remote = remoteOf(cmd, values, dirArg, io, 'write');
  if (remote) return remoteTarget(remote.url, remote.token);
  const repo = await resolveRepo(cmd, io.cwd, dirArg, values, { key: true });
  const privateKey = await loadSigningKey(repo.keyPath!, repo.publicDir);
  const opened = await openRepository({ store: new FsStore(repo.publicDir), repository: repo.name, privateKey, cachePath: defaultCachePath(repo.publicDir), limits: repo.limits });
  const service = opened.service!;
  const audit = new AuditLog(service.store);
  // Local changes are logged like the API's, as made by the command line.
  const record = (action: AuditAction, name: string, params: Record<string, unknown>): Promise<void> =>
    audit.append(packageAuditKey(name), { action, params: { package: { name, repository: repo.name }, ...params }, user_agent: 'hexrepo-cli', inserted_at: new Date().toISOString(), user: null });
  const requirePackage = (name: string): void => {
    if (service.releases(name).length === 0) throw new HexrepoError('NOT_FOUND', `no package ${name} in repository ${repo.name}`);
  };
  return {
    kind: 'local',
    describe: repo.publicDir,
    publish: async (bytes, replace) => service.publish(bytes, { replace }),
    retire: (name, version, reason, message) => service.retire(name, version, { reason: reason as keyof typeof RETIREMENT_REASONS, ...(message ? { message } : {}) }),
    unretire: (name, version) => service.unretire(name, version),
    revert: (name, version) => service.revert(name, version),
    retireAll: async (name, reason, message) => {
      const retirement = reason === undefined ? undefined : ({ reason, ...(message ? { message } : {}) } as Retirement);
      const releases = await service.retireAll(name, retirement);
      await record(retirement ? 'release.retire' : 'release.unretire', name, { releases });
    },
    owners: async (name) => {
      requirePackage(name);
      return readOwners(service.store, name);
    },
    addOwner: async (name, username, level, transfer) => {
      requirePackage(name);
      await addOwner(service.store, name, username, level, { transfer });
      await record(transfer ? 'owner.transfer' : 'owner.add', name, { user: { username }, level });
    },
    removeOwner: async (name, username) => {
      requirePackage(name);
      await removeOwner(service.store, name, username);
      await record('owner.remove', name, { user: { username } });
    },
    close: () => opened.close(),
  };
}

function remoteTarget(url: string, token: string): Target {
  const api = new ApiClient({ url, token, userAgent: 'hexrepo-cli' });
  return {
    kind: 'remote',
    describe: api.api,
    publish: (bytes, replace) => api.publish(bytes, { replace }),
    retire: (name, version, reason, message) => api.retire(name, version, { reason, message }),
    unretire: (name, version) => api.unretire(name, version),
    revert: (name, version) => api.revert(name, version),
    retireAll: (name, reason, message) => api.retireAll(name, reason === undefined ? undefined : { reason, message }),
    owners: (name) => api.owners(name),
    addOwner: (name, username, level, transfer) => api.addOwner(name, username, { level, transfer }),
    removeOwner: (name, username) => api.removeOwner(name, username),
    close: async () => undefined,
  };
}
