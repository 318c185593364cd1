/**
 * Every failure hexrepo reports to a user carries one of these stable codes.
 * Codes are part of the public contract (scripts match on them in `--json` output):
 * add new ones, never rename or reuse one.
 */
export const ERROR_CODES = {
  // tarball: outer archive
  TAR_CORRUPT: 'the file is not a valid tar archive',
  TAR_TOO_BIG: 'the tarball exceeds the compressed size limit',
  TAR_UNCOMPRESSED_TOO_BIG: 'the package contents exceed the uncompressed size limit',
  TAR_MISSING_MEMBER: 'a required member of the tarball is missing',
  TAR_EXTRA_MEMBER: 'the tarball has a member that Hex clients reject',
  TAR_DUPLICATE_MEMBER: 'a member appears twice in the tarball',
  TAR_BAD_VERSION: 'the VERSION member is not "3"',
  TAR_BAD_CHECKSUM_FORMAT: 'the CHECKSUM member is not 64 hex characters',
  TAR_CHECKSUM_MISMATCH: 'the inner checksum does not match the tarball contents',
  TAR_MEMBER_TOO_BIG: 'a metadata member exceeds its size limit',
  // tarball: contents.tar.gz
  CONTENTS_CORRUPT: 'contents.tar.gz is not a valid gzip-compressed tar archive',
  CONTENTS_UNSAFE_PATH: 'contents.tar.gz holds a path outside the package',
  CONTENTS_UNSAFE_LINK: 'contents.tar.gz holds a link pointing outside the package',
  CONTENTS_UNSUPPORTED_ENTRY: 'contents.tar.gz holds an entry type Hex does not support',
  // metadata.config
  TERM_SYNTAX: 'metadata.config is not valid Erlang term syntax',
  TERM_TOO_DEEP: 'metadata.config nests terms too deeply',
  TERM_TOO_LARGE: 'metadata.config is too large',
  TERM_UNSUPPORTED: 'metadata.config uses a term Hex does not allow',
  METADATA_INVALID: 'metadata.config is missing or has a malformed field',
  METADATA_BAD_NAME: 'the package name is not valid',
  METADATA_BAD_VERSION: 'the version is not valid SemVer',
  METADATA_BAD_REQUIREMENTS: 'the requirements field is malformed',
  // build inputs
  TARBALL_NAME_MISMATCH: 'the tarball file name disagrees with its metadata',
  DUPLICATE_RELEASE: 'two tarballs hold the same package version',
  BUILD_INVALID_INPUT: 'one or more tarballs are invalid; nothing was written',
  BUILD_CACHE_INVALID: 'the build cache could not be used',
  // registry files and keys
  REGISTRY_CORRUPT: 'a registry file could not be decoded',
  REGISTRY_BAD_SIGNATURE: 'a registry file signature does not verify',
  REGISTRY_BAD_REPO_NAME: 'a registry file names another repository',
  REGISTRY_BAD_PACKAGE_NAME: 'packages/NAME names another package',
  REGISTRY_MISSING: 'a registry file is missing',
  REGISTRY_CHECKSUM_MISMATCH: 'a tarball does not match the outer checksum in the registry',
  KEY_INVALID: 'the key file is not a usable RSA key',
  KEY_MISMATCH: 'the public key does not belong to the private key',
  KEY_UNSAFE_LOCATION: 'the private key is inside a served folder',
  // storage and files
  STORAGE_CONFLICT: 'a conditional write lost a race',
  STORAGE_IO: 'a storage operation failed',
  PATH_UNSAFE: 'a path would reach outside the repository',
  NOT_FOUND: 'the requested item does not exist',
  ALREADY_EXISTS: 'the target already exists',
  // user input
  USAGE: 'the command was used incorrectly',
  CONFIG_INVALID: 'a setting is invalid',
  INTERNAL: 'an unexpected internal error',
  // appended (never reorder or rename the codes above)
  CONTENTS_DUPLICATE_PATH: 'two package files have the same path, or a file is also used as a folder',
  AUTH_INVALID: 'the server did not accept the credentials (missing, unknown or revoked)',
  PERMISSION_DENIED: 'the credentials are valid but do not allow this action',
  RATE_LIMITED: 'the server asks to retry later (too many requests)',
  SERVER_ERROR: 'the server failed to handle the request, or cannot do it as configured',
  NETWORK_ERROR: 'the server could not be reached',
  REQUEST_REJECTED: 'the server rejected the request as malformed',
  STORAGE_FULL: 'the storage is out of space (disk full or quota exhausted); the write was not applied',
  STORAGE_LOCKED: 'another writer held the write lock for too long; the write was not applied',
  RETIREMENT_INVALID: 'the retirement reason is unknown, or its message is not 3 to 140 characters',
  OWNERSHIP_INVALID: 'the ownership change is not allowed (unknown level, not an owner, or the last owner)',
  ADVISORY_INVALID: 'a security advisory is incomplete or malformed (id, summary, severity, versions, URL)',
  POLICY_INVALID: 'a dependency policy is one Mix would reject or misread (name, repository, severity, reason, cooldown, requirement)',
  REQUIREMENT_INVALID: 'a version requirement is not valid Elixir requirement syntax',
  UPSTREAM_UNAVAILABLE: 'the upstream of a mirror could not be reached or answered with an error, and nothing is cached',
  UPSTREAM_TIMEOUT: 'the upstream of a mirror did not answer in time, and nothing is cached',
  MIRROR_READ_ONLY: 'a mirror repository is read-only: it serves what its upstream publishes',
  LOCKFILE_INVALID: 'a mix.lock or rebar.lock could not be read as lockfile data',
  BUNDLE_INVALID: 'a mirror bundle is malformed, or an object in it does not verify; nothing was imported',
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

/** The one error class of hexrepo: a stable code, a message for humans, details for tools. */
export class HexrepoError extends Error {
  override readonly name = 'HexrepoError';
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details: Readonly<Record<string, unknown>> = {},
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }

  /** A copy with more context (e.g. the file name) merged into the details and prefixed to the message. */
  withContext(prefix: string, details: Record<string, unknown> = {}): HexrepoError {
    return new HexrepoError(this.code, `${prefix}: ${this.message}`, { ...this.details, ...details }, { cause: this.cause });
  }
}

