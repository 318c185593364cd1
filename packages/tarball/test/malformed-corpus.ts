/**
 * Test support: a corpus of malformed package tarballs, each refused with one specific error code.
 * Built in code (our tar writer, createTarball, byte surgery), deterministic, no files on disk.
 *
 * Every entry fails with its `code` under `CORPUS_LIMITS`; all but the two size entries
 * (`tarball-too-big`, `contents-too-big`) fail the same way under the default limits too.
 */
import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import type { ErrorCode } from '@hexrepo/core';
import { writeTar, type TarWriteEntry } from '../src/index.js';

/** One malformed input. `fileName` is a plausible NAME-VERSION.tar; `mentions` matches the message. */
export interface MalformedTarball {
  id: string;
  code: ErrorCode;
  bytes: Uint8Array;
  fileName: string;
  mentions: RegExp;
}

/** The limits the corpus is meant for (small, so size entries stay small). */
export const CORPUS_LIMITS = { maxTarballSize: 64 * 1024, maxUncompressedSize: 256 * 1024 } as const;

const enc = (text: string): Uint8Array => new Uint8Array(Buffer.from(text, 'utf8'));

/** Deterministic incompressible bytes. */
function noise(length: number, seed: string): Uint8Array {
  const out = new Uint8Array(length);
  let block = createHash('sha256').update(seed).digest();
  for (let i = 0; i < length; i += 32) {
    out.set(block.subarray(0, Math.min(32, length - i)), i);
    block = createHash('sha256').update(block).digest();
  }
  return out;
}

/** One pax record, `LEN key=value\n`, for ASCII text. */
function paxRecord(key: string, value: string): string {
  const body = ` ${key}=${value}\n`;
  const len = body.length + String(body.length + 2).length;
  return `${len}${body}`;
}

/** metadata.config text from raw Erlang values; `null` drops a key. */
function metadataText(name: string, version: string, overrides: Record<string, string | null> = {}): string {
  const fields: Record<string, string | null> = {
    app: `<<"${name}">>`,
    build_tools: '[<<"mix">>]',
    description: '<<"A malformed test package">>',
    files: '[<<"lib/pkg.ex">>]',
    licenses: '[<<"Apache-2.0">>]',
    name: `<<"${name}">>`,
    requirements: '[]',
    version: `<<"${version}">>`,
    ...overrides,
  };
  return Object.keys(fields)
    .sort()
    .filter((k) => fields[k] !== null)
    .map((k) => `{<<"${k}">>,${fields[k]!}}.\n`)
    .join('');
}

const GOOD_FILES: TarWriteEntry[] = [{ name: 'lib/pkg.ex', data: enc('defmodule Pkg do\nend\n') }];

interface Parts {
  version?: string;
  checksum?: string;
  metadata: string | Uint8Array;
  contents?: Uint8Array;
  /** Rewrite the outer member list (after the checksum is computed). */
  edit?: (members: TarWriteEntry[]) => TarWriteEntry[];
}

/** Assemble an outer tarball from parts, without any validation. */
function pack(parts: Parts): Uint8Array {
  const version = enc(parts.version ?? '3');
  const metadata = typeof parts.metadata === 'string' ? enc(parts.metadata) : parts.metadata;
  const contents = parts.contents ?? gzipSync(writeTar(GOOD_FILES));
  const checksum = parts.checksum ?? createHash('sha256').update(version).update(metadata).update(contents).digest('hex').toUpperCase();
  const members: TarWriteEntry[] = [
    { name: 'VERSION', data: version },
    { name: 'CHECKSUM', data: enc(checksum) },
    { name: 'metadata.config', data: metadata },
    { name: 'contents.tar.gz', data: contents },
  ];
  return writeTar(parts.edit ? parts.edit(members) : members);
}

