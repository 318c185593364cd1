/** Building a Hex package tarball (format 3), deterministically, as hex_core's `create/2` does. */
import { Buffer } from 'node:buffer';
import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { assertPackageName, assertReleaseVersion, HexrepoError, toHex, type TarballLimits } from '@hexrepo/core';
import { metadataToTerms, type Metadata, type MetadataInput } from './metadata.js';
import { safeEntryPath } from './paths.js';
import { printConsult } from './print.js';
import { writeTar } from './tar.js';
import { parseTarball } from './tarball.js';
import { plainView, preview } from './text.js';

/** One file of the package. */
export interface TarballFileInput {
  /** Path inside the package, relative (`lib/foo.ex`). */
  path: string;
  contents: Uint8Array;
  /** Permission bits. @default 0o644 */
  mode?: number;
}

/** Options of `createTarball`. */
export interface CreateTarballOptions {
  /** Limits over `DEFAULT_LIMITS`; the result must satisfy them, as on reading. */
  limits?: Partial<TarballLimits>;
}

/** A built tarball and its checksums. */
export interface CreatedTarball {
  tarball: Uint8Array;
  innerChecksum: Uint8Array;
  outerChecksum: Uint8Array;
  /** The metadata as a reader will see it (defaults filled in). */
  metadata: Metadata;
}

function checkFiles(files: readonly TarballFileInput[]): string[] {
  const paths = files.map((f) => safeEntryPath(f.path));
  const seen = new Set<string>();
  paths.forEach((path, i) => {
    if (seen.has(path)) {
      throw new HexrepoError('CONTENTS_DUPLICATE_PATH', `the package lists ${preview(path, 80)} twice; give each file once`, { path });
    }
    seen.add(path);
    const mode = files[i]!.mode;
    if (mode !== undefined && (!Number.isInteger(mode) || mode < 0 || mode > 0o7777)) {
      throw new HexrepoError('USAGE', `the mode ${mode} of ${preview(path, 80)} is not a permission value (0..0o7777)`, { path, mode });
    }
  });
  for (const path of paths) {
    for (let i = path.indexOf('/'); i !== -1; i = path.indexOf('/', i + 1)) {
      if (seen.has(path.slice(0, i))) {
        throw new HexrepoError('CONTENTS_DUPLICATE_PATH', `${preview(path.slice(0, i), 80)} is a file but ${preview(path, 80)} uses it as a folder; rename one of them`, { path });
      }
    }
  }
  return paths;
}

/**
 * Build a package tarball: contents.tar.gz (ustar, mtime 2000-01-01, gzip header mtime 0), then the
 * outer tar with VERSION, CHECKSUM (uppercase hex), metadata.config and contents.tar.gz. Metadata
 * defaults: `app` = name, `files` = the given paths, build tools guessed from them. The inputs are
 * validated as `parseTarball` validates a tarball (the result is parsed back before it is
 * returned), so an unsafe path, a bad name or version, or a limit overrun throws the same codes.
 */
export function createTarball(metadata: MetadataInput, files: readonly TarballFileInput[], opts: CreateTarballOptions = {}): CreatedTarball {
  assertPackageName(metadata.name);
  assertReleaseVersion(metadata.version);
  const paths = checkFiles(files);
  const metadataConfig = plainView(Buffer.from(printConsult(metadataToTerms({ ...metadata, files: metadata.files ?? paths })), 'utf8'));
  const contents = writeTar(files.map((f, i) => ({ name: paths[i]!, data: f.contents, mode: f.mode ?? 0o644 })));
  const contentsGz = plainView(gzipSync(contents));
  const version = Uint8Array.of(0x33);
  const inner = createHash('sha256').update(version).update(metadataConfig).update(contentsGz).digest();
  const tarball = writeTar([
    { name: 'VERSION', data: version },
    { name: 'CHECKSUM', data: plainView(Buffer.from(toHex(inner).toUpperCase(), 'latin1')) },
    { name: 'metadata.config', data: metadataConfig },
    { name: 'contents.tar.gz', data: contentsGz },
  ]);
  const parsed = parseTarball(tarball, opts.limits ? { limits: opts.limits } : {});
  return { tarball, innerChecksum: parsed.innerChecksum, outerChecksum: parsed.outerChecksum, metadata: parsed.metadata };
}
