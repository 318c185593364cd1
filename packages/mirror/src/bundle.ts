/**
 * Lockfile bundles for air-gapped sites: one tar file holding every verified object a lockfile needs
 * (`packages/NAME` of each package, the locked tarballs) and a manifest naming the upstream and its key
 * fingerprint. Import verifies everything again with the far side's configured upstream key before
 * storing anything, and pins what it stored so eviction keeps it.
 */
import { createHash } from 'node:crypto';
import { HexrepoError } from '@hexrepo/core';
import { fingerprint } from '@hexrepo/registry';
import type { BlobStore } from '@hexrepo/storage';
import { lockfileClosure } from './closure.js';
import type { Lockfile } from './lockfile.js';
import { metaKey, packageKey, parseMeta, pinKey, tarballKey, writeMeta, type MirrorPin, type Upstream } from './layout.js';
import { sha256Hex, verifyPackage, verifyTarball, type VerifiedPackage } from './verify.js';

export const BUNDLE_FORMAT = 'hexrepo-mirror-bundle';

/** One object of a bundle: its upstream path, the tar member holding it, and when it was fetched. */
export interface BundleObject {
  path: string;
  member: string;
  sha256: string;
  size: number;
  fetchedAt: number;
}

/** `manifest.json`, the first member of a bundle. */
export interface BundleManifest {
  format: typeof BUNDLE_FORMAT;
  version: 1;
  created: number;
  /** What the bundle was made for (the lockfile's name). */
  source: string;
  upstream: { url: string; repository: string; fingerprint: string };
  objects: BundleObject[];
  notes: string[];
}

// A minimal ustar writer/reader: members are `manifest.json` and `objects/NNNNNN`, so names never need
// the long-name extensions, and the reader refuses anything else.
const BLOCK = 512;

function tarHeader(name: string, size: number, mtime: number): Buffer {
  const h = Buffer.alloc(BLOCK);
  h.write(name, 0, 100, 'utf8');
  h.write('0000644\0', 100);
  h.write('0000000\0', 108);
  h.write('0000000\0', 116);
  h.write(`${size.toString(8).padStart(11, '0')}\0`, 124);
  h.write(
    `${Math.floor(mtime / 1000)
      .toString(8)
      .padStart(11, '0')}\0`,
    136,
  );
  h.write('        ', 148);
  h.write('0', 156);
  h.write('ustar\0', 257);
  h.write('00', 263);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148);
  return h;
}

/** Write bundle members (`manifest.json`, `objects/NNNNNN`) as a tar file. */
export function writeBundleMembers(members: { name: string; body: Uint8Array }[], mtime: number): Uint8Array {
  const parts: Buffer[] = [];
  for (const m of members) {
    parts.push(tarHeader(m.name, m.body.length, mtime), Buffer.from(m.body));
    const pad = (BLOCK - (m.body.length % BLOCK)) % BLOCK;
    if (pad) parts.push(Buffer.alloc(pad));
  }
  parts.push(Buffer.alloc(BLOCK * 2));
  return new Uint8Array(Buffer.concat(parts));
}

function bad(message: string, details: Record<string, unknown> = {}): HexrepoError {
  return new HexrepoError('BUNDLE_INVALID', message, { hint: 'export the bundle again (hexrepo mirror export) and copy it whole; nothing was imported', ...details });
}

/** The members of a bundle by name; throws BUNDLE_INVALID for anything but a well-formed bundle tar. */
export function readBundleMembers(bytes: Uint8Array): Map<string, Uint8Array> {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Map<string, Uint8Array>();
  let off = 0;
  while (off + BLOCK <= buf.length) {
    const h = buf.subarray(off, off + BLOCK);
    if (h.every((b) => b === 0)) return out;
    let sum = 0;
    for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 32 : h[i]!;
    if (parseInt(h.toString('latin1', 148, 156).replace(/\0.*$/, '').trim(), 8) !== sum) throw bad(`the bundle is not a valid tar file (bad header checksum at byte ${off})`);
    const name = h.toString('utf8', 0, 100).replace(/\0.*$/s, '');
    const size = parseInt(h.toString('latin1', 124, 136).replace(/\0.*$/, '').trim(), 8);
    if (h[156] !== 0x30 || !/^(manifest\.json|objects\/\d{6})$/.test(name) || !Number.isFinite(size)) throw bad(`the bundle holds an unexpected member "${name}"`);
    if (out.has(name)) throw bad(`the bundle holds "${name}" twice`);
    off += BLOCK;
    if (off + size > buf.length) throw bad(`the bundle is truncated (member "${name}")`);
    out.set(name, new Uint8Array(buf.subarray(off, off + size)));
    off += Math.ceil(size / BLOCK) * BLOCK;
  }
  throw bad('the bundle is truncated (no end-of-archive marker)');
}

