/**
 * A safe reader for the Erlang terms of metadata.config: the subset hex_core's `safe_erl_term`
 * lexer and `erl_parse:parse_term` accept, parsed by hand and never evaluated.
 */
import { Buffer } from 'node:buffer';
import { DEFAULT_LIMITS, HexrepoError, type ErrorCode, type TarballLimits } from '@hexrepo/core';
import { decodeText, latin1Bytes, plainView, utf8Bytes } from './text.js';

/**
 * An Erlang term as metadata.config can hold it.
 * - `binary`: `<<...>>` in any of its spellings, as its bytes.
 * - `string`: a quoted `"..."` char list, as the text it spells (Hex readers treat it like a binary).
 * - `atom`: `true`, `'quoted atom'`; the value is the atom's text.
 * - `integer`: always a bigint, so big numbers survive.
 * - `list`, `tuple`: the items in order. Improper lists do not exist here.
 * - `map`: `#{K => V}` entries in source order (duplicates kept; readers take the last).
 */
export type Term =
  | { type: 'binary'; value: Uint8Array }
  | { type: 'string'; value: string }
  | { type: 'atom'; value: string }
  | { type: 'integer'; value: bigint }
  | { type: 'list'; items: Term[] }
  | { type: 'tuple'; items: Term[] }
  | { type: 'map'; entries: [Term, Term][] };

/** The limits that apply to a term file. */
export type TermLimits = Pick<TarballLimits, 'maxTermDepth' | 'maxMetadataSize'>;

/** Erlang keywords: unquoted they are syntax, not atoms. */
export const RESERVED_WORDS: ReadonlySet<string> = new Set([
  'after',
  'and',
  'andalso',
  'band',
  'begin',
  'bnot',
  'bor',
  'bsl',
  'bsr',
  'bxor',
  'case',
  'catch',
  'cond',
  'div',
  'else',
  'end',
  'fun',
  'if',
  'let',
  'maybe',
  'not',
  'of',
  'or',
  'orelse',
  'receive',
  'rem',
  'try',
  'when',
  'xor',
]);

/** Longest integer literal accepted, in digits (bounds bigint work on hostile input). */
const MAX_INTEGER_DIGITS = 4096;
/** Erlang's own limit on atom length, in characters. */
const MAX_ATOM_LENGTH = 255;

const SIMPLE_ESCAPES: Readonly<Record<string, number>> = { n: 10, r: 13, t: 9, v: 11, b: 8, f: 12, e: 27, s: 32, d: 127 };

const isDigit = (c: number): boolean => c >= 48 && c <= 57;
const isLower = (c: number): boolean => c >= 97 && c <= 122;
const isUpper = (c: number): boolean => c >= 65 && c <= 90;
const isNameChar = (c: number): boolean => isLower(c) || isUpper(c) || isDigit(c) || c === 95 || c === 64;
const isOctal = (c: number): boolean => c >= 48 && c <= 55;

/** Line and column (both from 1) of an offset in text. */
function lineColumn(text: string, offset: number): { line: number; column: number } {
  let line = 1;
  let start = 0;
  for (let i = text.indexOf('\n'); i !== -1 && i < offset; i = text.indexOf('\n', i + 1)) {
    line++;
    start = i + 1;
  }
  return { line, column: offset - start + 1 };
}

class TermParser {
  private pos = 0;
  constructor(
    private readonly src: string,
    private readonly maxDepth: number,
  ) {}

  parseAll(): Term[] {
    const forms: Term[] = [];
    this.skipSpace();
    while (this.pos < this.src.length) {
      forms.push(this.term(0));
      this.skipSpace();
      if (this.src.charCodeAt(this.pos) !== 46 /* . */) this.expected("'.' to end the term");
      this.pos++;
      this.skipSpace();
    }
    return forms;
  }

  private fail(code: ErrorCode, what: string, at = this.pos): never {
    const { line, column } = lineColumn(this.src, at);
    throw new HexrepoError(code, `line ${line}, column ${column}: ${what}`, { line, column });
  }

