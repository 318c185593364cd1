/** The structured logger (pino, JSON lines). Credentials are redacted wherever they could appear. */
import { pino, type Logger, type DestinationStream } from 'pino';

export type { Logger } from 'pino';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

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

/** The logger: JSON lines on the destination, else on stdout (pino's own asynchronous writer). */
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
