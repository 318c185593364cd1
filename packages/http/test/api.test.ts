/**
 * The publish API over a real server and a real store, with requests shaped exactly as Hex ≥ 2.3
 * sends them (ETF Accept, raw API key, Expect: 100-continue on uploads) and as curl would (JSON).
 */
import { createHash } from 'node:crypto';
import { mkdtemp, readFile } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { loadPrivateKey, unpackNames, unpackPackage, unpackVersions } from '@hexrepo/registry';
import { loadReleaseStates, RepoService, TokenStore, verifyRepository } from '@hexrepo/repo';
import { CachedStore, FsStore } from '@hexrepo/storage';
import { binaryTerm, createTarball, writeTar } from '@hexrepo/tarball';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { erlangUnavailable, erlBinary, runErlang } from '@hexrepo/test-support/erlang';
import { CORPUS_LIMITS, malformedTarballs } from '../../tarball/test/malformed-corpus.js';
import { snapshot } from '../../repo/test/helpers.js';
import { Access, createRepositoryHandler, decodeEtf, encodeEtf, listen, type RunningServer } from '../src/index.js';
import { FIXTURES } from './helpers.js';

const ETF = 'application/vnd.hex+erlang';
const key = loadPrivateKey(await readFile(join(FIXTURES, 'golden-acme/test-only-rsa.pem'), 'utf8'));
const fixture = (file: string): Promise<Buffer> => readFile(join(FIXTURES, 'tarballs', file));

interface Res {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
  continued: boolean;
}

/** One HTTP request; with `expect100`, the body is sent only after 100 Continue, as Hex does. */
function call(base: string, method: string, path: string, opts: { body?: Uint8Array; headers?: Record<string, string>; expect100?: boolean } = {}): Promise<Res> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    let continued = false;
    const headers: Record<string, string> = { 'user-agent': 'hex_core/0.19.0 hex/2.5.2 (elixir/1.18.0) (OTP/27) (erts/15.0)', ...opts.headers };
    if (opts.body) headers['content-length'] = String(opts.body.byteLength);
    if (opts.expect100) headers.expect = '100-continue';
    const req = request({ host: url.hostname, port: url.port, method, path, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks), continued }));
    });
    req.on('error', reject);
    if (opts.body && opts.expect100) {
      req.on('continue', () => {
        continued = true;
        req.end(opts.body);
      });
      req.flushHeaders();
    } else req.end(opts.body);
  });
}

const etf = (res: Res): Record<string, unknown> => decodeEtf(res.body) as Record<string, unknown>;

let dir: string;
let pub: string;
let store: CachedStore;
let service: RepoService;
let server: RunningServer;
let readOnly: { url: string; close(): Promise<void> };
let writer: string;
let reader: string;
let limited: string;

/** Hex ≥ 2.3: POST /api/packages/NAME/releases with Expect: 100-continue, raw key, ETF Accept. */
const publish = (tarball: Uint8Array, name: string, opts: { token?: string; replace?: boolean; route?: string; contentType?: string } = {}): Promise<Res> =>
  call(server.url, 'POST', `${opts.route ?? `/api/packages/${name}/releases`}?replace=${opts.replace ? 'true' : 'false'}`, {
    body: tarball,
    expect100: true,
    headers: { authorization: opts.token ?? writer, accept: ETF, 'content-type': opts.contentType ?? 'application/octet-stream' },
  });

const synthetic = (name: string, version: string, deps: { package: string; requirement: string }[] = []): Uint8Array =>
  createTarball({ name, version, description: `${name} ${version}`, licenses: ['MIT'], requirements: deps }, [{ path: `src/${name}.erl`, contents: Buffer.from(`-module(${name}).\n`) }]).tarball;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hexrepo-api-'));
  pub = join(dir, 'public');
  store = new CachedStore(new FsStore(pub));
  ({ service } = await RepoService.open({ store, repository: 'acme', privateKey: key, limits: CORPUS_LIMITS }));
  const tokens = await TokenStore.open(new FsStore(join(dir, 'state')));
  writer = (await tokens.create({ label: 'ci', grants: [{ repository: 'acme', scopes: ['read', 'write'], packages: [] }] })).token;
  reader = (await tokens.create({ label: 'reader', grants: [{ repository: 'acme', scopes: ['read'], packages: [] }] })).token;
  limited = (await tokens.create({ label: 'team', grants: [{ repository: 'acme', scopes: ['write'], packages: ['team_*'] }] })).token;
  const access = new Access({ repository: 'acme', visibility: 'private', users: [], tokens });
  server = await listen(createRepositoryHandler({ store, access, repository: 'acme', service, maxUploadBytes: CORPUS_LIMITS.maxTarballSize }), { host: '127.0.0.1', port: 0 });
  readOnly = await listen(createRepositoryHandler({ store, access, repository: 'acme' }), { host: '127.0.0.1', port: 0 });
});

