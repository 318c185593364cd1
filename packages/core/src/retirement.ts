import { HexrepoError } from './errors.js';
import { isRetirementReason, RETIREMENT_REASONS, type Retirement } from './types.js';

/** hex.pm's bounds on a retirement message, in characters (graphemes, as Ecto's validate_length counts). */
export const RETIREMENT_MESSAGE_MIN = 3;
export const RETIREMENT_MESSAGE_MAX = 140;

// Made on first use: creating a Segmenter loads ICU's break data, ~0.1 s that every CLI start
// would pay though few commands count a retirement message.
let graphemes: Intl.Segmenter | undefined;

/** The length of a retirement message as hex.pm counts it: user-perceived characters, so "é" or "👍🏽" is one. */
export function retirementMessageLength(message: string): number {
  let n = 0;
  graphemes ??= new Intl.Segmenter('en', { granularity: 'grapheme' });
  for (const _ of graphemes.segment(message)) n++;
  return n;
}

/**
 * hex.pm's retirement rule: a reason from the five, and an optional message of 3 to 140 characters (an
 * empty message is no message, as hex.pm reads it). Returns the retirement to store; throws RETIREMENT_INVALID
 * with `field` ('reason' or 'message') and `problem` (hex.pm's wording for that field) in the details.
 */
export function validateRetirement(input: { reason: unknown; message?: unknown }): Retirement {
  const { reason, message } = input;
  if (!isRetirementReason(reason)) {
    const reasons = Object.keys(RETIREMENT_REASONS).join(', ');
    throw new HexrepoError('RETIREMENT_INVALID', `the retirement reason must be one of ${reasons}, got ${JSON.stringify(reason) ?? 'nothing'}`, { field: 'reason', problem: 'is invalid', hint: `use one of ${reasons}` });
  }
  if (message === undefined || message === null || message === '') return { reason };
  if (typeof message !== 'string') throw new HexrepoError('RETIREMENT_INVALID', `the retirement message must be text, got ${typeof message}`, { field: 'message', problem: 'is invalid' });
  const length = retirementMessageLength(message);
  if (length < RETIREMENT_MESSAGE_MIN || length > RETIREMENT_MESSAGE_MAX) {
    const short = length < RETIREMENT_MESSAGE_MIN;
    throw new HexrepoError('RETIREMENT_INVALID', `the retirement message is ${length} characters; hex.pm allows ${RETIREMENT_MESSAGE_MIN} to ${RETIREMENT_MESSAGE_MAX}`, {
      field: 'message',
      problem: short ? `should be at least ${RETIREMENT_MESSAGE_MIN} character(s)` : `should be at most ${RETIREMENT_MESSAGE_MAX} character(s)`,
      length,
      hint: short ? 'say why in a few words, or leave the message out' : 'shorten the message; link to a changelog for the details',
    });
  }
  return { reason, message };
}
