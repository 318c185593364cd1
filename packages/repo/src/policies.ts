/**
 * Dependency policies of a repository: the definition as typed at `_hexrepo/policies/NAME.json`
 * (never served: not a repository path) and the signed `policies/NAME` that Hex 2.5 fetches when
 * HEX_POLICY=REPO/NAME is set. The definition is written first; the signed file is derived from
 * it, so a crash between the two is repaired by the next build (`signPolicies`).
 */
import type { KeyObject } from 'node:crypto';
import { assertPolicyName, HexrepoError, validatePolicy, type PolicyDefinition } from '@hexrepo/core';
import { buildPolicy } from '@hexrepo/registry';
import { contentEtag, type BlobStore } from '@hexrepo/storage';

export const POLICY_STATE_PREFIX = '_hexrepo/policies/';
export const POLICIES_PREFIX = 'policies/';
export const policyStateKey = (name: string): string => `${POLICY_STATE_PREFIX}${name}.json`;
export const policyKey = (name: string): string => `${POLICIES_PREFIX}${name}`;

/** The policy name a `policies/NAME` key holds, or null. */
export function policyNameOf(key: string): string | null {
  if (!key.startsWith(POLICIES_PREFIX)) return null;
  const name = key.slice(POLICIES_PREFIX.length);
  try {
    assertPolicyName(name);
    return name;
  } catch {
    return null;
  }
}

/** Every stored policy definition, sorted by name. */
export async function listPolicies(store: BlobStore, repository: string): Promise<PolicyDefinition[]> {
  const names: string[] = [];
  for await (const o of store.list(POLICY_STATE_PREFIX)) if (o.key.endsWith('.json')) names.push(o.key.slice(POLICY_STATE_PREFIX.length, -'.json'.length));
  const out: PolicyDefinition[] = [];
  for (const name of names.sort()) {
    const p = await getPolicy(store, repository, name);
    if (p) out.push(p);
  }
  return out;
}

/** One policy definition, or null when there is none of that name. */
export async function getPolicy(store: BlobStore, repository: string, name: string): Promise<PolicyDefinition | null> {
  assertPolicyName(name);
  const obj = await store.get(policyStateKey(name));
  if (!obj) return null;
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder().decode(obj.body));
  } catch {
    throw new HexrepoError('REGISTRY_CORRUPT', `${policyStateKey(name)} is not valid JSON`, { hint: `fix it, or delete it with "hexrepo policy delete ${name}"` });
  }
  try {
    return validatePolicy(json, repository);
  } catch (err) {
    throw new HexrepoError('REGISTRY_CORRUPT', `${policyStateKey(name)} holds a policy that is no longer valid: ${(err as Error).message}`, { hint: `fix it with "hexrepo policy edit ${name}", or delete it` }, { cause: err });
  }
}

/** Write the signed `policies/NAME` unless it already holds exactly these bytes (signatures are deterministic). */
async function sign(store: BlobStore, repository: string, privateKey: KeyObject, policy: PolicyDefinition): Promise<boolean> {
  const body = buildPolicy({ repository, policy }, privateKey);
  const current = await store.head(policyKey(policy.name));
  if (current?.etag === contentEtag(body)) return false;
  await store.put(policyKey(policy.name), body, { contentType: 'application/octet-stream' });
  return true;
}

/**
 * Validate and store a policy, then sign it. `mode` 'create' refuses an existing name, 'edit' a
 * missing one. Returns the policy as stored (normalised).
 */
export async function putPolicy(store: BlobStore, repository: string, privateKey: KeyObject, input: unknown, mode: 'create' | 'edit' | 'upsert'): Promise<PolicyDefinition> {
  const policy = validatePolicy(input, repository);
  const key = policyStateKey(policy.name);
  const existing = await store.head(key);
  if (mode === 'create' && existing) throw new HexrepoError('ALREADY_EXISTS', `policy ${policy.name} already exists in ${repository}`, { hint: `change it with "hexrepo policy edit ${policy.name}"` });
  if (mode === 'edit' && !existing) throw new HexrepoError('NOT_FOUND', `no policy ${policy.name} in ${repository}`, { hint: `create it with "hexrepo policy create ${policy.name}"` });
  const body = new TextEncoder().encode(`${JSON.stringify(policy, null, 2)}\n`);
  // A concurrent create or edit of the same policy loses with STORAGE_CONFLICT instead of overwriting.
  await store.put(key, body, { contentType: 'application/json', ...(existing ? { ifMatch: existing.etag } : { ifNoneMatch: '*' as const }) });
  await sign(store, repository, privateKey, policy);
  return policy;
}

/** Remove a policy: the signed file first (clients stop seeing it), then its definition. */
export async function deletePolicy(store: BlobStore, repository: string, name: string): Promise<void> {
  assertPolicyName(name);
  if (!(await store.head(policyStateKey(name)))) throw new HexrepoError('NOT_FOUND', `no policy ${name} in ${repository}`, { hint: 'list them with "hexrepo policy list"' });
  await store.delete(policyKey(name));
  await store.delete(policyStateKey(name));
}

/**
 * Re-sign every policy (a build, a new key, a renamed repository) and remove signed files whose
 * definition is gone. Returns the keys written and removed.
 */
export async function signPolicies(store: BlobStore, repository: string, privateKey: KeyObject): Promise<{ written: string[]; removed: string[] }> {
  const written: string[] = [];
  const removed: string[] = [];
  // hexpm never serves policies (Mix refuses HEX_POLICY=hexpm/NAME), and repository names exclude it.
  const policies = repository === 'hexpm' ? [] : await listPolicies(store, repository);
  for (const p of policies) if (await sign(store, repository, privateKey, p)) written.push(policyKey(p.name));
  const known = new Set(policies.map((p) => policyKey(p.name)));
  for await (const o of store.list(POLICIES_PREFIX)) {
    if (!known.has(o.key) && policyNameOf(o.key)) {
      await store.delete(o.key);
      removed.push(o.key);
    }
  }
  return { written, removed };
}

/** Which policy names a user may read: all of them with read access, else only the public ones. */
export function visiblePolicy(policy: PolicyDefinition, canRead: boolean): boolean {
  return canRead || policy.visibility === 'public';
}
