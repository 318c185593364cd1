/**
 * Who may read `policies/NAME`: policy.proto's `visibility` is "read at the edge to decide
 * whether to enforce auth on the fetch". A public policy is open to everyone, also in a private
 * repository (as a public policy of a hex.pm organization is); a private one needs read access
 * to the repository, also in a public repository. A name with no policy falls back to the
 * repository's own rule, so a missing policy answers exactly as a missing package does.
 */
import { getPolicy } from '@hexrepo/repo';
import type { HostedRepository } from './host.js';
import type { Resource } from './routes.js';

/** The visibility that decides the read check of `resource` in `repo`. */
export async function readVisibility(repo: HostedRepository, resource: Resource): Promise<'public' | 'private'> {
  if (resource.kind !== 'policy' || resource.policy === undefined) return repo.visibility;
  // An unreadable definition is treated as private: fail closed.
  const policy = await getPolicy(repo.store, repo.name, resource.policy).catch(() => ({ visibility: 'private' as const }));
  return policy ? policy.visibility : repo.visibility;
}
