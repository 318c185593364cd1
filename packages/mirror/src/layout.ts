/**
 * The mirror store layout (WAVE3 contract): objects under their upstream paths, verbatim; freshness
 * metadata under `_hexrepo/mirror/meta/<path>.json`; pins under `_hexrepo/mirror/pins/<id>.json`;
 * and the upstream configuration with hex.pm's defaults.
 */
import type { KeyObject } from 'node:crypto';
import { HexrepoError } from '@hexrepo/core';
import { loadPublicKey } from '@hexrepo/registry';
import type { BlobStore } from '@hexrepo/storage';

/** hex.pm's repository URL. */
export const HEXPM_URL = 'https://repo.hex.pm';
/** hex.pm's repository name, signed into every registry file it serves. */
export const HEXPM_REPOSITORY = 'hexpm';
/** hex.pm's public key, as built into Hex (hexpm/hex lib/hex/repo.ex) and rebar3 (hex_core). */
export const HEXPM_PUBLIC_KEY = `-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEApqREcFDt5vV21JVe2QNB
Edvzk6w36aNFhVGWN5toNJRjRJ6m4hIuG4KaXtDWVLjnvct6MYMfqhC79HAGwyF+
IqR6Q6a5bbFSsImgBJwz1oadoVKD6ZNetAuCIK84cjMrEFRkELtEIPNHblCzUkkM
3rS9+DPlnfG8hBvGi6tvQIuZmXGCxF/73hU0/MyGhbmEjIKRtG6b0sJYKelRLTPW
XgK7s5pESgiwf2YC/2MGDXjAJfpfCd0RpLdvd4eRiXtVlE9qO9bND94E7PgQ/xqZ
J1i2xWFndWa6nfFnRxZmCStCOZWYYPlaxr+FZceFbpMwzTNs4g3d4tLNUcbKAIH4
0wIDAQAB
-----END PUBLIC KEY-----
`;

/** The upstream as configured (`"mirror": {...}` in hexrepo.json); every field optional, defaults are hex.pm. */
export interface UpstreamSettings {
  /** @default "https://repo.hex.pm" */
  url?: string;
  /** @default "hexpm" */
  repository?: string;
  /** PEM text of the upstream's public key (the caller reads a path into text). @default hex.pm's key */
  publicKey?: string;
}

/** A resolved upstream: where it is and what its answers must verify against. */
export interface Upstream {
  /** Base URL without a trailing slash. */
  url: string;
  repository: string;
  /** The PEM text (served as the mirror's `public_key`). */
  publicKeyPem: string;
  publicKey: KeyObject;
}

/** Resolve upstream settings to an Upstream, filling in hex.pm's defaults. Throws CONFIG_INVALID on a bad URL or key. */
export function resolveUpstream(settings: UpstreamSettings = {}): Upstream {
  const url = (settings.url ?? HEXPM_URL).replace(/\/+$/, '');
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new HexrepoError('CONFIG_INVALID', `mirror.url ${JSON.stringify(settings.url)} is not a URL`, { setting: 'mirror.url', hint: 'use the repository URL, e.g. https://repo.hex.pm' });
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new HexrepoError('CONFIG_INVALID', `mirror.url ${JSON.stringify(url)} must be http:// or https://`, { setting: 'mirror.url' });
  }
  const repository = settings.repository ?? HEXPM_REPOSITORY;
  const publicKeyPem = settings.publicKey ?? (settings.url === undefined || url === HEXPM_URL ? HEXPM_PUBLIC_KEY : undefined);
  if (publicKeyPem === undefined) {
    throw new HexrepoError('CONFIG_INVALID', `mirror.publicKey is required for the upstream ${url} (hex.pm's key is only assumed for ${HEXPM_URL})`, {
      setting: 'mirror.publicKey',
      hint: 'set "publicKey" to the upstream\'s public_key file (its PEM text or a path to it)',
    });
  }
  let publicKey: KeyObject;
  try {
    publicKey = loadPublicKey(publicKeyPem);
  } catch (err) {
    throw err instanceof HexrepoError ? err.withContext('mirror.publicKey', { setting: 'mirror.publicKey' }) : err;
  }
  return { url, repository, publicKeyPem, publicKey };
}

/** What an upstream path is. Package names never hold "-", so `NAME-VERSION` splits at the first one. */
export type MirrorPath = { kind: 'names' | 'versions' | 'installs' | 'public_key'; path: string } | { kind: 'package'; path: string; name: string } | { kind: 'tarball' | 'docs'; path: string; name: string; version: string };

