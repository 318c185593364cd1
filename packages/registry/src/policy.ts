/**
 * The `policies/NAME` resource (HEX_SPEC.md §2.4): `gzip(Signed{Policy})`, signed like
 * `packages/NAME`. Unpacking verifies the signature, then the origin as Hex 2.5 does: the
 * policy's `repository` must be the configured repository name and its `name` the requested one.
 */
import type { KeyObject } from 'node:crypto';
import {
  ADVISORY_SEVERITIES,
  HexrepoError,
  OVERRIDE_ACTIONS,
  RETIREMENT_REASONS,
  type AdvisorySeverityName,
  type OverrideActionName,
  type PolicyDefinition,
  type PolicyOverride,
  type RepositoryPolicy,
  type RetirementReasonName,
} from '@hexrepo/core';
import { hexrepo } from './generated/registry.js';
import { signAndWrap, unwrapAndVerify } from './signed.js';
import type { UnpackOptions } from './resources.js';

const invert = <K extends string>(o: Record<K, number>): Record<number, K> => Object.fromEntries(Object.entries(o).map(([k, v]) => [v, k])) as Record<number, K>;
const SEVERITY_NAMES = invert<AdvisorySeverityName>(ADVISORY_SEVERITIES);
const REASON_NAMES = invert<RetirementReasonName>(RETIREMENT_REASONS);
const ACTION_NAMES = invert<OverrideActionName>(OVERRIDE_ACTIONS);

/** A decoded policy, and the override actions this reader does not know (skipped, as Hex does). */
export interface UnpackedPolicy extends PolicyDefinition {
  repository: string;
  skippedOverrides: number;
}

function overrideMessage(o: PolicyOverride): hexrepo.policy.IOverride {
  return {
    action: OVERRIDE_ACTIONS[o.action],
    ref: { package: o.package, ...(o.requirement !== undefined ? { requirement: o.requirement } : {}) },
    ...(o.advisoryId !== undefined ? { advisoryId: o.advisoryId } : {}),
    ...(o.retirementReason !== undefined ? { retirementReason: RETIREMENT_REASONS[o.retirementReason] } : {}),
    ...(o.comment !== undefined ? { comment: o.comment } : {}),
  };
}

function repositoryMessage(r: RepositoryPolicy): hexrepo.policy.IRepositoryPolicy {
  const x = r.restriction;
  return {
    repository: r.repository,
    ...(x
      ? {
          restriction: {
            ...(x.minSeverity !== undefined ? { advisoryMinSeverity: ADVISORY_SEVERITIES[x.minSeverity] } : {}),
            ...(x.retirementReasons && x.retirementReasons.length > 0 ? { retirementReasons: x.retirementReasons.map((reason) => RETIREMENT_REASONS[reason]) } : {}),
            ...(x.cooldown !== undefined ? { cooldown: x.cooldown } : {}),
          },
        }
      : {}),
    overrides: r.overrides.map(overrideMessage),
  };
}

/** The `Policy` payload (unsigned), fields in number order as every proto2 encoder writes them. */
export function encodePolicyPayload(input: { repository: string; policy: PolicyDefinition }): Uint8Array {
  const p = input.policy;
  return hexrepo.policy.Policy.encode({
    repository: input.repository,
    name: p.name,
    ...(p.description !== undefined ? { description: p.description } : {}),
    visibility: p.visibility === 'public' ? hexrepo.policy.Visibility.VISIBILITY_PUBLIC : hexrepo.policy.Visibility.VISIBILITY_PRIVATE,
    repositories: p.repositories.map(repositoryMessage),
  }).finish();
}

/** The signed, gzipped `policies/NAME` file. Validate the policy first (core's `validatePolicy`). */
export function buildPolicy(input: { repository: string; policy: PolicyDefinition }, privateKey: KeyObject): Uint8Array {
  return signAndWrap(encodePolicyPayload(input), privateKey);
}

function corrupt(what: string, message: string): HexrepoError {
  return new HexrepoError('REGISTRY_CORRUPT', `${what} ${message}`, { hint: 'rebuild it with "hexrepo build"' });
}

