/**
 * A repository in an S3 bucket (a real S3 server: Ceph's RADOS Gateway on loopback): tarballs put
 * into the bucket with `hexrepo deploy`, `hexrepo build --store s3://…` builds the registry in the
 * bucket, `hexrepo serve --store s3://…` serves it, and rebar3 consumes a package through it. And
 * `hexrepo deploy` of a local folder sets Content-Type and Cache-Control, never Content-Encoding.
 */
import { copyFile, mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HeadObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rgwUnavailable, startRgw, type RgwServer } from '@hexrepo/test-support/ceph-rgw';
import { hexrepo } from './support/cli.js';
import { rgwBucket } from './support/rgw.js';
import { rebar3Unavailable, runRebar3, writeConsumer } from './support/rebar3.js';
import { publishInterleaved } from './support/publish.js';
import { startServe, type ServeProcess } from './support/serve.js';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

const FIXTURES = new URL('../test-fixtures/tarballs/', import.meta.url).pathname;
const unavailable = rgwUnavailable();
if (unavailable) console.warn(`skipping the S3 end-to-end tests: ${unavailable}`);
const noRebar3 = rebar3Unavailable();
if (!unavailable && noRebar3) console.warn(`skipping the rebar3 part of the S3 end-to-end tests: ${noRebar3}`);

interface DeployJson {
  uploaded: string[];
  skipped: string[];
  ignored: string[];
}