export interface ExportResult {
  bundle: Uint8Array;
  manifest: BundleManifest;
}

/**
 * Build a bundle for a lockfile from a mirror store: `packages/NAME` of each locked package and each
 * locked tarball, all read from the store and verified again. Throws NOT_FOUND naming what is missing
 * (run `hexrepo mirror sync --lock` first).
 */
export async function exportBundle(store: BlobStore, upstream: Upstream, lock: Lockfile, opts: { source: string; now?: number }): Promise<ExportResult> {
  const closure = lockfileClosure(lock, { repository: upstream.repository });
  const objects: BundleObject[] = [];
  const bodies: { name: string; body: Uint8Array }[] = [];
  const missing: string[] = [];
  const add = async (path: string, body: Uint8Array, mtime: Date): Promise<void> => {
    const meta = await store.get(metaKey(path)).then((m) => (m ? parseMeta(m.body) : null));
    const member = `objects/${String(objects.length + 1).padStart(6, '0')}`;
    objects.push({ path, member, sha256: sha256Hex(body), size: body.length, fetchedAt: meta?.fetchedAt ?? mtime.getTime() });
    bodies.push({ name: member, body });
  };
  for (const [name, versions] of closure.packages) {
    const pkgObj = await store.get(packageKey(name));
    if (!pkgObj) {
      missing.push(packageKey(name));
      continue;
    }
    const pkg = verifyPackage(pkgObj.body, upstream.publicKey, upstream.repository, name);
    await add(packageKey(name), pkgObj.body, pkgObj.mtime);
    for (const version of versions) {
      const release = pkg.releases.find((r) => r.version === version);
      const tar = await store.get(tarballKey(name, version));
      if (!release || !tar) {
        missing.push(tarballKey(name, version));
        continue;
      }
      if (!release.checksum) throw new HexrepoError('REGISTRY_CHECKSUM_MISMATCH', `${name} ${version} has no outer checksum in packages/${name}; its tarball cannot be verified`);
      verifyTarball(tar.body, release.checksum);
      await add(tarballKey(name, version), tar.body, tar.mtime);
    }
  }
  if (missing.length > 0) {
    throw new HexrepoError('NOT_FOUND', `the mirror store lacks ${missing.length} object(s) the lockfile needs: ${missing.slice(0, 5).join(', ')}${missing.length > 5 ? ', …' : ''}`, {
      missing,
      hint: `fill it first: hexrepo mirror sync --lock ${opts.source}`,
    });
  }
  const now = opts.now ?? Date.now();
  const manifest: BundleManifest = {
    format: BUNDLE_FORMAT,
    version: 1,
    created: now,
    source: opts.source,
    upstream: { url: upstream.url, repository: upstream.repository, fingerprint: fingerprint(upstream.publicKey) },
    objects,
    notes: closure.notes,
  };
  const bundle = writeBundleMembers([{ name: 'manifest.json', body: new TextEncoder().encode(`${JSON.stringify(manifest, null, 1)}\n`) }, ...bodies], now);
  return { bundle, manifest };
}

function parseManifest(bytes: Uint8Array | undefined): BundleManifest {
  if (!bytes) throw bad('the bundle has no manifest.json');
  let m: unknown;
  try {
    m = JSON.parse(new TextDecoder().decode(bytes));
  } catch (err) {
    throw bad(`manifest.json is not JSON: ${(err as Error).message}`);
  }
  const r = m as Partial<BundleManifest> | null;
  if (r?.format !== BUNDLE_FORMAT || r.version !== 1) throw bad(`not a ${BUNDLE_FORMAT} version 1 (format ${JSON.stringify(r?.format)}, version ${JSON.stringify(r?.version)})`);
  if (typeof r.upstream?.repository !== 'string' || typeof r.upstream.fingerprint !== 'string' || !Array.isArray(r.objects) || typeof r.source !== 'string') throw bad('manifest.json lacks upstream, source or objects');
  for (const o of r.objects) {
    if (typeof o?.path !== 'string' || typeof o.member !== 'string' || typeof o.sha256 !== 'string' || typeof o.fetchedAt !== 'number') throw bad('manifest.json has a malformed object entry');
  }
  return r as BundleManifest;
}

export interface ImportResult {
  pin: string;
  /** Objects written (new, or newer than what was stored). */
  stored: number;
  /** Objects already stored with the same bytes, or `packages/NAME` kept because the stored one is newer. */
  kept: number;
  notes: string[];
}

/**
 * Import a bundle into a mirror store. Everything is verified first with the configured upstream key
 * and repository name (registry signatures, each tarball against the outer checksum in the bundle's
 * verified `packages/NAME`); any failure throws BUNDLE_INVALID (or the verification's code) and stores
 * nothing. A `packages/NAME` already stored that was fetched later than the bundle's stays (newer
 * wins). The imported paths are pinned.
 */