  private expected(what: string): never {
    const found = this.pos >= this.src.length ? 'the end of the file' : JSON.stringify(this.src[this.pos]);
    return this.fail('TERM_SYNTAX', `expected ${what} but found ${found}; fix the Erlang term syntax`);
  }

  /** hex_core's lexer treats every character up to space as white space; `%` comments are refused. */
  private skipSpace(): void {
    const src = this.src;
    while (this.pos < src.length) {
      const c = src.charCodeAt(this.pos);
      if (c <= 32) this.pos++;
      else if (c === 37) this.fail('TERM_UNSUPPORTED', 'comments (%) are not allowed: hex_core refuses them since 0.6.0; remove the comment');
      else return;
    }
  }

  private enter(depth: number): number {
    if (depth + 1 > this.maxDepth) this.fail('TERM_TOO_DEEP', `terms are nested more than ${this.maxDepth} levels deep; flatten the data`);
    return depth + 1;
  }

  private term(depth: number): Term {
    const src = this.src;
    const c = src.charCodeAt(this.pos);
    if (c === 123 /* { */) return { type: 'tuple', items: this.sequence(this.enter(depth), 125) };
    if (c === 91 /* [ */) return { type: 'list', items: this.sequence(this.enter(depth), 93) };
    if (c === 35 /* # */) return this.map(depth);
    if (c === 60 /* < */) return this.binary();
    if (c === 34 /* " */) return { type: 'string', value: this.quoted(34) };
    if (c === 39 /* ' */) {
      const at = this.pos;
      return { type: 'atom', value: this.checkAtom(this.quoted(39), at) };
    }
    if (isDigit(c) || c === 45 || c === 43) return { type: 'integer', value: this.integer() };
    if (isLower(c)) return this.bareAtom();
    if (isUpper(c) || c === 95) this.fail('TERM_UNSUPPORTED', 'variables are not allowed in metadata.config (a name starting with an uppercase letter or _ is a variable); quote it as a binary <<"...">>');
    if (c === 36 /* $ */) this.fail('TERM_UNSUPPORTED', 'character literals ($c) are not understood by hex_core; write the integer instead');
    return this.expected('a term');
  }

  private sequence(depth: number, close: number): Term[] {
    this.pos++;
    const items: Term[] = [];
    this.skipSpace();
    if (this.src.charCodeAt(this.pos) === close) {
      this.pos++;
      return items;
    }
    for (;;) {
      items.push(this.term(depth));
      this.skipSpace();
      const c = this.src.charCodeAt(this.pos);
      if (c === close) {
        this.pos++;
        return items;
      }
      if (c === 124 /* | */ && close === 93) this.fail('TERM_UNSUPPORTED', 'improper lists ([H | T]) are not allowed; write a proper list [A, B]');
      if (c !== 44 /* , */) this.expected(`',' or '${String.fromCharCode(close)}'`);
      this.pos++;
      this.skipSpace();
    }
  }

  private map(depth: number): Term {
    this.pos++;
    if (this.src.charCodeAt(this.pos) !== 123) this.fail('TERM_UNSUPPORTED', "records and other '#' forms are not allowed; only maps #{K => V} are");
    const inner = this.enter(depth);
    this.pos++;
    const entries: [Term, Term][] = [];
    this.skipSpace();
    if (this.src.charCodeAt(this.pos) === 125) {
      this.pos++;
      return { type: 'map', entries };
    }
    for (;;) {
      const key = this.term(inner);
      this.skipSpace();
      if (!this.src.startsWith('=>', this.pos)) this.expected("'=>' in a map");
      this.pos += 2;
      this.skipSpace();
      entries.push([key, this.term(inner)]);
      this.skipSpace();
      const c = this.src.charCodeAt(this.pos);
      if (c === 125) {
        this.pos++;
        return { type: 'map', entries };
      }
      if (c !== 44) this.expected("',' or '}' in a map");
      this.pos++;
      this.skipSpace();
    }
  }

