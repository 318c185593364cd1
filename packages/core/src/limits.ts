/** Size limits applied to every tarball hexrepo reads or writes. */
export interface TarballLimits {
  /**
   * Largest accepted tarball file, in bytes.
   * @default 8 MiB — the limit of hex_core 0.7.1 (rebar3 3.19) and Hex ≤ 2.0, so every accepted
   * package can be installed by every client.
   */
  maxTarballSize: number;
  /**
   * Largest accepted uncompressed size of contents.tar.gz, in bytes.
   * @default 64 MiB — the same clients' limit.
   */
  maxUncompressedSize: number;
  /** Largest metadata.config, in bytes. @default 1 MiB (hex_core ≥ 0.16). */
  maxMetadataSize: number;
  /** Deepest nesting of terms in metadata.config. @default 32 */
  maxTermDepth: number;
}

export const MiB = 1024 * 1024;

export const DEFAULT_LIMITS: Readonly<TarballLimits> = Object.freeze({
  maxTarballSize: 8 * MiB,
  maxUncompressedSize: 64 * MiB,
  maxMetadataSize: 1 * MiB,
  maxTermDepth: 32,
});

/** Parse a size such as `8MiB`, `512KiB`, `1048576` into bytes; null when malformed. */
export function parseSize(text: string): number | null {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(b|kib|kb|mib|mb|gib|gb)?\s*$/i.exec(text);
  if (!m) return null;
  const unit = (m[2] ?? 'b').toLowerCase();
  const mult: Record<string, number> = { b: 1, kib: 1024, kb: 1000, mib: MiB, mb: 1e6, gib: 1024 * MiB, gb: 1e9 };
  return Math.floor(Number(m[1]) * mult[unit]!);
}
