/**
 * gzipLikeErlang reuses one deflate state per thread: every output must be the bytes of a fresh
 * `pako.gzip` (stock zlib, as Erlang's zlib:gzip/1), whatever the stream compressed before it.
 */
import { gunzipSync } from 'node:zlib';
import fc from 'fast-check';
import pako from 'pako';
import { describe, expect, it } from 'vitest';
import { gzipLikeErlang } from '../src/gzip.js';

// @types/pako omits `header`, which pako's Deflate reads for gzip output.
const reference = (data: Uint8Array): Uint8Array => pako.gzip(data, { header: { os: 3 } } as pako.DeflateFunctionOptions);

/** Bytes that compress like registry payloads: repeated names, checksums, short runs. */
const payload = fc
  .array(
    fc.oneof(
      fc.uint8Array({ maxLength: 64 }),
      fc.constantFrom('pkg_00001', '1.0.0', '~> 1.0', 'rebar3').map((t) => new TextEncoder().encode(t)),
    ),
    { maxLength: 400 },
  )
  .map((parts) => Uint8Array.from(parts.flatMap((p) => [...p])));

describe('gzipLikeErlang', () => {
  it('writes the same bytes as a fresh pako.gzip, for any sequence of inputs through the one reused state', () => {
    fc.assert(
      fc.property(fc.array(payload, { minLength: 1, maxLength: 8 }), (inputs) => {
        for (const data of inputs) expect(Buffer.from(gzipLikeErlang(data)).equals(Buffer.from(reference(data)))).toBe(true);
      }),
      { numRuns: 200 },
    );
  });

  it('matches pako.gzip after a large input left the window full, for empty, tiny, incompressible and over-64 KiB inputs', () => {
    const random = new Uint8Array(200_000).map((_, i) => (i * 2654435761) >>> 24);
    const text = new TextEncoder().encode('names versions packages '.repeat(5000));
    for (const data of [random, new Uint8Array(0), Uint8Array.of(7), text, random.subarray(0, 70_000), text.subarray(0, 1500), random.subarray(3, 40)]) {
      const out = gzipLikeErlang(data);
      expect(Buffer.from(out).equals(Buffer.from(reference(data))), `${data.byteLength} bytes`).toBe(true);
      expect(Buffer.from(gunzipSync(out)).equals(Buffer.from(data))).toBe(true);
    }
  });
});
