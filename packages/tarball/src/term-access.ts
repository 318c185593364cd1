/** Small readers that turn terms into JS values, or return null when the shape is wrong. */
import type { Term } from './terms.js';
import { decodeText, utf8Bytes } from './text.js';

/** The text of a binary or char list (binaries read as UTF-8, else latin-1), or null. */
export function termText(term: Term): string | null {
  if (term.type === 'binary') return decodeText(term.value);
  if (term.type === 'string') return term.value;
  return null;
}

/** A binary term holding the UTF-8 bytes of the text. */
export function binaryTerm(text: string): Term {
  return { type: 'binary', value: utf8Bytes(text) };
}

/**
 * Key/value pairs of a map or of a list of 2-tuples with text keys (a proplist), or null.
 * Keys are decoded to text.
 */
export function termPairs(term: Term): [string, Term][] | null {
  const pairs: [string, Term][] = [];
  if (term.type === 'map') {
    for (const [k, v] of term.entries) {
      const key = termText(k);
      if (key === null) return null;
      pairs.push([key, v]);
    }
    return pairs;
  }
  if (term.type !== 'list') return null;
  for (const item of term.items) {
    if (item.type !== 'tuple' || item.items.length !== 2) return null;
    const key = termText(item.items[0]!);
    if (key === null) return null;
    pairs.push([key, item.items[1]!]);
  }
  return pairs;
}

/** The last value for a key (later entries win, as in `maps:from_list/1`). */
export function lookup(pairs: readonly [string, Term][], key: string): Term | undefined {
  for (let i = pairs.length - 1; i >= 0; i--) if (pairs[i]![0] === key) return pairs[i]![1];
  return undefined;
}

/** A short description of a term's kind for error messages. */
export function kindOf(term: Term): string {
  switch (term.type) {
    case 'binary':
      return 'a binary';
    case 'string':
      return 'a string';
    case 'atom':
      return `the atom ${term.value}`;
    case 'integer':
      return 'an integer';
    case 'list':
      return 'a list';
    case 'tuple':
      return `a ${term.items.length}-tuple`;
    case 'map':
      return 'a map';
  }
}
