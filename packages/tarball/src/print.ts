/**
 * The writer for metadata.config terms, in the shape hex_core writes: one `Term.` form per line,
 * no spaces after commas, binaries as `<<"text">>`, `<<"text"/utf8>>` or `<<1,2,3>>`.
 */
import { HexrepoError } from '@hexrepo/core';
import { RESERVED_WORDS, type Term } from './terms.js';
import { bufferView, hasLoneSurrogate, isValidUtf8 } from './text.js';

const ESCAPES: Readonly<Record<number, string>> = { 8: '\\b', 9: '\\t', 10: '\\n', 11: '\\v', 12: '\\f', 13: '\\r', 27: '\\e', 127: '\\d' };
const BARE_ATOM = /^[a-z][A-Za-z0-9_@]*$/;

/** Printable ASCII or one of the control characters with a letter escape. */
function isAsciiText(c: number): boolean {
  return (c >= 32 && c < 127) || ESCAPES[c] !== undefined;
}

/** Quote text with escapes only for the quote, backslash and control characters. */
function quote(text: string, q: '"' | "'"): string {
  if (hasLoneSurrogate(text)) {
    throw new HexrepoError('TERM_UNSUPPORTED', `the text ${JSON.stringify(text.slice(0, 40))} holds a lone UTF-16 surrogate, which cannot be written as UTF-8; fix the string`);
  }
  let out = q;
  let run = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    let esc: string | undefined;
    // A backslash right before the closing quote is written in octal: hex_core's lexer would
    // otherwise read `\\"` as an escaped quote and run the string on to the next quote in the file.
    if (c === 92) esc = i === text.length - 1 ? '\\134' : '\\\\';
    else if (c === q.charCodeAt(0)) esc = `\\${q}`;
    else if (c < 32 || (c >= 127 && c < 160)) esc = ESCAPES[c] ?? `\\${c.toString(8).padStart(3, '0')}`;
    if (esc !== undefined) {
      out += text.slice(run, i) + esc;
      run = i + 1;
    }
  }
  return `${out}${text.slice(run)}${q}`;
}

function printBinary(bytes: Uint8Array): string {
  if (bytes.byteLength === 0) return '<<>>';
  let ascii = true;
  for (let i = 0; i < bytes.byteLength; i++) {
    if (!isAsciiText(bytes[i]!)) {
      ascii = false;
      break;
    }
  }
  if (ascii) return `<<${quote(bufferView(bytes).toString('latin1'), '"')}>>`;
  if (isValidUtf8(bytes)) {
    const text = bufferView(bytes).toString('utf8');
    let printable = true;
    for (const ch of text) {
      const c = ch.codePointAt(0)!;
      if (c < 160 && !isAsciiText(c)) {
        printable = false;
        break;
      }
    }
    if (printable) return `<<${quote(text, '"')}/utf8>>`;
  }
  return `<<${bytes.join(',')}>>`;
}

function printAtom(name: string): string {
  return BARE_ATOM.test(name) && !RESERVED_WORDS.has(name) ? name : quote(name, "'");
}

/** One term in Erlang syntax, readable back by `parseConsult` and by hex_core. */
export function printTerm(term: Term): string {
  switch (term.type) {
    case 'binary':
      return printBinary(term.value);
    case 'string':
      return quote(term.value, '"');
    case 'atom':
      return printAtom(term.value);
    case 'integer':
      return term.value.toString();
    case 'list':
      return `[${term.items.map(printTerm).join(',')}]`;
    case 'tuple':
      return `{${term.items.map(printTerm).join(',')}}`;
    case 'map':
      return `#{${term.entries.map(([k, v]) => `${printTerm(k)} => ${printTerm(v)}`).join(',')}}`;
  }
}

/** Forms as a metadata.config file: each term followed by `.` and a newline. */
export function printConsult(terms: readonly Term[]): string {
  let out = '';
  for (const term of terms) out += `${printTerm(term)}.\n`;
  return out;
}
