/**
 * Lockfiles of the two Hex clients, read without evaluating them: `mix.lock` (an Elixir map literal)
 * and `rebar.lock` (Erlang terms). Each is tokenized and parsed into plain terms by a small parser
 * that accepts only literals (maps, tuples, lists, strings, binaries, atoms, numbers, keyword lists),
 * then the Hex entries are picked out. Git, path and other non-Hex entries are skipped with a note.
 */
import { HexrepoError, parseVersion } from '@hexrepo/core';

/** A package version a lockfile pins to a Hex repository. */
export interface LockedPackage {
  /** The package name in the repository (may differ from the dependency's app name). */
  name: string;
  version: string;
  /** The repository: `hexpm`, or `hexpm:ORG` for an organization. */
  repository: string;
  /** Inner checksum (lowercase hex), when the lockfile records it. */
  innerChecksum?: string;
  /** Outer checksum (lowercase hex): newer lockfiles only. */
  outerChecksum?: string;
}

/** A lockfile entry left out, and why. */
export interface SkippedEntry {
  name: string;
  reason: string;
}

export interface Lockfile {
  format: 'mix' | 'rebar';
  packages: LockedPackage[];
  skipped: SkippedEntry[];
}

/** A parsed literal. Keyword lists (`[hex: :foo]`) are lists of 2-tuples, as in Elixir. */
export type LockTerm = { t: 'map'; entries: [LockTerm, LockTerm][] } | { t: 'tuple'; items: LockTerm[] } | { t: 'list'; items: LockTerm[] } | { t: 'string'; value: string } | { t: 'atom'; value: string } | { t: 'number'; value: number };

type Tok = { k: 'punct'; v: string; at: number } | { k: 'string'; v: string; at: number } | { k: 'atom'; v: string; at: number } | { k: 'key'; v: string; at: number } | { k: 'number'; v: number; at: number };

function invalid(file: string, text: string, at: number, what: string): HexrepoError {
  const line = text.slice(0, at).split('\n').length;
  return new HexrepoError('LOCKFILE_INVALID', `${file}:${line}: ${what}`, { file, line, hint: 'the lockfile is read as literal data only; check that it is an unmodified mix.lock or rebar.lock' });
}

const ESCAPES: Record<string, string> = { n: '\n', t: '\t', r: '\r', '\\': '\\', '"': '"', "'": "'", s: ' ', e: '\x1b', '0': '\0', f: '\f', b: '\b', v: '\v', a: '\x07', d: '\x7f' };

/** Read a quoted text starting at `i` (the opening quote); returns the text and the index after the closing quote. */
function readQuoted(text: string, i: number, quote: string, file: string): [string, number] {
  let out = '';
  let j = i + 1;
  while (j < text.length) {
    const c = text[j]!;
    if (c === quote) return [out, j + 1];
    if (c === '\\') {
      const n = text[j + 1];
      if (n === undefined) break;
      // Interpolation (`#{`) never appears in a lockfile; an escape we do not know is kept as the character.
      out += ESCAPES[n] ?? n;
      j += 2;
      continue;
    }
    if (quote === '"' && c === '#' && text[j + 1] === '{') throw invalid(file, text, j, 'string interpolation is not allowed in a lockfile');
    out += c;
    j++;
  }
  throw invalid(file, text, i, 'unterminated string');
}

const IDENT = /[A-Za-z0-9_@]/;

