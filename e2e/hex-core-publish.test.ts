/**
 * Publishing through the reference client code: hex_core's r3_hex_api_release (inside Debian's
 * rebar3; the old POST /api/publish route, as rebar3_hex 7.0 uses) against `hexrepo serve`, then
 * rebar3 consuming what was published; retire seen by r3_hex_registry; `hexrepo build` keeping the
 * retirement; revert removing the release.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadPublicKey, unpackPackage } from '@hexrepo/registry';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { erlangUnavailable, erlString, runErlang } from '@hexrepo/test-support/erlang';
import { hexrepo } from './support/cli.js';
import { rebar3Unavailable, runRebar3, writeConsumer } from './support/rebar3.js';
import { startServe, type ServeProcess } from './support/serve.js';

const FIXTURES = new URL('../test-fixtures/tarballs/', import.meta.url).pathname;
const unavailable = erlangUnavailable() ?? rebar3Unavailable();
if (unavailable) console.warn(`skipping hex_core publish end-to-end tests: ${unavailable}`);

describe.skipIf(unavailable !== null)('hex_core publishes, retires, unretires and reverts through hexrepo serve', () => {
  let dir: string;
  let repo: string;
  let server: ServeProcess;
  let token: string;
  let publicKeyPem: string;

  /** Run r3_hex_api_release:FUN(Config, ARGS…) and return `{Status, Body}` as printed by Erlang. */
  const hexCore = (call: string): string =>
    runErlang(`
      {ok, _} = application:ensure_all_started(inets),
      Config = maps:merge(r3_hex_core:default_config(), #{api_url => <<${erlString(`${server.url}/api`)}>>, api_key => <<${erlString(token)}>>}),
      case ${call} of
        {ok, {Status, _Headers, Body}} -> {Status, Body};
        Other -> Other
      end`);

  const packageFile = async (name: string): Promise<Buffer> => readFile(join(repo, 'public/packages', name));

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'hexrepo-e2e-publish-'));
    repo = join(dir, 'repo');
    expect((await hexrepo(['init', 'repo', '--name', 'acme'], { cwd: dir })).status).toBe(0);
    publicKeyPem = await readFile(join(repo, 'public/public_key'), 'utf8');
    const created = await hexrepo(['token', 'create', '--label', 'ci', '--scope', 'read', '--scope', 'write', '--json'], { cwd: repo });
    token = (JSON.parse(created.stdout) as { token: string }).token;
    server = await startServe([], { cwd: repo });
  }, 60_000);

  afterAll(async () => {
    await server?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('publishes two packages with r3_hex_api_release:publish/2 (201), refuses a duplicate (422)', () => {
    for (const file of ['baz-1.0.0.tar', 'qux-0.1.0.tar']) {
      const out = hexCore(`begin {ok, Tar} = file:read_file(${erlString(join(FIXTURES, file))}), r3_hex_api_release:publish(Config, Tar) end`);
      expect(out).toMatch(/^\{201,/);
      expect(out).toContain(`<<"version">> => <<"${file.replace(/^[a-z_]+-|\.tar$/g, '')}">>`);
    }
    const dup = hexCore(`begin {ok, Tar} = file:read_file(${erlString(join(FIXTURES, 'baz-1.0.0.tar'))}), r3_hex_api_release:publish(Config, Tar) end`);
    expect(dup).toMatch(/^\{422,/);
    expect(dup).toContain('--replace');
  });

  it('rebar3 fetches and compiles what was published', async () => {
    const project = join(dir, 'consumer');
    await writeConsumer(project, { name: 'acme', url: server.url, publicKeyPem, repoKey: token }, { qux: '~> 0.1' });
    const res = await runRebar3(project, ['compile'], join(dir, 'home'));
    expect(res.status, res.output).toBe(0);
    await expect(readFile(join(project, '_build/default/lib/baz/ebin/baz.beam'))).resolves.toBeTruthy();
  }, 120_000);

  it('retire: r3_hex_registry sees the retirement in packages/baz', () => {
    expect(hexCore(`r3_hex_api_release:retire(Config, <<"baz">>, <<"1.0.0">>, #{<<"reason">> => <<"security">>, <<"message">> => <<"CVE-2026-0001">>})`)).toMatch(/^\{204,/);
    const out = runErlang(`
      {ok, Gz} = file:read_file(${erlString(join(repo, 'public/packages/baz'))}),
      {ok, PK} = file:read_file(${erlString(join(repo, 'public/public_key'))}),
      {ok, Payload} = r3_hex_registry:decode_and_verify_signed(zlib:gunzip(Gz), PK),
      {ok, [Release]} = r3_hex_registry:decode_package(Payload, <<"acme">>, <<"baz">>),
      maps:get(retired, Release)`);
    expect(out.replace(/\s+/g, ' ')).toBe('#{message => <<"CVE-2026-0001">>,reason => \'RETIRED_SECURITY\'}');
  });

  it('hexrepo build afterwards keeps the retirement', async () => {
    const build = await hexrepo(['build', '--no-cache', '--json'], { cwd: repo });
    expect(build.status, build.stderr).toBe(0);
    const pkg = unpackPackage(await packageFile('baz'), { publicKey: loadPublicKey(publicKeyPem), repository: 'acme', name: 'baz' });
    expect(pkg.releases[0]!.retired).toEqual({ reason: 'security', message: 'CVE-2026-0001' });
    expect(pkg.releases[0]!.publishedAt).toBeGreaterThan(1_700_000_000);
  });

  it('unretire, then revert (delete): the release and its tarball are gone', async () => {
    expect(hexCore(`r3_hex_api_release:unretire(Config, <<"qux">>, <<"0.1.0">>)`)).toMatch(/^\{204,/);
    expect(hexCore(`r3_hex_api_release:delete(Config, <<"qux">>, <<"0.1.0">>)`)).toMatch(/^\{204,/);
    const res = await fetch(`${server.url}/packages/qux`, { headers: { authorization: token } });
    expect(res.status).toBe(404);
    const tarball = await fetch(`${server.url}/tarballs/qux-0.1.0.tar`, { headers: { authorization: token } });
    expect(tarball.status).toBe(404);
    const verify = await hexrepo(['verify', '--json'], { cwd: repo });
    expect(verify.status, verify.stdout).toBe(0);
  });
});
