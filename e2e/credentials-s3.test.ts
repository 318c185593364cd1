/**
 * The host's credentials live in the store, so N stateless servers on one bucket share them: two
 * real `hexrepo serve` processes on one Ceph RGW bucket; a token created on the shared state (with
 * `hexrepo token create --store`) is accepted by both, and once revoked it is refused by both
 * within 5 s (each server re-reads the credentials every 2 s). The credentials object is never
 * served. A format-1 token file of the project moves into the bucket when the first server starts.
 */
import { copyFile, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rgwUnavailable, startRgw, type RgwServer } from '@hexrepo/test-support/ceph-rgw';
import { hexrepo } from './support/cli.js';
import { rgwBucket } from './support/rgw.js';
import { namesStatus, reloadedWithin5s, reloads } from './support/credentials.js';
import { startServe, type ServeProcess } from './support/serve.js';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

const FIXTURE = new URL('../test-fixtures/tokens-format1/', import.meta.url).pathname;
const unavailable = rgwUnavailable();
if (unavailable) console.warn(`skipping the S3 credentials end-to-end test: ${unavailable}`);

describe.skipIf(unavailable !== null)('two hexrepo serve processes on one Ceph RGW bucket share tokens', () => {
  let rgw: RgwServer | undefined;
  let raw: S3Client;
  let dir: string;
  let repo: string;
  let env: Record<string, string>;
  let servers: ServeProcess[] = [];
  const bucket = `hexrepo-cred-${process.pid}`;
  let url: (prefix: string) => string;

  beforeAll(async () => {
    rgw = await startRgw();
    ({ raw, env, url } = await rgwBucket(rgw, bucket));
    dir = await mkdtemp(join(tmpdir(), 'hexrepo-e2e-cred-'));
    expect((await hexrepo(['init', 'repo', '--name', 'acme'], { cwd: dir })).status).toBe(0);
    repo = join(dir, 'repo');
    const build = await hexrepo(['build', '--store', url('repo'), '--quiet'], { cwd: repo, env });
    expect(build.status, build.stderr).toBe(0);
    // An older hexrepo's token file: the first server moves it into the bucket.
    await copyFile(join(FIXTURE, 'tokens.json'), join(repo, '.hexrepo/tokens.json'));
    servers = [await startServe(['--store', url('repo'), '--access', 'private'], { cwd: repo, env })];
    servers.push(await startServe(['--store', url('repo'), '--access', 'private'], { cwd: repo, env }));
  }, 240_000);

  afterAll(async () => {
    for (const s of servers) await s.stop();
    raw?.destroy();
    await rgw?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  }, 60_000);

  it('the format-1 tokens moved into the bucket work on both servers', async () => {
    const secrets = JSON.parse(await readFile(join(FIXTURE, 'secrets.json'), 'utf8')) as Record<string, string>;
    expect(await namesStatus(servers, secrets['ci reader']!)).toEqual([200, 200]);
    expect(await namesStatus(servers, secrets['acme publisher']!)).toEqual([200, 200]);
    const stored = await raw.send(new GetObjectCommand({ Bucket: bucket, Key: 'repo/_hexrepo/host/credentials.json' }));
    expect(JSON.parse(await stored.Body!.transformToString())).toMatchObject({ format: 2, tokens: [{ id: 'kzjxp21nyc', grants: [{ repository: 'acme' }] }, { id: 'gubnxfe7zb' }] });
  });

  it('a token created on the shared state is accepted by both; revoked, it is refused by both within 5 s', async () => {
    let before = servers.map(reloads);
    const created = await hexrepo(['token', 'create', '--store', url('repo'), '--label', 'live', '--scope', 'read', '--json'], { cwd: repo, env });
    expect(created.status, created.stderr).toBe(0);
    const { token, id } = JSON.parse(created.stdout) as { token: string; id: string };
    expect(await reloadedWithin5s(servers, before)).toEqual([true, true]);
    expect(await namesStatus(servers, token)).toEqual([200, 200]);
    before = servers.map(reloads);
    const revoked = await hexrepo(['token', 'revoke', '--store', url('repo'), id], { cwd: repo, env });
    expect(revoked.status, revoked.stderr).toBe(0);
    expect(await reloadedWithin5s(servers, before)).toEqual([true, true]);
    expect(await namesStatus(servers, token)).toEqual([401, 401]);
  }, 60_000);

  it('concurrent creates through the CLI on the bucket lose none', async () => {
    const made = await Promise.all(Array.from({ length: 6 }, (_, i) => hexrepo(['token', 'create', '--store', url('repo'), '--label', `c${i}`, '--scope', 'read', '--json'], { cwd: repo, env })));
    for (const m of made) expect(m.status, m.stderr).toBe(0);
    const list = JSON.parse((await hexrepo(['token', 'list', '--store', url('repo'), '--json'], { cwd: repo, env })).stdout) as { label: string }[];
    expect(
      list
        .map((t) => t.label)
        .filter((l) => /^c\d$/.test(l))
        .sort(),
    ).toEqual(['c0', 'c1', 'c2', 'c3', 'c4', 'c5']);
  }, 120_000);

  it('the credentials object is never served', async () => {
    const secrets = JSON.parse(await readFile(join(FIXTURE, 'secrets.json'), 'utf8')) as Record<string, string>;
    for (const s of servers) {
      const res = await fetch(`${s.url}/_hexrepo/host/credentials.json`, { headers: { authorization: secrets['ci reader']! } });
      expect(res.status).toBe(404);
    }
  });
});
