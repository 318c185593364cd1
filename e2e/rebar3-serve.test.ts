/**
 * `hexrepo serve` with the real rebar3 client: a private repository read with Basic credentials in
 * repo_url (the Hex self-hosting guide's set-up) and with a token in repo_key; refused without
 * credentials and with a token that lacks the read scope.
 */
import { copyFile, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hexrepo } from './support/cli.js';
import { rebar3Unavailable, runRebar3, writeConsumer } from './support/rebar3.js';
import { startServe, type ServeProcess } from './support/serve.js';

const FIXTURES = new URL('../test-fixtures/tarballs/', import.meta.url).pathname;
const unavailable = rebar3Unavailable();
if (unavailable) console.warn(`skipping rebar3 end-to-end tests: ${unavailable}`);

describe.skipIf(unavailable !== null)('rebar3 against hexrepo serve (private repository)', () => {
  let dir: string;
  let server: ServeProcess;
  let publicKeyPem: string;
  let readToken: string;
  let writeToken: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'hexrepo-e2e-serve-'));
    expect((await hexrepo(['init', 'repo', '--name', 'acme'], { cwd: dir })).status).toBe(0);
    for (const t of ['baz-1.0.0.tar', 'qux-0.1.0.tar']) await copyFile(join(FIXTURES, t), join(dir, 'repo/public/tarballs', t));
    expect((await hexrepo(['build'], { cwd: join(dir, 'repo') })).status).toBe(0);
    publicKeyPem = await readFile(join(dir, 'repo/public/public_key'), 'utf8');
    const r = await hexrepo(['token', 'create', '--label', 'ci read', '--scope', 'read'], { cwd: join(dir, 'repo') });
    expect(r.status, r.stderr).toBe(0);
    readToken = r.stdout.trim();
    const w = await hexrepo(['token', 'create', '--label', 'publisher', '--scope', 'write', '--json'], { cwd: join(dir, 'repo') });
    writeToken = (JSON.parse(w.stdout) as { token: string }).token;
    server = await startServe([], { cwd: join(dir, 'repo'), env: { AUTH_USERNAME: 'alice', AUTH_PASSWORD: 'wonderland' } });
  }, 60_000);

  afterAll(async () => {
    await server?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  const fetchDeps = async (label: string, url: string, repoKey?: string): Promise<{ status: number | null; output: string }> => {
    const project = join(dir, label);
    await writeConsumer(project, { name: 'acme', url, publicKeyPem, ...(repoKey ? { repoKey } : {}) }, { qux: '~> 0.1' });
    return runRebar3(project, ['get-deps'], join(dir, `home-${label}`));
  };

  it('fetches with Basic credentials in repo_url', async () => {
    const withCreds = server.url.replace('http://', 'http://alice:wonderland@');
    const res = await fetchDeps('basic', withCreds);
    expect(res.status, res.output).toBe(0);
    const requests = server.logs.filter((l) => l.msg === 'request');
    expect(requests).toContainEqual(expect.objectContaining({ path: '/tarballs/qux-0.1.0.tar', status: 200, client: 'rebar3', who: 'user:alice' }));
  }, 120_000);

  it('fetches with a read token as repo_key', async () => {
    const res = await fetchDeps('token', server.url, readToken);
    expect(res.status, res.output).toBe(0);
  }, 120_000);

  it('is refused without credentials', async () => {
    const res = await fetchDeps('anonymous', server.url);
    expect(res.status).not.toBe(0);
    expect(server.logs).toContainEqual(expect.objectContaining({ path: '/packages/qux', status: 401, client: 'rebar3' }));
  }, 120_000);

  it('is refused with a token that lacks the read scope', async () => {
    const res = await fetchDeps('writeonly', server.url, writeToken);
    expect(res.status).not.toBe(0);
    expect(server.logs).toContainEqual(expect.objectContaining({ path: '/packages/qux', status: 403 }));
  }, 120_000);

  it('never logs a credential', () => {
    const text = JSON.stringify(server.logs);
    for (const secret of ['wonderland', readToken, writeToken, readToken.slice('hxr_'.length + 11)]) expect(text).not.toContain(secret);
  });

  it('stops gracefully on SIGTERM with exit 0', async () => {
    expect(await server.stop()).toBe(0);
  });
});
