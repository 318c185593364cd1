/**
 * The admin API for advisories and policies, over a real server and store, in JSON and in ETF
 * (what hex_core would decode), and policies/NAME on the repository endpoint: who may read which
 * policy in a public and in a private repository.
 */
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadPrivateKey, unpackPackage, unpackPolicy } from '@hexrepo/registry';
import { RepoService, TokenStore } from '@hexrepo/repo';
import { FsStore } from '@hexrepo/storage';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Access, createHostHandler, decodeEtf, encodeEtf, listen, type RunningServer } from '../src/index.js';
import { FIXTURES } from './helpers.js';

const key = loadPrivateKey(await readFile(join(FIXTURES, 'golden-acme/test-only-rsa.pem'), 'utf8'));
const ETF = 'application/vnd.hex+erlang';

let server: RunningServer;
let pub: string;
let admin: string;
let writer: string;
let reader: string;
let privPub: string;

const call = (method: string, path: string, opts: { token?: string; json?: unknown; etf?: Parameters<typeof encodeEtf>[0] } = {}) =>
  fetch(`${server.url}${path}`, {
    method,
    headers: {
      ...(opts.token ? { authorization: opts.token } : {}),
      ...(opts.json !== undefined ? { 'content-type': 'application/json', accept: 'application/json' } : {}),
      ...(opts.etf !== undefined ? { 'content-type': ETF, accept: ETF } : {}),
    },
    ...(opts.json !== undefined ? { body: JSON.stringify(opts.json) } : opts.etf !== undefined ? { body: encodeEtf(opts.etf) } : {}),
  });

beforeAll(async () => {
  const dir = await mkdtemp(join(tmpdir(), 'hexrepo-api-policies-'));
  pub = join(dir, 'acme');
  privPub = join(dir, 'secret');
  const { service } = await RepoService.open({ store: new FsStore(pub), repository: 'acme', privateKey: key });
  const secret = await RepoService.open({ store: new FsStore(privPub), repository: 'secret', privateKey: key });
  await service.publish(await readFile(join(FIXTURES, 'tarballs/foo-0.1.0.tar')));
  await service.publish(await readFile(join(FIXTURES, 'tarballs/foo-0.2.0.tar')));
  const tokens = await TokenStore.open(new FsStore(join(dir, 'state')));
  const grant = (scopes: ('read' | 'write' | 'admin')[]) => [{ repository: '*', scopes, packages: [] }];
  admin = (await tokens.create({ label: 'admin', grants: grant(['read', 'write', 'admin']) })).token;
  writer = (await tokens.create({ label: 'ci', grants: grant(['read', 'write']) })).token;
  reader = (await tokens.create({ label: 'reader', grants: grant(['read']) })).token;
  server = await listen(
    createHostHandler({
      repositories: [
        { name: 'acme', store: new FsStore(pub), service, visibility: 'public', root: true },
        { name: 'secret', store: new FsStore(privPub), service: secret.service, visibility: 'private' },
      ],
      access: new Access({ visibility: 'public', users: [], tokens }),
    }),
    { host: '127.0.0.1', port: 0 },
  );
});
afterAll(async () => {
  await server?.close();
});

describe('advisories over the API', () => {
  it('POST (write scope) signs it into packages/NAME; GET lists it; the package JSON shows it; DELETE removes it', async () => {
    const body = { id: 'GHSA-aaaa-bbbb-cccc', summary: 'Header injection', html_url: 'https://example.test/a', severity: 'critical', aliases: ['CVE-2026-9'], versions: ['0.1.0'] };
    expect((await call('POST', '/api/packages/foo/advisories', { token: reader, json: body })).status).toBe(403);
    const created = await call('POST', '/api/packages/foo/advisories', { token: writer, json: body });
    expect(created.status).toBe(201);
    expect(await created.json()).toEqual({ id: body.id, summary: body.summary, html_url: body.html_url, api_url: body.html_url, severity: 'critical', cvss_score: null, aliases: ['CVE-2026-9'], versions: ['0.1.0'] });
    const pkg = unpackPackage(await readFile(join(pub, 'packages/foo')), { publicKey: key, repository: 'acme', name: 'foo' });
    expect(pkg.releases[0]!.advisories?.[0]?.id).toBe(body.id);

    const listed = await call('GET', '/api/packages/foo/advisories', { token: reader, json: undefined });
    expect(listed.status).toBe(200);
    // ETF, as hex_core decodes it.
    const etfList = await fetch(`${server.url}/api/packages/foo/advisories`, { headers: { accept: ETF } });
    expect(decodeEtf(new Uint8Array(await etfList.arrayBuffer()))).toEqual([expect.objectContaining({ id: body.id, severity: 'critical', versions: ['0.1.0'] })]);
    const asJson = await fetch(`${server.url}/api/packages/foo`, { headers: { accept: 'application/json' } });
    expect(((await asJson.json()) as { advisories: unknown[] }).advisories).toEqual([expect.objectContaining({ id: body.id, versions: ['0.1.0'] })]);

    const invalid = await call('POST', '/api/packages/foo/advisories', { token: writer, json: { ...body, severity: 'severe' } });
    expect(invalid.status).toBe(422);
    expect(((await invalid.json()) as { message: string }).message).toMatch(/severity "severe"/);

    expect((await call('DELETE', `/api/packages/foo/advisories/${body.id}`, { token: writer })).status).toBe(204);
    expect((await call('DELETE', `/api/packages/foo/advisories/${body.id}`, { token: writer })).status).toBe(404);
  });
});

