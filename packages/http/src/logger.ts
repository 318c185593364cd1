/** The structured logger (pino, JSON lines). Credentials are redacted wherever they could appear. */
import { writeSync } from 'node:fs';
import { pino, type Logger, type DestinationStream } from 'pino';

export type { Logger } from 'pino';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/**
 * The largest write a pipe takes in one piece (POSIX PIPE_BUF on Linux): the workers of one server
 * share their stdout, and a longer write could be interleaved with another worker's.
 */
const ATOMIC_WRITE_BYTES = 4096;

/**
 * A destination for JSON lines on a file descriptor that writes the lines of one event-loop turn
 * together: a server logs a line per request, and a write(2) per line costs more than the line.
 * A line is never held past the turn that logged it (the writes are synchronous, in `setImmediate`),
 * each write is whole lines of at most ATOMIC_WRITE_BYTES (a longer line alone). The app calls
 * `flushSync` when its process exits (any exit: `process.exit`, the end of the event loop), so a
 * clean shutdown loses no line.
 */
export class LineBatcher implements DestinationStream {
  #lines: string[] = [];
  #scheduled = false;
  #broken = false;
  readonly #flush = (): void => this.flushSync();

  constructor(readonly fd: number) {}

  write(line: string): void {
    if (this.#broken) return;
    this.#lines.push(line);
    if (!this.#scheduled) {
      this.#scheduled = true;
      setImmediate(this.#flush);
    }
  }

  /** pino's `logger.flush()`: everything pending is written before `cb` runs. */
  flush(cb?: (err?: Error) => void): void {
    this.flushSync();
    cb?.();
  }

  /** Write every pending line now. */
  flushSync(): void {
    this.#scheduled = false;
    if (this.#lines.length === 0) return;
    const buf = Buffer.from(this.#lines.join(''));
    this.#lines = [];
    // Cut at line ends (a newline byte is never part of a UTF-8 character, and JSON escapes those in
    // strings), each piece at most ATOMIC_WRITE_BYTES unless a single line is longer.
    let at = 0;
    while (at < buf.length) {
      let end = buf.length - at <= ATOMIC_WRITE_BYTES ? buf.length - 1 : buf.lastIndexOf(0x0a, at + ATOMIC_WRITE_BYTES - 1);
      if (end < at) end = buf.indexOf(0x0a, at + ATOMIC_WRITE_BYTES);
      if (end === -1) end = buf.length - 1;
      this.#writeAll(buf.subarray(at, end + 1));
      at = end + 1;
    }
  }

  #writeAll(bytes: Buffer): void {
    if (this.#broken) return;
    let buf = bytes;
    while (buf.length > 0) {
      try {
        buf = buf.subarray(writeSync(this.fd, buf));
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        // A non-blocking pipe that is full: wait for the reader, as pino's own destination does.
        if (code === 'EAGAIN' || code === 'EBUSY') Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1);
        // Nobody reads the logs any more (the pipe's reader left): drop them, as pino does.
        else if (code === 'EPIPE') {
          this.#broken = true;
          return;
        } else throw err;
      }
    }
  }
}

/**
 * pino's isoTime, formatted once per millisecond: a busy server logs many lines in the same one,
 * and formatting the date is a good part of a line's cost.
 */
function isoTimeMemo(): () => string {
  let at = -1;
  let text = '';
  return () => {
    const now = Date.now();
    if (now !== at) {
      at = now;
      text = `,"time":"${new Date(now).toISOString()}"`;
    }
    return text;
  };
}

/** The logger: JSON lines on the destination (a LineBatcher for a server), else on stdout, one write per line. */
export function createLogger(opts: { level?: LogLevel; destination?: DestinationStream } = {}): Logger {
  return pino(
    {
      level: opts.level ?? 'info',
      base: { service: 'hexrepo' },
      redact: { paths: ['authorization', 'headers.authorization', 'req.headers.authorization', 'token', 'password', '*.password', '*.token'], censor: '[redacted]' },
      timestamp: isoTimeMemo(),
    },
    opts.destination,
  );
}
