/**
 * The foundation's end-to-end check with the real client: `hexrepo init` + `hexrepo build` from
 * fixture tarballs, served by a plain static server with ETags, consumed by Debian's rebar3 with
 * signature and repository-origin verification on.
 */
import { copyFile, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hexrepo } from './support/cli.js';
import { rebar3Unavailable, runRebar3, writeConsumer } from './support/rebar3.js';
import { startStaticServer, type StaticServer } from './support/static-server.js';

const FIXTURES = new URL('../test-fixtures/tarballs/', import.meta.url).pathname;
const unavailable = rebar3Unavailable();
if (unavailable) console.warn(`skipping rebar3 end-to-end tests: ${unavailable}`);

describe.skipIf(unavailable !== null)('rebar3 consumes a registry built by hexrepo', () => {
  let dir: string;
  let server: StaticServer;
  let publicKeyPem: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'hexrepo-e2e-'));
    const init = await hexrepo(['init', 'repo', '--name', 'acme'], { cwd: dir });
    expect(init.status, init.stderr).toBe(0);
    for (const t of ['baz-1.0.0.tar', 'qux-0.1.0.tar', 'quux-0.1.0.tar']) await copyFile(join(FIXTURES, t), join(dir, 'repo/public/tarballs', t));
    const build = await hexrepo(['build'], { cwd: join(dir, 'repo') });
    expect(build.status, build.stderr).toBe(0);
    const verify = await hexrepo(['verify'], { cwd: join(dir, 'repo') });
    expect(verify.status, verify.stdout + verify.stderr).toBe(0);
    publicKeyPem = await readFile(join(dir, 'repo/public/public_key'), 'utf8');
    server = await startStaticServer(join(dir, 'repo/public'));
  }, 60_000);

  afterAll(async () => {
    await server?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('fetches and compiles a package and its dependency, locking the outer checksums', async () => {
    const project = join(dir, 'consumer');
    await writeConsumer(project, { name: 'acme', url: server.url, publicKeyPem }, { qux: '~> 0.1' });
    const getDeps = await runRebar3(project, ['get-deps'], join(dir, 'home'));
    expect(getDeps.status, getDeps.output).toBe(0);
    const compile = await runRebar3(project, ['compile'], join(dir, 'home'));
    expect(compile.status, compile.output).toBe(0);
    for (const app of ['qux', 'baz']) {
      await expect(readFile(join(project, `_build/default/lib/${app}/ebin/${app}.beam`))).resolves.toBeTruthy();
    }
    const lock = await readFile(join(project, 'rebar.lock'), 'utf8');
    const sums = await readFile(join(FIXTURES, 'SHA256SUMS'), 'utf8');
    const outer = (file: string): string =>
      sums
        .split('\n')
        .find((l) => l.endsWith(file))!
        .split(/\s+/)[0]!
        .toUpperCase();
    expect(lock).toContain(outer('qux-0.1.0.tar'));
    expect(lock).toContain(outer('baz-1.0.0.tar'));
    const paths = server.requests.map((r) => `${r.path} ${r.status}`);
    expect(paths).toContain('/packages/qux 200');
    expect(paths).toContain('/tarballs/qux-0.1.0.tar 200');
    expect(paths).toContain('/tarballs/baz-1.0.0.tar 200');
  }, 180_000);

  it('is refused by rebar3 under another repository name (origin check on)', async () => {
    const project = join(dir, 'consumer-wrong-name');
    await writeConsumer(project, { name: 'other', url: server.url, publicKeyPem }, { baz: '~> 1.0' });
    const res = await runRebar3(project, ['get-deps'], join(dir, 'home-wrong-name'));
    expect(res.status).not.toBe(0);
    expect(res.output).toMatch(/not found in any repo|unverified|deprecated/i);
  }, 180_000);

  it('is refused by rebar3 with another public key (signature check on)', async () => {
    const otherKey = await readFile(new URL('../test-fixtures/golden-acme/public/public_key', import.meta.url), 'utf8');
    const project = join(dir, 'consumer-wrong-key');
    await writeConsumer(project, { name: 'acme', url: server.url, publicKeyPem: otherKey }, { baz: '~> 1.0' });
    const res = await runRebar3(project, ['get-deps'], join(dir, 'home-wrong-key'));
    expect(res.status).not.toBe(0);
  }, 180_000);
});
