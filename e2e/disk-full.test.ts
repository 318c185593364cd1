/**
 * Disk full, for real: a `hexrepo serve` process on a 2 MiB tmpfs. With the disk full (and with a
 * few pages left, so the write fails at each step: tarball, sidecar, packages/NAME, indexes), a
 * publish, retire or revert answers 507 naming the cause and leaves no trace: the registry is as it
 * was and verifies, reads still answer 200, and once space returns the same publish is accepted
 * (not refused as "already published") and nothing refused shows up later. Skipped, with the reason
 * printed, where a tmpfs cannot be mounted (not root, no mount). Run twice: as a single process, and
 * with two workers, where each worker's read cache must not hide what the other just wrote.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { open, readdir, rm, stat, truncate } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadPublicKey, unpackPackage } from '@hexrepo/registry';
import { createTarball } from '@hexrepo/tarball';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hexrepo } from './support/cli.js';
import { startServe, type ServeProcess } from './support/serve.js';

const mountPoint = mkdtempSync(join(tmpdir(), 'hexrepo-tmpfs-'));
const mount = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', mountPoint], { encoding: 'utf8' });
const skipReason = mount.status === 0 ? null : `cannot mount a tmpfs (${(mount.stderr || mount.error?.message || 'unknown').trim()}); the disk-full test needs root`;
if (skipReason) console.warn(`disk-full.test.ts skipped: ${skipReason}`);

const PAGE = 4096;
const filler = join(mountPoint, 'filler');

/** Fill the tmpfs to the last byte, then give `pages` pages back. */
async function fillLeaving(pages: number): Promise<void> {
  const fh = await open(filler, 'a');
  const chunk = Buffer.alloc(64 * 1024, 1);
  try {
    for (let size = chunk.length; size >= 1;) {
      try {
        await fh.write(chunk.subarray(0, size));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
        size = Math.floor(size / 2);
      }
    }
  } finally {
    await fh.close();
  }
  const { size } = await stat(filler);
  await truncate(filler, Math.max(0, size - pages * PAGE));
}

afterAll(() => {
  spawnSync('umount', [mountPoint]);
  rmSync(mountPoint, { recursive: true, force: true });
});