/** Tokens of an Elixir literal (mix.lock). */
function tokenizeElixir(text: string, file: string): Tok[] {
  const toks: Tok[] = [];
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    if (/\s/.test(c)) {
      i++;
    } else if (c === '#') {
      while (i < text.length && text[i] !== '\n') i++;
    } else if (c === '%' && text[i + 1] === '{') {
      toks.push({ k: 'punct', v: '%{', at: i });
      i += 2;
    } else if ('{}[],'.includes(c)) {
      toks.push({ k: 'punct', v: c, at: i });
      i++;
    } else if (c === '=' && text[i + 1] === '>') {
      toks.push({ k: 'punct', v: '=>', at: i });
      i += 2;
    } else if (c === '"') {
      const [s, end] = readQuoted(text, i, '"', file);
      // `"quoted key": value` inside a map or keyword list.
      if (text[end] === ':' && /\s/.test(text[end + 1] ?? ' ')) {
        toks.push({ k: 'key', v: s, at: i });
        i = end + 1;
      } else {
        toks.push({ k: 'string', v: s, at: i });
        i = end;
      }
    } else if (c === ':' && text[i + 1] === '"') {
      const [s, end] = readQuoted(text, i + 1, '"', file);
      toks.push({ k: 'atom', v: s, at: i });
      i = end;
    } else if (c === ':' && /[A-Za-z_]/.test(text[i + 1] ?? '')) {
      let j = i + 1;
      while (j < text.length && IDENT.test(text[j]!)) j++;
      if (text[j] === '?' || text[j] === '!') j++;
      toks.push({ k: 'atom', v: text.slice(i + 1, j), at: i });
      i = j;
    } else if (/[0-9-]/.test(c)) {
      const m = /^-?\d[\d_]*(\.\d[\d_]*)?/.exec(text.slice(i, i + 64));
      if (!m) throw invalid(file, text, i, `unexpected "${c}"`);
      toks.push({ k: 'number', v: Number(m[0].replaceAll('_', '')), at: i });
      i += m[0].length;
    } else if (/[A-Za-z_]/.test(c)) {
      let j = i;
      while (j < text.length && IDENT.test(text[j]!)) j++;
      if (text[j] === '?' || text[j] === '!') j++;
      const word = text.slice(i, j);
      if (text[j] === ':' && text[j + 1] !== ':') {
        toks.push({ k: 'key', v: word, at: i });
        i = j + 1;
      } else if (word === 'true' || word === 'false' || word === 'nil') {
        toks.push({ k: 'atom', v: word, at: i });
        i = j;
      } else {
        // Aliases, variables and calls are code, not data.
        throw invalid(file, text, i, `"${word}" is not a literal`);
      }
    } else {
      throw invalid(file, text, i, `unexpected "${c}"`);
    }
  }
  return toks;
}

/** Tokens of Erlang terms (rebar.lock); `.` ends a term, `<<"...">>` is a binary. */
function tokenizeErlang(text: string, file: string): Tok[] {
  const toks: Tok[] = [];
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    if (/\s/.test(c)) {
      i++;
    } else if (c === '%') {
      while (i < text.length && text[i] !== '\n') i++;
    } else if (c === '<' && text[i + 1] === '<') {
      // A binary: `<<"text">>`, `<<"text"/utf8>>`, `<<>>` or bytes `<<1,2,3>>`.
      let j = i + 2;
      let value = '';
      const skipWs = (): void => {
        while (j < text.length && /\s/.test(text[j]!)) j++;
      };
      skipWs();
      while (!(text[j] === '>' && text[j + 1] === '>')) {
        if (j >= text.length) throw invalid(file, text, i, 'unterminated binary');
        if (text[j] === '"') {
          const [s, end] = readQuoted(text, j, '"', file);
          value += s;
          j = end;
          if (text.startsWith('/utf8', j)) j += 5;
        } else {
          const m = /^\d+/.exec(text.slice(j, j + 4));
          if (!m || Number(m[0]) > 255) throw invalid(file, text, j, 'a binary holds only strings and bytes');
          value += String.fromCharCode(Number(m[0]));
          j += m[0].length;
        }
        skipWs();
        if (text[j] === ',') j++;
        skipWs();
      }
      toks.push({ k: 'string', v: value, at: i });
      i = j + 2;
    } else if ('{}[],'.includes(c)) {
      toks.push({ k: 'punct', v: c, at: i });
      i++;
    } else if (c === '.') {
      toks.push({ k: 'punct', v: '.', at: i });
      i++;
    } else if (c === '"') {
      const [s, end] = readQuoted(text, i, '"', file);
      toks.push({ k: 'string', v: s, at: i });
      i = end;
    } else if (c === "'") {
      const [s, end] = readQuoted(text, i, "'", file);
      toks.push({ k: 'atom', v: s, at: i });
      i = end;
    } else if (/[a-z]/.test(c)) {
      let j = i;
      while (j < text.length && IDENT.test(text[j]!)) j++;
      toks.push({ k: 'atom', v: text.slice(i, j), at: i });
      i = j;
    } else if (/[0-9-]/.test(c)) {
      const m = /^-?\d+/.exec(text.slice(i, i + 32));
      if (!m) throw invalid(file, text, i, `unexpected "${c}"`);
      toks.push({ k: 'number', v: Number(m[0]), at: i });
      i += m[0].length;
    } else {
      throw invalid(file, text, i, `unexpected "${c}"`);
    }
  }
  return toks;
}

