/** The malformed corpus: every input is refused with its specific code and a message naming the problem. */
import { describe, expect, it } from 'vitest';
import { ERROR_CODES, HexrepoError } from '@hexrepo/core';
import { parseTarball } from '../src/index.js';
import { CORPUS_LIMITS, malformedTarballs, wellFormedTarball } from './malformed-corpus.js';

const corpus = malformedTarballs();
const SIZE_ENTRIES = new Set(['tarball-too-big', 'contents-too-big']);

function refusal(bytes: Uint8Array, limits?: Parameters<typeof parseTarball>[1]): HexrepoError {
  try {
    parseTarball(bytes, limits);
  } catch (err) {
    if (err instanceof HexrepoError) return err;
    throw err;
  }
  throw new Error('the tarball was accepted');
}

describe('malformed corpus', () => {
  it('has at least 30 distinct inputs with plausible file names', () => {
    expect(corpus.length).toBeGreaterThanOrEqual(30);
    expect(new Set(corpus.map((c) => c.id)).size).toBe(corpus.length);
    expect(new Set(corpus.map((c) => c.fileName)).size).toBe(corpus.length);
    for (const c of corpus) expect(c.fileName).toMatch(/^[A-Za-z0-9_]+-[0-9][^/]*\.tar$/);
    expect(new Set(corpus.map((c) => c.code)).size).toBeGreaterThanOrEqual(20);
  });

  it('is built from a well-formed base that parses', () => {
    expect(parseTarball(wellFormedTarball(), { limits: CORPUS_LIMITS }).facts.name).toBe('good_pkg');
  });

  it.each(corpus.map((c) => [c.id, c] as const))('%s', (_id, bad) => {
    const err = refusal(bad.bytes, { limits: CORPUS_LIMITS });
    expect(err.code, err.message).toBe(bad.code);
    expect(err.message).toMatch(bad.mentions);
    expect(bad.code in ERROR_CODES).toBe(true);
    if (!SIZE_ENTRIES.has(bad.id)) expect(refusal(bad.bytes).code).toBe(bad.code);
    else expect(() => parseTarball(bad.bytes)).not.toThrow();
  });

  it('reports expected and actual checksums on a mismatch', () => {
    const err = refusal(corpus.find((c) => c.id === 'checksum-mismatch')!.bytes);
    expect(err.details.expected).toBe('ab'.repeat(32));
    expect(err.details.actual).toMatch(/^[0-9a-f]{64}$/);
  });

  it('checks the total size before reading anything', () => {
    expect(refusal(new Uint8Array(2048).fill(0x41), { limits: { maxTarballSize: 1024 } }).code).toBe('TAR_TOO_BIG');
  });

  it('checks the metadata size limit after the member checks', () => {
    const bytes = wellFormedTarball();
    expect(refusal(bytes, { limits: { maxMetadataSize: 64 } }).code).toBe('TAR_MEMBER_TOO_BIG');
    expect(refusal(bytes, { limits: { maxMetadataSize: 64 } }).message).toMatch(/metadata\.config is \d+ bytes, more than the limit of 64 bytes/);
  });

  it('prefixes term errors with metadata.config', () => {
    expect(refusal(corpus.find((c) => c.id === 'metadata-float')!.bytes).message).toMatch(/^metadata\.config: line \d+, column \d+: floats/);
  });
});
