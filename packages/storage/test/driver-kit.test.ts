import { describe, expect, it } from 'vitest';
import { isHexrepoError } from '@hexrepo/core';
import { VersionMemo, checkCondition, contentEtag, etagFromMetadata, keyOfObject, prefixedKey, quoteEtag, unquoteEtag } from '../src/driver-kit.js';

function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  return null;
}

describe('driver kit', () => {
  it('checkCondition: ifNoneMatch "*" refuses any object, ifMatch anything but the current etag', () => {
    const etag = contentEtag(new TextEncoder().encode('v1'));
    expect(thrown(() => checkCondition('names', null, { ifNoneMatch: '*' }))).toBeNull();
    expect(thrown(() => checkCondition('names', etag, { ifMatch: etag }))).toBeNull();
    expect(thrown(() => checkCondition('names', etag, {}))).toBeNull();

    const exists = thrown(() => checkCondition('names', etag, { ifNoneMatch: '*' }));
    expect(isHexrepoError(exists, 'STORAGE_CONFLICT') && exists.message).toBe('names already exists');
    const missing = thrown(() => checkCondition('names', null, { ifMatch: etag }));
    expect(isHexrepoError(missing, 'STORAGE_CONFLICT') && missing.details).toEqual({ key: 'names', currentEtag: null, expected: etag });
    const changed = thrown(() => checkCondition('names', '"other"', { ifMatch: etag }));
    expect(isHexrepoError(changed, 'STORAGE_CONFLICT') && changed.message).toBe(`names changed since it was read (expected ${etag}, found "other")`);
    // An unquoted etag is not the quoted one: callers pass etags as the store reported them.
    expect(
      isHexrepoError(
        thrown(() => checkCondition('names', etag, { ifMatch: unquoteEtag(etag) })),
        'STORAGE_CONFLICT',
      ),
    ).toBe(true);
  });

  it('quotes and unquotes etags, leaving weak and quoted ones alone', () => {
    expect(quoteEtag('abc')).toBe('"abc"');
    expect(quoteEtag('"abc"')).toBe('"abc"');
    expect(quoteEtag('W/"abc"')).toBe('W/"abc"');
    expect(unquoteEtag('"abc"')).toBe('abc');
    expect(unquoteEtag('abc')).toBe('abc');
  });

  it("takes the content etag from metadata, else the backend's own, quoted", () => {
    expect(etagFromMetadata('"sha"', 'md5')).toBe('"sha"');
    expect(etagFromMetadata(undefined, 'md5')).toBe('"md5"');
    expect(etagFromMetadata('not quoted', '"md5"')).toBe('"md5"');
    expect(etagFromMetadata(42, undefined)).toBe('""');
  });

  it('maps keys to bucket names under a prefix and back, skipping names no key can spell', () => {
    expect(prefixedKey('acme/', 'packages/foo')).toBe('acme/packages/foo');
    expect(
      isHexrepoError(
        thrown(() => prefixedKey('acme/', '../x')),
        'PATH_UNSAFE',
      ),
    ).toBe(true);
    expect(keyOfObject('acme/', 'acme/packages/foo')).toBe('packages/foo');
    for (const name of ['acme2/names', 'acme/a//b', 'acme/.hidden', 'acme/x/', 'acme/']) expect(keyOfObject('acme/', name), name).toBeNull();
  });

  it('VersionMemo keeps the most recently remembered entries up to its limit', () => {
    const memo = new VersionMemo<number>(2);
    memo.remember('a', 1);
    memo.remember('b', 2);
    memo.remember('a', 3);
    memo.remember('c', 4);
    expect([memo.get('a'), memo.get('b'), memo.get('c')]).toEqual([3, undefined, 4]);
    expect(memo.forget('a')).toBeNull();
    expect(memo.get('a')).toBeUndefined();
  });
});
