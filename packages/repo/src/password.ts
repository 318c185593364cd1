/**
 * Password hashes for host users: scrypt (node:crypto) with a random salt per user and its cost
 * parameters kept in the hash, so they can be raised later without breaking stored hashes.
 * Format: `scrypt$N$r$p$SALT$HASH` (salt and hash base64url).
 */
import { randomBytes, scrypt as scryptCb, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import { HexrepoError } from '@hexrepo/core';

/**
 * Node's default cost (16 MiB, tens of milliseconds per check on an idle core): a server checks a
 * password once per client connection burst (Access caches successes), not per request.
 */
const PARAMS = { N: 2 ** 14, r: 8, p: 1 } as const;
const KEY_LENGTH = 32;
/** Shortest password `hexrepo user add` accepts (the config file's users need as many). */
export const MIN_PASSWORD_LENGTH = 8;

function scrypt(password: string, salt: Buffer, keylen: number, opts: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) => scryptCb(password, salt, keylen, opts, (err, key) => (err ? reject(err) : resolve(key))));
}

const maxmem = (N: number, r: number): number => 128 * N * r * 2;

/** A new hash of `password` with a fresh salt. */
export async function hashPassword(password: string): Promise<string> {
  if (password.length < MIN_PASSWORD_LENGTH) throw new HexrepoError('USAGE', `the password is too short: use at least ${MIN_PASSWORD_LENGTH} characters`);
  const salt = randomBytes(16);
  const { N, r, p } = PARAMS;
  const hash = await scrypt(password, salt, KEY_LENGTH, { N, r, p, maxmem: maxmem(N, r) });
  return `scrypt$${N}$${r}$${p}$${salt.toString('base64url')}$${hash.toString('base64url')}`;
}

/** True when `password` matches `stored` (compared in constant time); false for a malformed hash. */
export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const m = /^scrypt\$(\d+)\$(\d+)\$(\d+)\$([A-Za-z0-9_-]+)\$([A-Za-z0-9_-]+)$/.exec(stored);
  if (!m) return false;
  const [N, r, p] = [Number(m[1]), Number(m[2]), Number(m[3])];
  // Bounded, so a hand-edited file cannot make every login allocate gigabytes.
  if (N > 2 ** 20 || r > 32 || p > 16) return false;
  const expected = Buffer.from(m[5]!, 'base64url');
  if (expected.length < 16) return false;
  const actual = await scrypt(password, Buffer.from(m[4]!, 'base64url'), expected.length, { N, r, p, maxmem: maxmem(N, r) }).catch(() => null);
  return actual !== null && timingSafeEqual(actual, expected);
}
