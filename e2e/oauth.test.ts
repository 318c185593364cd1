/**
 * OAuth end to end: two `hexrepo serve` processes on one repository folder (so one state store),
 * the requests sent by hex_core's own HTTP code (r3_hex_api:post inside Debian's rebar3: the ETF
 * body and headers Hex sends) with the parameter maps of current hex_core's hex_api_oauth.erl
 * (Debian's hex_core 0.7.1 has no hex_api_oauth module; its generic post/3 is the same code path),
 * and the device approval completed by a user in headless Chromium. Then the device token publishes
 * through r3_hex_api_release, and a revocation on one server is refused by the other.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { erlangUnavailable, erlString, runErlang } from '@hexrepo/test-support/erlang';
import { hexrepo } from './support/cli.js';
import { startServe, type ServeProcess } from './support/serve.js';

const CHROMIUM = '/usr/bin/chromium';
const FIXTURES = new URL('../test-fixtures/tarballs/', import.meta.url).pathname;
const HEX_CLIENT_ID = '78ea6566-89fd-481e-a1d6-7d9d78eacca8';
const unavailable = erlangUnavailable() ?? (existsSync(CHROMIUM) ? null : `${CHROMIUM} is not installed (apt-get install chromium)`);
if (unavailable) console.warn(`skipping OAuth end-to-end tests: ${unavailable}`);

describe.skipIf(unavailable !== null)('OAuth through hex_core and a browser, across two servers', () => {
  let dir: string;
  let repo: string;
  let a: ServeProcess;
  let b: ServeProcess;
  let apiKey: string;
  let browser: Browser;

  /**
   * POST `path` below `{server}/api` with hex_core's r3_hex_api:post/3 and the Erlang map `params`;
   * the status and the answer's binary/integer values, as hex_core decoded them.
   */
  const hexCorePost = async (server: ServeProcess, path: string, params: string, extra = ''): Promise<{ status: number; body: Record<string, string> }> => {
    const out = join(dir, `answer-${Math.random().toString(36).slice(2)}.txt`);
    runErlang(`
      {ok, _} = application:ensure_all_started(inets),
      Config = maps:merge(r3_hex_core:default_config(), #{api_url => <<${erlString(`${server.url}/api`)}>>${extra}}),
      {ok, {Status, _Headers, Body}} = r3_hex_api:post(Config, <<${erlString(path)}>>, ${params}),
      Value = fun(V) when is_binary(V) -> V; (V) when is_integer(V) -> integer_to_binary(V); (_) -> <<"?">> end,
      Pairs = case Body of M when is_map(M) -> [[K, <<"\\t">>, Value(V), <<"\\n">>] || {K, V} <- maps:to_list(M)]; _ -> [] end,
      ok = file:write_file(${erlString(out)}, [integer_to_binary(Status), <<"\\n">>, Pairs])`);
    const [status, ...lines] = (await readFile(out, 'utf8')).split('\n');
    return { status: Number(status), body: Object.fromEntries(lines.filter((l) => l !== '').map((l) => l.split('\t') as [string, string])) };
  };

  /** An Erlang binary literal. */
  const bin = (text: string): string => `<<${erlString(text)}>>`;

  /** hex_api_oauth:device_authorization/4's body, then the user's approval (or denial) in Chromium on `pageServer`. */
  const deviceLogin = async (pageServer: ServeProcess, action: 'Approve' | 'Deny'): Promise<string> => {
    const started = await hexCorePost(a, 'oauth/device_authorization', `#{<<"client_id">> => ${bin(HEX_CLIENT_ID)}, <<"scope">> => <<"api repositories">>, <<"name">> => <<"ci-box">>}`);
    expect(started.status).toBe(200);
    expect(Object.keys(started.body).sort()).toEqual(['device_code', 'expires_in', 'interval', 'user_code', 'verification_uri', 'verification_uri_complete']);
    // The user opens the link the terminal printed, here on the other server of the host.
    const link = started.body.verification_uri_complete!.replace(a.url, pageServer.url);
    const page = await browser.newPage();
    const problems: string[] = [];
    // The browser's own favicon request is the repository's 404; anything else is the page's problem.
    page.on('console', (m) => m.type() === 'error' && !m.location().url.endsWith('/favicon.ico') && problems.push(m.text()));
    await page.goto(link);
    expect(await page.getByTestId('user-code').textContent()).toBe(started.body.user_code);
    expect(await page.getByTestId('client').textContent()).toContain('Hex (mix) on ci-box');
    await page.getByLabel('User name').fill('alice');
    await page.getByLabel('Password').fill('alice-password-1');
    await page.getByRole('button', { name: action }).click();
    await page.getByTestId('result').waitFor();
    if (action === 'Approve') expect(await page.getByTestId('granted').textContent()).toContain('acme');
    expect(problems).toEqual([]);
    await page.close();
    return started.body.device_code!;
  };

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'hexrepo-e2e-oauth-'));
    repo = join(dir, 'repo');
    expect((await hexrepo(['init', 'repo', '--name', 'acme'], { cwd: dir })).status).toBe(0);
    const created = await hexrepo(['token', 'create', '--label', 'reader', '--scope', 'read', '--json'], { cwd: repo });
    apiKey = (JSON.parse(created.stdout) as { token: string }).token;
    expect((await hexrepo(['user', 'add', 'alice', '--scope', 'read', '--scope', 'write'], { cwd: repo, input: 'alice-password-1\n' })).status).toBe(0);
    [a, b] = await Promise.all([startServe([], { cwd: repo }), startServe([], { cwd: repo })]);
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'] });
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await a?.stop();
    await b?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('exchanges an API key as hex_cli_auth does (client_credentials, scope "repositories"): a read-only bearer token that works on both servers until revoked', async () => {
    const ex = await hexCorePost(a, 'oauth/token', `#{<<"grant_type">> => <<"client_credentials">>, <<"client_id">> => ${bin(HEX_CLIENT_ID)}, <<"client_secret">> => ${bin(apiKey)}, <<"scope">> => <<"repositories">>}`);
    expect(ex.status).toBe(200);
    expect(ex.body).toMatchObject({ token_type: 'bearer', expires_in: '1800', scope: 'repositories' });
    const bearer = `Bearer ${ex.body.access_token!}`;
    // As hex_core sends it to the repository (repo_key = <<"Bearer ", Token>>).
    for (const server of [a, b]) expect((await fetch(`${server.url}/names`, { headers: { authorization: bearer } })).status).toBe(200);
    expect((await fetch(`${a.url}/names`, { headers: { authorization: 'Bearer hxa_0000000000_' + 'C'.repeat(43) } })).status).toBe(401);
    // hex_api_oauth:revoke_token/3 on A: 200 and no body; B refuses the token within its refresh bound (2 s).
    const revoked = await hexCorePost(a, 'oauth/revoke', `#{<<"token">> => ${bin(ex.body.access_token!)}, <<"client_id">> => ${bin(HEX_CLIENT_ID)}}`);
    expect(revoked.status).toBe(200);
    expect((await fetch(`${a.url}/names`, { headers: { authorization: bearer } })).status).toBe(401);
    let status = 0;
    for (let i = 0; i < 100 && status !== 401; i++) {
      status = (await fetch(`${b.url}/names`, { headers: { authorization: bearer } })).status;
      if (status !== 401) await new Promise((r) => setTimeout(r, 100));
    }
    expect(status).toBe(401);
  });

  it('lists the sessions with "hexrepo oauth list" and ends one with "hexrepo oauth revoke": both servers refuse its token', async () => {
    const ex = await hexCorePost(
      b,
      'oauth/token',
      `#{<<"grant_type">> => <<"client_credentials">>, <<"client_id">> => ${bin(HEX_CLIENT_ID)}, <<"client_secret">> => ${bin(apiKey)}, <<"scope">> => <<"repositories">>, <<"name">> => <<"build-7">>}`,
    );
    expect(ex.status).toBe(200);
    const listed = await hexrepo(['oauth', 'list', '--json'], { cwd: repo });
    expect(listed.status).toBe(0);
    const sessions = JSON.parse(listed.stdout) as { id: string; name: string; subject: { kind: string } }[];
    const mine = sessions.find((s) => s.name === 'build-7')!;
    expect(mine.subject.kind).toBe('key');
    expect(listed.stdout).not.toContain(ex.body.access_token!);
    expect((await hexrepo(['oauth', 'revoke', mine.id], { cwd: repo })).status).toBe(0);
    for (const server of [a, b]) {
      let status = 0;
      for (let i = 0; i < 100 && status !== 401; i++) {
        status = (await fetch(`${server.url}/names`, { headers: { authorization: `Bearer ${ex.body.access_token!}` } })).status;
        if (status !== 401) await new Promise((r) => setTimeout(r, 100));
      }
      expect(status).toBe(401);
    }
  });

  it('completes the device flow: approved in Chromium on server B, polled on A with the device_code grant, and the token publishes', async () => {
    const deviceCode = await deviceLogin(b, 'Approve');
    const poll = await hexCorePost(a, 'oauth/token', `#{<<"grant_type">> => <<"urn:ietf:params:oauth:grant-type:device_code">>, <<"device_code">> => ${bin(deviceCode)}, <<"client_id">> => ${bin(HEX_CLIENT_ID)}}`);
    expect(poll.status).toBe(200);
    expect(poll.body).toMatchObject({ token_type: 'bearer', scope: 'api repositories' });
    // hex_cli_auth puts <<"Bearer ", AccessToken>> in api_key.
    const out = runErlang(`
      {ok, _} = application:ensure_all_started(inets),
      Config = maps:merge(r3_hex_core:default_config(), #{api_url => <<${erlString(`${a.url}/api`)}>>, api_key => <<"Bearer ", ${bin(poll.body.access_token!).slice(2, -2)}>>}),
      {ok, Tar} = file:read_file(${erlString(join(FIXTURES, 'baz-1.0.0.tar'))}),
      {ok, {Status, _, _}} = r3_hex_api_release:publish(Config, Tar),
      Status`);
    expect(out).toBe('201');
    // And the refresh token hex_core keeps renews it (hex_api_oauth:refresh_token/3).
    const renewed = await hexCorePost(b, 'oauth/token', `#{<<"grant_type">> => <<"refresh_token">>, <<"refresh_token">> => ${bin(poll.body.refresh_token!)}, <<"client_id">> => ${bin(HEX_CLIENT_ID)}}`);
    expect(renewed.status).toBe(200);
    expect(renewed.body.access_token).not.toBe(poll.body.access_token);
  }, 60_000);

  it('tells the polling client access_denied (403) when the user denies in the browser', async () => {
    const deviceCode = await deviceLogin(a, 'Deny');
    const poll = await hexCorePost(b, 'oauth/token', `#{<<"grant_type">> => <<"urn:ietf:params:oauth:grant-type:device_code">>, <<"device_code">> => ${bin(deviceCode)}, <<"client_id">> => ${bin(HEX_CLIENT_ID)}}`);
    expect(poll.status).toBe(403);
    expect(poll.body.error).toBe('access_denied');
  }, 60_000);
});