afterAll(async () => {
  await server?.close();
  await readOnly?.close();
});

const registry = async (name: string) => unpackPackage(await readFile(join(pub, 'packages', name)), { publicKey: key, repository: 'acme', name });

describe('users/me and publishing', () => {
  it('GET /api/users/me answers ETF with an organizations list, as every mix hex.publish needs', async () => {
    const res = await call(server.url, 'GET', '/api/users/me', { headers: { authorization: writer, accept: ETF } });
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toBe(ETF);
    expect(etf(res)).toMatchObject({ username: 'ci', organizations: [] });
    expect((await call(server.url, 'GET', '/api/users/me', { headers: { accept: ETF } })).status).toBe(401);
  });

  it('publishes on the new route after 100 Continue: 201, the release map, the registry updated', async () => {
    const tarball = await fixture('foo-0.1.0.tar');
    const res = await publish(tarball, 'foo');
    expect(res.continued).toBe(true);
    expect(res.status).toBe(201);
    const body = etf(res);
    expect(body).toMatchObject({ version: '0.1.0', checksum: createHash('sha256').update(tarball).digest('hex'), retirement: null, has_docs: false });
    expect(body.html_url).toBe(`${server.url}/api/packages/foo/releases/0.1.0`);
    expect(res.headers.location).toBe(body.url);
    expect(Buffer.compare(await readFile(join(pub, 'tarballs/foo-0.1.0.tar')), tarball)).toBe(0);
    const pkg = await registry('foo');
    expect(pkg.releases.map((r) => r.version)).toEqual(['0.1.0']);
    expect(pkg.releases[0]!.publishedAt).toBeGreaterThan(1_700_000_000);
    expect(unpackNames(await readFile(join(pub, 'names')), { publicKey: key, repository: 'acme' }).packages.map((p) => p.name)).toContain('foo');
  });

  it('publishes on the old route (/api/publish) and under /api/repos/REPO/', async () => {
    expect((await publish(await fixture('foo-0.2.0.tar'), 'foo', { route: '/api/publish' })).status).toBe(201);
    expect((await publish(await fixture('bar-1.0.0.tar'), 'bar', { route: '/api/repos/acme/packages/bar/releases' })).status).toBe(201);
    expect((await publish(await fixture('baz-1.0.0.tar'), 'baz', { route: '/api/repos/other/packages/baz/releases' })).status).toBe(404);
    expect((await registry('foo')).releases.map((r) => r.version)).toEqual(['0.1.0', '0.2.0']);
  });

  it('a duplicate version needs replace=true (422 otherwise, with the field Mix prints)', async () => {
    const tarball = await fixture('foo-0.1.0.tar');
    const dup = await publish(tarball, 'foo');
    expect(dup.status).toBe(422);
    expect(etf(dup)).toMatchObject({ status: 422, errors: { inserted_at: expect.stringContaining('--replace') } });
    const replaced = await publish(tarball, 'foo', { replace: true });
    expect(replaced.status).toBe(200);
  });

  it('GET /api/packages/NAME and /releases/VSN, in JSON for curl', async () => {
    const pkg = await call(server.url, 'GET', '/api/packages/foo', { headers: { authorization: reader, accept: 'application/json' } });
    expect(pkg.status).toBe(200);
    const body = JSON.parse(pkg.body.toString()) as Record<string, unknown>;
    expect(body).toMatchObject({ name: 'foo', repository: 'acme', latest_version: '0.2.0', latest_stable_version: '0.2.0' });
    expect((body.releases as { version: string }[]).map((r) => r.version)).toEqual(['0.2.0', '0.1.0']);
    const rel = await call(server.url, 'GET', '/api/packages/bar/releases/1.0.0', { headers: { authorization: reader, accept: ETF } });
    expect(etf(rel)).toMatchObject({ version: '1.0.0', meta: { app: 'bar' } });
    expect((await call(server.url, 'GET', '/api/packages/nope', { headers: { authorization: reader, accept: ETF } })).status).toBe(404);
  });
});

