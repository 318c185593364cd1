/** The outer layer of every registry file: `gzip(Signed{payload, signature})` (HEX_SPEC.md §3). */
import { sign, verify, type KeyObject } from 'node:crypto';
import { gunzipSync } from 'node:zlib';
import { HexrepoError } from '@hexrepo/core';
import { gzipLikeErlang } from './gzip.js';
import { hexrepo } from './generated/registry.js';

/**
 * Registry files are small (hex.pm's largest `versions` is a few MiB); a file that inflates past
 * this is refused rather than held in memory.
 */
export const MAX_REGISTRY_FILE_SIZE = 256 * 1024 * 1024;

/**
 * Sign `payload` (RSASSA-PKCS1-v1_5 over SHA-512, as hex_core's `public_key:sign/3`), wrap it in
 * `Signed` and gzip it the way Erlang's `zlib:gzip/1` does (stock zlib, default level, mtime 0,
 * OS 3), so output is byte-identical to `mix hex.registry build` on every platform.
 */
export function signAndWrap(payload: Uint8Array, privateKey: KeyObject): Uint8Array {
  const signature = sign('sha512', payload, privateKey);
  const signed = hexrepo.signed.Signed.encode({ payload, signature }).finish();
  return gzipLikeErlang(signed);
}

/** Gunzip and decode `Signed`, verify the signature, and return the payload. */
export function unwrapAndVerify(file: Uint8Array, publicKey: KeyObject, what = 'registry file'): Uint8Array {
  let signedBytes: Uint8Array;
  try {
    signedBytes = gunzipSync(file, { maxOutputLength: MAX_REGISTRY_FILE_SIZE });
  } catch (err) {
    throw new HexrepoError('REGISTRY_CORRUPT', `${what} is not gzip data: ${(err as Error).message}`, { hint: 'rebuild it with "hexrepo build"' }, { cause: err });
  }
  let signed: hexrepo.signed.Signed;
  try {
    signed = hexrepo.signed.Signed.decode(signedBytes);
  } catch (err) {
    throw new HexrepoError('REGISTRY_CORRUPT', `${what} is not a signed registry message: ${(err as Error).message}`, { hint: 'rebuild it with "hexrepo build"' }, { cause: err });
  }
  if (!signed.signature || signed.signature.byteLength === 0) {
    throw new HexrepoError('REGISTRY_BAD_SIGNATURE', `${what} carries no signature; verifying clients reject it`, { hint: 'rebuild it with "hexrepo build"' });
  }
  if (!verify('sha512', signed.payload, publicKey, signed.signature)) {
    throw new HexrepoError('REGISTRY_BAD_SIGNATURE', `${what} is not signed by the given key`, {
      hint: 'check that the public key belongs to the private key the registry was built with, or rebuild with "hexrepo build"',
    });
  }
  return signed.payload;
}
