/**
 * Test support for the fuzz suites (`packages/*\/test/fuzz-*.test.ts`): one place that decides how
 * long each property runs, and the byte mutators they share.
 *
 * The vitest run is the short CI run. `scripts/fuzz.mjs` (`pnpm fuzz`) runs the same files with
 * these variables set, so the long run checks exactly the same properties:
 * - `HEXREPO_FUZZ_RUNS`: inputs per property (overrides each property's CI count);
 * - `HEXREPO_FUZZ_MS`: a time budget per property instead (inputs until it is spent);
 * - `HEXREPO_FUZZ_SEED` (and `HEXREPO_FUZZ_PATH`): the seed, and replay of a failure fast-check
 *   reported (with a path, exactly that input is checked again).
 */
import fc from 'fast-check';

const env = (name: string): string | undefined => {
  const value = process.env[name];
  return value === undefined || value === '' ? undefined : value;
};

const number = (name: string): number | undefined => {
  const value = env(name);
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isSafeInteger(n)) throw new Error(`${name}=${value} is not an integer`);
  return n;
};

/** True when the long run (the script) drives this process. */
export const LONG_RUN = env('HEXREPO_FUZZ_RUNS') !== undefined || env('HEXREPO_FUZZ_MS') !== undefined;

/** The base seed of a long run started without one (fast-check reports each slice's seed). */
const RANDOM_SEED = Math.floor(Math.random() * 2 ** 31);

/** A long run checks in slices of at most this long, yielding between them (see `fuzz`). */
const SLICE_MS = 5_000;

/**
 * Check one fuzz property: `ciRuns` inputs in CI, or what the long run asks for. A failure throws
 * fast-check's report, with the seed and path to replay it with (`HEXREPO_FUZZ_SEED`, `_PATH`).
 *
 * The long run checks in slices (each with its own seed, printed on failure) and yields to the
 * event loop between them: a synchronous property that held the thread for minutes would starve
 * vitest's worker of its heartbeat.
 */
export async function fuzz<Ts extends [unknown, ...unknown[]]>(property: fc.IRawProperty<Ts>, ciRuns: number): Promise<void> {
  const runs = number('HEXREPO_FUZZ_RUNS');
  const ms = number('HEXREPO_FUZZ_MS');
  const seed = number('HEXREPO_FUZZ_SEED');
  const path = env('HEXREPO_FUZZ_PATH');
  if (path !== undefined || !LONG_RUN) {
    await fc.assert(property, { numRuns: runs ?? ciRuns, ...(seed !== undefined ? { seed } : {}), ...(path !== undefined ? { path } : {}) });
    return;
  }
  const deadline = ms === undefined ? Infinity : Date.now() + ms;
  let left = runs ?? Number.MAX_SAFE_INTEGER;
  for (let slice = 0; left > 0 && Date.now() < deadline; slice++) {
    const details = await fc.check(property, {
      numRuns: left,
      seed: (seed ?? RANDOM_SEED) + slice,
      interruptAfterTimeLimit: Math.min(SLICE_MS, deadline - Date.now()),
      markInterruptAsFailure: false,
    });
    if (details.failed) throw new Error(fc.defaultReportMessage(details) ?? 'the property failed');
    left -= Math.max(1, details.numRuns);
    await new Promise((resolve) => setImmediate(resolve));
  }
}

/**
 * The vitest timeout of a fuzz test: generous in CI (a stuck input fails the test instead of
 * stalling the suite), unbounded in the long run, whose script stops a stuck run itself.
 */
export function fuzzTimeout(ciMs = 60_000): number {
  return LONG_RUN ? 2 ** 31 - 1 : ciMs;
}

/** How far the resident set grew while the properties ran (sampled), for the long run's report. */
export class MemoryWatch {
  readonly startRss = process.memoryUsage().rss;
  peakRss = this.startRss;
  #calls = 0;

