/**
 * Package search, `GET /api/packages?search=&sort=&page=` (what `mix hex.package search` and
 * `rebar3 hex search` call), over a real server and a real store: names and descriptions matched,
 * hex.pm's package-map shape in JSON and ETF (decoded by Erlang's binary_to_term and by hex_core's
 * own r3_hex_api_package:search/3 from Debian's rebar3), 100 per page, and the index kept current
 * on publish, retire, revert and refresh. Fails on a server without the endpoint (404).
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadPrivateKey } from '@hexrepo/registry';
import { RepoService, TokenStore } from '@hexrepo/repo';
import { FsStore } from '@hexrepo/storage';
import { createTarball } from '@hexrepo/tarball';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { erlangUnavailable, erlString, hexCoreEbin } from '@hexrepo/test-support/erlang';
import { Access, createHostHandler, decodeEtf, listen, type RunningServer } from '../src/index.js';
import { FIXTURES, raw } from './helpers.js';

const ETF = 'application/vnd.hex+erlang';
const key = loadPrivateKey(await readFile(join(FIXTURES, 'golden-acme/test-only-rsa.pem'), 'utf8'));

const tarball = (name: string, version: string, description: string): Uint8Array =>
  createTarball({ name, version, description, licenses: ['Apache-2.0'], links: [['GitHub', `https://example.com/${name}`]] }, [{ path: `src/${name}.erl`, contents: Buffer.from(`-module(${name}).\n`) }]).tarball;

let dir: string;
let pubDir: string;
let privDir: string;
let service: RepoService;
let privService: RepoService;
let server: RunningServer;
let reader: string;
let limited: string;

interface PackageMap {
  name: string;
  repository: string;
  url: string;
  html_url: string;
  meta: { description: string | null; licenses: string[]; links: Record<string, string> };
  releases: { version: string; url: string }[];
  latest_version: string;
  latest_stable_version: string | null;
  inserted_at: string | null;
  updated_at: string | null;
}

const search = async (path: string, headers: Record<string, string> = {}): Promise<{ status: number; list: PackageMap[] }> => {
  const res = await raw(server.url, path, { headers: { accept: 'application/json', ...headers } });
  return { status: res.status, list: res.status === 200 ? (JSON.parse(res.body.toString('utf8')) as PackageMap[]) : [] };
};
const names = (list: PackageMap[]): string[] => list.map((p) => p.name);

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hexrepo-search-'));
  pubDir = join(dir, 'public');
  privDir = join(dir, 'private');
  await mkdir(join(pubDir, 'tarballs'), { recursive: true });
  // 150 filler packages, so paging has a second page; plus a few with telling names and descriptions.
  for (let i = 0; i < 150; i++) {
    const name = `filler_${String(i).padStart(3, '0')}`;
    await writeFile(join(pubDir, 'tarballs', `${name}-1.0.0.tar`), tarball(name, '1.0.0', `Filler number ${i}`));
  }
  await writeFile(join(pubDir, 'tarballs', 'jason-1.4.0.tar'), tarball('jason', '1.4.0', 'A blazing fast JSON parser and generator'));
  await writeFile(join(pubDir, 'tarballs', 'jason-2.0.0-rc.1.tar'), tarball('jason', '2.0.0-rc.1', 'A blazing fast JSON parser and generator'));
  await writeFile(join(pubDir, 'tarballs', 'poison-5.0.0.tar'), tarball('poison', '5.0.0', 'An incredibly fast, pure Elixir JSON library'));
  await writeFile(join(pubDir, 'tarballs', 'jsx-3.1.0.tar'), tarball('jsx', '3.1.0', 'an erlang application for consuming and producing json'));
  ({ service } = await RepoService.open({ store: new FsStore(pubDir), repository: 'acme', privateKey: key }));
  await mkdir(join(privDir, 'tarballs'), { recursive: true });
  for (const name of ['team_core', 'team_web', 'secret_sauce']) await writeFile(join(privDir, 'tarballs', `${name}-0.1.0.tar`), tarball(name, '0.1.0', `Internal ${name}`));
  ({ service: privService } = await RepoService.open({ store: new FsStore(privDir), repository: 'internal', privateKey: key }));
  const tokens = await TokenStore.open(new FsStore(join(dir, 'state')));
  reader = (await tokens.create({ label: 'reader', grants: [{ repository: 'internal', scopes: ['read'], packages: [] }] })).token;
  limited = (await tokens.create({ label: 'team', grants: [{ repository: 'internal', scopes: ['read'], packages: ['team_*'] }] })).token;
  const access = new Access({ visibility: 'public', users: [], tokens });
  server = await listen(
    createHostHandler({
      repositories: [
        { name: 'acme', store: service.store, service, visibility: 'public', root: true },
        { name: 'internal', store: privService.store, service: privService, visibility: 'private' },
      ],
      access,
    }),
    { host: '127.0.0.1', port: 0 },
  );
}, 60_000);

afterAll(async () => {
  await server?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('GET /api/packages?search=', () => {
  it('matches names and descriptions, case-insensitively, every word', async () => {
    expect(names((await search('/api/packages?search=json')).list)).toEqual(['jason', 'jsx', 'poison']);
    expect(names((await search('/api/packages?search=JSON%20elixir')).list)).toEqual(['poison']);
    expect(names((await search('/api/packages?search=name:js*')).list)).toEqual(['jsx']);
    expect(names((await search('/api/packages?search=description:erlang')).list)).toEqual(['jsx']);
    expect((await search('/api/packages?search=nothing_like_this')).list).toEqual([]);
  });

  it('answers hex.pm package maps: meta, releases newest first, latest and latest stable, URLs', async () => {
    const [jason] = (await search('/api/packages?search=jason')).list;
    expect(jason).toMatchObject({
      name: 'jason',
      repository: 'acme',
      url: `${server.url}/api/packages/jason`,
      html_url: `${server.url}/-/packages/acme/jason`,
      meta: { description: 'A blazing fast JSON parser and generator', licenses: ['Apache-2.0'], links: { GitHub: 'https://example.com/jason' } },
      latest_version: '2.0.0-rc.1',
      latest_stable_version: '1.4.0',
    });
    expect(jason!.releases).toEqual([
      { version: '2.0.0-rc.1', url: `${server.url}/api/packages/jason/releases/2.0.0-rc.1` },
      { version: '1.4.0', url: `${server.url}/api/packages/jason/releases/1.4.0` },
    ]);
  });

  it('pages by 100 and sorts by name (default), and the best match first for hex.pm sorts it cannot do', async () => {
    const all = await search('/api/packages');
    expect(all.list).toHaveLength(100);
    expect(all.list[0]!.name).toBe('filler_000');
    const second = await search('/api/packages?page=2');
    expect(second.list).toHaveLength(53);
    expect(names(second.list).slice(-3)).toEqual(['jason', 'jsx', 'poison']);
    expect((await search('/api/packages?page=3')).list).toEqual([]);
    expect((await search('/api/packages?page=0')).status).toBe(400);
    expect((await search('/api/packages?page=abc')).status).toBe(400);
    // `jsx`: the exact name first, though `jason` sorts before it by name.
    expect(names((await search('/api/packages?search=js&sort=total_downloads')).list)[0]).toBe('jsx');
  });

  it('is kept current on publish, retire, revert and a refresh of files changed in the store', async () => {
    await service.publish(tarball('zebra_json', '0.1.0', 'Stripes for your JSON'));
    let found = await search('/api/packages?search=json&sort=recent_updated');
    // Newest update first; a publish records its time, so the package says when it was inserted.
    expect(found.list[0]).toMatchObject({ name: 'zebra_json', inserted_at: expect.stringMatching(/^\d{4}-\d\d-\d\dT/) });
    await service.publish(tarball('zebra_json', '0.2.0', 'Now about zebras only'));
    expect(names((await search('/api/packages?search=stripes')).list)).toEqual([]);
    expect(names((await search('/api/packages?search=zebras')).list)).toEqual(['zebra_json']);
    await service.revert('zebra_json', '0.2.0');
    found = await search('/api/packages?search=stripes');
    expect(found.list.map((p) => p.latest_version)).toEqual(['0.1.0']);
    await service.revert('zebra_json', '0.1.0');
    expect((await search('/api/packages?search=zebra')).list).toEqual([]);
    // A file dropped into tarballs/ behind the service's back, then picked up by refresh (the dev server's path).
    await writeFile(join(pubDir, 'tarballs', 'dropped_in-1.0.0.tar'), tarball('dropped_in', '1.0.0', 'Arrived by refresh'));
    await service.refresh(['dropped_in-1.0.0.tar']);
    expect(names((await search('/api/packages?search=refresh')).list)).toEqual(['dropped_in']);
  });

  it('under /api/repos/REPO: a private repository needs read access, and a token limited to some packages lists only those', async () => {
    expect((await search('/api/repos/internal/packages')).status).toBe(401);
    expect(names((await search('/api/repos/internal/packages', { authorization: reader })).list)).toEqual(['secret_sauce', 'team_core', 'team_web']);
    expect(names((await search('/api/repos/internal/packages?search=internal', { authorization: limited })).list)).toEqual(['team_core', 'team_web']);
    expect((await search('/api/repos/internal/packages?search=internal', { authorization: limited })).list[0]!.repository).toBe('internal');
  });

  it('answers ETF that decodes (here and with binary_to_term [safe]) to the same list', async () => {
    const res = await raw(server.url, '/api/packages?search=json', { headers: { accept: ETF } });
    expect(res.headers['content-type']).toBe(ETF);
    const list = decodeEtf(res.body) as unknown as PackageMap[];
    expect(names(list)).toEqual(['jason', 'jsx', 'poison']);
  });
});

/** Like runErlang, but without blocking this process: the server answering Erlang runs here. */
async function runErlang(expressions: string): Promise<string> {
  const script = `R = begin ${expressions} end, io:format("~p~n", [R]), halt(0).`;
  const { stdout } = await promisify(execFile)('erl', ['-noshell', '-pa', hexCoreEbin(), '-eval', script], { encoding: 'utf8', timeout: 60_000 });
  return stdout.trim();
}

