/**
 * A host of two repositories kept in one Ceph RGW bucket (each under its own prefix), served by two
 * real `hexrepo serve` processes: publishes interleaved across both repositories and both servers
 * all end up in the right repository's verified registry, and none in the other; the host's
 * credentials are shared through the bucket, and a token granted one repository writes only there.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rgwUnavailable, startRgw, type RgwServer } from '@hexrepo/test-support/ceph-rgw';
import { createTarball } from '@hexrepo/tarball';
import { hexrepo } from './support/cli.js';
import { rgwBucket } from './support/rgw.js';
import { startServe, type ServeProcess } from './support/serve.js';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

const unavailable = rgwUnavailable();
if (unavailable) console.warn(`skipping the two-repository S3 host test: ${unavailable}`);

describe.skipIf(unavailable !== null)('two hexrepo serve processes, one host of two repositories in one Ceph RGW bucket', () => {
  let rgw: RgwServer | undefined;
  let raw: S3Client | undefined;
  let dir: string;
  let env: Record<string, string>;
  let servers: ServeProcess[] = [];
  /** Granted every repository of the host; made before the servers start. */
  let both: string;
  const bucket = `hexrepo-host-${process.pid}`;
  let url: (prefix: string) => string;
  const token = async (args: string[]): Promise<string> => {
    const made = await hexrepo(['token', 'create', '--label', `grants ${args.filter((a) => !a.startsWith('--')).join(' ')}`, '--scope', 'read', '--scope', 'write', ...args, '--json'], { cwd: dir, env });
    expect(made.status, made.stderr).toBe(0);
    return (JSON.parse(made.stdout) as { token: string }).token;
  };
  const publish = async (server: ServeProcess, repository: string, auth: string, name: string, version: string): Promise<number> => {
    const { tarball } = createTarball({ name, version }, [{ path: `src/${name}.erl`, contents: Buffer.from(`-module(${name}).\n`) }]);
    const res = await fetch(`${server.url}/api/repos/${repository}/packages/${name}/releases`, {
      method: 'POST',
      headers: { authorization: auth, 'content-type': 'application/octet-stream', accept: 'application/json' },
      body: tarball,
    });
    await res.arrayBuffer();
    return res.status;
  };
  const verified = async (repository: string): Promise<{ ok: boolean; packages: number; releases: number }> => {
    const res = await hexrepo(['verify', '--store', url(repository), '--name', repository, '--json'], { cwd: dir, env });
    expect(res.status, res.stdout + res.stderr).toBe(0);
    return JSON.parse(res.stdout) as { ok: boolean; packages: number; releases: number };
  };

  beforeAll(async () => {
    rgw = await startRgw();
    ({ raw, env, url } = await rgwBucket(rgw, bucket));
    dir = await mkdtemp(join(tmpdir(), 'hexrepo-e2e-host-s3-'));
    for (const [name, extra] of [
      ['alpha', ['--root']],
      ['beta', []],
    ] as const) {
      const added = await hexrepo(['repo', 'add', name, '--store', url(name), ...extra], { cwd: dir, env });
      expect(added.status, added.stderr).toBe(0);
    }
    both = await token(['--repo', '*']);
    servers = [await startServe(['--log-level', 'warn'], { cwd: dir, env }), await startServe(['--log-level', 'warn'], { cwd: dir, env })];
  }, 240_000);

  afterAll(async () => {
    for (const s of servers) await s.stop();
    raw?.destroy();
    await rgw?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  }, 60_000);

  it('40 publishes interleaved across both repositories and both servers: each in its own verified registry, none lost', async () => {
    const jobs = Array.from({ length: 40 }, (_, i) => {
      const repository = i % 2 === 0 ? 'alpha' : 'beta';
      // Half into one package per repository (one package's releases race), half into packages of their own.
      const [name, version] = i % 4 < 2 ? [`${repository}_shared`, `1.${i}.0`] : [`${repository}_solo_${i}`, '1.0.0'];
      return { server: servers[Math.floor(i / 2) % 2]!, repository, name, version };
    });
    const statuses = await Promise.all(jobs.map((j) => publish(j.server, j.repository, both, j.name, j.version)));
    expect(statuses).toEqual(jobs.map(() => 201));
    // 10 shared releases + 10 packages of their own in each repository.
    expect(await verified('alpha')).toMatchObject({ ok: true, packages: 11, releases: 20 });
    expect(await verified('beta')).toMatchObject({ ok: true, packages: 11, releases: 20 });
    // Nothing crossed over: each server's package API finds every package in its own repository only.
    for (const s of servers) {
      const inAlpha = await fetch(`${s.url}/api/repos/alpha/packages/beta_shared`, { headers: { authorization: both, accept: 'application/json' } });
      expect(inAlpha.status).toBe(404);
      const inBeta = await fetch(`${s.url}/api/repos/beta/packages/beta_shared`, { headers: { authorization: both, accept: 'application/json' } });
      expect(inBeta.status).toBe(200);
    }
  }, 180_000);

  it('a token granted alpha publishes into alpha through either server and is refused on beta by both', async () => {
    const alphaOnly = await token(['--repo', 'alpha']);
    // Created on the shared state while the servers run: each picks it up within its 2 s refresh.
    for (const [i, s] of servers.entries()) {
      let status = 0;
      for (let attempt = 0; attempt < 50 && status !== 201; attempt++) {
        status = await publish(s, 'alpha', alphaOnly, `granted_${i}`, '1.0.0');
        if (status !== 201) await new Promise((r) => setTimeout(r, 100));
      }
      expect(status).toBe(201);
      expect(await publish(s, 'beta', alphaOnly, `refused_${i}`, '1.0.0')).toBe(403);
    }
    expect(await verified('beta')).toMatchObject({ packages: 11, releases: 20 });
  }, 60_000);
});
