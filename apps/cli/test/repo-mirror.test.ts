/** `hexrepo repo add NAME --mirror`: the host entry of a mirror, then `hexrepo serve` serving it from a loopback upstream. */
import { cpSync, mkdirSync, readdirSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateKeyPair, publicKeyPem } from '@hexrepo/registry';
import { buildRegistry } from '@hexrepo/repo';
import { FsStore } from '@hexrepo/storage';
import { startStaticUpstream, type Listening } from '@hexrepo/test-support/hex-upstream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hexrepo } from '../../../e2e/support/cli.js';
import { startServe, type ServeProcess } from '../../../e2e/support/serve.js';
import { until } from '../../../e2e/support/until.js';
import { resolveServeConfig } from '../src/serve-config.js';

const FIXTURES = fileURLToPath(new URL('../../../test-fixtures/tarballs/', import.meta.url));

let dir: string;
let upstream: Listening;
let upstreamPem: string;
let serve: ServeProcess | undefined;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hexrepo-repo-mirror-'));
  // A real Hex repository named hexpm, signed with its own test key, on a plain static server.
  const root = join(dir, 'upstream');
  mkdirSync(join(root, 'tarballs'), { recursive: true });
  for (const t of readdirSync(FIXTURES).filter((f) => f.endsWith('.tar'))) cpSync(join(FIXTURES, t), join(root, 'tarballs', t));
  const { privateKey } = await generateKeyPair();
  await buildRegistry({ store: new FsStore(root), repository: 'hexpm', privateKey, threads: 1 });
  upstreamPem = publicKeyPem(privateKey);
  upstream = await startStaticUpstream(root);
}, 60_000);

afterAll(async () => {
  await serve?.stop();
  await upstream?.close();
  await rm(dir, { recursive: true, force: true });
});