describe.skipIf(unavailable !== null)('a repository in an S3 bucket (Ceph RGW)', () => {
  let rgw: RgwServer | undefined;
  let raw: S3Client;
  let dir: string;
  let env: Record<string, string>;
  let server: ServeProcess | undefined;
  const bucket = `hexrepo-e2e-${process.pid}`;
  let url: (prefix: string) => string;

  beforeAll(async () => {
    rgw = await startRgw();
    console.log(`Ceph RGW started in ${rgw.startMs} ms at ${rgw.endpoint}`);
    ({ raw, env, url } = await rgwBucket(rgw, bucket));
    dir = await mkdtemp(join(tmpdir(), 'hexrepo-e2e-s3-'));
    const init = await hexrepo(['init', 'repo', '--name', 'acme'], { cwd: dir });
    expect(init.status, init.stderr).toBe(0);
  }, 240_000);

  afterAll(async () => {
    await server?.stop();
    raw?.destroy();
    await rgw?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  }, 60_000);

  it('builds the registry in the bucket, serves it from there, and rebar3 installs from it', async () => {
    // The tarballs go into the bucket first (a folder holding only tarballs/ deploys just those).
    await mkdir(join(dir, 'drop/tarballs'), { recursive: true });
    for (const t of ['baz-1.0.0.tar', 'qux-0.1.0.tar']) await copyFile(join(FIXTURES, t), join(dir, 'drop/tarballs', t));
    const put = await hexrepo(['deploy', 'drop', '--to', url('repo'), '--json'], { cwd: dir, env });
    expect(put.status, put.stderr).toBe(0);
    expect((JSON.parse(put.stdout) as DeployJson).uploaded).toEqual(['tarballs/baz-1.0.0.tar', 'tarballs/qux-0.1.0.tar']);

    const build = await hexrepo(['build', '--store', url('repo'), '--json'], { cwd: join(dir, 'repo'), env });
    expect(build.status, build.stdout + build.stderr).toBe(0);
    const summary = JSON.parse(build.stdout) as { written: string[]; read: number; publicKey: string; cache: string };
    expect(summary.read).toBe(2);
    expect(summary.written.sort()).toEqual(['names', 'packages/baz', 'packages/qux', 'versions']);
    expect(summary.publicKey).toBe('created');
    expect(summary.cache.startsWith(join(dir, 'repo/.hexrepo/build-cache-'))).toBe(true);
    // Incremental: nothing changed, nothing read or written.
    const again = await hexrepo(['build', '--store', url('repo'), '--json'], { cwd: join(dir, 'repo'), env });
    expect(again.status, again.stderr).toBe(0);
    expect(JSON.parse(again.stdout)).toMatchObject({ read: 0, written: [] });
    const verify = await hexrepo(['verify', '--store', url('repo')], { cwd: join(dir, 'repo'), env });
    expect(verify.status, verify.stdout + verify.stderr).toBe(0);
    expect(verify.stdout).toContain('2 packages, 2 releases, 2 tarballs');

    server = await startServe(['--store', url('repo'), '--log-level', 'warn'], { cwd: join(dir, 'repo'), env });
    expect(server.stderr()).toContain(`s3://${bucket}/repo/`);
    const publicKeyPem = await (await fetch(`${server.url}/public_key`)).text();
    expect(publicKeyPem).toBe(await readFile(join(dir, 'repo/public/public_key'), 'utf8'));
    const names = await fetch(`${server.url}/names`);
    expect(names.status).toBe(200);
    expect(names.headers.get('content-encoding')).toBeNull();

    if (noRebar3) return;
    const project = join(dir, 'consumer');
    await writeConsumer(project, { name: 'acme', url: server.url, publicKeyPem }, { qux: '~> 0.1' });
    const getDeps = await runRebar3(project, ['get-deps'], join(dir, 'home'));
    expect(getDeps.status, getDeps.output).toBe(0);
    const compile = await runRebar3(project, ['compile'], join(dir, 'home'));
    expect(compile.status, compile.output).toBe(0);
    for (const app of ['qux', 'baz']) await expect(readFile(join(project, `_build/default/lib/${app}/ebin/${app}.beam`))).resolves.toBeTruthy();
  }, 300_000);

  it('hexrepo deploy sets Content-Type and Cache-Control, never Content-Encoding, and uploads only changes', async () => {
    const pub = join(dir, 'repo/public');
    for (const t of ['baz-1.0.0.tar', 'qux-0.1.0.tar']) await copyFile(join(FIXTURES, t), join(pub, 'tarballs', t));
    const build = await hexrepo(['build', '--quiet'], { cwd: join(dir, 'repo') });
    expect(build.status, build.stderr).toBe(0);

    const first = await hexrepo(['deploy', 'repo', '--to', url('deployed'), '--json'], { cwd: dir, env });
    expect(first.status, first.stderr).toBe(0);
    const res = JSON.parse(first.stdout) as DeployJson;
    expect(res.uploaded).toEqual(['tarballs/baz-1.0.0.tar', 'tarballs/qux-0.1.0.tar', 'packages/baz', 'packages/qux', 'versions', 'names', 'public_key']);

    const expected: Record<string, [string, string]> = {
      'tarballs/baz-1.0.0.tar': ['application/octet-stream', 'public, max-age=31536000, immutable'],
      'packages/qux': ['application/octet-stream', 'public, max-age=60'],
      versions: ['application/octet-stream', 'public, max-age=60'],
      names: ['application/octet-stream', 'public, max-age=60'],
      public_key: ['text/plain; charset=utf-8', 'public, max-age=3600'],
    };
    for (const [key, [type, cache]] of Object.entries(expected)) {
      const head = await raw.send(new HeadObjectCommand({ Bucket: bucket, Key: `deployed/${key}` }));
      expect(head.ContentType, key).toBe(type);
      expect(head.CacheControl, key).toBe(cache);
      expect(head.ContentEncoding, key).toBeUndefined();
    }

    const second = await hexrepo(['deploy', 'repo', '--to', url('deployed'), '--json'], { cwd: dir, env });
    expect(second.status, second.stderr).toBe(0);
    expect(JSON.parse(second.stdout)).toMatchObject({ uploaded: [], skipped: res.uploaded });
    const verify = await hexrepo(['verify', 'repo', '--store', url('deployed')], { cwd: dir, env });
    expect(verify.status, verify.stdout + verify.stderr).toBe(0);
  }, 120_000);

  it('two servers on one bucket: 20 concurrent publishes split between them, all in the verified registry', async () => {
    const repo = join(dir, 'repo');
    // The servers' credentials are in the bucket they serve (_hexrepo/host/), so the token goes there.
    const token = (JSON.parse((await hexrepo(['token', 'create', '--store', url('shared'), '--label', 'ci', '--scope', 'read', '--scope', 'write', '--json'], { cwd: repo, env })).stdout) as { token: string }).token;
    const servers = await Promise.all([0, 1].map(() => startServe(['--store', url('shared'), '--log-level', 'warn'], { cwd: repo, env })));
    try {
      const { responses } = await publishInterleaved(servers, token, 20);
      for (const r of responses) expect(r).toMatch(/^201 /);
      const verify = await hexrepo(['verify', '--store', url('shared'), '--json'], { cwd: repo, env });
      expect(verify.status, verify.stdout + verify.stderr).toBe(0);
      expect(JSON.parse(verify.stdout)).toMatchObject({ ok: true, packages: 11, releases: 20 });
    } finally {
      for (const s of servers) await s.stop();
    }
  }, 180_000);
});
