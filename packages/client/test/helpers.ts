import { cp, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, expect } from 'vitest';
import { HexrepoError } from '@hexrepo/core';
import { Access, createRepositoryHandler, listen, type BasicUser, type RunningServer } from '@hexrepo/http';
import { loadPrivateKey } from '@hexrepo/registry';
import { openRepository, TokenStore } from '@hexrepo/repo';
import { FsStore } from '@hexrepo/storage';

export const FIXTURES = fileURLToPath(new URL('../../../test-fixtures/', import.meta.url));
export const KEY = loadPrivateKey(await readFile(join(FIXTURES, 'golden-acme/test-only-rsa.pem'), 'utf8'));

const cleanup: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const c of cleanup.reverse()) await c();
});

export async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'hexrepo-client-'));
  cleanup.push(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** A copy of the golden `acme` registry with its tarballs, in a temp folder. */
export async function goldenPublic(): Promise<string> {
  const pub = join(await tempDir(), 'public');
  await cp(join(FIXTURES, 'golden-acme/public'), pub, { recursive: true });
  await cp(join(FIXTURES, 'tarballs'), join(pub, 'tarballs'), { recursive: true, filter: (src) => !src.endsWith('SHA256SUMS') });
  return pub;
}

export interface TestServer {
  url: string;
  publicDir: string;
  tokens: TokenStore;
}

/**
 * What `hexrepo serve` runs, in-process on 127.0.0.1 port 0: the repository handler over a folder,
 * with the publish API (the service opened with the key) and access control.
 */
export async function serveRepository(opts: { publicDir?: string; repository?: string; visibility?: 'public' | 'private'; users?: BasicUser[]; maxFailures?: number } = {}): Promise<TestServer> {
  const publicDir = opts.publicDir ?? (await goldenPublic());
  const repository = opts.repository ?? 'acme';
  const store = new FsStore(publicDir);
  const opened = await openRepository({ store, repository, privateKey: KEY });
  const tokens = await TokenStore.open(new FsStore(join(publicDir, '..', '.hexrepo', 'state')));
  const access = new Access({ repository, visibility: opts.visibility ?? 'private', users: opts.users ?? [], tokens, ...(opts.maxFailures !== undefined ? { maxFailures: opts.maxFailures } : {}) });
  const server: RunningServer = await listen(createRepositoryHandler({ store, access, repository, service: opened.service! }), { host: '127.0.0.1', port: 0 });
  cleanup.push(async () => {
    await server.close(1_000);
    await opened.close();
  });
  return { url: server.url, publicDir, tokens };
}

/** Basic credentials as the Authorization value a client sends. */
export function basic(user: BasicUser): string {
  return `Basic ${Buffer.from(`${user.username}:${user.password}`).toString('base64')}`;
}

/** A Basic user the tests' servers accept. */
export const ADMIN = { username: 'admin', password: 'correct horse battery' };

/** The HexrepoError a promise rejects with. */
export async function refusal(p: Promise<unknown>): Promise<HexrepoError> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(HexrepoError);
  return err as HexrepoError;
}