describe('hexrepo repo add --mirror', () => {
  it('adds a mirror of another upstream to an "init" project, which hexrepo serve then serves from that upstream', async () => {
    const host = join(dir, 'host');
    expect((await hexrepo(['init', 'host', '--name', 'acme'], { cwd: dir })).status).toBe(0);
    await writeFile(join(host, 'upstream.pem'), upstreamPem);
    const add = await hexrepo(['repo', 'add', 'up', '--mirror', '--upstream', upstream.url, '--upstream-name', 'hexpm', '--upstream-key', 'upstream.pem', '--public-dir', 'cache/up', '--access', 'public'], { cwd: host });
    expect(add.status, add.stderr).toBe(0);
    expect(add.stdout).toContain(`mirror of ${upstream.url}, repository hexpm`);
    // Not hex.pm's key: clients need the upstream's key, and rebar3 takes the URL of "hexpm" from HEX_CDN.
    expect(add.stdout).toContain('mix hex.repo set hexpm --url http://localhost:4000/repos/up --public-key public_key');
    expect(add.stdout).toContain('HEX_CDN=http://localhost:4000/repos/up');

    // The single project became the host's root repository; the mirror has no key of its own.
    expect(JSON.parse(await readFile(join(host, 'hexrepo.json'), 'utf8'))).toEqual({
      repositories: [
        { name: 'acme', publicDir: 'public', privateKey: 'private_key.pem', root: true },
        { name: 'up', publicDir: 'cache/up', mirror: { url: upstream.url, repository: 'hexpm', publicKey: 'upstream.pem' }, access: 'public' },
      ],
    });
    const list = await hexrepo(['repo', 'list', '--json'], { cwd: host });
    expect(JSON.parse(list.stdout)).toContainEqual(expect.objectContaining({ name: 'up', publicDir: 'cache/up', url: 'http://localhost:4000/repos/up' }));

    serve = await startServe(['--log-level', 'warn'], { cwd: host });
    const res = await fetch(`${serve.url.replace(/\/$/, '')}/repos/up/tarballs/foo-0.1.0.tar`);
    expect(res.status).toBe(200);
    expect(res.headers.get('x-hexrepo-cache')).toBe('miss');
    const expected = await readFile(join(dir, 'upstream/tarballs/foo-0.1.0.tar'));
    expect(Buffer.from(await res.arrayBuffer()).equals(expected)).toBe(true);
    // Verified against the upstream's packages/foo, then kept in the mirror's folder.
    expect(upstream.requests.map((r) => r.path)).toEqual(['/packages/foo', '/tarballs/foo-0.1.0.tar']);
    // The copy is written behind the answer (the client is not kept waiting for the disk).
    const kept = await until('the tarball in the mirror folder', () => readFile(join(host, 'cache/up/tarballs/foo-0.1.0.tar')).catch(() => undefined), 5_000);
    expect(kept.equals(expected)).toBe(true);
    // The publish API of a mirror stays closed.
    expect((await fetch(`${serve.url.replace(/\/$/, '')}/api/repos/up/publish`, { method: 'POST', body: 'x' })).status).toBe(405);
    await serve.stop();
    serve = undefined;
  }, 60_000);

  it('mirrors hex.pm by default, under the name hexpm, and refuses what it cannot serve', async () => {
    const host = join(dir, 'hexpm-host');
    expect((await hexrepo(['init', 'hexpm-host', '--name', 'acme'], { cwd: dir })).status).toBe(0);
    const add = await hexrepo(['repo', 'add', 'hexpm', '--mirror', '--access', 'public', '--json'], { cwd: host });
    expect(add.status, add.stderr).toBe(0);
    const out = JSON.parse(add.stdout) as { upstream: unknown; setup: string[] };
    expect(out.upstream).toEqual({ url: 'https://repo.hex.pm', repository: 'hexpm' });
    expect(out.setup[0]).toContain('HEX_MIRROR=http://localhost:4000/repos/hexpm');
    const config = JSON.parse(await readFile(join(host, 'hexrepo.json'), 'utf8')) as { repositories: unknown[] };
    expect(config.repositories[1]).toEqual({ name: 'hexpm', publicDir: 'repos/hexpm/public', mirror: {}, access: 'public' });
    // hexrepo serve reads the entry as a mirror of hex.pm.
    const served = await resolveServeConfig({ cwd: host, values: {}, env: {}, positional: undefined });
    expect(served.repositories?.find((r) => r.name === 'hexpm')?.mirror).toMatchObject({ maxAge: 60 });

    // Another upstream without its key, a key that is not one, upstream flags without --mirror, a repository's folder.
    const noKey = await hexrepo(['repo', 'add', 'other', '--mirror', '--upstream', upstream.url], { cwd: host });
    expect(noKey.status).not.toBe(0);
    expect(noKey.stderr).toContain('pass --upstream-key FILE');
    await writeFile(join(host, 'not-a-key.pem'), 'hello\n');
    const badKey = await hexrepo(['repo', 'add', 'other', '--mirror', '--upstream', upstream.url, '--upstream-key', 'not-a-key.pem'], { cwd: host });
    expect(badKey.status).not.toBe(0);
    expect(badKey.stderr).toContain('mirror.publicKey');
    const noMirror = await hexrepo(['repo', 'add', 'other', '--upstream', upstream.url], { cwd: host });
    expect(noMirror.status).not.toBe(0);
    expect(noMirror.stderr).toContain('--upstream describes the upstream of a mirror: add --mirror');
    const onRepo = await hexrepo(['repo', 'add', 'other', '--mirror', '--public-dir', 'public'], { cwd: host });
    expect(onRepo.status).not.toBe(0);
    expect(onRepo.stderr).toContain('already holds a repository');
    // None of them changed the config.
    expect((JSON.parse(await readFile(join(host, 'hexrepo.json'), 'utf8')) as { repositories: unknown[] }).repositories).toHaveLength(2);
  }, 60_000);
});
