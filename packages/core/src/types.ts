import type { Advisory } from './advisory.js';

/** A dependency of a release, normalised from either `requirements` shape of metadata.config. */
export interface Dependency {
  /** Package name of the dependency. */
  package: string;
  /** Elixir-style requirement, e.g. `~> 1.0`. */
  requirement: string;
  /** True for an optional dependency. */
  optional: boolean;
  /** OTP application name (hex_core requires it; equals `package` unless renamed). */
  app: string;
  /** Repository named in the metadata, if any. Absent means "not said" (see the build's policy). */
  repository?: string;
}

/** Retirement reasons, with the protobuf enum values of `RetirementReason`. */
export const RETIREMENT_REASONS = { other: 0, invalid: 1, security: 2, deprecated: 3, renamed: 4 } as const;
export type RetirementReasonName = keyof typeof RETIREMENT_REASONS;

/**
 * True for one of the five retirement reasons. An own-property check: `reason in RETIREMENT_REASONS`
 * also accepts `toString`, `constructor`, `__proto__` and the rest of Object.prototype.
 */
export function isRetirementReason(reason: unknown): reason is RetirementReasonName {
  return typeof reason === 'string' && Object.hasOwn(RETIREMENT_REASONS, reason);
}

export interface Retirement {
  reason: RetirementReasonName;
  message?: string;
}

/** What the registry needs to know about one release, as read from its tarball. */
export interface ReleaseFacts {
  name: string;
  version: string;
  /** SHA-256 of VERSION ‖ metadata.config ‖ contents.tar.gz (32 bytes). */
  innerChecksum: Uint8Array;
  /** SHA-256 of the whole tarball file (32 bytes). */
  outerChecksum: Uint8Array;
  dependencies: Dependency[];
}

/** A release as it appears in `packages/NAME`: tarball facts plus repository-side state. */
export interface RegistryRelease extends ReleaseFacts {
  retired?: Retirement;
  /** Publish time in whole seconds since the epoch. */
  publishedAt?: number;
  /** Security advisories affecting this release (`Package.advisories` + `Release.advisory_indexes`). */
  advisories?: Advisory[];
}