/** Gunzip, verify and decode `policies/NAME`, and check its repository and policy name. */
export function unpackPolicy(file: Uint8Array, opts: UnpackOptions & { name: string }): UnpackedPolicy {
  const what = `policies/${opts.name}`;
  const payload = unwrapAndVerify(file, opts.publicKey, what);
  let msg: hexrepo.policy.Policy;
  try {
    msg = hexrepo.policy.Policy.decode(payload);
  } catch (err) {
    throw new HexrepoError('REGISTRY_CORRUPT', `${what} has a signed payload that is not a valid Policy: ${(err as Error).message}`, { hint: 'rebuild it with "hexrepo build"' }, { cause: err });
  }
  if (msg.repository !== opts.repository) {
    throw new HexrepoError('REGISTRY_BAD_REPO_NAME', `${what} was signed for repository "${msg.repository}", not "${opts.repository}"`, {
      hint: `HEX_POLICY must name the repository as the policy does: HEX_POLICY=${msg.repository}/${opts.name}`,
      actual: msg.repository,
      expected: opts.repository,
    });
  }
  if (msg.name !== opts.name) throw new HexrepoError('REGISTRY_BAD_PACKAGE_NAME', `${what} holds the policy "${msg.name}"`, { hint: 'rebuild the registry with "hexrepo build"', actual: msg.name, expected: opts.name });
  let skippedOverrides = 0;
  // Decoded messages are instances, so every field has its (default) value; hasOwn tells set from default.
  const repositories = (msg.repositories as hexrepo.policy.RepositoryPolicy[]).map((r): RepositoryPolicy => {
    const x = (r.restriction ?? null) as hexrepo.policy.Restriction | null;
    const restriction: NonNullable<RepositoryPolicy['restriction']> = {};
    if (x && Object.hasOwn(x, 'advisoryMinSeverity')) {
      const s = SEVERITY_NAMES[x.advisoryMinSeverity];
      if (s === undefined) throw corrupt(what, `has an unknown advisory severity ${x.advisoryMinSeverity}`);
      restriction.minSeverity = s;
    }
    if (x && x.retirementReasons.length > 0) {
      restriction.retirementReasons = x.retirementReasons.map((v) => {
        const reason = REASON_NAMES[v];
        if (reason === undefined) throw corrupt(what, `has an unknown retirement reason ${v}`);
        return reason;
      });
    }
    if (x && Object.hasOwn(x, 'cooldown')) restriction.cooldown = x.cooldown;
    const overrides: PolicyOverride[] = [];
    for (const o of r.overrides as hexrepo.policy.Override[]) {
      const action = ACTION_NAMES[o.action];
      // Hex ignores override actions it does not know (and warns); so does this reader.
      if (action === undefined) {
        skippedOverrides++;
        continue;
      }
      overrides.push({
        action,
        package: o.ref.package,
        ...(typeof o.ref.requirement === 'string' && Object.hasOwn(o.ref, 'requirement') ? { requirement: o.ref.requirement } : {}),
        ...(Object.hasOwn(o, 'advisoryId') ? { advisoryId: o.advisoryId } : {}),
        ...(Object.hasOwn(o, 'retirementReason') && REASON_NAMES[o.retirementReason] !== undefined ? { retirementReason: REASON_NAMES[o.retirementReason]! } : {}),
        ...(Object.hasOwn(o, 'comment') ? { comment: o.comment } : {}),
      });
    }
    return { repository: r.repository, ...(x ? { restriction } : {}), overrides };
  });
  return {
    repository: msg.repository,
    name: msg.name,
    ...(Object.hasOwn(msg, 'description') ? { description: msg.description } : {}),
    // Unknown visibility values are PRIVATE (policy.proto's fail-closed rule).
    visibility: msg.visibility === hexrepo.policy.Visibility.VISIBILITY_PUBLIC ? 'public' : 'private',
    repositories,
    skippedOverrides,
  };
}
