/** metadata.config: normalise parsed terms into `Metadata`, and write `Metadata` back as terms. */
import { assertPackageName, assertReleaseVersion, HexrepoError, type Dependency } from '@hexrepo/core';
import { parseConsult, type Term, type TermLimits } from './terms.js';
import { readRequirements, requirementsTerm, type DependencyInput } from './requirements.js';
import { binaryTerm, kindOf, termPairs, termText } from './term-access.js';
import { hasLoneSurrogate, preview } from './text.js';

/** The release metadata of a package tarball, normalised from metadata.config. */
export interface Metadata {
  /** Package name (validated like hex.pm: `^[a-z][a-z0-9_]*$`). */
  name: string;
  /** SemVer release version without build metadata. */
  version: string;
  /** OTP application name. */
  app: string;
  description?: string;
  licenses: string[];
  links: [string, string][];
  /** The file list the metadata declares (directories included, as Mix writes it). */
  files: string[];
  /** Build tools; guessed from the top-level files when metadata.config has none, as hex_core does. */
  buildTools: string[];
  /** Elixir version requirement. */
  elixir?: string;
  requirements: Dependency[];
  /** The `extra` entry, as read. */
  extra?: Term;
  /** Top-level entries hexrepo does not model (e.g. `maintainers`, `parameters`), as read. */
  other: Record<string, Term>;
}

/** What a caller gives to write metadata: only `name` and `version` are required. */
export interface MetadataInput {
  name: string;
  version: string;
  /** @default name */
  app?: string;
  description?: string;
  /** @default [] */
  licenses?: string[];
  /** @default [] */
  links?: [string, string][];
  /** @default [] (createTarball: the paths of the files given) */
  files?: string[];
  /** @default guessed from `files` */
  buildTools?: string[];
  elixir?: string;
  /** @default [] */
  requirements?: DependencyInput[];
  extra?: Term;
  other?: Record<string, Term>;
}

const MODELLED = new Set(['name', 'version', 'app', 'description', 'licenses', 'links', 'files', 'build_tools', 'elixir', 'requirements', 'extra']);

function invalid(message: string, details: Record<string, unknown> = {}): never {
  throw new HexrepoError('METADATA_INVALID', message, details);
}

function textField(key: string, term: Term): string {
  const value = termText(term);
  if (value === null) invalid(`"${key}" is ${kindOf(term)}; it must be a binary such as <<"text">>`, { field: key });
  return value;
}

function textList(key: string, term: Term): string[] {
  if (term.type !== 'list') invalid(`"${key}" is ${kindOf(term)}; it must be a list of binaries such as [<<"a">>, <<"b">>]`, { field: key });
  return term.items.map((item) => {
    const value = termText(item);
    if (value === null) invalid(`"${key}" holds ${kindOf(item)}; every element must be a binary`, { field: key });
    return value;
  });
}

function readLinks(term: Term): [string, string][] {
  const pairs = termPairs(term);
  if (pairs === null) invalid(`"links" is ${kindOf(term)}; it must be a list of {<<"Name">>, <<"https://...">>} tuples`, { field: 'links' });
  return pairs.map(([k, v]) => [k, textField(`links.${k}`, v)]);
}