const unavailable = erlangUnavailable();
describe.skipIf(unavailable !== null)('hex_core reads the search results', () => {
  it('binary_to_term(_, [safe]) gives maps with the keys mix hex.package search reads', async () => {
    const res = await raw(server.url, '/api/packages?search=poison', { headers: { accept: ETF } });
    const file = join(dir, 'search.etf');
    await writeFile(file, res.body);
    const out = await runErlang(
      `{ok, B} = file:read_file(${erlString(file)}), [P] = binary_to_term(B, [safe]), {maps:get(<<"name">>, P), maps:get(<<"description">>, maps:get(<<"meta">>, P)), maps:get(<<"version">>, hd(maps:get(<<"releases">>, P))), maps:get(<<"html_url">>, P)}`,
    );
    expect(out.replace(/>>,\s+<</g, '>>,<<')).toBe(`{<<"poison">>,<<"An incredibly fast, pure Elixir JSON library">>,<<"5.0.0">>,<<"${server.url}/-/packages/acme/poison">>}`);
  });

  it("r3_hex_api_package:search/3 (rebar3's hex_core) finds packages, with a repository's API URL and token", async () => {
    const out = await runErlang(`
      {ok, _} = application:ensure_all_started(inets),
      Config = maps:merge(r3_hex_core:default_config(), #{api_url => <<${erlString(`${server.url}/api/repos/internal`)}>>, api_key => <<${erlString(reader)}>>}),
      {ok, {200, _, List}} = r3_hex_api_package:search(Config, <<"team">>, [{sort, <<"name">>}]),
      [maps:get(<<"name">>, P) || P <- List]`);
    expect(out).toBe('[<<"team_core">>,<<"team_web">>]');
  });
});
