/**
 * Several servers on one store lose nothing: two real `hexrepo serve` processes on the same
 * repository folder take interleaved concurrent publishes (distinct packages, and distinct versions
 * of one package on both), and every release ends up in the verified registry. Each server writes
 * the registry files conditionally and, when the other got there first, catches up and retries.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadPublicKey, unpackNames, unpackPackage } from '@hexrepo/registry';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hexrepo } from './support/cli.js';
import { publishInterleaved, publishOne } from './support/publish.js';
import { startServe, type ServeProcess } from './support/serve.js';

describe('two hexrepo serve processes on one folder', () => {
  let dir: string;
  let repo: string;
  let servers: ServeProcess[] = [];
  let token: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'hexrepo-e2e-two-'));
    repo = join(dir, 'repo');
    expect((await hexrepo(['init', 'repo', '--name', 'acme'], { cwd: dir })).status).toBe(0);
    token = (JSON.parse((await hexrepo(['token', 'create', '--label', 'ci', '--scope', 'read', '--scope', 'write', '--json'], { cwd: repo })).stdout) as { token: string }).token;
    servers = await Promise.all([startServe([], { cwd: repo }), startServe([], { cwd: repo })]);
  }, 60_000);

  afterAll(async () => {
    for (const s of servers) expect(await s.stop()).toBe(0);
    await rm(dir, { recursive: true, force: true });
  });

  it('40 concurrent publishes split between them: all 40 releases in the verified registry', async () => {
    const { names: published, responses } = await publishInterleaved(servers, token, 40);
    for (const r of responses) expect(r).toMatch(/^201 /);

    const publicDir = join(repo, 'public');
    const publicKey = loadPublicKey(await readFile(join(publicDir, 'public_key')));
    const names = unpackNames(await readFile(join(publicDir, 'names')), { publicKey, repository: 'acme' }).packages.map((p) => p.name);
    expect(names).toEqual([...new Set(published)].sort());
    const shared = unpackPackage(await readFile(join(publicDir, 'packages/shared')), { publicKey, repository: 'acme', name: 'shared' });
    expect(shared.releases).toHaveLength(20);
    const verify = await hexrepo(['verify', '--json'], { cwd: repo });
    expect(verify.status, verify.stdout).toBe(0);
    expect(JSON.parse(verify.stdout)).toMatchObject({ ok: true, packages: 21, releases: 40 });
    // both servers serve the same, complete registry
    for (const s of servers) {
      const res = await fetch(`${s.url}/packages/shared`, { headers: { authorization: token } });
      expect(res.status).toBe(200);
    }
  }, 120_000);

  it('a release published through one is shown, retired and reverted through the other at once (its API catches up first)', async () => {
    const [a, b] = servers as [ServeProcess, ServeProcess];
    const api = (s: ServeProcess, path: string, init: RequestInit = {}): Promise<Response> =>
      fetch(`${s.url.replace(/\/$/, '')}/api${path}`, { ...init, headers: { authorization: token, accept: 'application/json', ...(init.body ? { 'content-type': 'application/json' } : {}) } });
    const published = await publishOne(a, token, 'only_on_a', '1.0.0');
    expect(published.status).toBe(201);
    // b published nothing since: only a check of the registry files tells it what a wrote.
    const shown = await api(b, '/packages/only_on_a');
    expect(shown.status).toBe(200);
    expect(((await shown.json()) as { releases: { version: string }[] }).releases.map((r) => r.version)).toEqual(['1.0.0']);
    expect((await api(b, '/packages/only_on_a/releases/1.0.0/retire', { method: 'POST', body: JSON.stringify({ reason: 'other', message: 'test' }) })).status).toBe(204);
    expect(((await (await api(a, '/packages/only_on_a/releases/1.0.0')).json()) as { retirement: unknown }).retirement).toMatchObject({ reason: 'other' });
  }, 60_000);
});
