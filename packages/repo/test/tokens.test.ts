import { mkdtemp, readFile, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { packageAllowed, scopeAllows, TokenStore } from '../src/index.js';

const tempFile = async (): Promise<string> => join(await mkdtemp(join(tmpdir(), 'hexrepo-tokens-')), 'state', 'tokens.json');

describe('TokenStore', () => {
  it('stores only a hash, mode 0600, and verifies the secret', async () => {
    const path = await tempFile();
    const store = await TokenStore.open(path);
    const { token, info } = await store.create({ label: 'ci', scopes: ['read'] });
    expect(token).toMatch(/^hxr_[a-z0-9]{10}_[A-Za-z0-9_-]{43}$/);
    const text = await readFile(path, 'utf8');
    expect(text).not.toContain(token.slice('hxr_'.length + 11));
    expect(text).toContain(info.id);
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    expect(store.verify(token)?.id).toBe(info.id);
    const reopened = await TokenStore.open(path);
    expect(reopened.verify(token)?.scopes).toEqual(['read']);
  });

  it('refuses near misses, unknown ids and garbage', async () => {
    const store = await TokenStore.open(await tempFile());
    const { token } = await store.create({ label: 'x', scopes: ['write'] });
    const flipped = token.slice(0, -1) + (token.endsWith('A') ? 'B' : 'A');
    expect(store.verify(flipped)).toBeNull();
    expect(store.verify(token.replace(/^hxr_[a-z0-9]{10}/, 'hxr_0000000000'))).toBeNull();
    expect(store.verify('')).toBeNull();
    expect(store.verify('Bearer x')).toBeNull();
  });

  it('revokes, lists without hashes, validates input', async () => {
    const store = await TokenStore.open(await tempFile());
    const a = await store.create({ label: 'a', scopes: ['admin'], packages: ['acme_*'] });
    const b = await store.create({ label: 'b', scopes: ['read'] });
    expect(store.list().map((t) => t.label)).toEqual(['a', 'b']);
    expect(JSON.stringify(store.list())).not.toContain('hash');
    expect(await store.revoke(a.info.id)).toBe(true);
    expect(await store.revoke(a.info.id)).toBe(false);
    expect(store.verify(a.token)).toBeNull();
    expect(store.verify(b.token)).not.toBeNull();
    await expect(store.create({ label: 'c', scopes: [] })).rejects.toThrow(/at least one scope/);
    await expect(store.create({ label: 'c', scopes: ['root' as never] })).rejects.toThrow(/unknown scope/);
    await expect(store.create({ label: 'c', scopes: ['read'], packages: ['../x'] })).rejects.toThrow(/package pattern/);
  });
});

describe('scopes and package patterns', () => {
  it('admin grants everything; read and write are separate', () => {
    expect(scopeAllows(['admin'], 'read')).toBe(true);
    expect(scopeAllows(['admin'], 'write')).toBe(true);
    expect(scopeAllows(['write'], 'read')).toBe(false);
    expect(scopeAllows(['read', 'write'], 'read')).toBe(true);
    expect(scopeAllows(['read'], 'write')).toBe(false);
    expect(scopeAllows(['write'], 'admin')).toBe(false);
  });

  it('globs match whole names', () => {
    expect(packageAllowed([], 'anything')).toBe(true);
    expect(packageAllowed(['acme_*'], 'acme_web')).toBe(true);
    expect(packageAllowed(['acme_*'], 'xacme_web')).toBe(false);
    expect(packageAllowed(['foo', 'bar*'], 'barbaz')).toBe(true);
    expect(packageAllowed(['foo'], 'foobar')).toBe(false);
  });
});
