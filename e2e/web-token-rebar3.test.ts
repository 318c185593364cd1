/**
 * The web UI of the built `hexrepo serve` with the real rebar3: a host user (`hexrepo user add`)
 * logs in on the web page of a private repository, creates a read token on the tokens page, rebar3
 * fetches a private package with it as repo_key, the user revokes it on the page, and rebar3 is
 * refused. Forms are posted as a browser posts them (the browser itself is driven in
 * packages/http/test/web/browser.test.ts).
 */
import { copyFile, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hexrepo } from './support/cli.js';
import { rebar3Unavailable, runRebar3, writeConsumer } from './support/rebar3.js';
import { startServe, type ServeProcess } from './support/serve.js';

const FIXTURES = new URL('../test-fixtures/tarballs/', import.meta.url).pathname;
const PASSWORD = 'a long enough password';
const unavailable = rebar3Unavailable();
if (unavailable) console.warn(`skipping the web token end-to-end test: ${unavailable}`);

describe.skipIf(unavailable !== null)('a token made on the web page, used by rebar3, revoked on the page', () => {
  let dir: string;
  let server: ServeProcess;
  let publicKeyPem: string;
  let cookie = '';

  const post = async (path: string, form: Record<string, string>, headers: Record<string, string> = {}): Promise<Response> =>
    fetch(`${server.url}${path}`, { method: 'POST', redirect: 'manual', headers: { 'content-type': 'application/x-www-form-urlencoded', origin: server.url, cookie, ...headers }, body: new URLSearchParams(form).toString() });
  const csrfOf = (page: string): string => /name="csrf" value="([^"]+)"/.exec(page)![1]!;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'hexrepo-e2e-web-'));
    expect((await hexrepo(['init', 'repo', '--name', 'acme'], { cwd: dir })).status).toBe(0);
    // qux depends on baz.
    for (const t of ['baz-1.0.0.tar', 'qux-0.1.0.tar']) await copyFile(join(FIXTURES, t), join(dir, 'repo/public/tarballs', t));
    expect((await hexrepo(['build'], { cwd: join(dir, 'repo') })).status).toBe(0);
    publicKeyPem = await readFile(join(dir, 'repo/public/public_key'), 'utf8');
    const added = await hexrepo(['user', 'add', 'alice', '--scope', 'read', '--scope', 'write'], { cwd: join(dir, 'repo'), input: `${PASSWORD}\n` });
    expect(added.status, added.stderr).toBe(0);
    // A user exists, so the repository is private.
    server = await startServe([], { cwd: join(dir, 'repo') });
  }, 60_000);

  afterAll(async () => {
    await server?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  const fetchDeps = (label: string, repoKey?: string): Promise<{ status: number | null; output: string }> => {
    const project = join(dir, label);
    return writeConsumer(project, { name: 'acme', url: server.url, publicKeyPem, ...(repoKey ? { repoKey } : {}) }, { qux: '~> 0.1' }).then(() => runRebar3(project, ['get-deps'], join(dir, `home-${label}`)));
  };

  it('logs in, creates a token, rebar3 fetches with it, the token is revoked, rebar3 is refused', async () => {
    // Logged out, the private package has no page.
    expect((await fetch(`${server.url}/-/packages/acme/qux`)).status).toBe(404);
    const form = await fetch(`${server.url}/-/login`);
    cookie = form.headers.getSetCookie()[0]!.split(';')[0]!;
    const login = await post('/-/login', { csrf: csrfOf(await form.text()), username: 'alice', password: PASSWORD, next: '/-/tokens' });
    expect(login.status).toBe(303);
    cookie = login.headers
      .getSetCookie()
      .find((c) => c.startsWith('hexrepo_session=hxr_'))!
      .split(';')[0]!;
    expect((await fetch(`${server.url}/-/packages/acme/qux`, { headers: { cookie } })).status).toBe(200);

    const tokensPage = await (await fetch(`${server.url}/-/tokens`, { headers: { cookie } })).text();
    const created = await post('/-/tokens', { csrf: csrfOf(tokensPage), label: 'rebar3 on ci', repository: 'acme', scope: 'read', packages: '', expires: '7' });
    expect(created.status).toBe(201);
    const secret = /data-testid="new-token">([^<]+)</.exec(await created.text())![1]!;
    expect(secret).toMatch(/^hxr_[a-z0-9]{10}_/);

    const ok = await fetchDeps('with-token', secret);
    expect(ok.status, ok.output).toBe(0);
    expect(server.logs).toContainEqual(expect.objectContaining({ path: '/tarballs/qux-0.1.0.tar', status: 200, client: 'rebar3' }));

    const revoked = await post(`/-/tokens/${secret.split('_')[1]}/revoke`, { csrf: csrfOf(tokensPage) });
    expect(revoked.status).toBe(303);
    const refused = await fetchDeps('after-revoke', secret);
    expect(refused.status).not.toBe(0);
    expect(server.logs).toContainEqual(expect.objectContaining({ path: '/packages/qux', status: 401, client: 'rebar3' }));
  }, 180_000);
});
