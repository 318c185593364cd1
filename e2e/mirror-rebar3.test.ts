/**
 * The real `hexrepo serve` (built CLI) with a mirror repository named hexpm, and Debian's rebar3
 * pointed at it with `{repos, replace, [#{name => <<"hexpm">>, ...}]}` and `rebar_packages_cdn`. The upstream is a real Hex
 * repository named hexpm (built by hexrepo with its own test key) on a plain static server: rebar3
 * fetches and compiles a project with a transitive dependency through the mirror, again once the
 * upstream is stopped (from the cache), and fails clearly for a package never cached.
 */
import { readdir, readFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateKeyPair, publicKeyPem } from '@hexrepo/registry';
import { buildRegistry } from '@hexrepo/repo';
import { FsStore } from '@hexrepo/storage';
import { startStaticUpstream, type Listening } from '@hexrepo/test-support/hex-upstream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rebar3Unavailable, runRebar3, writeConsumer } from './support/rebar3.js';
import { startServe, type ServeProcess } from './support/serve.js';
import { until } from './support/until.js';

const FIXTURES = new URL('../test-fixtures/tarballs/', import.meta.url).pathname;
const unavailable = rebar3Unavailable();
if (unavailable) console.warn(`skipping rebar3 mirror tests: ${unavailable}`);

describe.skipIf(unavailable !== null)('rebar3 through a hexrepo mirror of a hexpm upstream', () => {
  let dir: string;
  let upstream: Listening;
  let server: ServeProcess;
  let key: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'hexrepo-e2e-mirror-'));
    const up = new FsStore(join(dir, 'upstream'));
    for (const f of (await readdir(FIXTURES)).filter((f) => f.endsWith('.tar'))) await up.put(`tarballs/${f}`, await readFile(join(FIXTURES, f)));
    const { privateKey } = await generateKeyPair();
    await buildRegistry({ store: up, repository: 'hexpm', privateKey, threads: 1 });
    key = publicKeyPem(privateKey);
    await writeFile(join(dir, 'upstream_key.pem'), key);
    upstream = await startStaticUpstream(join(dir, 'upstream'));
    await writeFile(
      join(dir, 'hexrepo.json'),
      JSON.stringify({ repositories: [{ name: 'hexpm', mirror: { url: upstream.url, publicKey: 'upstream_key.pem', maxAge: 0, connectTimeout: 2, firstByteTimeout: 5 }, publicDir: 'mirror-cache', access: 'public', root: true }] }),
    );
    server = await startServe(['--workers', '1'], { cwd: dir });
  }, 60_000);

  afterAll(async () => {
    await server?.stop();
    await upstream?.close();
    await rm(dir, { recursive: true, force: true });
  });

  const build = async (label: string, deps: Record<string, string>): Promise<{ status: number | null; output: string; project: string }> => {
    const project = join(dir, label);
    await writeConsumer(project, { name: 'hexpm', url: server.url, publicKeyPem: key }, deps);
    const home = join(dir, `home-${label}`);
    // rebar3 takes the URL of the repository named hexpm from HEX_CDN (or rebar_packages_cdn), not from repo_url.
    const res = await runRebar3(project, ['compile'], home, { HEX_CDN: server.url });
    return { ...res, project };
  };

  it('prints the set-up lines for Mix and rebar3', () => {
    expect(server.stderr()).toContain(`hexpm at ${server.url} (public;`);
    expect(server.stderr()).toContain(`mirror of ${upstream.url}`);
    expect(server.stderr()).toContain(`rebar3: {hex, [{repos, replace, [#{name => <<"hexpm">>, repo_url => <<"${server.url}">>`);
    expect(server.stderr()).toContain(`Mix:    mix hex.repo set hexpm --url ${server.url}`);
  });

  it('fetches and compiles a project with a transitive dependency, storing verified copies', async () => {
    const res = await build('online', { qux: '~> 0.1' });
    expect(res.status, res.output).toBe(0);
    for (const app of ['qux', 'baz']) await expect(readFile(join(res.project, `_build/default/lib/${app}/ebin/${app}.beam`))).resolves.toBeTruthy();
    for (const path of ['packages/qux', 'packages/baz', 'tarballs/qux-0.1.0.tar', 'tarballs/baz-1.0.0.tar']) {
      // Copies are written behind the answers: wait for each rather than race the disk.
      const kept = await until(path, () => readFile(join(dir, 'mirror-cache', path)).catch(() => undefined), 5_000);
      expect(kept.equals(await readFile(join(dir, 'upstream', path))), path).toBe(true);
    }
    expect(upstream.requests.map((r) => r.path)).toEqual(expect.arrayContaining(['/packages/qux', '/packages/baz', '/tarballs/qux-0.1.0.tar', '/tarballs/baz-1.0.0.tar']));
    expect(server.logs).toContainEqual(expect.objectContaining({ msg: 'request', path: '/tarballs/qux-0.1.0.tar', status: 200, client: 'rebar3' }));
  }, 180_000);

  it('builds again from the cache with the upstream stopped, and fails clearly for what was never cached', async () => {
    await upstream.close();
    const res = await build('offline', { qux: '~> 0.1' });
    expect(res.status, res.output).toBe(0);
    await expect(readFile(join(res.project, '_build/default/lib/baz/ebin/baz.beam'))).resolves.toBeTruthy();
    const stale = await fetch(`${server.url}/packages/qux`);
    expect(stale.headers.get('x-hexrepo-cache')).toBe('stale');
    expect(server.logs).toContainEqual(expect.objectContaining({ msg: 'mirror: upstream failed, serving the cached copy (stale)', path: 'packages/qux' }));

    // rebar3 shows the mirror's answer: a 503 whose body names the cause.
    const missing = await build('uncached', { foo: '~> 0.1' });
    expect(missing.status, missing.output).toBe(1);
    expect(missing.output).toContain('{503,');
    expect(missing.output).toContain('UPSTREAM_UNAVAILABLE');
    const direct = await fetch(`${server.url}/packages/foo`);
    expect(direct.status).toBe(503);
    expect(await direct.text()).toContain('error[UPSTREAM_UNAVAILABLE]: the upstream could not be reached');
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    expect(metrics).toMatch(/hexrepo_mirror_stale_total\{repository="hexpm"\} [1-9]/);
  }, 180_000);
});
