/**
 * The account side of the API through the reference client code: hex_core's r3_hex_api_key,
 * r3_hex_api_package_owner and r3_hex_api_package (inside Debian's rebar3, hex_core 0.7.1) against
 * a real `hexrepo serve`: a user obtains a key with Basic auth as `rebar3 hex user auth` does, uses
 * it, manages owners, reads the package, and revokes keys.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { erlangUnavailable, erlString, runErlang } from '@hexrepo/test-support/erlang';
import { hexrepo } from './support/cli.js';
import { startServe, type ServeProcess } from './support/serve.js';

const FIXTURES = new URL('../test-fixtures/tarballs/', import.meta.url).pathname;
const unavailable = erlangUnavailable();
if (unavailable) console.warn(`skipping hex_core API end-to-end tests: ${unavailable}`);

describe.skipIf(unavailable !== null)('hex_core keys, owners and package calls against hexrepo serve', () => {
  let dir: string;
  let repo: string;
  let server: ServeProcess;
  let admin: string;
  const basic = `Basic ${Buffer.from('alice:alice-password-1').toString('base64')}`;

  /** Run a hex_core call with `Key` as api_key; prints `{Status, Body}`. */
  const hexCore = (key: string, call: string): string =>
    runErlang(`
      {ok, _} = application:ensure_all_started(inets),
      Config = maps:merge(r3_hex_core:default_config(), #{api_url => <<${erlString(`${server.url}/api`)}>>, api_key => <<${erlString(key)}>>}),
      case ${call} of
        {ok, {Status, _Headers, Body}} -> {Status, Body};
        Other -> Other
      end`);

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'hexrepo-e2e-api-'));
    repo = join(dir, 'repo');
    expect((await hexrepo(['init', 'repo', '--name', 'acme'], { cwd: dir })).status).toBe(0);
    expect((await hexrepo(['user', 'add', 'alice', '--scope', 'read', '--scope', 'write'], { cwd: repo, input: 'alice-password-1\n' })).status).toBe(0);
    expect((await hexrepo(['user', 'add', 'bob', '--scope', 'read'], { cwd: repo, input: 'bob-password-123\n' })).status).toBe(0);
    admin = (JSON.parse((await hexrepo(['token', 'create', '--label', 'ops', '--scope', 'admin', '--json'], { cwd: repo })).stdout) as { token: string }).token;
    server = await startServe([], { cwd: repo });
  }, 60_000);

  afterAll(async () => {
    await server?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  let key: string;
  it('r3_hex_api_key:add/3 with Basic auth (rebar3 hex user auth) returns a key once; list/2 and get/2 show it', () => {
    const out = hexCore(basic, `begin {ok, {201, _, #{<<"secret">> := S, <<"name">> := N, <<"permissions">> := P}}} = r3_hex_api_key:add(Config, <<"laptop">>, [#{domain => api}]), {S, N, P} end`);
    const m = /^\{<<"(hxr_[^"]+)">>,\s*<<"laptop">>,\s*\[#\{<<"domain">> => <<"api">>,\s*<<"resource">> => nil\}\]\}$/.exec(out.replace(/\s+/g, ' '));
    expect(m, out).not.toBeNull();
    key = m![1]!;
    expect(hexCore(key, `begin {ok, {200, _, [#{<<"name">> := N, <<"authing_key">> := A, <<"secret">> := S}]}} = r3_hex_api_key:list(Config), {N, A, S} end`)).toBe('{<<"laptop">>,true,nil}');
    expect(hexCore(key, `begin {ok, {200, _, #{<<"name">> := N}}} = r3_hex_api_key:get(Config, <<"laptop">>), N end`)).toBe('<<"laptop">>');
    expect(hexCore(key, `r3_hex_api_key:get(Config, <<"nope">>)`)).toMatch(/^\{404,/);
  });

  it('the key publishes; r3_hex_api_package:get/2 reads the package map with its owner', () => {
    expect(hexCore(key, `begin {ok, Tar} = file:read_file(${erlString(join(FIXTURES, 'baz-1.0.0.tar'))}), r3_hex_api_release:publish(Config, Tar) end`)).toMatch(/^\{201,/);
    const out = hexCore(
      key,
      `begin {ok, {200, _, #{<<"name">> := N, <<"latest_stable_version">> := V, <<"owners">> := [#{<<"username">> := O}], <<"releases">> := [#{<<"version">> := V}], <<"meta">> := #{<<"licenses">> := L}}}} = r3_hex_api_package:get(Config, <<"baz">>), {N, V, O, is_list(L)} end`,
    );
    expect(out).toBe('{<<"baz">>,<<"1.0.0">>,<<"alice">>,true}');
    expect(hexCore(key, `r3_hex_api_package:get(Config, <<"nope">>)`)).toMatch(/^\{404,/);
  });

  it('r3_hex_api_package_owner:add/5, list/2, get/3, delete/3 as the full owner; bob (not an owner) is refused', () => {
    expect(hexCore(basic.replace(/^Basic .*/, `Basic ${Buffer.from('bob:bob-password-123').toString('base64')}`), `r3_hex_api_package_owner:add(Config, <<"baz">>, <<"bob">>, <<"full">>, false)`)).toMatch(/^\{403,/);
    expect(hexCore(key, `r3_hex_api_package_owner:add(Config, <<"baz">>, <<"bob">>, <<"maintainer">>, false)`)).toMatch(/^\{204,/);
    expect(hexCore(key, `begin {ok, {200, _, L}} = r3_hex_api_package_owner:list(Config, <<"baz">>), [{U, E, Lv} || #{<<"username">> := U, <<"email">> := E, <<"level">> := Lv} <- L] end`).replace(/\s+/g, ' ')).toBe(
      '[{<<"alice">>,<<"alice">>,<<"full">>},{<<"bob">>,<<"bob">>,<<"maintainer">>}]',
    );
    expect(hexCore(key, `begin {ok, {200, _, #{<<"level">> := L}}} = r3_hex_api_package_owner:get(Config, <<"baz">>, <<"bob">>), L end`)).toBe('<<"maintainer">>');
    expect(hexCore(key, `r3_hex_api_package_owner:delete(Config, <<"baz">>, <<"bob">>)`)).toMatch(/^\{204,/);
    expect(hexCore(key, `r3_hex_api_package_owner:delete(Config, <<"baz">>, <<"alice">>)`)).toMatch(/^\{422,.*cannot remove last owner/s);
    expect(hexCore(admin, `r3_hex_api_package_owner:add(Config, <<"baz">>, <<"bob">>, <<"full">>, true)`)).toMatch(/^\{204,/);
    expect(hexCore(key, `begin {ok, {200, _, L}} = r3_hex_api_package_owner:list(Config, <<"baz">>), [U || #{<<"username">> := U} <- L] end`)).toBe('[<<"bob">>]');
  });

  it('r3_hex_api_key:delete/2 revokes one key, delete_all/1 every key of the user', () => {
    expect(hexCore(basic, `begin {ok, {201, _, _}} = r3_hex_api_key:add(Config, <<"ci">>, [#{domain => repository, resource => <<"acme">>}]), ok end`)).toBe('ok');
    expect(hexCore(key, `begin {ok, {200, _, #{<<"name">> := N, <<"revoked_at">> := At}}} = r3_hex_api_key:delete(Config, <<"laptop">>), {N, is_binary(At)} end`)).toBe('{<<"laptop">>,true}');
    expect(hexCore(key, `r3_hex_api_key:list(Config)`)).toMatch(/^\{401,/);
    expect(hexCore(basic, `begin {ok, {200, _, L}} = r3_hex_api_key:list(Config), [N || #{<<"name">> := N} <- L] end`)).toBe('[<<"ci">>]');
    expect(hexCore(basic, `r3_hex_api_key:delete_all(Config)`)).toMatch(/^\{204,/);
    expect(hexCore(basic, `r3_hex_api_key:list(Config)`)).toBe('{200,[]}');
  });
});
