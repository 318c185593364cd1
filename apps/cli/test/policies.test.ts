/**
 * hexrepo advisory and hexrepo policy, run as the built binary on a real folder, and the signed
 * policies/NAME fetched over HTTP from a real "hexrepo serve": signature and origin verified,
 * decoded back to the rules as entered; private policies need credentials, public ones do not.
 */
import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadPublicKey, unpackPackage, unpackPolicy, unpackVersions } from '@hexrepo/registry';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hexrepo } from '../../../e2e/support/cli.js';
import { startServe, type ServeProcess } from '../../../e2e/support/serve.js';

const FIXTURES = new URL('../../../test-fixtures/tarballs/', import.meta.url).pathname;
let dir: string;
let repo: string;
const run = (args: string[], env?: Record<string, string>) => hexrepo(args, { cwd: repo, ...(env ? { env } : {}) });
// Another key, to check the signature is really verified.
const otherKey = generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey;
const publicKey = async () => loadPublicKey(await readFile(join(repo, 'public/public_key')));

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hexrepo-policies-'));
  expect((await hexrepo(['init', 'acme', '--name', 'acme'], { cwd: dir })).status).toBe(0);
  repo = join(dir, 'acme');
  const pub = await run(['publish', join(FIXTURES, 'foo-0.1.0.tar'), join(FIXTURES, 'foo-0.2.0.tar')]);
  expect(pub.status, pub.stderr).toBe(0);
}, 30_000);
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

