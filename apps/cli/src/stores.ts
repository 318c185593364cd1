/**
 * Store URLs: where a repository lives. `file:///abs/path` or a plain path is a local folder
 * (FsStore); `s3://bucket/prefix?region=…&endpoint=…` is an S3 bucket (S3Store; credentials from the
 * SDK's default chain: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE, an instance role...);
 * `gs://bucket/prefix?endpoint=…&project=…` is a Google Cloud Storage bucket (GcsStore; Application
 * Default Credentials).
 */
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { KeyObject } from 'node:crypto';
import { HexrepoError, isHexrepoError, type ProjectConfig, type TarballLimits } from '@hexrepo/core';
import { FsStore, type BlobStore } from '@hexrepo/storage';
import { usage } from './command.js';
import { loadSigningKey, readProject, repoSettings } from './project.js';

export const STORE_SCHEMES = ['file://', 's3://', 'gs://'] as const;

/** The scheme of a URL-looking string (`s3`, `gs`...), or null for a plain path. */
function schemeOf(url: string): string | null {
  const m = /^([a-zA-Z][a-zA-Z0-9+.-]*):/.exec(url);
  // A one-letter "scheme" is a Windows drive letter, i.e. a path.
  return m && m[1]!.length > 1 ? m[1]!.toLowerCase() : null;
}

function unsupported(url: string, why: string): HexrepoError {
  return new HexrepoError('CONFIG_INVALID', `unusable store URL ${JSON.stringify(url)}: ${why}`, {
    url,
    hint: `supported: ${STORE_SCHEMES.map((s) => `${s}…`).join(', ')} or a plain folder path (e.g. s3://bucket/prefix?region=eu-west-1, file:///srv/acme/public, ./public)`,
  });
}

/** Open the store a URL names. Nothing is read or written yet. */
export async function openStore(url: string, opts: { cwd: string }): Promise<BlobStore> {
  if (url === '') throw unsupported(url, 'empty');
  const scheme = schemeOf(url);
  if (scheme === null) return new FsStore(resolve(opts.cwd, url));
  if (scheme === 'file') {
    let path: string;
    try {
      path = fileURLToPath(url);
    } catch (err) {
      throw unsupported(url, `not an absolute file:// URL (${(err as Error).message})`);
    }
    return new FsStore(path);
  }
  if (scheme === 's3') {
    // The SDK warns once that its 2027 releases will need Node 22; the pinned version supports Node 20.
    process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
    // The cloud SDKs load only when a URL needs them (they cost every command's start-up otherwise).
    const { parseS3Url, S3Store } = await import('@hexrepo/storage-s3');
    return new S3Store(parseS3Url(url));
  }
  if (scheme === 'gs') {
    const { GcsStore, parseGcsUrl } = await import('@hexrepo/storage-gcs');
    return new GcsStore(parseGcsUrl(url));
  }
  throw unsupported(url, `the scheme "${scheme}:" is not supported`);
}

/** The local folder of a file store, or undefined for a remote one. */
export function localRoot(store: BlobStore): string | undefined {
  return store instanceof FsStore ? store.root : undefined;
}

export interface StoreRepo {
  store: BlobStore;
  name: string;
  keyPath: string | undefined;
  limits: TarballLimits;
  /** The project (hexrepo.json) found, if any. */
  project: { config: ProjectConfig; root: string } | null;
  /** Where local state (build cache) goes: the project folder, else the current folder. */
  stateBase: string;
}

/**
 * For `--store URL`: the store, plus name, key and limits from flags, falling back to the
 * hexrepo.json of DIR (when given) or of the current folder. The project's publicDir is not used.
 */
export async function resolveStoreRepo(cmd: string, cwd: string, url: string, positional: string | undefined, values: Record<string, unknown>, need: { key: boolean }): Promise<StoreRepo> {
  let project: StoreRepo['project'];
  if (positional !== undefined) {
    project = await readProject(resolve(cwd, positional));
    if (!project) throw usage(cmd, `with --store, DIR must be a folder holding hexrepo.json (${positional} has none); the repository itself is the store`);
  } else {
    // The current folder's hexrepo.json only fills in what the flags leave out; a host's (listing
    // several repositories) names no one repository, so the flags must say which.
    project = await readProject(cwd).catch((err: unknown) => {
      if (isHexrepoError(err, 'CONFIG_INVALID') && err.details.setting === 'repositories') return null;
      throw err;
    });
  }
  const store = await openStore(url, { cwd });
  const { name, keyPath, limits } = repoSettings(cmd, cwd, project, values, need);
  return { store, name, keyPath, limits, project, stateBase: project?.root ?? cwd };
}

/** Load the signing key for a store: never from inside a local store's folder. */
export function loadStoreSigningKey(keyPath: string, store: BlobStore): Promise<KeyObject> {
  // A remote store holds no local file, so any folder that cannot contain the key will do.
  return loadSigningKey(keyPath, localRoot(store) ?? join(keyPath, 'remote-store'));
}