/** Every malformed tarball of the corpus (at least 30, ids unique). */
export function malformedTarballs(): MalformedTarball[] {
  const out: MalformedTarball[] = [];
  const add = (id: string, code: ErrorCode, mentions: RegExp, build: (name: string) => Uint8Array, fileName?: string): void => {
    const name = `bad_${id.replace(/-/g, '_')}`;
    out.push({ id, code, mentions, bytes: build(name), fileName: fileName ?? `${name}-1.0.0.tar` });
  };
  const good = (name: string): Uint8Array => pack({ metadata: metadataText(name, '1.0.0') });
  const withMeta = (overrides: Record<string, string | null>) => (name: string) => pack({ metadata: metadataText(name, '1.0.0', overrides) });
  const withContents = (entries: TarWriteEntry[]) => (name: string) => pack({ metadata: metadataText(name, '1.0.0'), contents: gzipSync(writeTar(entries)) });
  const withMembers = (edit: (m: TarWriteEntry[]) => TarWriteEntry[]) => (name: string) => pack({ metadata: metadataText(name, '1.0.0'), edit });

  // the outer archive
  add('not-a-tar', 'TAR_CORRUPT', /not a tar archive/, () => enc('This is a README, not a package tarball.\n'.repeat(30)));
  add('empty-file', 'TAR_CORRUPT', /empty \(0 bytes\)/, () => new Uint8Array(0));
  add('too-short', 'TAR_CORRUPT', /too short/, () => enc('VERSION 3'));
  add('truncated', 'TAR_CORRUPT', /truncated/, (n) => good(n).subarray(0, 2048 + 512 + 10));
  add('truncated-in-padding', 'TAR_CORRUPT', /truncated/, (n) => good(n).subarray(0, 1024 + 512 + 100));
  add('bad-header-checksum', 'TAR_CORRUPT', /checksum/, (n) => {
    const bytes = good(n).slice();
    bytes[2048] = 'M'.charCodeAt(0); // "metadata.config" -> "Metadata.config", checksum left as is
    return bytes;
  });
  add('empty-archive', 'TAR_MISSING_MEMBER', /archive is empty/, () => new Uint8Array(1024));
  for (const member of ['VERSION', 'CHECKSUM', 'metadata.config', 'contents.tar.gz']) {
    add(
      `missing-${member.replace(/\./g, '-').toLowerCase()}`,
      'TAR_MISSING_MEMBER',
      new RegExp(`no ${member.replace(/\./g, '\\.')} member`),
      withMembers((m) => m.filter((e) => e.name !== member)),
    );
  }
  add(
    'extra-member',
    'TAR_EXTRA_MEMBER',
    /extra member "README\.md"/,
    withMembers((m) => [...m, { name: 'README.md', data: enc('# hi\n') }]),
  );
  add(
    'duplicate-member',
    'TAR_DUPLICATE_MEMBER',
    /"metadata\.config" twice/,
    withMembers((m) => [...m, m[2]!]),
  );
  add(
    'member-is-directory',
    'TAR_MISSING_MEMBER',
    /VERSION is a dir, not a regular file/,
    withMembers((m) => [{ name: 'VERSION', type: 'dir' }, ...m.slice(1)]),
  );
  add(
    'member-is-symlink',
    'TAR_MISSING_MEMBER',
    /CHECKSUM is a symlink/,
    withMembers((m) => [m[0]!, { name: 'CHECKSUM', type: 'symlink', linkname: 'VERSION' }, ...m.slice(2)]),
  );
  add('version-2', 'TAR_BAD_VERSION', /VERSION is "2"/, (n) => pack({ version: '2', metadata: metadataText(n, '1.0.0') }));
  add('version-with-newline', 'TAR_BAD_VERSION', /VERSION is "3\\n"/, (n) => pack({ version: '3\n', metadata: metadataText(n, '1.0.0') }));
  add('checksum-too-short', 'TAR_BAD_CHECKSUM_FORMAT', /not 64 hex characters/, (n) => pack({ checksum: 'ABCDEF', metadata: metadataText(n, '1.0.0') }));
  add('checksum-not-hex', 'TAR_BAD_CHECKSUM_FORMAT', /not 64 hex characters/, (n) => pack({ checksum: 'Z'.repeat(64), metadata: metadataText(n, '1.0.0') }));
  add('checksum-mismatch', 'TAR_CHECKSUM_MISMATCH', /inner checksum does not match/, (n) => pack({ checksum: 'AB'.repeat(32), metadata: metadataText(n, '1.0.0') }));
  add('tarball-too-big', 'TAR_TOO_BIG', /more than the limit of 65536 bytes/, (n) => pack({ metadata: metadataText(n, '1.0.0'), contents: gzipSync(writeTar([{ name: 'priv/blob.bin', data: noise(80 * 1024, n) }])) }));

  // metadata.config
  add('metadata-syntax-error', 'TERM_SYNTAX', /expected/, (n) => pack({ metadata: `${metadataText(n, '1.0.0')}{<<"extra">>,[a b]}.\n` }));
  add('metadata-float', 'TERM_UNSUPPORTED', /floats are not allowed/, withMeta({ extra: '[{<<"ratio">>,1.5}]' }));
  add('metadata-comment', 'TERM_UNSUPPORTED', /comments/, (n) => pack({ metadata: `% written by hand\n${metadataText(n, '1.0.0')}` }));
  add('metadata-variable', 'TERM_UNSUPPORTED', /variables/, withMeta({ extra: 'Foo' }));
  add('metadata-fun', 'TERM_UNSUPPORTED', /keyword/, withMeta({ extra: 'fun() -> ok end' }));
  add('metadata-too-deep', 'TERM_TOO_DEEP', /nested more than 32 levels/, withMeta({ extra: `${'['.repeat(40)}${']'.repeat(40)}` }));
  add('metadata-not-key-value', 'METADATA_INVALID', /every form must be/, (n) => pack({ metadata: `${metadataText(n, '1.0.0')}hello.\n` }));
  add('metadata-missing-name', 'METADATA_INVALID', /no "name"/, withMeta({ name: null }));
  add('metadata-missing-version', 'METADATA_INVALID', /no "version"/, withMeta({ version: null }));
  add('metadata-missing-app', 'METADATA_INVALID', /no "app"/, withMeta({ app: null }));
  add('metadata-name-not-binary', 'METADATA_INVALID', /"name" is an integer/, withMeta({ name: '42' }));
  add('bad-name-uppercase', 'METADATA_BAD_NAME', /"Foo" is not a valid package name/, () => pack({ metadata: metadataText('Foo', '1.0.0') }), 'Foo-1.0.0.tar');
  add('bad-name-digit', 'METADATA_BAD_NAME', /"1abc" is not a valid package name/, () => pack({ metadata: metadataText('1abc', '1.0.0') }), '1abc-1.0.0.tar');
  add('bad-version-short', 'METADATA_BAD_VERSION', /"1\.0" is not a SemVer version/, (n) => pack({ metadata: metadataText(n, '1.0') }), 'bad_version_short-1.0.tar');
  add('bad-version-build', 'METADATA_BAD_VERSION', /build metadata/, (n) => pack({ metadata: metadataText(n, '1.0.0+build') }), 'bad_version_build-1.0.0+build.tar');
  add('requirements-not-list', 'METADATA_BAD_REQUIREMENTS', /"requirements" is a binary/, withMeta({ requirements: '<<"foo">>' }));
  add('requirement-without-requirement', 'METADATA_BAD_REQUIREMENTS', /no "requirement"/, withMeta({ requirements: '[{<<"foo">>,[{<<"app">>,<<"foo">>},{<<"optional">>,false}]}]' }));
  add('requirement-without-name', 'METADATA_BAD_REQUIREMENTS', /no "name"/, withMeta({ requirements: '[[{<<"app">>,<<"foo">>},{<<"optional">>,false},{<<"requirement">>,<<"~> 1.0">>}]]' }));

  // contents.tar.gz
  add('contents-not-gzip', 'CONTENTS_CORRUPT', /not gzip/, (n) => pack({ metadata: metadataText(n, '1.0.0'), contents: writeTar(GOOD_FILES) }));
  add('contents-gzip-not-tar', 'CONTENTS_CORRUPT', /no valid tar archive/, (n) => pack({ metadata: metadataText(n, '1.0.0'), contents: gzipSync(enc('just some text')) }));
  add('contents-truncated-gzip', 'CONTENTS_CORRUPT', /cannot be decompressed/, (n) => pack({ metadata: metadataText(n, '1.0.0'), contents: gzipSync(writeTar(GOOD_FILES)).subarray(0, 40) }));
  add('contents-too-big', 'TAR_UNCOMPRESSED_TOO_BIG', /more than the limit of 262144 bytes/, withContents([{ name: 'priv/zeros.bin', data: new Uint8Array(300 * 1024) }]));
  add('contents-absolute-path', 'CONTENTS_UNSAFE_PATH', /"\/etc\/cron\.d\/evil": it is absolute/, withContents([...GOOD_FILES, { name: '/etc/cron.d/evil', data: enc('x') }]));
  add('contents-dotdot', 'CONTENTS_UNSAFE_PATH', /"lib\/\.\.\/\.\.\/evil\.ex": its "\.\." segments lead outside/, withContents([...GOOD_FILES, { name: 'lib/../../evil.ex', data: enc('x') }]));
  add('contents-nul-in-path', 'CONTENTS_UNSAFE_PATH', /NUL byte/, withContents([{ name: '././@PaxHeader', typeflag: 'x', data: enc(paxRecord('path', 'lib/a\0b.ex')) }, ...GOOD_FILES]));
  add('contents-symlink-escape', 'CONTENTS_UNSAFE_LINK', /unsafe symlink "lib\/link" -> "\.\.\/\.\.\/etc\/passwd"/, withContents([...GOOD_FILES, { name: 'lib/link', type: 'symlink', linkname: '../../etc/passwd' }]));
  add('contents-symlink-absolute', 'CONTENTS_UNSAFE_LINK', /target is absolute/, withContents([...GOOD_FILES, { name: 'link', type: 'symlink', linkname: '/etc/passwd' }]));
  add('contents-hardlink-escape', 'CONTENTS_UNSAFE_LINK', /unsafe hard link "lib\/h"/, withContents([...GOOD_FILES, { name: 'lib/h', type: 'hardlink', linkname: '../outside' }]));
  add(
    'contents-through-symlink',
    'CONTENTS_UNSAFE_LINK',
    /goes through the symlink "lib\/up"/,
    withContents([
      { name: 'lib/up', type: 'symlink', linkname: '.' },
      { name: 'lib/up/x.ex', data: enc('x') },
    ]),
  );
  add(
    'contents-symlink-chain',
    'CONTENTS_UNSAFE_LINK',
    /leads outside/,
    withContents([
      { name: 'a/l', type: 'symlink', linkname: '..' },
      { name: 'x', type: 'symlink', linkname: 'a/l/..' },
    ]),
  );
  add('contents-char-device', 'CONTENTS_UNSUPPORTED_ENTRY', /character device/, withContents([...GOOD_FILES, { name: 'dev/null', type: 'other', typeflag: '3' }]));
  add('contents-fifo', 'CONTENTS_UNSUPPORTED_ENTRY', /FIFO/, withContents([...GOOD_FILES, { name: 'pipe', type: 'other', typeflag: '6' }]));
  return out;
}

/** A valid tarball of the corpus's shape, for sanity checks of the helpers themselves. */
export function wellFormedTarball(name = 'good_pkg'): Uint8Array {
  return pack({ metadata: metadataText(name, '1.0.0') });
}