describe.skipIf(skipReason !== null).each([1, 2])('disk full (a real 2 MiB tmpfs), --workers %i', (workers) => {
  const dir = join(mountPoint, `repo-${workers}`);
  const pub = join(dir, 'public');
  let server: ServeProcess;
  let token: string;
  const publicKey = (): ReturnType<typeof loadPublicKey> => loadPublicKey(readFileSync(join(pub, 'public_key')));

  beforeAll(async () => {
    expect((await hexrepo(['init', dir, '--name', 'full'])).status).toBe(0);
    token = (JSON.parse((await hexrepo(['token', 'create', dir, '--label', 't', '--scope', 'read', '--scope', 'write', '--json'])).stdout) as { token: string }).token;
    server = await startServe([dir, '--workers', String(workers)], { cwd: dir });
  });
  afterAll(async () => {
    await server?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  const api = (method: string, path: string, body?: Uint8Array | object): Promise<Response> =>
    fetch(`${server.url}/api${path}`, {
      method,
      headers: { authorization: token, accept: 'application/json', ...(body ? { 'content-type': body instanceof Uint8Array ? 'application/octet-stream' : 'application/json' } : {}) },
      ...(body ? { body: body instanceof Uint8Array ? body : JSON.stringify(body) } : {}),
    });
  const publish = (version: string): Promise<Response> => api('POST', '/packages/foo/releases', createTarball({ name: 'foo', version }, [{ path: 'src/foo.erl', contents: Buffer.from(`-module(foo). %% ${version}\n`) }]).tarball);
  /** The releases of foo as clients see them: version → retired. */
  const listed = (): Map<string, boolean> => {
    const pkg = unpackPackage(readFileSync(join(pub, 'packages', 'foo')), { publicKey: publicKey(), repository: 'full', name: 'foo' });
    return new Map(pkg.releases.map((r) => [r.version, r.retired !== undefined]));
  };
  const verify = async (): Promise<void> => {
    const r = await hexrepo(['verify', dir, '--json']);
    expect(JSON.parse(r.stdout) as { ok: boolean; problems: unknown[] }).toMatchObject({ ok: true, problems: [] });
  };
  const readsWork = async (): Promise<void> => {
    for (const path of ['/names', '/versions', '/packages/foo', '/tarballs/foo-1.0.0.tar']) {
      expect((await fetch(`${server.url}${path}`, { headers: { authorization: token } })).status, path).toBe(200);
    }
  };
  const leftovers = async (): Promise<string[]> => {
    const out: string[] = [];
    const walk = async (d: string): Promise<void> => {
      for (const e of await readdir(d, { withFileTypes: true })) {
        if (e.isDirectory()) await walk(join(d, e.name));
        else if (e.name.startsWith('.tmp-') || e.name.startsWith('.lock-')) out.push(join(d, e.name));
      }
    };
    await walk(pub);
    return out;
  };

  it('a publish refused for lack of space answers 507, leaves no trace, and is accepted once space returns', async () => {
    expect((await publish('1.0.0')).status).toBe(201);
    const refusals: number[] = [];
    // 0 pages: the tarball cannot be written; more pages: the failure moves on to the sidecar,
    // packages/foo, versions and names, each of which must be undone.
    for (let pages = 0; pages <= 8; pages++) {
      const version = `1.${pages + 1}.0`;
      await fillLeaving(pages);
      const res = await publish(version);
      if (res.status === 201) {
        expect(listed().has(version)).toBe(true);
      } else {
        refusals.push(pages);
        expect(res.status).toBe(507);
        expect(((await res.json()) as { message: string }).message).toMatch(/no space left on the device \(ENOSPC\)/);
        expect(listed().has(version), `${version} refused but listed`).toBe(false);
        expect(existsSync(join(pub, 'tarballs', `foo-${version}.tar`))).toBe(false);
        await verify();
        await readsWork();
        expect(await leftovers()).toEqual([]);
      }
      await rm(filler);
      // The same publish again: accepted, not "already published".
      if (res.status !== 201) expect((await publish(version)).status).toBe(201);
      expect(listed().has(version)).toBe(true);
      await verify();
    }
    // Refused with no page left (the tarball itself) and with pages left (a later write, undone).
    expect(refusals[0]).toBe(0);
    expect(refusals.some((p) => p >= 2)).toBe(true);
  }, 120_000);

  it('a retire refused for lack of space is not applied later by another write; a revert frees the space it needs', async () => {
    await fillLeaving(0);
    const retire = await api('POST', '/packages/foo/releases/1.0.0/retire', { reason: 'security', message: 'use 3.0.0' });
    expect(retire.status).toBe(507);
    // A revert deletes the tarball (and docs) before it writes the registry, so on a full disk it
    // makes the room its registry files need: done, and answered as done.
    expect((await api('DELETE', '/packages/foo/releases/1.1.0')).status).toBe(204);
    expect(listed().has('1.1.0')).toBe(false);
    expect(existsSync(join(pub, 'tarballs', 'foo-1.1.0.tar'))).toBe(false);
    await readsWork();
    await verify();
    await rm(filler);
    // The next write flushes the registry: the refused retirement may not ride along.
    expect((await publish('3.0.0')).status).toBe(201);
    const now = listed();
    expect(now.get('1.0.0')).toBe(false);
    expect(now.has('1.1.0')).toBe(false);
    await verify();
    // Writes resume for real: the same retire now succeeds.
    expect((await api('POST', '/packages/foo/releases/1.0.0/retire', { reason: 'security', message: 'use 3.0.0' })).status).toBe(204);
    expect(listed().get('1.0.0')).toBe(true);
    await verify();
  }, 60_000);
});