/** Build tools from the top-level file names, as hex_core guesses them when metadata has none. */
export function guessBuildTools(paths: readonly string[]): string[] {
  const top = new Set(paths.map((p) => p.replace(/^\.\//, '')).filter((p) => !p.includes('/')));
  const tools: string[] = [];
  if (top.has('mix.exs')) tools.push('mix');
  if (top.has('rebar.config') || top.has('rebar')) tools.push('rebar3');
  if (top.has('Makefile') || top.has('Makefile.win')) tools.push('make');
  return tools;
}

/** True when some form is `{<<"key">>, _}`. */
export function hasField(terms: readonly Term[], key: string): boolean {
  return terms.some((form) => form.type === 'tuple' && form.items.length === 2 && termText(form.items[0]!) === key);
}

/**
 * Normalise the forms of metadata.config. Each form must be `{<<"key">>, Value}`; a key given twice
 * takes its last value (as hex_core's map does). `contentPaths` (the files in contents.tar.gz) are
 * used to guess build tools when `build_tools` is absent; otherwise `files` is used.
 * Throws METADATA_INVALID, METADATA_BAD_NAME, METADATA_BAD_VERSION or METADATA_BAD_REQUIREMENTS.
 */
export function metadataFromTerms(terms: readonly Term[], opts: { contentPaths?: readonly string[] } = {}): Metadata {
  const fields = new Map<string, Term>();
  terms.forEach((form, i) => {
    const key = form.type === 'tuple' && form.items.length === 2 ? termText(form.items[0]!) : null;
    if (key === null) invalid(`form ${i + 1} of metadata.config is ${kindOf(form)}; every form must be {<<"key">>, Value}.`, { form: i + 1 });
    fields.set(key, (form as { items: Term[] }).items[1]!);
  });
  const required = (key: string): string => {
    const term = fields.get(key);
    if (term === undefined) invalid(`metadata.config has no "${key}"; add {<<"${key}">>, <<"...">>}.`, { field: key });
    const value = textField(key, term);
    if (value === '') invalid(`"${key}" is empty in metadata.config; give it a value`, { field: key });
    return value;
  };
  const name = required('name');
  assertPackageName(name);
  const version = required('version');
  assertReleaseVersion(version);
  const app = required('app');
  const list = (key: string): string[] => {
    const term = fields.get(key);
    return term === undefined ? [] : textList(key, term);
  };
  const files = list('files');
  const toolsTerm = fields.get('build_tools');
  const meta: Metadata = {
    name,
    version,
    app,
    licenses: list('licenses'),
    links: fields.has('links') ? readLinks(fields.get('links')!) : [],
    files,
    buildTools: toolsTerm === undefined ? guessBuildTools(opts.contentPaths ?? files) : textList('build_tools', toolsTerm),
    requirements: fields.has('requirements') ? readRequirements(fields.get('requirements')!) : [],
    other: Object.fromEntries([...fields].filter(([k]) => !MODELLED.has(k))),
  };
  const description = fields.get('description');
  if (description !== undefined) meta.description = textField('description', description);
  const elixir = fields.get('elixir');
  if (elixir !== undefined) meta.elixir = textField('elixir', elixir);
  const extra = fields.get('extra');
  if (extra !== undefined) meta.extra = extra;
  return meta;
}

/** Parse and normalise metadata.config bytes (see `parseConsult` and `metadataFromTerms`). */
export function parseMetadata(input: string | Uint8Array, limits: Partial<TermLimits> = {}): Metadata {
  return metadataFromTerms(parseConsult(input, limits));
}

function checkText(field: string, text: string): string {
  if (hasLoneSurrogate(text)) invalid(`"${field}" ${preview(text)} holds a lone UTF-16 surrogate and cannot be written as UTF-8`, { field });
  return text;
}

/**
 * Metadata as the forms of metadata.config, keys in alphabetical order like hex_core writes them.
 * Requirements use Mix's shape (with `repository` when set). Defaults: `app` = name, lists empty,
 * build tools guessed from `files`. Unmodelled `other` entries are written as given.
 */
export function metadataToTerms(meta: MetadataInput): Term[] {
  const entries = new Map<string, Term>();
  const text = (key: string, value: string): void => void entries.set(key, binaryTerm(checkText(key, value)));
  const texts = (key: string, values: readonly string[]): void => void entries.set(key, { type: 'list', items: values.map((v) => binaryTerm(checkText(key, v))) });
  text('name', meta.name);
  text('version', meta.version);
  text('app', meta.app ?? meta.name);
  if (meta.description !== undefined) text('description', meta.description);
  if (meta.elixir !== undefined) text('elixir', meta.elixir);
  const files = meta.files ?? [];
  texts('files', files);
  texts('licenses', meta.licenses ?? []);
  texts('build_tools', meta.buildTools ?? guessBuildTools(files));
  entries.set('links', {
    type: 'list',
    items: (meta.links ?? []).map(([k, v]): Term => ({ type: 'tuple', items: [binaryTerm(checkText('links', k)), binaryTerm(checkText('links', v))] })),
  });
  for (const dep of meta.requirements ?? []) {
    for (const v of [dep.package, dep.requirement, dep.app, dep.repository]) if (v !== undefined) checkText('requirements', v);
  }
  entries.set('requirements', requirementsTerm(meta.requirements ?? []));
  if (meta.extra !== undefined) entries.set('extra', meta.extra);
  for (const [key, value] of Object.entries(meta.other ?? {})) {
    if (MODELLED.has(key)) invalid(`"other" repeats the modelled field "${key}"; set it through its own property instead`, { field: key });
    entries.set(checkText('other', key), value);
  }
  return [...entries.keys()].sort().map((key) => ({ type: 'tuple', items: [binaryTerm(key), entries.get(key)!] }));
}