/** True for a HexrepoError, optionally of one code. */
export function isHexrepoError(err: unknown, code?: ErrorCode): err is HexrepoError {
  return err instanceof HexrepoError && (code === undefined || err.code === code);
}

/**
 * The one formatter used by the CLI, TUI and logs: `error[CODE]: message` plus a hint line when the
 * details carry one. Unknown errors are shown as INTERNAL with their message (never a stack trace
 * unless `stack` is asked for).
 */
export function formatError(err: unknown, opts: { stack?: boolean } = {}): string {
  if (err instanceof HexrepoError) {
    const hint = typeof err.details.hint === 'string' ? `\n  hint: ${err.details.hint}` : '';
    return `error[${err.code}]: ${err.message}${hint}`;
  }
  const message = err instanceof Error ? err.message : String(err);
  const stack = opts.stack && err instanceof Error && err.stack ? `\n${err.stack}` : '';
  return `error[INTERNAL]: ${message}${stack}`;
}

/** A JSON-safe view of an error for `--json` output. */
export function errorToJson(err: unknown): { code: ErrorCode; message: string; details: Record<string, unknown> } {
  if (err instanceof HexrepoError) {
    const details: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(err.details)) details[k] = v instanceof Uint8Array ? Buffer.from(v).toString('hex') : v;
    return { code: err.code, message: err.message, details };
  }
  return { code: 'INTERNAL', message: err instanceof Error ? err.message : String(err), details: {} };
}
