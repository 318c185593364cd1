/**
 * gzip the way Erlang's `zlib:gzip/1` does (stock zlib: level 6, 32 KiB window, memLevel 8, the
 * classic hash, mtime 0, OS 3), through pako's port of zlib, with ONE deflate state per thread
 * reset between files instead of a new one per file. `pako.gzip` allocates and zeroes ~330 KiB of
 * tables for every call, which for a 1.5 KiB `packages/NAME` cost as much as its RSA signature and
 * most of a build's garbage. The reset state is zeroed like a new one, so the bytes are the same as
 * `pako.gzip(data, { header: { os: 3 } })` (checked against it in test/gzip.test.ts).
 */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

/** pako's zlib stream (lib/zlib/zstream.js): the fields this module sets and reads. */
interface ZStream {
  input: Uint8Array | null;
  next_in: number;
  avail_in: number;
  output: Uint8Array | null;
  next_out: number;
  avail_out: number;
  state: Record<string, unknown> | null;
}

/** The functions of pako's lib/zlib/deflate.js used here (zlib's C API, ported). */
interface ZlibDeflate {
  deflateInit2(strm: ZStream, level: number, method: number, windowBits: number, memLevel: number, strategy: number, legacyHash: boolean): number;
  deflateReset(strm: ZStream): number;
  deflateSetHeader(strm: ZStream, head: { os: number }): number;
  deflate(strm: ZStream, flush: number): number;
}

const Z_OK = 0;
const Z_STREAM_END = 1;
const Z_FINISH = 4;
const Z_DEFLATED = 8;

// pako's package exports only its bundles, which hide the reset: its zlib port is loaded by path,
// from the same installed version as the bundle.
const require = createRequire(import.meta.url);
const pakoLib = join(dirname(require.resolve('pako')), 'lib/zlib');
const zlib = require(join(pakoLib, 'deflate.js')) as ZlibDeflate;
const ZStreamClass = require(join(pakoLib, 'zstream.js')) as new () => ZStream;

let stream: ZStream | null = null;

/** This thread's deflate stream, fresh or reset to exactly the state of a fresh one. */
function freshStream(): ZStream {
  if (!stream) {
    const strm = new ZStreamClass();
    // pako.gzip's defaults: Z_DEFAULT_COMPRESSION, windowBits 15 + 16 (gzip), memLevel 8, Z_DEFAULT_STRATEGY, legacy hash.
    if (zlib.deflateInit2(strm, -1, Z_DEFLATED, 31, 8, 0, true) !== Z_OK) throw new Error('pako: deflateInit2 failed');
    stream = strm;
  } else {
    // A new state's window, hash chains, buffers and trees are zeroes, and the match search may
    // look past the end of the input into the window: zeroed first, as deflateInit2 hands them to
    // deflateReset (which clears only the hash heads and sets the block's initial counts).
    for (const value of Object.values(stream.state ?? {})) if (ArrayBuffer.isView(value)) new Uint8Array(value.buffer, value.byteOffset, value.byteLength).fill(0);
    if (zlib.deflateReset(stream) !== Z_OK) throw new Error('pako: deflateReset failed');
  }
  zlib.deflateSetHeader(stream, { os: 3 });
  return stream;
}

/** gzip `data` as stock zlib (and so Erlang's `zlib:gzip/1`) does, byte for byte. */
export function gzipLikeErlang(data: Uint8Array): Uint8Array {
  const strm = freshStream();
  strm.input = data;
  strm.next_in = 0;
  strm.avail_in = data.byteLength;
  // zlib's deflateBound for a gzip stream: one call with Z_FINISH then ends it. The compressed bytes
  // do not depend on the size of the output buffer; a larger one is only fewer calls.
  let output = new Uint8Array(data.byteLength + (data.byteLength >> 12) + (data.byteLength >> 14) + (data.byteLength >> 25) + 64);
  strm.output = output;
  strm.next_out = 0;
  strm.avail_out = output.byteLength;
  for (;;) {
    const status = zlib.deflate(strm, Z_FINISH);
    if (status === Z_STREAM_END) break;
    if (status !== Z_OK || strm.avail_out !== 0) {
      stream = null;
      throw new Error(`pako: deflate failed with status ${status}`);
    }
    const grown = new Uint8Array(output.byteLength * 2);
    grown.set(output);
    strm.output = output = grown;
    strm.avail_out = output.byteLength - strm.next_out;
  }
  const out = output.subarray(0, strm.next_out);
  // Neither the input nor the output is kept alive by the reused stream.
  strm.input = null;
  strm.output = null;
  return out;
}