const MAX_DEPTH = 64;

/** A recursive-descent parser over tokens; `parse()` returns one term. */
class Parser {
  pos = 0;
  constructor(
    readonly toks: Tok[],
    readonly text: string,
    readonly file: string,
  ) {}

  fail(what: string): HexrepoError {
    return invalid(this.file, this.text, this.toks[this.pos]?.at ?? this.text.length, what);
  }

  peek(): Tok | undefined {
    return this.toks[this.pos];
  }

  isPunct(v: string): boolean {
    const t = this.peek();
    return t?.k === 'punct' && t.v === v;
  }

  expect(v: string): void {
    if (!this.isPunct(v)) throw this.fail(`expected "${v}"`);
    this.pos++;
  }

  parse(depth = 0): LockTerm {
    if (depth > MAX_DEPTH) throw this.fail('terms nested too deeply');
    const t = this.peek();
    if (!t) throw this.fail('unexpected end of file');
    this.pos++;
    if (t.k === 'string') return { t: 'string', value: t.v };
    if (t.k === 'atom') return { t: 'atom', value: t.v };
    if (t.k === 'number') return { t: 'number', value: t.v };
    if (t.k === 'key') throw invalid(this.file, this.text, t.at, `"${t.v}:" outside a map or list`);
    if (t.v === '{') return { t: 'tuple', items: this.sequence('}', depth) };
    if (t.v === '[') return { t: 'list', items: this.sequence(']', depth) };
    if (t.v === '%{') return this.map(depth);
    throw invalid(this.file, this.text, t.at, `unexpected "${t.v}"`);
  }

  /** Items up to `close`; `key: value` items (keyword syntax) become 2-tuples. A trailing comma is allowed. */
  sequence(close: string, depth: number): LockTerm[] {
    const items: LockTerm[] = [];
    while (!this.isPunct(close)) {
      const t = this.peek();
      if (t?.k === 'key') {
        this.pos++;
        items.push({ t: 'tuple', items: [{ t: 'atom', value: t.v }, this.parse(depth + 1)] });
      } else items.push(this.parse(depth + 1));
      if (this.isPunct(',')) this.pos++;
      else if (!this.isPunct(close)) throw this.fail(`expected "," or "${close}"`);
    }
    this.pos++;
    return items;
  }

  map(depth: number): LockTerm {
    const entries: [LockTerm, LockTerm][] = [];
    while (!this.isPunct('}')) {
      const t = this.peek();
      if (t?.k === 'key') {
        this.pos++;
        entries.push([{ t: 'string', value: t.v }, this.parse(depth + 1)]);
      } else {
        const key = this.parse(depth + 1);
        this.expect('=>');
        entries.push([key, this.parse(depth + 1)]);
      }
      if (this.isPunct(',')) this.pos++;
      else if (!this.isPunct('}')) throw this.fail('expected "," or "}"');
    }
    this.pos++;
    return { t: 'map', entries };
  }
}

const text = (t: LockTerm | undefined): string | undefined => (t?.t === 'string' || t?.t === 'atom' ? t.value : undefined);
const HEX64 = /^[0-9a-fA-F]{64}$/;
const checksum = (t: LockTerm | undefined): string | undefined => {
  const s = t?.t === 'string' ? t.value : undefined;
  return s !== undefined && HEX64.test(s) ? s.toLowerCase() : undefined;
};

function locked(file: string, key: string, name: string | undefined, version: string | undefined, repository: string, inner?: string, outer?: string): LockedPackage {
  if (!name || !version || parseVersion(version) === null) {
    throw new HexrepoError('LOCKFILE_INVALID', `${file}: the entry "${key}" has no valid package name and version`, { file, entry: key, hint: 'regenerate the lockfile with mix deps.get or rebar3 lock' });
  }
  return { name, version, repository, ...(inner ? { innerChecksum: inner } : {}), ...(outer ? { outerChecksum: outer } : {}) };
}

/**
 * Parse `mix.lock`: `%{"app": {:hex, :name, "1.2.3", inner, managers, deps, "hexpm", outer}, ...}`.
 * Hex has written 6-tuples (no repository, no outer checksum), 7-tuples (repository) and 8-tuples
 * (outer checksum); all are read. `:git`, `:path` and other SCM entries are skipped with a note.
 */