const NAME_RE = /^[a-z][a-z0-9_]*$/;
const VERSION_RE = /^[0-9]+\.[0-9]+\.[0-9]+(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$/;

/** Classify a path of the mirror (no leading slash); null for a path the mirror does not serve. */
export function parseMirrorPath(path: string): MirrorPath | null {
  if (path === 'names' || path === 'versions' || path === 'public_key') return { kind: path, path };
  if (path === 'installs/hex-1.x.csv') return { kind: 'installs', path };
  let m = /^packages\/([^/]+)$/.exec(path);
  if (m) return NAME_RE.test(m[1]!) ? { kind: 'package', path, name: m[1]! } : null;
  m = /^tarballs\/([a-z][a-z0-9_]*)-([^/]+)\.tar$/.exec(path);
  if (m) return VERSION_RE.test(m[2]!) ? { kind: 'tarball', path, name: m[1]!, version: m[2]! } : null;
  m = /^docs\/([a-z][a-z0-9_]*)-([^/]+)\.tar\.gz$/.exec(path);
  if (m) return VERSION_RE.test(m[2]!) ? { kind: 'docs', path, name: m[1]!, version: m[2]! } : null;
  return null;
}

/** `packages/NAME`. */
export function packageKey(name: string): string {
  return `packages/${name}`;
}

/** `tarballs/NAME-VERSION.tar`. */
export function tarballKey(name: string, version: string): string {
  return `tarballs/${name}-${version}.tar`;
}

/** `docs/NAME-VERSION.tar.gz`. */
export function docsKey(name: string, version: string): string {
  return `docs/${name}-${version}.tar.gz`;
}

export const MIRROR_STATE_PREFIX = '_hexrepo/mirror/';
export const META_PREFIX = `${MIRROR_STATE_PREFIX}meta/`;
export const PINS_PREFIX = `${MIRROR_STATE_PREFIX}pins/`;

/** Freshness of one stored object, written after the object. */
export interface MirrorMeta {
  /** The upstream's ETag, for If-None-Match. */
  etag: string | null;
  /** When the upstream last confirmed the object (ms since the epoch). */
  fetchedAt: number;
  /** Lowercase hex SHA-256 of the stored bytes. */
  sha256: string;
}

/** A set of objects eviction must keep. */
export interface MirrorPin {
  created: number;
  source: string;
  paths: string[];
}

/** `_hexrepo/mirror/meta/<path>.json`. */
export function metaKey(path: string): string {
  return `${META_PREFIX}${path}.json`;
}

/** `_hexrepo/mirror/pins/<id>.json`. */
export function pinKey(id: string): string {
  return `${PINS_PREFIX}${id}.json`;
}

/** Parse a meta file; null when it is not a valid one (the object is then treated as stale). */
export function parseMeta(bytes: Uint8Array): MirrorMeta | null {
  const raw = jsonObject(bytes);
  if (!raw) return null;
  const { etag, fetchedAt, sha256 } = raw;
  if ((etag !== null && typeof etag !== 'string') || typeof fetchedAt !== 'number' || typeof sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(sha256)) return null;
  return { etag, fetchedAt, sha256 };
}

/** Read the meta of `path`; null when absent or invalid. */
export async function readMeta(store: BlobStore, path: string): Promise<MirrorMeta | null> {
  const obj = await store.get(metaKey(path));
  return obj ? parseMeta(obj.body) : null;
}

/** Write the meta of `path` (after the object itself). Last writer wins: every writer verified what it describes. */
export async function writeMeta(store: BlobStore, path: string, meta: MirrorMeta): Promise<void> {
  await store.put(metaKey(path), new TextEncoder().encode(JSON.stringify(meta)), { contentType: 'application/json' });
}

/** Parse a pin file; null when it is not a valid one. */
export function parsePin(bytes: Uint8Array): MirrorPin | null {
  const raw = jsonObject(bytes);
  if (!raw) return null;
  const { created, source, paths } = raw;
  if (typeof created !== 'number' || typeof source !== 'string' || !Array.isArray(paths) || !paths.every((p) => typeof p === 'string')) return null;
  return { created, source, paths: paths as string[] };
}

/** The JSON object in `bytes`; null when they are not JSON or not an object. */
function jsonObject(bytes: Uint8Array): Record<string, unknown> | null {
  let raw: unknown;
  try {
    raw = JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    return null;
  }
  return typeof raw === 'object' && raw !== null ? (raw as Record<string, unknown>) : null;
}
