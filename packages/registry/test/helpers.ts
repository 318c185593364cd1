import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { loadPrivateKey, loadPublicKey } from '../src/index.js';

export const FIXTURES = fileURLToPath(new URL('../../../test-fixtures/', import.meta.url));
export const GOLDEN = `${FIXTURES}golden-acme/public/`;
export const GOLDEN_KEY_PEM = readFileSync(`${FIXTURES}golden-acme/test-only-rsa.pem`, 'utf8');
export const goldenKey = loadPrivateKey(GOLDEN_KEY_PEM);
export const goldenPublicKey = loadPublicKey(readFileSync(`${GOLDEN}public_key`));
/** `ssh-keygen -lf` on the golden test key. */
export const GOLDEN_FINGERPRINT = 'SHA256:JCzo2YPY42eJRmWjWOEBqRMMngLAg+Zha4G1NOrSH44';
export const GOLDEN_PACKAGES = ['bar', 'baz', 'foo', 'opt', 'pre', 'quux', 'qux', 'unicode_pkg'];
