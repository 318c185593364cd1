/**
 * One `hexrepo serve` process hosting two private repositories and one public one, made with
 * `hexrepo repo add`: the real rebar3 fetches from each at URL/repos/NAME with that repository's own
 * token, and is refused on the other private repository with it.
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

const REPOS = ['alpha', 'beta', 'gamma'] as const;
type Name = (typeof REPOS)[number];

describe.skipIf(unavailable !== null)('rebar3 against one hexrepo serve with several repositories', () => {
  let dir: string;
  let server: ServeProcess;
  const publicKey = {} as Record<Name, string>;
  const token = {} as Record<Name, string>;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'hexrepo-e2e-host-'));
    for (const name of REPOS) {
      const added = await hexrepo(['repo', 'add', name, ...(name === 'gamma' ? ['--access', 'public'] : []), ...(name === 'alpha' ? ['--root'] : [])], { cwd: dir });
      expect(added.status, added.stderr).toBe(0);
      expect(added.stdout).toContain(`repo_url => <<"http://localhost:4000${name === 'alpha' ? '' : `/repos/${name}`}">>`);
      // The server brings each registry up to date from its tarballs when it starts.
      await copyFile(join(FIXTURES, 'baz-1.0.0.tar'), join(dir, 'repos', name, 'public/tarballs/baz-1.0.0.tar'));
      publicKey[name] = await readFile(join(dir, 'repos', name, 'public/public_key'), 'utf8');
    }
    // Tokens of the host (in its state store, DIR/.hexrepo/state/), each granted one repository.
    for (const name of REPOS) {
      const created = await hexrepo(['token', 'create', '--label', `${name} reader`, '--repo', name, '--scope', 'read', '--json'], { cwd: dir });
      expect(created.status, created.stderr).toBe(0);
      token[name] = (JSON.parse(created.stdout) as { token: string }).token;
    }
    server = await startServe([], { cwd: dir });
  }, 120_000);

  afterAll(async () => {
    await server?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  const getDeps = (label: string, name: Name, url: string, repoKey?: string): Promise<{ status: number | null; output: string }> =>
    (async () => {
      const project = join(dir, 'consumers', label);
      await writeConsumer(project, { name, url, publicKeyPem: publicKey[name], ...(repoKey ? { repoKey } : {}) }, { baz: '~> 1.0' });
      return runRebar3(project, ['get-deps'], join(dir, 'homes', label));
    })();

  it('fetches from each private repository at /repos/NAME with its own token', async () => {
    for (const name of ['alpha', 'beta'] as const) {
      const res = await getDeps(`${name}-own`, name, `${server.url}/repos/${name}`, token[name]);
      expect(res.status, res.output).toBe(0);
      expect(server.logs).toContainEqual(expect.objectContaining({ path: `/repos/${name}/tarballs/baz-1.0.0.tar`, status: 200, client: 'rebar3' }));
    }
  }, 240_000);

  it("fetches from the public repository without credentials, and from the root repository at the server's URL", async () => {
    const pub = await getDeps('gamma-anonymous', 'gamma', `${server.url}/repos/gamma`);
    expect(pub.status, pub.output).toBe(0);
    const root = await getDeps('alpha-root', 'alpha', server.url, token.alpha);
    expect(root.status, root.output).toBe(0);
    expect(server.logs).toContainEqual(expect.objectContaining({ path: '/tarballs/baz-1.0.0.tar', status: 200, client: 'rebar3' }));
  }, 240_000);

  it('is refused on the other private repository with a token granted one, and without credentials', async () => {
    const cross = await getDeps('beta-with-alpha', 'beta', `${server.url}/repos/beta`, token.alpha);
    expect(cross.status).not.toBe(0);
    expect(server.logs).toContainEqual(expect.objectContaining({ path: '/repos/beta/packages/baz', status: 403, client: 'rebar3' }));
    const anonymous = await getDeps('beta-anonymous', 'beta', `${server.url}/repos/beta`);
    expect(anonymous.status).not.toBe(0);
    expect(server.logs).toContainEqual(expect.objectContaining({ path: '/repos/beta/packages/baz', status: 401, client: 'rebar3' }));
    // Nothing of beta was ever served to alpha's token.
    const alphaId = token.alpha.split('_')[1];
    expect(server.logs.filter((l) => l.who === `token:${alphaId}` && typeof l.path === 'string' && l.path.startsWith('/repos/beta/') && l.status === 200)).toEqual([]);
  }, 240_000);
});
