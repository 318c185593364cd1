/** The common part of bucket URLs (`s3://BUCKET/PREFIX?…`, `gs://BUCKET/PREFIX?…`). */
import { HexrepoError } from '@hexrepo/core';
import { assertSafeKey } from './keys.js';

export interface BucketUrl {
  bucket: string;
  /** '' or a safe key prefix without leading or trailing slash. */
  prefix: string;
  /** Query parameters, each checked against `known`. */
  params: Map<string, string>;
}

/**
 * Parse `SCHEME://BUCKET/PREFIX?k=v…`: a bucket is required, credentials never belong in the URL
 * (`credentialsHint` says where they do), the prefix must be a safe key (checked as written, before
 * URL() resolves `..` away), and only `known` parameters are accepted. Errors are CONFIG_INVALID.
 */
export function parseBucketUrl(url: string, scheme: string, known: readonly string[], credentialsHint: string): BucketUrl {
  const bad = (message: string, cause?: unknown): never => {
    throw new HexrepoError('CONFIG_INVALID', message, { url: url.replace(/\/\/[^@/]*@/, '//') }, cause ? { cause } : {});
  };
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return bad(`not a URL: ${JSON.stringify(url)}`);
  }
  if (u.protocol !== `${scheme}:`) bad(`not a ${scheme}:// URL: ${JSON.stringify(url)}`);
  const bucket = decodeURIComponent(u.hostname);
  if (!bucket) bad(`no bucket in ${JSON.stringify(url)}`);
  if (u.username || u.password) bad(`credentials do not belong in the ${scheme}:// URL; ${credentialsHint}`);
  const rawPath = new RegExp(`^${scheme}://[^/?#]*([^?#]*)`, 'i').exec(url)?.[1] ?? '';
  const prefix = decodeURIComponent(rawPath).replace(/^\/+|\/+$/g, '');
  if (prefix !== '') {
    try {
      assertSafeKey(prefix);
    } catch (err) {
      bad(`unusable prefix in ${JSON.stringify(url)}`, err);
    }
  }
  const params = new Map<string, string>();
  for (const [name, value] of u.searchParams) {
    if (!known.includes(name)) bad(`unknown ${scheme}:// URL parameter ${JSON.stringify(name)} (known: ${known.join(', ')})`);
    params.set(name, value);
  }
  return { bucket, prefix, params };
}

/** An `endpoint=` parameter: an http(s) URL. */
export function endpointParam(value: string, url: string): string {
  if (!/^https?:\/\/[^/]/.test(value)) throw new HexrepoError('CONFIG_INVALID', `endpoint must be an http(s) URL, got ${JSON.stringify(value)}`, { url });
  return value;
}

/** A store's key prefix inside its bucket: '' or a safe key ending in `/` (slashes around trimmed). */
export function bucketPrefix(prefix: string | undefined): string {
  const trimmed = (prefix ?? '').replace(/^\/+|\/+$/g, '');
  return trimmed === '' ? '' : `${assertSafeKey(trimmed)}/`;
}
