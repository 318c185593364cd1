import { createHash } from 'node:crypto';
import { HexrepoError } from '@hexrepo/core';

/**
 * Checks a store key: relative, `/`-separated, no empty, `.` or `..` segment, no backslash or NUL,
 * and no segment starting with a dot (dotfiles are never part of a repository). Returns the key.
 */
export function assertSafeKey(key: string): string {
  const bad = (why: string): never => {
    throw new HexrepoError('PATH_UNSAFE', `refusing storage key ${JSON.stringify(key)}: ${why}`, { key });
  };
  if (key.length === 0) bad('empty key');
  if (key.length > 1024) bad('longer than 1024 characters');
  if (key.includes('\\') || key.includes('\0')) bad('backslash or NUL');
  if (key.startsWith('/')) bad('absolute path');
  for (const segment of key.split('/')) {
    if (segment === '' || segment === '.' || segment === '..') bad('empty, "." or ".." segment');
    if (segment.startsWith('.')) bad('dot segment (hidden files are not served or stored)');
  }
  return key;
}

/** Whether `assertSafeKey` accepts the key (for names found in a backend, which are skipped rather than refused). */
export function isSafeKey(key: string): boolean {
  try {
    assertSafeKey(key);
    return true;
  } catch {
    return false;
  }
}

/** The strong ETag hexrepo uses for content: a quoted SHA-256 prefix, identical on every backend. */
export function contentEtag(body: Uint8Array): string {
  return `"${createHash('sha256').update(body).digest('hex').slice(0, 40)}"`;
}