describe('policies over the API and the repository endpoint', () => {
  const policy = {
    name: 'strict-prod',
    repositories: [{ repository: 'hexpm', restriction: { minSeverity: 'high', retirementReasons: ['security'], cooldown: '2w' }, overrides: [{ action: 'allow', package: 'plug', requirement: '~> 1.14' }] }],
  };

  it('admin scope to write; invalid ones refused with the reason (422); ETF bodies accepted', async () => {
    expect((await call('POST', '/api/policies', { token: writer, json: policy })).status).toBe(403);
    const created = await call('POST', '/api/policies', { token: admin, json: policy });
    expect(created.status).toBe(201);
    expect(await created.json()).toEqual({ ...policy, visibility: 'private' });
    const bad = await call('POST', '/api/policies/lax-one', { token: admin, json: { repositories: [{ repository: 'hexpm', restriction: { cooldown: '1y' } }] } });
    expect(bad.status).toBe(422);
    expect(((await bad.json()) as { message: string }).message).toMatch(/cooldown "1y" is not a duration Hex understands/);
    const viaEtf = await call('POST', '/api/policies/open-one', { token: admin, etf: { visibility: 'public', repositories: [{ repository: 'hexpm', restriction: { minSeverity: 'critical' } }] } });
    expect(viaEtf.status).toBe(200);
    expect(decodeEtf(new Uint8Array(await viaEtf.arrayBuffer()))).toMatchObject({ name: 'open-one', visibility: 'public' });
    const list = await call('GET', '/api/policies', { token: reader });
    expect(((await list.json()) as { name: string }[]).map((p) => p.name)).toEqual(['open-one', 'strict-prod']);
  });

  it('public repository: a private policy needs credentials, a public one does not', async () => {
    expect((await fetch(`${server.url}/policies/strict-prod`)).status).toBe(401);
    const res = await fetch(`${server.url}/policies/strict-prod`, { headers: { authorization: reader } });
    expect(res.status).toBe(200);
    const back = unpackPolicy(new Uint8Array(await res.arrayBuffer()), { publicKey: key, repository: 'acme', name: 'strict-prod' });
    expect(back).toEqual({ ...policy, visibility: 'private', repository: 'acme', skippedOverrides: 0 });
    expect((await fetch(`${server.url}/policies/open-one`)).status).toBe(200);
  });

  it('public repository: the API hides a private policy from who could not fetch it (401), lists only public ones anonymously', async () => {
    expect((await call('GET', '/api/policies/strict-prod')).status).toBe(401);
    expect((await call('GET', '/api/policies/strict-prod', { token: reader })).status).toBe(200);
    expect((await call('GET', '/api/policies/open-one')).status).toBe(200);
    const anonymous = await call('GET', '/api/policies');
    expect([anonymous.status, ((await anonymous.json()) as { name: string }[]).map((p) => p.name)]).toEqual([200, ['open-one']]);
  });

  it('private repository: a public policy is open (policy.proto: visibility is read at the edge), a private one is not', async () => {
    await call('POST', '/api/repos/secret/policies/open-one', { token: admin, json: { visibility: 'public' } });
    await call('POST', '/api/repos/secret/policies/closed-one', { token: admin, json: {} });
    expect((await fetch(`${server.url}/repos/secret/policies/open-one`)).status).toBe(200);
    expect((await fetch(`${server.url}/repos/secret/policies/closed-one`)).status).toBe(401);
    expect((await fetch(`${server.url}/repos/secret/policies/closed-one`, { headers: { authorization: reader } })).status).toBe(200);
    expect((await fetch(`${server.url}/repos/secret/packages/foo`)).status).toBe(401);
    expect((await call('DELETE', '/api/repos/secret/policies/closed-one', { token: admin })).status).toBe(204);
    expect((await fetch(`${server.url}/repos/secret/policies/closed-one`, { headers: { authorization: reader } })).status).toBe(404);
  });
});