describe('retire, unretire, docs, revert', () => {
  it('retires with the exact ETF body Mix sends, and the registry carries it', async () => {
    const body = encodeEtf({ message: 'use baz instead', reason: 'deprecated' });
    expect(body.length).toBe(64);
    const res = await call(server.url, 'POST', '/api/packages/foo/releases/0.1.0/retire', { body, headers: { authorization: writer, accept: ETF, 'content-type': ETF } });
    expect(res.status).toBe(204);
    expect((await registry('foo')).releases[0]!.retired).toEqual({ reason: 'deprecated', message: 'use baz instead' });
    const versions = unpackVersions(await readFile(join(pub, 'versions')), { publicKey: key, repository: 'acme' });
    expect(versions.packages.find((p) => p.name === 'foo')?.retired).toEqual([0]);
    const states = await loadReleaseStates(new FsStore(pub));
    expect(states.get('foo')?.get('0.1.0')?.retired?.reason).toBe('deprecated');
  });

  it('refuses a bad reason or content type', async () => {
    const bad = await call(server.url, 'POST', '/api/packages/foo/releases/0.1.0/retire', { body: Buffer.from('{"reason":"bored"}'), headers: { authorization: writer, accept: 'application/json', 'content-type': 'application/json' } });
    expect(bad.status).toBe(422);
    const type = await call(server.url, 'POST', '/api/packages/foo/releases/0.1.0/retire', { body: Buffer.from('reason=other'), headers: { authorization: writer, 'content-type': 'text/plain' } });
    expect(type.status).toBe(415);
  });

  it("answers a retirement outside hex.pm's rule with hex.pm's 422 changeset errors", async () => {
    const retire = (body: { [key: string]: string }): Promise<Res> => call(server.url, 'POST', '/api/packages/foo/releases/0.1.0/retire', { body: encodeEtf(body), headers: { authorization: writer, accept: ETF, 'content-type': ETF } });
    for (const [body, errors] of [
      [{ reason: 'bored' }, { reason: 'is invalid' }],
      [{ reason: 'other', message: 'no' }, { message: 'should be at least 3 character(s)' }],
      [{ reason: 'other', message: 'x'.repeat(141) }, { message: 'should be at most 140 character(s)' }],
    ] as const) {
      const res = await retire(body);
      expect(res.status).toBe(422);
      expect(etf(res)).toMatchObject({ status: 422, errors });
    }
  });

  it('unretires', async () => {
    const res = await call(server.url, 'DELETE', '/api/packages/foo/releases/0.2.0/retire', { headers: { authorization: writer } });
    expect(res.status).toBe(204);
    await call(server.url, 'DELETE', '/api/packages/foo/releases/0.1.0/retire', { headers: { authorization: writer } });
    expect((await registry('foo')).releases[0]!.retired).toBeUndefined();
  });

  it('uploads docs (after 100 Continue), serves them, redirects to them, deletes them', async () => {
    const docs = gzipSync(writeTar([{ name: 'index.html', data: Buffer.from('<h1>foo</h1>') }]));
    const up = await call(server.url, 'POST', '/api/packages/foo/releases/0.2.0/docs', { body: docs, expect100: true, headers: { authorization: writer, 'content-type': 'application/octet-stream' } });
    expect(up.status).toBe(201);
    const served = await call(server.url, 'GET', '/docs/foo-0.2.0.tar.gz', { headers: { authorization: reader } });
    expect(served.status).toBe(200);
    expect(Buffer.compare(served.body, docs)).toBe(0);
    expect(served.headers['content-encoding']).toBeUndefined();
    const redirect = await call(server.url, 'GET', '/api/packages/foo/releases/0.2.0/docs', { headers: { authorization: reader } });
    expect(redirect.status).toBe(302);
    expect(redirect.headers.location).toMatch(/\/docs\/foo-0\.2\.0\.tar\.gz$/);
    const notGzip = await call(server.url, 'POST', '/api/packages/foo/releases/0.2.0/docs', { body: Buffer.from('plain'), headers: { authorization: writer, 'content-type': 'application/octet-stream' } });
    expect(notGzip.status).toBe(422);
    expect((await call(server.url, 'DELETE', '/api/packages/foo/releases/0.2.0/docs', { headers: { authorization: writer } })).status).toBe(204);
    expect((await call(server.url, 'DELETE', '/api/packages/foo/releases/0.2.0/docs', { headers: { authorization: writer } })).status).toBe(404);
  });

  it('reverts: the release leaves the registry, then its tarball goes; the last one takes the package', async () => {
    expect((await call(server.url, 'DELETE', '/api/packages/foo/releases/0.1.0', { headers: { authorization: writer } })).status).toBe(204);
    expect((await registry('foo')).releases.map((r) => r.version)).toEqual(['0.2.0']);
    await expect(readFile(join(pub, 'tarballs/foo-0.1.0.tar'))).rejects.toThrow(/ENOENT/);
    expect((await call(server.url, 'DELETE', '/api/packages/bar/releases/1.0.0', { headers: { authorization: writer } })).status).toBe(204);
    await expect(readFile(join(pub, 'packages/bar'))).rejects.toThrow(/ENOENT/);
    expect(unpackNames(await readFile(join(pub, 'names')), { publicKey: key, repository: 'acme' }).packages.map((p) => p.name)).not.toContain('bar');
    expect((await call(server.url, 'DELETE', '/api/packages/bar/releases/1.0.0', { headers: { authorization: writer } })).status).toBe(404);
  });
});

