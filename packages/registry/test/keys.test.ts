import { spawnSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { fingerprint, generateKeyPair, keysMatch, loadPrivateKey, loadPublicKey, publicKeyPem } from '../src/index.js';
import { GOLDEN_FINGERPRINT, GOLDEN_KEY_PEM, goldenKey, goldenPublicKey } from './helpers.js';

const code = (fn: () => unknown): string | undefined => {
  try {
    fn();
  } catch (err) {
    return (err as { code?: string }).code;
  }
  return undefined;
};

describe('key loading', () => {
  it('loads PKCS#8 and PKCS#1 private keys to the same key', () => {
    expect(GOLDEN_KEY_PEM).toContain('BEGIN PRIVATE KEY');
    const pkcs1 = goldenKey.export({ type: 'pkcs1', format: 'pem' }) as string;
    expect(pkcs1).toContain('BEGIN RSA PRIVATE KEY');
    expect(keysMatch(loadPrivateKey(pkcs1), goldenPublicKey)).toBe(true);
  });

  it('loads PKCS#1 and SPKI public keys', () => {
    const spki = goldenPublicKey.export({ type: 'spki', format: 'pem' }) as string;
    expect(spki).toContain('BEGIN PUBLIC KEY');
    expect(keysMatch(goldenKey, loadPublicKey(spki))).toBe(true);
    expect(keysMatch(goldenKey, loadPublicKey(publicKeyPem(goldenKey)))).toBe(true);
  });

  it('refuses what Hex cannot use, with KEY_INVALID', () => {
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const encrypted = goldenKey.export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: 'x' }) as string;
    expect(code(() => loadPrivateKey(ec.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string))).toBe('KEY_INVALID');
    expect(code(() => loadPrivateKey(encrypted))).toBe('KEY_INVALID');
    expect(code(() => loadPrivateKey(GOLDEN_KEY_PEM + GOLDEN_KEY_PEM))).toBe('KEY_INVALID');
    expect(code(() => loadPrivateKey(publicKeyPem(goldenKey)))).toBe('KEY_INVALID');
    expect(code(() => loadPrivateKey('not a key'))).toBe('KEY_INVALID');
    expect(code(() => loadPrivateKey('-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n'))).toBe('KEY_INVALID');
    expect(code(() => loadPublicKey(GOLDEN_KEY_PEM))).toBe('KEY_INVALID');
    expect(code(() => loadPublicKey(ec.publicKey.export({ type: 'spki', format: 'pem' }) as string))).toBe('KEY_INVALID');
  });

  it('keysMatch tells keys apart', async () => {
    const other = await generateKeyPair(1024);
    expect(keysMatch(other.privateKey, goldenPublicKey)).toBe(false);
  });
});

describe('fingerprint', () => {
  it('is the OpenSSH SHA256 fingerprint (fixed vector from ssh-keygen -lf)', () => {
    expect(fingerprint(goldenKey)).toBe(GOLDEN_FINGERPRINT);
    expect(fingerprint(goldenPublicKey)).toBe(GOLDEN_FINGERPRINT);
  });

  const sshKeygen = spawnSync('ssh-keygen', ['-?'], { stdio: 'ignore' }).error ? 'ssh-keygen not installed' : null;
  it.skipIf(sshKeygen)('agrees with ssh-keygen on fresh keys, including a high-bit modulus', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hexrepo-fp-'));
    for (let i = 0; i < 3; i++) {
      const { privateKey, privateKeyPem } = await generateKeyPair(1024);
      const file = join(dir, `k${i}.pem`);
      writeFileSync(file, privateKeyPem);
      chmodSync(file, 0o600);
      const out = spawnSync('ssh-keygen', ['-lf', file], { encoding: 'utf8' }).stdout;
      expect(out.split(' ')[1]).toBe(fingerprint(privateKey));
    }
  });
});

describe('generateKeyPair', () => {
  it('makes a 2048-bit RSA key whose PEMs load back', async () => {
    const pair = await generateKeyPair();
    expect(pair.privateKey.asymmetricKeyDetails?.modulusLength).toBe(2048);
    const priv = loadPrivateKey(pair.privateKeyPem);
    expect(keysMatch(priv, loadPublicKey(pair.publicKeyPem))).toBe(true);
    expect(pair.publicKeyPem).toMatch(/^-----BEGIN RSA PUBLIC KEY-----\n[\s\S]+-----END RSA PUBLIC KEY-----\n\n$/);
  });
});