export async function importBundle(store: BlobStore, upstream: Upstream, bundle: Uint8Array, opts: { now?: number } = {}): Promise<ImportResult> {
  const members = readBundleMembers(bundle);
  const manifest = parseManifest(members.get('manifest.json'));
  if (manifest.upstream.repository !== upstream.repository) throw bad(`the bundle is for repository "${manifest.upstream.repository}", the mirror's upstream is "${upstream.repository}"`);
  const fp = fingerprint(upstream.publicKey);
  if (manifest.upstream.fingerprint !== fp)
    throw bad(`the bundle was exported with upstream key ${manifest.upstream.fingerprint}, the mirror's upstream key is ${fp}`, { hint: 'configure the same upstream public key on both sides; nothing was imported' });
  const packages = new Map<string, VerifiedPackage>();
  const objects: { o: BundleObject; body: Uint8Array }[] = [];
  const seen = new Set<string>();
  for (const o of manifest.objects) {
    const body = members.get(o.member);
    if (!body) throw bad(`manifest.json lists ${o.path} in ${o.member}, which the bundle lacks`);
    if (seen.has(o.path)) throw bad(`manifest.json lists ${o.path} twice`);
    seen.add(o.path);
    if (sha256Hex(body) !== o.sha256) throw bad(`${o.path} does not match its SHA-256 in manifest.json`, { path: o.path });
    objects.push({ o, body });
  }
  for (const { o, body } of objects) {
    const m = /^packages\/([^/]+)$/.exec(o.path);
    if (m) packages.set(m[1]!, verifyPackage(body, upstream.publicKey, upstream.repository, m[1]!));
  }
  for (const { o, body } of objects) {
    if (o.path.startsWith('packages/')) continue;
    const m = /^tarballs\/([a-z][a-z0-9_]*)-(.+)\.tar$/.exec(o.path);
    if (!m) throw bad(`the bundle holds ${o.path}, which is neither packages/NAME nor a tarball`);
    const release = packages.get(m[1]!)?.releases.find((r) => r.version === m[2]);
    if (!release?.checksum) throw bad(`${o.path} has no release with an outer checksum in the bundle's verified packages/${m[1]}`, { path: o.path });
    try {
      verifyTarball(body, release.checksum);
    } catch (err) {
      throw err instanceof HexrepoError ? err.withContext(`${o.path} in the bundle`, { path: o.path }) : err;
    }
  }
  // Everything verified: store registry files first (a tarball is servable only with its packages/NAME).
  const notes: string[] = [...manifest.notes];
  // manifest.json is not signed: a fetch time claimed later than this import is a lie (it would
  // make an old packages/NAME win below, and look fresh to the cache for ever).
  const importedAt = opts.now ?? Date.now();
  const fetchedAtOf = (o: BundleObject): number => Math.min(o.fetchedAt, importedAt);
  let stored = 0;
  let kept = 0;
  const ordered = [...objects.filter((x) => x.o.path.startsWith('packages/')), ...objects.filter((x) => !x.o.path.startsWith('packages/'))];
  for (const { o, body } of ordered) {
    const [current, metaObj] = await Promise.all([store.get(o.path), store.get(metaKey(o.path))]);
    const meta = metaObj ? parseMeta(metaObj.body) : null;
    if (current && sha256Hex(current.body) === o.sha256) {
      kept++;
      continue;
    }
    if (current && o.path.startsWith('packages/')) {
      const name = o.path.slice('packages/'.length);
      let newer = false;
      try {
        const have = verifyPackage(current.body, upstream.publicKey, upstream.repository, name);
        // Releases are only ever added upstream (reverts aside): a bundle's copy listing fewer of the
        // stored copy's releases and nothing else is the older one, whatever the manifest claims.
        const haveVersions = new Set(have.releases.map((r) => r.version));
        const bundled = packages.get(name)?.releases ?? [];
        const subset = bundled.length < haveVersions.size && bundled.every((r) => haveVersions.has(r.version));
        newer = subset || (meta?.fetchedAt ?? current.mtime.getTime()) > fetchedAtOf(o);
      } catch {
        newer = false;
      }
      if (newer) {
        notes.push(`${o.path}: the stored copy is newer than the bundle's and stays`);
        kept++;
        continue;
      }
    }
    await store.put(o.path, body, { contentType: 'application/octet-stream' });
    await writeMeta(store, o.path, { etag: null, fetchedAt: fetchedAtOf(o), sha256: o.sha256 });
    stored++;
  }
  const id = createHash('sha256').update(bundle).digest('hex').slice(0, 16);
  const pin: MirrorPin = { created: importedAt, source: `bundle ${manifest.source} (${id})`, paths: objects.map((x) => x.o.path) };
  await store.put(pinKey(id), new TextEncoder().encode(JSON.stringify(pin)), { contentType: 'application/json' });
  return { pin: id, stored, kept, notes };
}