describe('GET /api/packages/NAME and /releases/VSN, as mix hex.info reads them', () => {
  const get = async (path: string): Promise<Res> => {
    const res = await call(server.url, 'GET', path, { headers: { authorization: reader, accept: ETF } });
    expect(res.status, res.body.toString()).toBe(200);
    expect(res.headers['content-type']).toBe(ETF);
    return res;
  };
  beforeAll(async () => {
    const files = [{ path: 'lib/info_app.ex', contents: Buffer.from('defmodule InfoApp do\nend\n') }];
    const info = (version: string): Uint8Array =>
      createTarball(
        {
          name: 'info_pkg',
          version,
          app: 'info_app',
          description: 'Shows what hex.info prints',
          licenses: ['MIT', 'Apache-2.0'],
          links: [['GitHub', 'https://github.com/example/info_pkg']],
          elixir: '~> 1.14',
          buildTools: ['mix', 'rebar3'],
          requirements: [{ package: 'info_dep', requirement: '~> 0.3', optional: true }],
          other: { maintainers: { type: 'list', items: [binaryTerm('Ann'), binaryTerm('Bo')] } },
        },
        files,
      ).tarball;
    expect((await publish(synthetic('info_dep', '0.3.1'), 'info_dep')).status).toBe(201);
    expect((await publish(info('1.2.0'), 'info_pkg')).status).toBe(201);
    expect((await publish(info('1.3.0-rc.1'), 'info_pkg')).status).toBe(201);
    const retire = encodeEtf({ reason: 'security', message: 'CVE-2024-1' });
    expect((await call(server.url, 'POST', '/api/packages/info_pkg/releases/1.2.0/retire', { body: retire, headers: { authorization: writer, 'content-type': ETF } })).status).toBe(204);
    const docs = gzipSync(writeTar([{ name: 'index.html', data: Buffer.from('<h1>info</h1>') }]));
    expect((await call(server.url, 'POST', '/api/packages/info_pkg/releases/1.2.0/docs', { body: docs, headers: { authorization: writer, 'content-type': 'application/octet-stream' } })).status).toBe(201);
  });

  it('the package: configs for this repository, the tarball metadata, every hex.pm field', async () => {
    const body = etf(await get('/api/packages/info_pkg'));
    expect(body).toMatchObject({
      name: 'info_pkg',
      repository: 'acme',
      latest_version: '1.3.0-rc.1',
      latest_stable_version: '1.2.0',
      // hex.pm's snippets point at the latest stable release; the app name differs from the package.
      configs: { 'mix.exs': '{:info_app, "~> 1.2", hex: :info_pkg, repo: "acme"}', 'rebar.config': '{info_app, "1.2.0", {pkg, info_pkg}}', 'erlang.mk': 'dep_info_pkg = hex 1.2.0' },
      meta: { description: 'Shows what hex.info prints', licenses: ['MIT', 'Apache-2.0'], links: { GitHub: 'https://github.com/example/info_pkg' }, maintainers: ['Ann', 'Bo'] },
      retirements: { '1.2.0': { reason: 'security', message: 'CVE-2024-1' } },
      downloads: { all: 0, recent: 0, week: 0, day: 0 },
      // The first publisher is the owner; this one is a token of no user, so there is none.
      owners: [],
      docs_html_url: `${server.url}/docs/info_pkg/`,
      url: `${server.url}/api/packages/info_pkg`,
    });
    expect(body.releases).toEqual([
      { version: '1.3.0-rc.1', url: `${server.url}/api/packages/info_pkg/releases/1.3.0-rc.1`, has_docs: false, inserted_at: expect.stringMatching(/^\d{4}-\d\d-\d\dT/), updated_at: expect.stringMatching(/^\d{4}-\d\d-\d\dT/) },
      { version: '1.2.0', url: `${server.url}/api/packages/info_pkg/releases/1.2.0`, has_docs: true, inserted_at: expect.stringMatching(/^\d{4}-\d\d-\d\dT/), updated_at: expect.stringMatching(/^\d{4}-\d\d-\d\dT/) },
    ]);
    for (const k of ['html_url', 'docs_html_url', 'inserted_at', 'updated_at']) expect(body).toHaveProperty(k);
    // 0.x and the package name as the app: hex.pm's other two snippet forms.
    expect(etf(await get('/api/packages/info_dep')).configs).toEqual({ 'mix.exs': '{:info_dep, "~> 0.3.1", repo: "acme"}', 'rebar.config': '{info_dep, "0.3.1"}', 'erlang.mk': 'dep_info_dep = hex 0.3.1' });
  });

  it('a release: configs, retirement, docs, requirements, meta, publisher and downloads as hex.pm shapes them', async () => {
    const body = etf(await get('/api/packages/info_pkg/releases/1.2.0'));
    expect(body).toMatchObject({
      version: '1.2.0',
      has_docs: true,
      retirement: { reason: 'security', message: 'CVE-2024-1' },
      configs: { 'mix.exs': '{:info_app, "~> 1.2", hex: :info_pkg, repo: "acme"}', 'rebar.config': '{info_app, "1.2.0", {pkg, info_pkg}}', 'erlang.mk': 'dep_info_pkg = hex 1.2.0' },
      requirements: { info_dep: { app: 'info_dep', requirement: '~> 0.3', optional: true } },
      meta: { app: 'info_app', build_tools: ['mix', 'rebar3'], elixir: '~> 1.14' },
      downloads: 0,
      publisher: { username: 'ci', email: null },
      docs_html_url: `${server.url}/docs/info_pkg/1.2.0/`,
      package_url: `${server.url}/api/packages/info_pkg`,
    });
    expect(body.inserted_at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d/);
    const rc = etf(await get('/api/packages/info_pkg/releases/1.3.0-rc.1'));
    expect(rc).toMatchObject({ retirement: null, has_docs: false, configs: { 'mix.exs': '{:info_app, "~> 1.3.0-rc.1", hex: :info_pkg, repo: "acme"}', 'erlang.mk': 'dep_info_pkg = hex 1.3.0-rc.1' } });
  });

  it('/api/repos/acme/… answers the same maps, with URLs under that prefix', async () => {
    const plain = etf(await get('/api/packages/info_pkg/releases/1.2.0'));
    const scoped = etf(await get('/api/repos/acme/packages/info_pkg/releases/1.2.0'));
    const base = `${server.url}/api/repos/acme`;
    expect(scoped).toEqual({
      ...plain,
      url: `${base}/packages/info_pkg/releases/1.2.0`,
      html_url: `${base}/packages/info_pkg/releases/1.2.0`,
      package_url: `${base}/packages/info_pkg`,
      docs_html_url: `${server.url}/repos/acme/docs/info_pkg/1.2.0/`,
    });
    const pkg = etf(await get('/api/repos/acme/packages/info_pkg'));
    expect(pkg).toMatchObject({ configs: etf(await get('/api/packages/info_pkg')).configs, url: `${base}/packages/info_pkg` });
  });

  const unavailable = erlangUnavailable();
  it.skipIf(unavailable)("Erlang's binary_to_term(_, [safe]) gives every value hex.info's code reads, of the type it needs", async () => {
    const pkg = (await get('/api/packages/info_pkg')).body;
    const rel = (await get('/api/packages/info_pkg/releases/1.2.0')).body;
    const rc = (await get('/api/packages/info_pkg/releases/1.3.0-rc.1')).body;
    // The reads of Hex 2.5's Mix.Tasks.Hex.Info (print_package, print_release), in Erlang: a missing
    // key or a wrong type crashes here as it crashes Mix (`<>` on a non-binary is "construction of
    // binary failed").
    const out = runErlang(`
      P = binary_to_term(${erlBinary(pkg)}, [safe]),
      M = maps:get(<<"meta">>, P),
      Desc = case maps:get(<<"description">>, M) of nil -> <<"No description provided">>; D when is_binary(D) -> D end,
      Retired = maps:keys(maps:get(<<"retirements">>, P)),
      Vs = lists:map(fun(#{<<"version">> := V}) when is_binary(V) -> case lists:member(V, Retired) of true -> <<V/binary, " (retired)">>; false -> V end end, maps:get(<<"releases">>, P)),
      Links = lists:map(fun({K, V}) when is_binary(K), is_binary(V) -> ["  ", K, ": ", V, "\\n"] end, maps:to_list(maps:get(<<"links">>, M))),
      Package = [Desc, "\\n", <<"Config: ", (maps:get(<<"mix.exs">>, maps:get(<<"configs">>, P)))/binary>>, "\\n",
                 "Releases: ", lists:join(", ", Vs), "\\n",
                 "Licenses: ", lists:join(", ", maps:get(<<"licenses">>, M)), "\\n", "Links:\\n", Links,
                 "Maintainers: ", lists:join(", ", maps:get(<<"maintainers">>, M)), "\\n"],
      Release = fun(B) ->
        R = binary_to_term(B, [safe]),
        Ret = case maps:get(<<"retirement">>, R) of
          nil -> [];
          #{<<"reason">> := Why, <<"message">> := Msg} when is_binary(Why) -> ["Retired (", Why, ") ", Msg, "\\n"]
        end,
        Docs = case maps:get(<<"has_docs">>, R) of true -> "Documentation: yes\\n"; false -> [] end,
        Deps = lists:map(fun({N, #{<<"app">> := A, <<"optional">> := O, <<"requirement">> := Q}}) when is_binary(A), is_boolean(O), is_binary(Q) ->
                 ["  ", N, " ", Q, case O of true -> " (optional)"; false -> "" end, "\\n"] end, maps:to_list(maps:get(<<"requirements">>, R))),
        Who = case maps:get(<<"publisher">>, R) of nil -> <<>>; #{<<"username">> := U} -> U end,
        true = is_binary(maps:get(<<"inserted_at">>, R)),
        true = is_integer(maps:get(<<"downloads">>, R)) orelse is_map(maps:get(<<"downloads">>, R)),
        [Ret, <<"Config: ", (maps:get(<<"mix.exs">>, maps:get(<<"configs">>, R)))/binary>>, "\\n", Docs, "Dependencies:\\n", Deps, "Published by: ", Who, "\\n"]
      end,
      io:put_chars([Package, "--\\n", Release(${erlBinary(rel)}), "--\\n", Release(${erlBinary(rc)})]),
      done`);
    expect(out.split('\n')).toEqual([
      'Shows what hex.info prints',
      'Config: {:info_app, "~> 1.2", hex: :info_pkg, repo: "acme"}',
      'Releases: 1.3.0-rc.1, 1.2.0 (retired)',
      'Licenses: MIT, Apache-2.0',
      'Links:',
      '  GitHub: https://github.com/example/info_pkg',
      'Maintainers: Ann, Bo',
      '--',
      'Retired (security) CVE-2024-1',
      'Config: {:info_app, "~> 1.2", hex: :info_pkg, repo: "acme"}',
      'Documentation: yes',
      'Dependencies:',
      '  info_dep ~> 0.3 (optional)',
      'Published by: ci',
      '--',
      'Config: {:info_app, "~> 1.3.0-rc.1", hex: :info_pkg, repo: "acme"}',
      'Dependencies:',
      '  info_dep ~> 0.3 (optional)',
      'Published by: ci',
      'done',
    ]);
  });
});

