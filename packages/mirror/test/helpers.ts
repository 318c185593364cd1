import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { KeyObject } from 'node:crypto';
import { generateKeyPair, loadPublicKey, publicKeyPem } from '@hexrepo/registry';
import { buildRegistry } from '@hexrepo/repo';
import { MemoryStore, type BlobStore } from '@hexrepo/storage';

export const TARBALLS = fileURLToPath(new URL('../../../test-fixtures/tarballs/', import.meta.url));

/** Outer checksums of the fixture tarballs, from SHA256SUMS. */
export const FIXTURE_SUMS = new Map(
  readFileSync(`${TARBALLS}SHA256SUMS`, 'utf8')
    .trim()
    .split('\n')
    .map((l) => l.split(/\s+/))
    .map(([sum, file]) => [file!.replace(/^\*/, ''), sum!] as const),
);

export interface TestUpstream {
  store: BlobStore;
  privateKey: KeyObject;
  publicKey: KeyObject;
  publicKeyPem: string;
  repository: string;
}

/** A real Hex repository (hexrepo's own builder over the fixture tarballs), signed with a fresh test key. */
export async function buildUpstream(opts: { repository?: string; store?: BlobStore; privateKey?: KeyObject } = {}): Promise<TestUpstream> {
  const store = opts.store ?? new MemoryStore();
  const privateKey = opts.privateKey ?? (await generateKeyPair()).privateKey;
  const repository = opts.repository ?? 'hexpm';
  for (const file of readdirSync(TARBALLS).filter((f) => f.endsWith('.tar'))) {
    await store.put(`tarballs/${file}`, readFileSync(`${TARBALLS}${file}`));
  }
  await buildRegistry({ store, repository, privateKey, threads: 1 });
  const pem = publicKeyPem(privateKey);
  await store.put('public_key', new TextEncoder().encode(pem));
  return { store, privateKey, publicKey: loadPublicKey(pem), publicKeyPem: pem, repository };
}

/** The bytes at `key`, which must exist. */
export async function bytes(store: BlobStore, key: string): Promise<Uint8Array> {
  const obj = await store.get(key);
  if (!obj) throw new Error(`${key} missing from the test upstream`);
  return obj.body;
}
