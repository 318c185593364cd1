/**
 * `hexrepo tui PUBLIC` without --name or hexrepo.json: the repository name comes from the signed
 * `names` file of a real folder made by createProject, and only when its signature verifies
 * against the folder's public_key.
 */
import { mkdtemp, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateKeyPair } from '@hexrepo/registry';
import { createProject } from '@hexrepo/repo';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { repositoryOfFolder } from '../src/index.js';

let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hexrepo-tui-name-'));
});

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('repositoryOfFolder', () => {
  it('reads the repository name signed into names', async () => {
    const { publicDir } = await createProject(join(dir, 'a'), 'acme_internal');
    await expect(repositoryOfFolder(publicDir)).resolves.toBe('acme_internal');
  });

  it('refuses a names file that the folder public_key did not sign', async () => {
    const { publicDir } = await createProject(join(dir, 'b'), 'acme');
    await writeFile(join(publicDir, 'public_key'), (await generateKeyPair()).publicKeyPem);
    await expect(repositoryOfFolder(publicDir)).rejects.toMatchObject({ code: 'REGISTRY_BAD_SIGNATURE' });
  });

  it('says what to do when names is missing', async () => {
    const { publicDir } = await createProject(join(dir, 'c'), 'acme');
    await unlink(join(publicDir, 'names'));
    await expect(repositoryOfFolder(publicDir)).rejects.toMatchObject({ code: 'REGISTRY_MISSING', details: { hint: expect.stringContaining('--name') } });
  });
});