describe('refusals leave the registry unchanged', () => {
  let before: Map<string, string>;
  beforeAll(async () => {
    await service.flushed();
    before = await snapshot(pub);
  });
  afterAll(async () => {
    expect(await snapshot(pub)).toEqual(before);
  });

  it.each(malformedTarballs().map((c) => [c.id, c] as const))('malformed upload %s → 422 with its code', async (_id, bad) => {
    const res = await call(server.url, 'POST', '/api/publish', { body: bad.bytes, expect100: true, headers: { authorization: writer, accept: 'application/json', 'content-type': 'application/octet-stream' } });
    expect([413, 422]).toContain(res.status);
    const body = JSON.parse(res.body.toString()) as { message: string; errors: { tar: string } };
    if (bad.code !== 'TAR_TOO_BIG') expect(body.errors.tar).toContain(`[${bad.code}]`);
  });

  it('wrong content type → 415; oversize → 413 before 100 Continue', async () => {
    expect((await publish(await fixture('baz-1.0.0.tar'), 'baz', { contentType: 'application/x-tar' })).status).toBe(415);
    const big = await publish(new Uint8Array(CORPUS_LIMITS.maxTarballSize + 1), 'baz');
    expect(big.status).toBe(413);
    expect(big.continued).toBe(false);
  });

  it('a URL name that disagrees with the metadata → 422', async () => {
    const res = await publish(await fixture('baz-1.0.0.tar'), 'qux');
    expect(res.status).toBe(422);
    expect(JSON.stringify(etf(res))).toContain('TARBALL_NAME_MISMATCH');
  });

  it('no credentials → 401; a read token → 403; a token limited to other packages → 403 (old route too)', async () => {
    const tarball = await fixture('baz-1.0.0.tar');
    const none = await call(server.url, 'POST', '/api/packages/baz/releases', { body: tarball, expect100: true, headers: { accept: ETF, 'content-type': 'application/octet-stream' } });
    expect(none.status).toBe(401);
    expect(none.continued).toBe(false);
    expect((await publish(tarball, 'baz', { token: reader })).status).toBe(403);
    expect((await publish(tarball, 'baz', { token: limited })).status).toBe(403);
    expect((await publish(tarball, 'baz', { token: limited, route: '/api/publish' })).status).toBe(403);
  });

  it('a server without the signing key answers 503 to writes', async () => {
    const res = await call(readOnly.url, 'POST', '/api/packages/baz/releases', { body: await fixture('baz-1.0.0.tar'), headers: { authorization: writer, accept: 'application/json', 'content-type': 'application/octet-stream' } });
    expect(res.status).toBe(503);
    expect(res.body.toString()).toContain('--private-key');
  });
});

describe('concurrency', () => {
  it('100 concurrent publishes of distinct versions of one package: 100 releases, sidecar consistent', async () => {
    const tarballs = Array.from({ length: 100 }, (_, i) => synthetic('team_many', `1.${i}.0`));
    const results = await Promise.all(tarballs.map((t) => publish(t, 'team_many', { token: limited })));
    expect(results.map((r) => r.status)).toEqual(Array(100).fill(201));
    const pkg = await registry('team_many');
    expect(pkg.releases).toHaveLength(100);
    const states = await loadReleaseStates(new FsStore(pub));
    expect([...(states.get('team_many')?.keys() ?? [])].sort()).toEqual(pkg.releases.map((r) => r.version).sort());
    const report = await verifyRepository(new FsStore(pub), { repository: 'acme' });
    expect(report.problems).toEqual([]);
  });
});