  /** Call once per input; samples every 256 calls (memoryUsage is not free). */
  sample(): void {
    if (++this.#calls % 256 === 0) this.peakRss = Math.max(this.peakRss, process.memoryUsage().rss);
  }

  /** Growth of the peak over the start, in MiB. */
  get growthMiB(): number {
    return Math.round((Math.max(this.peakRss, process.memoryUsage().rss) - this.startRss) / 2 ** 20);
  }

  report(target: string): void {
    if (LONG_RUN) process.stdout.write(`[fuzz] ${target}: ${this.#calls} inputs, peak rss ${Math.round(this.peakRss / 2 ** 20)} MiB, ${this.growthMiB} MiB over the start\n`);
  }
}

/** One edit of a byte string. Offsets are fractions of the length, so one edit fits any input. */
export type Mutation =
  | { kind: 'flip'; at: number; bit: number }
  | { kind: 'set'; at: number; byte: number }
  | { kind: 'truncate'; at: number }
  | { kind: 'delete'; at: number; length: number }
  | { kind: 'insert'; at: number; bytes: Uint8Array }
  | { kind: 'duplicate'; at: number; length: number; to: number }
  | { kind: 'splice'; at: number; donor: number; from: number; length: number };

const fraction = fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true });

/** Bytes that mean something to the parsers (tar digits and NULs, gzip magic, ETF tags, 0xff). */
const interestingByte = fc.oneof(fc.constantFrom(0x00, 0x20, 0x30, 0x37, 0x38, 0x7f, 0x80, 0xff, 0x1f, 0x8b, 0x83, 0x6c, 0x74, 0x6d, 0x2f, 0x2e), fc.integer({ min: 0, max: 255 }));

/** One random edit; `splice` takes bytes from one of `donors` other inputs. */
export const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  { arbitrary: fc.record({ kind: fc.constant('flip' as const), at: fraction, bit: fc.integer({ min: 0, max: 7 }) }), weight: 4 },
  { arbitrary: fc.record({ kind: fc.constant('set' as const), at: fraction, byte: interestingByte }), weight: 4 },
  { arbitrary: fc.record({ kind: fc.constant('truncate' as const), at: fraction }), weight: 1 },
  { arbitrary: fc.record({ kind: fc.constant('delete' as const), at: fraction, length: fc.integer({ min: 1, max: 600 }) }), weight: 1 },
  { arbitrary: fc.record({ kind: fc.constant('insert' as const), at: fraction, bytes: fc.uint8Array({ minLength: 1, maxLength: 600 }) }), weight: 1 },
  { arbitrary: fc.record({ kind: fc.constant('duplicate' as const), at: fraction, length: fc.integer({ min: 1, max: 1500 }), to: fraction }), weight: 1 },
  { arbitrary: fc.record({ kind: fc.constant('splice' as const), at: fraction, donor: fc.nat(), from: fraction, length: fc.integer({ min: 1, max: 2048 }) }), weight: 1 },
);

/** Apply edits in order. The input is never modified; the result is a fresh copy. */
export function mutate(input: Uint8Array, edits: readonly Mutation[], donors: readonly Uint8Array[] = []): Uint8Array {
  let bytes: Uint8Array = Uint8Array.from(input);
  for (const edit of edits) {
    const at = Math.floor(edit.at * bytes.length);
    switch (edit.kind) {
      case 'flip':
        if (bytes.length > 0) bytes[at] = bytes[at]! ^ (1 << edit.bit);
        break;
      case 'set':
        if (bytes.length > 0) bytes[at] = edit.byte;
        break;
      case 'truncate':
        bytes = bytes.slice(0, at);
        break;
      case 'delete':
        bytes = concat(bytes.subarray(0, at), bytes.subarray(at + edit.length));
        break;
      case 'insert':
        bytes = concat(bytes.subarray(0, at), edit.bytes, bytes.subarray(at));
        break;
      case 'duplicate': {
        const to = Math.floor(edit.to * bytes.length);
        bytes = concat(bytes.subarray(0, to), bytes.subarray(at, at + edit.length), bytes.subarray(to));
        break;
      }
      case 'splice': {
        const donor = donors.length > 0 ? donors[edit.donor % donors.length]! : bytes;
        const from = Math.floor(edit.from * donor.length);
        bytes = concat(bytes.subarray(0, at), donor.subarray(from, from + edit.length), bytes.subarray(at + edit.length));
        break;
      }
    }
  }
  return bytes;
}

/** Concatenate byte strings into a fresh array. */
export function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

/** One to `max` edits. */
export const mutations = (max = 4): fc.Arbitrary<Mutation[]> => fc.array(mutation, { minLength: 1, maxLength: max });