export function parseMixLock(source: string, file = 'mix.lock'): Lockfile {
  const p = new Parser(tokenizeElixir(source, file), source, file);
  const root = p.parse();
  if (p.pos !== p.toks.length) throw p.fail('unexpected text after the lock map');
  if (root.t !== 'map') throw new HexrepoError('LOCKFILE_INVALID', `${file}: a mix.lock is one map (%{...})`, { file });
  const packages: LockedPackage[] = [];
  const skipped: SkippedEntry[] = [];
  for (const [k, v] of root.entries) {
    const key = text(k) ?? '?';
    if (v.t !== 'tuple' || v.items[0]?.t !== 'atom') {
      skipped.push({ name: key, reason: 'not an SCM tuple' });
      continue;
    }
    const scm = v.items[0].value;
    if (scm !== 'hex') {
      skipped.push({ name: key, reason: `a :${scm} dependency (not from a Hex repository)` });
      continue;
    }
    const [, name, version, inner, , , repo, outer] = v.items;
    packages.push(locked(file, key, text(name), text(version), text(repo) ?? 'hexpm', checksum(inner), checksum(outer)));
  }
  return { format: 'mix', packages, skipped };
}

/**
 * Parse `rebar.lock`: `{"1.2.0", [{<<"app">>, {pkg, <<"name">>, <<"1.2.3">>}, Level}, ...]}.` followed by
 * `[{pkg_hash, [{<<"name">>, <<"INNER">>}]}, {pkg_hash_ext, [{<<"name">>, <<"OUTER">>}]}].`; the old
 * format (a bare list of entries, no hashes) too. Git and other sources are skipped with a note.
 */
export function parseRebarLock(source: string, file = 'rebar.lock'): Lockfile {
  const p = new Parser(tokenizeErlang(source, file), source, file);
  const terms: LockTerm[] = [];
  while (p.peek()) {
    terms.push(p.parse());
    p.expect('.');
  }
  const [first, second] = terms;
  const entries = first?.t === 'tuple' && first.items[1]?.t === 'list' ? first.items[1].items : first?.t === 'list' ? first.items : undefined;
  if (!entries) throw new HexrepoError('LOCKFILE_INVALID', `${file}: expected {"1.2.0", [...]}. or a list of dependencies`, { file });
  const hashes = (section: string): Map<string, string> => {
    const out = new Map<string, string>();
    if (second?.t !== 'list') return out;
    for (const s of second.items) {
      if (s.t !== 'tuple' || text(s.items[0]) !== section || s.items[1]?.t !== 'list') continue;
      for (const h of s.items[1].items) {
        const app = h.t === 'tuple' ? text(h.items[0]) : undefined;
        const sum = h.t === 'tuple' ? checksum(h.items[1]) : undefined;
        if (app && sum) out.set(app, sum);
      }
    }
    return out;
  };
  const inner = hashes('pkg_hash');
  const outer = hashes('pkg_hash_ext');
  const packages: LockedPackage[] = [];
  const skipped: SkippedEntry[] = [];
  for (const e of entries) {
    const app = e.t === 'tuple' ? text(e.items[0]) : undefined;
    const src = e.t === 'tuple' ? e.items[1] : undefined;
    if (!app || src?.t !== 'tuple') throw new HexrepoError('LOCKFILE_INVALID', `${file}: a dependency entry is not {Name, Source, Level}`, { file });
    const kind = text(src.items[0]);
    if (kind !== 'pkg') {
      skipped.push({ name: app, reason: `a ${kind ?? 'non-Hex'} dependency (not from a Hex repository)` });
      continue;
    }
    // {pkg, Name, Vsn} and, from rebar3 3.14, {pkg, Name, Vsn, InnerHash, OuterHash} in some lockfiles.
    packages.push(locked(file, app, text(src.items[1]), text(src.items[2]), 'hexpm', inner.get(app) ?? checksum(src.items[3]), outer.get(app) ?? checksum(src.items[4])));
  }
  return { format: 'rebar', packages, skipped };
}

/** Parse a lockfile by its name (`mix.lock`, `rebar.lock`), else by its content. */
export function parseLockfile(source: string, file: string): Lockfile {
  const base = file.split(/[\\/]/).pop() ?? file;
  if (base.endsWith('rebar.lock')) return parseRebarLock(source, file);
  if (base.endsWith('mix.lock')) return parseMixLock(source, file);
  return /^\s*(#[^\n]*\n\s*)*%\{/.test(source) ? parseMixLock(source, file) : parseRebarLock(source, file);
}
