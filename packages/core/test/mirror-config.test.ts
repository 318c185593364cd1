import { describe, expect, it } from 'vitest';
import { isHexrepoError, parseHostConfig } from '../src/index.js';

function refusal(raw: Record<string, unknown>): string {
  try {
    parseHostConfig(raw, 'hexrepo.json');
  } catch (err) {
    if (isHexrepoError(err, 'CONFIG_INVALID')) return err.message;
    throw err;
  }
  throw new Error('expected CONFIG_INVALID');
}

describe('parseHostConfig: mirror repositories', () => {
  it('accepts a mirror of hex.pm named hexpm with defaults, next to a private repository', () => {
    const host = parseHostConfig(
      {
        repositories: [
          { name: 'hexpm', mirror: {}, publicDir: 'mirror' },
          { name: 'acme', publicDir: 'acme/public', privateKey: 'acme/key.pem' },
        ],
      },
      'hexrepo.json',
    );
    expect(host.repositories[0]).toMatchObject({ name: 'hexpm', publicDir: 'mirror', mirror: { maxAge: 60, connectTimeout: 10, firstByteTimeout: 15 } });
    expect(host.repositories[0]!.mirror).not.toHaveProperty('url');
    expect(host.repositories[1]!.mirror).toBeUndefined();
  });

  it('accepts another upstream with its URL, name, key and timings', () => {
    const host = parseHostConfig(
      { repositories: [{ name: 'upstream', store: 's3://bucket/mirror', mirror: { url: 'http://10.0.0.5:4000', repository: 'acme', publicKey: 'keys/acme.pem', maxAge: 300, connectTimeout: 2, firstByteTimeout: 5 } }] },
      'hexrepo.json',
    );
    expect(host.repositories[0]!.mirror).toEqual({ url: 'http://10.0.0.5:4000', repository: 'acme', publicKey: 'keys/acme.pem', maxAge: 300, connectTimeout: 2, firstByteTimeout: 5 });
  });

  it('refuses what cannot work, naming the setting', () => {
    expect(refusal({ repositories: [{ name: 'hexpm', publicDir: 'p' }] })).toContain('"hexpm"');
    expect(refusal({ repositories: [{ name: 'm', mirror: {} }] })).toContain('where the mirror keeps what it fetched');
    expect(refusal({ repositories: [{ name: 'm', mirror: {}, publicDir: 'p', privateKey: 'k.pem' }] })).toContain('"repositories[0].privateKey" cannot be used with "mirror"');
    expect(refusal({ repositories: [{ name: 'm', mirror: { url: 'http://example.test' }, publicDir: 'p' }] })).toContain('"repositories[0].mirror.publicKey" is required');
    expect(refusal({ repositories: [{ name: 'm', mirror: { url: 'ftp://x', publicKey: 'k' }, publicDir: 'p' }] })).toContain('mirror.url');
    expect(refusal({ repositories: [{ name: 'm', mirror: { maxAge: '1h' }, publicDir: 'p' }] })).toContain('mirror.maxAge" must be a number of seconds');
    expect(refusal({ repositories: [{ name: 'm', mirror: { cdn: 'x' }, publicDir: 'p' }] })).toContain('mirror.cdn" is not a known setting');
    expect(refusal({ repositories: [{ name: 'm', mirror: 'hex.pm', publicDir: 'p' }] })).toContain('"repositories[0].mirror" must be an object');
  });
});