  /** `<<...>>`: segments are strings (latin-1 bytes, or UTF-8 with /utf8) or byte integers. */
  private binary(): Term {
    if (this.src.charCodeAt(this.pos + 1) !== 60) this.expected("'<<' to start a binary");
    this.pos += 2;
    const chunks: Uint8Array[] = [];
    const bytes: number[] = [];
    const flush = (): void => {
      if (bytes.length > 0) chunks.push(Uint8Array.from(bytes.splice(0)));
    };
    this.skipSpace();
    if (!this.src.startsWith('>>', this.pos)) {
      for (;;) {
        const at = this.pos;
        const c = this.src.charCodeAt(this.pos);
        let text: string | null = null;
        let int = 0n;
        if (c === 34) text = this.quoted(34);
        else if (isDigit(c) || c === 45 || c === 43) int = this.integer();
        else this.expected('a string or a byte in the binary');
        this.skipSpace();
        let utf8 = false;
        if (this.src.charCodeAt(this.pos) === 47 /* / */) {
          this.pos++;
          this.skipSpace();
          const typeAt = this.pos;
          const type = isLower(this.src.charCodeAt(this.pos)) ? this.name() : '';
          if (type !== 'utf8') this.fail('TERM_UNSUPPORTED', `the binary segment type /${type} is not supported; only /utf8 is`, typeAt);
          utf8 = true;
          this.skipSpace();
        }
        if (text !== null) {
          flush();
          chunks.push(utf8 ? utf8Bytes(text) : this.latin1(text, at));
        } else if (utf8) {
          if (int > 0x10ffffn || (int >= 0xd800n && int <= 0xdfffn) || int < 0n) this.fail('TERM_UNSUPPORTED', `${int} is not a Unicode code point`, at);
          flush();
          chunks.push(utf8Bytes(String.fromCodePoint(Number(int))));
        } else {
          if (int < 0n || int > 255n) this.fail('TERM_UNSUPPORTED', `${int} is not a byte (0..255); Erlang would silently truncate it, so write the byte you mean`, at);
          bytes.push(Number(int));
        }
        if (this.src.startsWith('>>', this.pos)) break;
        if (this.src.charCodeAt(this.pos) !== 44) this.expected("',' or '>>' in a binary");
        this.pos++;
        this.skipSpace();
      }
    }
    this.pos += 2;
    flush();
    const value = chunks.length === 1 ? chunks[0]! : plainView(Buffer.concat(chunks));
    return { type: 'binary', value };
  }

  private latin1(text: string, at: number): Uint8Array {
    for (let i = 0; i < text.length; i++) {
      if (text.charCodeAt(i) > 255) {
        this.fail('TERM_UNSUPPORTED', `the binary holds the character ${JSON.stringify(String.fromCodePoint(text.codePointAt(i)!))}, which is not one byte; write it as <<"..."/utf8>>`, at);
      }
    }
    return latin1Bytes(text);
  }

  /** A quoted string or atom, with hex_core's escape rules (`\x{..}` is not one of them). */
  private quoted(quote: number): string {
    const src = this.src;
    const start = this.pos;
    let i = start + 1;
    let out = '';
    let run = i;
    for (;;) {
      if (i >= src.length) this.fail('TERM_SYNTAX', `the ${quote === 34 ? 'string' : 'quoted atom'} starting here is never closed; add the closing ${String.fromCharCode(quote)}`, start);
      const c = src.charCodeAt(i);
      if (c === quote) break;
      if (c !== 92 /* \ */) {
        i++;
        continue;
      }
      out += src.slice(run, i);
      i++;
      if (i >= src.length) continue; // reported as unterminated above
      const e = src.charCodeAt(i);
      if (isOctal(e) && isOctal(src.charCodeAt(i + 1)) && isOctal(src.charCodeAt(i + 2))) {
        out += String.fromCharCode(parseInt(src.slice(i, i + 3), 8));
        i += 3;
      } else if (e === 94 /* ^ */ && i + 1 < src.length) {
        const cp = src.codePointAt(i + 1)!;
        out += String.fromCharCode(cp & 31);
        i += cp > 0xffff ? 3 : 2;
      } else if (e <= 32) {
        i++; // backslash before white space: both dropped, as hex_core does
      } else {
        const cp = src.codePointAt(i)!;
        const ch = String.fromCodePoint(cp);
        out += SIMPLE_ESCAPES[ch] !== undefined ? String.fromCharCode(SIMPLE_ESCAPES[ch]) : ch;
        i += ch.length;
      }
      run = i;
    }
    out += src.slice(run, i);
    this.pos = i + 1;
    return out;
  }

