/**
 * Path safety for the entries of contents.tar.gz, as hex_core enforces it on extraction: no
 * absolute paths, no `..` that leaves the package, link targets that stay inside, no devices.
 */
import { HexrepoError } from '@hexrepo/core';
import type { TarEntry } from './tar.js';
import { preview } from './text.js';

/** An entry of contents.tar.gz as `parseTarball` reports it. */
export interface ContentFile {
  /** The normalised path (no `.` segments, no repeated or trailing `/`). */
  path: string;
  type: 'file' | 'dir' | 'symlink' | 'hardlink';
  size: number;
  /** Permission bits. */
  mode: number;
  /** Link target as stored, for symlinks and hard links. */
  linkname?: string;
}

const UNSUPPORTED: Readonly<Record<string, string>> = {
  '3': 'a character device',
  '4': 'a block device',
  '6': 'a FIFO',
};

/**
 * Split a relative path into segments, resolving `.` and `..` against `base` segments.
 * Returns null when it would leave the root, or when a `..` steps back out of a symlink (where the
 * lexical answer and the real one differ).
 */
function resolveSegments(base: readonly string[], path: string, symlinks?: ReadonlySet<string>): string[] | null {
  const out = [...base];
  for (const seg of path.split('/')) {
    if (seg === '' || seg === '.') continue;
    if (seg === '..') {
      if (out.length === 0 || symlinks?.has(out.join('/'))) return null;
      out.pop();
    } else out.push(seg);
  }
  return out;
}

function isAbsolute(path: string): boolean {
  return path.startsWith('/') || path.startsWith('\\') || /^[A-Za-z]:/.test(path);
}

/**
 * Normalise a package-relative path, or throw CONTENTS_UNSAFE_PATH when it is empty, absolute,
 * holds a NUL byte, or uses `..` to leave the package. Directories may normalise to the root.
 */
export function safeEntryPath(path: string, opts: { allowRoot?: boolean } = {}): string {
  const unsafe: (why: string) => never = (why) => {
    throw new HexrepoError('CONTENTS_UNSAFE_PATH', `unsafe path ${preview(path, 80)}: ${why}; package files must use relative paths inside the package`, { path });
  };
  if (path.includes('\0')) unsafe('it contains a NUL byte');
  if (isAbsolute(path)) unsafe('it is absolute');
  const segments = resolveSegments([], path);
  if (segments === null) unsafe('its ".." segments lead outside the package');
  if (segments.length === 0 && !opts.allowRoot) unsafe('it names no file');
  return segments.join('/');
}

/**
 * Check every entry of contents.tar.gz and describe it. Throws CONTENTS_UNSAFE_PATH,
 * CONTENTS_UNSAFE_LINK (a link target outside the package, or a path through a symlink) or
 * CONTENTS_UNSUPPORTED_ENTRY (devices, FIFOs, other special types).
 */
export function checkContents(entries: readonly TarEntry[]): ContentFile[] {
  // Every symlink is known up front, so the order of entries cannot hide a path through one.
  const symlinks = new Set<string>();
  for (const entry of entries) if (entry.type === 'symlink') symlinks.add(resolveSegments([], entry.name)?.join('/') ?? '');
  const files: ContentFile[] = [];
  for (const entry of entries) {
    if (entry.type === 'other') {
      const what = UNSUPPORTED[entry.typeflag] ?? `an entry of tar type ${JSON.stringify(entry.typeflag)}`;
      throw new HexrepoError('CONTENTS_UNSUPPORTED_ENTRY', `${preview(entry.name, 80)} is ${what}; Hex packages may hold only files, directories and links inside the package`, { path: entry.name, typeflag: entry.typeflag });
    }
    const path = safeEntryPath(entry.name, { allowRoot: entry.type === 'dir' });
    for (let i = path.indexOf('/'); i !== -1; i = path.indexOf('/', i + 1)) {
      if (symlinks.has(path.slice(0, i))) {
        throw new HexrepoError('CONTENTS_UNSAFE_LINK', `unsafe link: ${preview(path, 80)} goes through the symlink ${preview(path.slice(0, i), 80)}, so it could be written outside the package; store real directories`, { path });
      }
    }
    const file: ContentFile = { path, type: entry.type, size: entry.size, mode: entry.mode };
    if (entry.type === 'symlink' || entry.type === 'hardlink') {
      const target = entry.linkname;
      const unsafe: (why: string) => never = (why) => {
        throw new HexrepoError('CONTENTS_UNSAFE_LINK', `unsafe ${entry.type === 'symlink' ? 'symlink' : 'hard link'} ${preview(path, 80)} -> ${preview(target, 80)}: ${why}; links must point inside the package`, { path, linkname: target });
      };
      if (target === '') unsafe('the target is empty');
      if (target.includes('\0')) unsafe('the target contains a NUL byte');
      if (isAbsolute(target)) unsafe('the target is absolute');
      // A symlink resolves from its own folder; a hard link names a path from the archive root.
      const base = entry.type === 'symlink' ? path.split('/').slice(0, -1) : [];
      if (resolveSegments(base, target, symlinks) === null) unsafe('the target leads outside the package');
      file.linkname = target;
    }
    files.push(file);
  }
  return files;
}