// A GitHub (GHSA) advisory as api.osv.dev serves it, trimmed to the fields OSV defines.
const GHSA = {
  schema_version: '1.6.0',
  id: 'GHSA-9x4v-xmmp-2g8x',
  modified: '2026-03-02T10:00:00Z',
  published: '2026-03-01T09:00:00Z',
  aliases: ['CVE-2026-21234'],
  summary: 'foo allows atom exhaustion through crafted headers',
  details: 'Crafted headers create atoms at runtime…',
  severity: [{ type: 'CVSS_V3', score: 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H' }],
  affected: [
    {
      package: { ecosystem: 'Hex', name: 'foo', purl: 'pkg:hex/foo' },
      ranges: [{ type: 'ECOSYSTEM', events: [{ introduced: '0' }, { fixed: '0.2.0' }] }],
      database_specific: { source: 'https://github.com/github/advisory-database/blob/main/advisories/github-reviewed/2026/03/GHSA-9x4v-xmmp-2g8x/GHSA-9x4v-xmmp-2g8x.json' },
    },
    { package: { ecosystem: 'npm', name: 'foo' }, versions: ['1.0.0'] },
  ],
  references: [
    { type: 'WEB', url: 'https://github.com/acme/foo/security/advisories/GHSA-9x4v-xmmp-2g8x' },
    { type: 'ADVISORY', url: 'https://github.com/advisories/GHSA-9x4v-xmmp-2g8x' },
    { type: 'PACKAGE', url: 'https://github.com/acme/foo' },
  ],
  database_specific: { cwe_ids: ['CWE-400'], severity: 'MODERATE', github_reviewed: true, github_reviewed_at: '2026-03-01T12:00:00Z', nvd_published_at: null },
};

describe('hexrepo advisory', () => {
  it('add, list --json, kept by build --no-cache, remove', async () => {
    const add = await run([
      'advisory',
      'add',
      'foo',
      '--versions',
      '< 0.2.0',
      '--id',
      'ACME-2026-001',
      '--summary',
      'Unsafe default',
      '--severity',
      'high',
      '--cvss',
      '7.5',
      '--html-url',
      'https://example.test/ACME-2026-001',
      '--alias',
      'CVE-2026-1',
      '--json',
    ]);
    expect(add.status, add.stderr).toBe(0);
    expect(JSON.parse(add.stdout)).toMatchObject({ ok: true, package: 'foo', versions: ['0.1.0'], advisory: { id: 'ACME-2026-001', severity: 'high', cvssScore: 7.5, aliases: ['CVE-2026-1'] } });
    expect((await run(['build', '--no-cache'])).status).toBe(0);
    const pkg = unpackPackage(await readFile(join(repo, 'public/packages/foo')), { publicKey: await publicKey(), repository: 'acme', name: 'foo' });
    expect(pkg.releases.map((r) => r.advisories?.map((a) => a.id) ?? [])).toEqual([['ACME-2026-001'], []]);
    const versions = unpackVersions(await readFile(join(repo, 'public/versions')), { publicKey: await publicKey(), repository: 'acme' });
    expect(versions.packages[0]!.withAdvisories).toEqual([0]);
    const listed = await run(['advisory', 'list', 'foo', '--json']);
    expect(JSON.parse(listed.stdout)).toEqual([{ package: 'foo', advisory: expect.objectContaining({ id: 'ACME-2026-001' }), versions: ['0.1.0'] }]);
    expect((await run(['advisory', 'list'])).stdout).toContain('foo ACME-2026-001 high (CVSS 7.5): Unsafe default');
    expect((await run(['advisory', 'remove', 'foo', 'ACME-2026-001'])).status).toBe(0);
    expect(JSON.parse((await run(['advisory', 'list', '--json'])).stdout)).toEqual([]);
  });

  it('refuses what it cannot store, with the reason', async () => {
    const none = await run(['advisory', 'add', 'foo', '--versions', '>= 9.0.0', '--id', 'X-1', '--summary', 's', '--severity', 'low', '--html-url', 'https://e.test']);
    expect([none.status, none.stderr]).toEqual([1, expect.stringMatching(/error\[ADVISORY_INVALID\]: ">= 9.0.0" matches no release of foo \(it has 0.1.0, 0.2.0\)/)]);
    const severity = await run(['advisory', 'add', 'foo', '--versions', '0.1.0', '--id', 'X-1', '--summary', 's', '--severity', 'severe', '--html-url', 'https://e.test']);
    expect([severity.status, severity.stderr]).toEqual([2, expect.stringContaining('--severity must be low, medium, high or critical')]);
  });

  it('imports a GHSA-style OSV document: Hex entry mapped, severity, aliases and the ADVISORY reference kept', async () => {
    await writeFile(join(dir, 'ghsa.json'), JSON.stringify(GHSA));
    const imported = await run(['advisory', 'import', join(dir, 'ghsa.json'), '--json']);
    expect(imported.status, imported.stderr).toBe(0);
    expect(JSON.parse(imported.stdout)).toEqual({ ok: true, imported: [{ package: 'foo', id: 'GHSA-9x4v-xmmp-2g8x', versions: ['0.1.0'] }] });
    const pkg = unpackPackage(await readFile(join(repo, 'public/packages/foo')), { publicKey: await publicKey(), repository: 'acme', name: 'foo' });
    expect(pkg.advisories).toEqual([
      { id: 'GHSA-9x4v-xmmp-2g8x', summary: GHSA.summary, htmlUrl: 'https://github.com/advisories/GHSA-9x4v-xmmp-2g8x', apiUrl: 'https://github.com/advisories/GHSA-9x4v-xmmp-2g8x', severity: 'medium', aliases: ['CVE-2026-21234'] },
    ]);

    const git = { ...GHSA, id: 'GHSA-git', affected: [{ package: { ecosystem: 'Hex', name: 'foo' }, ranges: [{ type: 'GIT', repo: 'https://github.com/acme/foo', events: [{ introduced: 'abc123' }] }] }] };
    const unrated = { ...GHSA, id: 'GHSA-unrated', database_specific: {} };
    const elsewhere = { ...GHSA, id: 'GHSA-elsewhere', affected: [{ package: { ecosystem: 'Hex', name: 'plug' }, versions: ['1.0.0'] }] };
    for (const [doc, reason] of [
      [git, /GHSA-git: foo: a GIT range names commits, not versions/],
      [unrated, /GHSA-unrated: has no severity hexrepo can read/],
      [elsewhere, /GHSA-elsewhere: affects plug, which this repository does not have/],
    ] as const) {
      await writeFile(join(dir, 'bad.json'), JSON.stringify([GHSA, doc]));
      const res = await run(['advisory', 'import', join(dir, 'bad.json')]);
      expect([res.status, res.stderr]).toEqual([1, expect.stringMatching(reason)]);
    }
  });
});

describe('hexrepo policy', () => {
  const rules = ['--rule', 'hexpm:min-severity=high,retired=security+invalid,cooldown=7d', '--allow', 'hexpm:plug@~> 1.14', '--deny', 'hexpm:jason', '--rule', 'acme:min-severity=medium'];

  it('create, show, edit and list round trip with --json', async () => {
    const created = await run(['policy', 'create', 'strict-prod', '--description', 'Production builds', ...rules, '--json']);
    expect(created.status, created.stderr).toBe(0);
    const expected = {
      name: 'strict-prod',
      visibility: 'private',
      description: 'Production builds',
      repositories: [
        {
          repository: 'hexpm',
          restriction: { minSeverity: 'high', retirementReasons: ['security', 'invalid'], cooldown: '7d' },
          overrides: [
            { action: 'allow', package: 'plug', requirement: '~> 1.14' },
            { action: 'deny', package: 'jason' },
          ],
        },
        { repository: 'acme', restriction: { minSeverity: 'medium' }, overrides: [] },
      ],
    };
    expect(JSON.parse(created.stdout)).toEqual(expected);
    expect(JSON.parse((await run(['policy', 'show', 'strict-prod', '--json'])).stdout)).toEqual(expected);
    expect((await run(['policy', 'show', 'strict-prod'])).stdout).toContain('use it (Hex 2.5): HEX_POLICY=acme/strict-prod mix deps.get');

    const edited = await run(['policy', 'edit', 'strict-prod', '--remove', 'hexpm:jason', '--drop-repo', 'acme', '--json']);
    expect(edited.status, edited.stderr).toBe(0);
    expect(JSON.parse(edited.stdout).repositories).toEqual([{ ...expected.repositories[0], overrides: [{ action: 'allow', package: 'plug', requirement: '~> 1.14' }] }]);
    expect((await run(['policy', 'create', 'open-one', '--visibility', 'public'])).status).toBe(0);
    expect(JSON.parse((await run(['policy', 'list', '--json'])).stdout).map((p: { name: string }) => p.name)).toEqual(['open-one', 'strict-prod']);
  });

  it('refuses a policy Mix would reject or misread, with the reason, storing nothing', async () => {
    const cases: [string[], RegExp][] = [
      [['policy', 'create', 'bad', '--rule', 'hexpm:cooldown=7days'], /error\[POLICY_INVALID\]: hexpm: the cooldown "7days" is not a duration Hex understands/],
      [['policy', 'create', 'bad', '--rule', 'hexpm:min-severity=severe'], /the minimum severity "severe" is not one of none, low, medium, high, critical/],
      [['policy', 'create', 'bad', '--rule', 'hexpm:retired=broken'], /the retirement reason "broken" is not one of/],
      [['policy', 'create', 'bad', '--allow', 'hexpm:plug@>= 1.0'], /not a valid Elixir requirement \(Mix would never match it\)/],
      [['policy', 'create', 'bad', '--from', join(dir, 'contradiction.json')], /hexpm: plug is both allowed and denied/],
      [['policy', 'create', 'bad', '--from', join(dir, 'on-hexpm.json'), '--name', 'hexpm'], /not a usable repository name|policies cannot be served by a repository named "hexpm"/],
      [['policy', 'create', 'x'], /error\[POLICY_INVALID\]: the policy name "x" is not valid/],
      [['policy', 'create', 'bad', '--allow', 'Hex PM:plug'], /"Hex PM" is not a repository name/],
    ];
    await writeFile(
      join(dir, 'contradiction.json'),
      JSON.stringify({
        repositories: [
          {
            repository: 'hexpm',
            overrides: [
              { action: 'allow', package: 'plug' },
              { action: 'deny', package: 'plug' },
            ],
          },
        ],
      }),
    );
    await writeFile(join(dir, 'on-hexpm.json'), JSON.stringify({ repositories: [] }));
    for (const [args, reason] of cases) {
      const res = await run(args);
      expect(res.status, `${args.join(' ')}: ${res.stderr}`).toBe(1);
      expect(res.stderr).toMatch(reason);
    }
    expect((await run(['policy', 'show', 'bad'])).status).toBe(1);
    // On the command line a later --deny of the same package replaces the --allow: no contradiction is built.
    const last = await run(['policy', 'create', 'last-wins', '--allow', 'hexpm:plug', '--deny', 'hexpm:plug', '--json']);
    expect(JSON.parse(last.stdout).repositories[0].overrides).toEqual([{ action: 'deny', package: 'plug' }]);
    expect((await run(['policy', 'delete', 'last-wins'])).status).toBe(0);
    await expect(readFile(join(repo, 'public/policies/bad'))).rejects.toThrow(/ENOENT/);
  });

  describe('served by hexrepo serve', () => {
    let server: ServeProcess;
    let reader: string;
    let adminToken: string;
    beforeAll(async () => {
      reader = (JSON.parse((await run(['token', 'create', '--label', 'r', '--scope', 'read', '--json'])).stdout) as { token: string }).token;
      adminToken = (JSON.parse((await run(['token', 'create', '--label', 'a', '--scope', 'admin', '--json'])).stdout) as { token: string }).token;
      server = await startServe(['--access', 'public'], { cwd: repo });
    }, 30_000);
    afterAll(async () => {
      await server?.stop();
    });

    it('the start-up lines say how to turn each policy on in Mix', () => {
      expect(server.stderr()).toContain('HEX_POLICY=acme/strict-prod mix deps.get');
      expect(server.stderr()).toContain('HEX_POLICY=acme/open-one mix deps.get');
    });

    it('policies/NAME verifies, passes the origin check and decodes to the rules as entered; a private one needs credentials', async () => {
      const anonymous = await fetch(`${server.url}/policies/strict-prod`);
      expect(anonymous.status).toBe(401);
      const res = await fetch(`${server.url}/policies/strict-prod`, { headers: { authorization: reader } });
      expect(res.status).toBe(200);
      expect(res.headers.get('content-encoding')).toBeNull();
      expect(res.headers.get('cache-control')).toMatch(/^private/);
      const file = new Uint8Array(await res.arrayBuffer());
      const stored = JSON.parse((await run(['policy', 'show', 'strict-prod', '--json'])).stdout) as object;
      const key = await publicKey();
      expect(unpackPolicy(file, { publicKey: await publicKey(), repository: 'acme', name: 'strict-prod' })).toEqual({ ...stored, repository: 'acme', skippedOverrides: 0 });
      expect(() => unpackPolicy(file, { publicKey: otherKey, repository: 'acme', name: 'strict-prod' })).toThrow(/not signed by the given key/);
      expect(() => unpackPolicy(file, { publicKey: key, repository: 'other', name: 'strict-prod' })).toThrow(/signed for repository "acme", not "other"/);
      expect(() => unpackPolicy(file, { publicKey: key, repository: 'acme', name: 'open-one' })).toThrow(/holds the policy "strict-prod"/);

      const open = await fetch(`${server.url}/policies/open-one`);
      expect(open.status).toBe(200);
      expect(unpackPolicy(new Uint8Array(await open.arrayBuffer()), { publicKey: await publicKey(), repository: 'acme', name: 'open-one' }).visibility).toBe('public');
      expect((await fetch(`${server.url}/policies/missing-one`)).status).toBe(404);
      expect((await fetch(`${server.url}/policies/..%2fpackages`)).status).toBe(400);
    });

    it('the same commands with --url go through the API (admin token for policies, write for advisories)', async () => {
      const env = { HEXREPO_TOKEN: adminToken };
      const remote = (args: string[], e: Record<string, string> = env) => hexrepo([...args, '--url', server.url], { cwd: dir, env: e });
      const created = await remote(['policy', 'create', 'remote-one', '--rule', 'hexpm:cooldown=2w', '--deny', 'hexpm:poison', '--json']);
      expect(created.status, created.stderr).toBe(0);
      expect(JSON.parse(created.stdout)).toEqual({ name: 'remote-one', visibility: 'private', repositories: [{ repository: 'hexpm', restriction: { cooldown: '2w' }, overrides: [{ action: 'deny', package: 'poison' }] }] });
      expect((await remote(['policy', 'show', 'remote-one'])).stdout).toContain('HEX_POLICY=acme/remote-one');
      const refused = await remote(['policy', 'create', 'remote-two', '--rule', 'hexpm:cooldown=2 weeks']);
      expect([refused.status, refused.stderr]).toEqual([1, expect.stringContaining('cooldown "2 weeks" is not a duration Hex understands')]);
      const notAdmin = await remote(['policy', 'delete', 'remote-one'], { HEXREPO_TOKEN: reader });
      expect(notAdmin.status).toBe(3);
      expect((await remote(['policy', 'edit', 'remote-one', '--visibility', 'public'])).status).toBe(0);
      expect((await fetch(`${server.url}/policies/remote-one`)).status).toBe(200);
      expect((await remote(['policy', 'delete', 'remote-one'])).status).toBe(0);

      const add = await remote(['advisory', 'add', 'foo', '--versions', '0.2.0', '--id', 'ACME-9', '--summary', 'Remote one', '--severity', 'critical', '--html-url', 'https://e.test/9', '--json']);
      expect(add.status, add.stderr).toBe(0);
      expect(JSON.parse(add.stdout)).toMatchObject({ ok: true, package: 'foo', versions: ['0.2.0'], advisory: { id: 'ACME-9', severity: 'critical' } });
      expect(JSON.parse((await remote(['advisory', 'list', 'foo', '--json'])).stdout).map((a: { advisory: { id: string } }) => a.advisory.id)).toContain('ACME-9');
      expect((await remote(['advisory', 'remove', 'foo', 'ACME-9'])).status).toBe(0);
    });
  });
});