  private integer(): bigint {
    const src = this.src;
    const start = this.pos;
    let negative = false;
    const sign = src.charCodeAt(this.pos);
    if (sign === 45 || sign === 43) {
      negative = sign === 45;
      this.pos++;
      this.skipSpace();
      if (!isDigit(src.charCodeAt(this.pos))) this.expected('digits after the sign');
    }
    const digitsAt = this.pos;
    while (isDigit(src.charCodeAt(this.pos))) this.pos++;
    const digits = src.slice(digitsAt, this.pos);
    const next = src.charCodeAt(this.pos);
    if (next === 46 && isDigit(src.charCodeAt(this.pos + 1))) {
      this.fail('TERM_UNSUPPORTED', 'floats are not allowed: hex_core cannot read them; store the number as a binary <<"1.5">> or an integer', start);
    }
    if (next === 35 /* # */) this.fail('TERM_UNSUPPORTED', 'based integers (16#FF) are not understood by hex_core; write the decimal value', start);
    if (isNameChar(next)) this.expected('a separator after the integer');
    if (digits.length > MAX_INTEGER_DIGITS) this.fail('TERM_TOO_LARGE', `an integer with ${digits.length} digits is too large (at most ${MAX_INTEGER_DIGITS})`, start);
    const value = BigInt(digits);
    return negative ? -value : value;
  }

  private name(): string {
    const start = this.pos;
    while (isNameChar(this.src.charCodeAt(this.pos))) this.pos++;
    return this.src.slice(start, this.pos);
  }

  private bareAtom(): Term {
    const at = this.pos;
    const value = this.name();
    if (RESERVED_WORDS.has(value)) this.fail('TERM_UNSUPPORTED', `'${value}' is an Erlang keyword, and code is never evaluated; quote it ('${value}') if you mean the atom`, at);
    const save = this.pos;
    this.skipSpace();
    const next = this.src.charCodeAt(this.pos);
    const after = this.src.charCodeAt(this.pos + 1);
    if (next === 40 /* ( */ || (next === 58 /* : */ && (isLower(after) || after === 39)))
      this.fail('TERM_UNSUPPORTED', `${value}${String.fromCharCode(next)}... looks like a function call; metadata.config holds data only and is never evaluated`, at);
    this.pos = save;
    return { type: 'atom', value: this.checkAtom(value, at) };
  }

  private checkAtom(value: string, at: number): string {
    if (value.length > MAX_ATOM_LENGTH && [...value].length > MAX_ATOM_LENGTH) {
      this.fail('TERM_UNSUPPORTED', `an atom longer than ${MAX_ATOM_LENGTH} characters is not allowed by Erlang; use a binary`, at);
    }
    return value;
  }
}

/**
 * Parse a sequence of `Term.` forms, as `file:consult/1` would but without evaluating anything.
 * Bytes that are not valid UTF-8 are read as latin-1, as hex_core does. Errors carry a
 * `line L, column C:` prefix and one of TERM_SYNTAX, TERM_UNSUPPORTED, TERM_TOO_DEEP, TERM_TOO_LARGE.
 */
export function parseConsult(input: string | Uint8Array, limits: Partial<TermLimits> = {}): Term[] {
  const maxSize = limits.maxMetadataSize ?? DEFAULT_LIMITS.maxMetadataSize;
  const size = typeof input === 'string' ? Buffer.byteLength(input, 'utf8') : input.byteLength;
  if (size > maxSize) {
    throw new HexrepoError('TERM_TOO_LARGE', `the terms are ${size} bytes, more than the limit of ${maxSize} bytes; shorten the metadata or raise maxMetadataSize`, { size, limit: maxSize });
  }
  const text = typeof input === 'string' ? input : decodeText(input);
  return new TermParser(text, limits.maxTermDepth ?? DEFAULT_LIMITS.maxTermDepth).parseAll();
}
