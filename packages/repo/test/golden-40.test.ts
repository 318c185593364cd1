/**
 * golden-acme-40: 40 packages built by `mix hex.registry build` (Hex 2.5.1) with the test key.
 * Above 32 packages mix lists `names` and `versions` in Erlang map hash order; hexrepo keeps name
 * order, so those two match once decoded, while every `packages/NAME` and `public_key` match byte
 * for byte, including a release whose dependencies metadata.config lists out of name order.
 */
import { cp, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadPrivateKey, loadPublicKey, unpackNames, unpackPackage, unpackVersions } from '@hexrepo/registry';
import { parseTarball } from '@hexrepo/tarball';
import { FsStore } from '@hexrepo/storage';
import { buildRegistry, type BuildSummary } from '../src/index.js';
import { FIXTURES, GOLDEN_KEY, setMtime, snapshot, tempDir } from './helpers.js';

const GOLDEN_40 = join(FIXTURES, 'golden-acme-40/public');
const key = loadPrivateKey(await readFile(GOLDEN_KEY, 'utf8'));
const opts = { publicKey: loadPublicKey(await readFile(join(GOLDEN_40, 'public_key'))), repository: 'acme' };

/** The golden tarballs in a fresh public folder, with the mtime they had when mix built them. */
async function goldenTarballs(): Promise<string> {
  const pub = join(await tempDir(), 'public');
  await cp(join(GOLDEN_40, 'tarballs'), join(pub, 'tarballs'), { recursive: true });
  for (const f of await readdir(join(pub, 'tarballs'))) await setMtime(join(pub, 'tarballs', f), '2026-01-01T00:00:00Z');
  return pub;
}

const golden = await snapshot(GOLDEN_40);
const goldenPackages = [...golden.keys()].filter((k) => k.startsWith('packages/')).sort();

describe('hexrepo build against mix hex.registry build over 40 packages', () => {
  let summary: BuildSummary;
  let ours: Map<string, string>;
  beforeAll(async () => {
    const pub = await goldenTarballs();
    ({ summary } = await buildRegistry({ store: new FsStore(pub), repository: 'acme', privateKey: key }));
    ours = await snapshot(pub);
  });

  it('writes the same files', () => {
    expect(summary.packages).toBe(40);
    expect([...ours.keys()].sort()).toEqual([...golden.keys()].sort());
  });

  it.each(['public_key', ...goldenPackages])('%s is byte-identical', (file) => {
    expect(ours.get(file)).toBe(golden.get(file));
  });

  it('velvet lists its dependencies out of name order, and packages/velvet has them in name order as mix does', async () => {
    const { metadata } = parseTarball(await readFile(join(GOLDEN_40, 'tarballs/velvet-0.1.1.tar')));
    expect(metadata.requirements.map((r) => r.package)).toEqual(['sable', 'onyx']);
    const pkg = unpackPackage(Buffer.from(ours.get('packages/velvet')!, 'base64'), { ...opts, name: 'velvet' });
    expect(pkg.releases[0]?.dependencies.map((d) => d.package)).toEqual(['onyx', 'sable']);
  });

  it('names and versions hold the same entries as mix wrote, in name order instead of hash order', () => {
    const decode = (files: Map<string, string>) => ({
      names: unpackNames(Buffer.from(files.get('names')!, 'base64'), opts).packages,
      versions: unpackVersions(Buffer.from(files.get('versions')!, 'base64'), opts).packages,
    });
    const mix = decode(golden);
    const hexrepo = decode(ours);
    const names = mix.names.map((p) => p.name);
    const sorted = [...names].sort();
    expect(names).not.toEqual(sorted); // mix: Erlang map iteration order above 32 keys
    expect(hexrepo.names.map((p) => p.name)).toEqual(sorted);
    const byName = <T extends { name: string }>(list: T[]): T[] => [...list].sort((a, b) => (a.name < b.name ? -1 : 1));
    expect(hexrepo.names).toEqual(byName(mix.names));
    expect(hexrepo.versions).toEqual(byName(mix.versions));
  });
});
