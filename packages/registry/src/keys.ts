/** RSA keys as Hex uses them: loading, the `public_key` file, and the `SHA256:` fingerprint. */
import { Buffer } from 'node:buffer';
import { createHash, createPrivateKey, createPublicKey, generateKeyPair as generateKeyPairCb, type KeyObject } from 'node:crypto';
import { promisify } from 'node:util';
import { HexrepoError } from '@hexrepo/core';

const generateKeyPairAsync = promisify(generateKeyPairCb);

function pemText(pem: string | Uint8Array): string {
  return typeof pem === 'string' ? pem : new TextDecoder().decode(pem);
}

/** The labels of the PEM blocks in `text` (`RSA PRIVATE KEY`, `PUBLIC KEY`, …). */
function pemLabels(text: string): string[] {
  return [...text.matchAll(/-----BEGIN ([A-Z0-9 ]+)-----/g)].map((m) => m[1]!);
}

function onePemBlock(text: string, what: string): string {
  const labels = pemLabels(text);
  if (labels.length !== 1) {
    throw new HexrepoError('KEY_INVALID', `the ${what} must hold exactly one PEM block, found ${labels.length}`, {
      hint: what === 'private key' ? 'create one with "hexrepo init" or "openssl genrsa -out private_key.pem 2048"' : 'use the public_key file that "hexrepo build" writes',
    });
  }
  return labels[0]!;
}

function assertRsa(key: KeyObject, what: string): KeyObject {
  if (key.asymmetricKeyType !== 'rsa') {
    throw new HexrepoError('KEY_INVALID', `the ${what} is a ${key.asymmetricKeyType ?? 'non-asymmetric'} key; Hex signs registries with RSA keys only`, {
      hint: 'create an RSA key with "hexrepo init" or "openssl genrsa -out private_key.pem 2048"',
    });
  }
  return key;
}

/** Decode PEM text with Node, as an RSA key of the given kind. */
function decode(text: string, what: 'private key' | 'public key', create: (input: { key: string; format: 'pem' }) => KeyObject): KeyObject {
  let key: KeyObject;
  try {
    key = create({ key: text, format: 'pem' });
  } catch (err) {
    throw new HexrepoError('KEY_INVALID', `the ${what} could not be decoded: ${(err as Error).message}`, {}, { cause: err });
  }
  return assertRsa(key, what);
}

/**
 * Load an unencrypted RSA private key, PKCS#1 (`BEGIN RSA PRIVATE KEY`) or PKCS#8
 * (`BEGIN PRIVATE KEY`): the two forms `mix hex.registry build` accepts.
 */
export function loadPrivateKey(pem: string | Uint8Array): KeyObject {
  const text = pemText(pem);
  const label = onePemBlock(text, 'private key');
  if (label === 'ENCRYPTED PRIVATE KEY' || /Proc-Type: 4,ENCRYPTED/.test(text)) {
    throw new HexrepoError('KEY_INVALID', 'the private key is encrypted; Hex tools need an unencrypted key', {
      hint: 'decrypt it with "openssl rsa -in KEY -out private_key.pem" and keep the result out of any served folder',
    });
  }
  if (label !== 'RSA PRIVATE KEY' && label !== 'PRIVATE KEY') {
    throw new HexrepoError('KEY_INVALID', `expected a private key, found a PEM block "${label}"`, { hint: 'pass the private key file, not the public one' });
  }
  return decode(text, 'private key', createPrivateKey);
}

/**
 * Load an RSA public key, PKCS#1 (`BEGIN RSA PUBLIC KEY`, what `public_key` files hold) or SPKI
 * (`BEGIN PUBLIC KEY`, the form of hex.pm's own key).
 */
export function loadPublicKey(pem: string | Uint8Array): KeyObject {
  const text = pemText(pem);
  const label = onePemBlock(text, 'public key');
  if (label !== 'RSA PUBLIC KEY' && label !== 'PUBLIC KEY') {
    throw new HexrepoError('KEY_INVALID', `expected a public key, found a PEM block "${label}"`, { hint: 'pass the public_key file of the repository' });
  }
  return decode(text, 'public key', createPublicKey);
}

function publicOf(key: KeyObject): KeyObject {
  return key.type === 'private' ? createPublicKey(key) : key;
}

/**
 * The `public_key` file as `mix hex.registry build` writes it: PKCS#1 PEM followed by a blank line
 * (Erlang's PEM encoder), so a hexrepo repository and a mix-built one have identical files.
 */
export function publicKeyPem(key: KeyObject): string {
  return `${publicOf(key).export({ type: 'pkcs1', format: 'pem' }) as string}\n`;
}

/** True when the public key belongs to the private key. */
export function keysMatch(privateKey: KeyObject, publicKey: KeyObject): boolean {
  return publicOf(privateKey)
    .export({ type: 'spki', format: 'der' })
    .equals(publicOf(publicKey).export({ type: 'spki', format: 'der' }));
}

function sshString(bytes: Uint8Array): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(bytes.byteLength);
  return Buffer.concat([len, bytes]);
}

function sshMpint(unsigned: Buffer): Buffer {
  let start = 0;
  while (start < unsigned.length - 1 && unsigned[start] === 0) start++;
  const trimmed = unsigned.subarray(start);
  return sshString((trimmed[0]! & 0x80) !== 0 ? Buffer.concat([Buffer.of(0), trimmed]) : trimmed);
}

/**
 * OpenSSH-style fingerprint, `SHA256:` + unpadded base64 of SHA-256 over the ssh-rsa key blob:
 * what `mix hex.repo add --fetch-public-key` and `mix hex.repo list` show (and `ssh-keygen -lf`).
 * Takes a private or a public key.
 */
export function fingerprint(key: KeyObject): string {
  const jwk = publicOf(key).export({ format: 'jwk' });
  if (typeof jwk.n !== 'string' || typeof jwk.e !== 'string') throw new HexrepoError('KEY_INVALID', 'not an RSA key');
  const blob = Buffer.concat([sshString(Buffer.from('ssh-rsa')), sshMpint(Buffer.from(jwk.e, 'base64url')), sshMpint(Buffer.from(jwk.n, 'base64url'))]);
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}

/** A fresh RSA key pair: PKCS#8 private PEM (as OpenSSL 3 writes) and the `public_key` file text. */
export async function generateKeyPair(bits = 2048): Promise<{ privateKey: KeyObject; privateKeyPem: string; publicKeyPem: string }> {
  const { privateKey } = await generateKeyPairAsync('rsa', { modulusLength: bits, publicExponent: 0x10001 });
  return { privateKey, privateKeyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, publicKeyPem: publicKeyPem(privateKey) };
}
