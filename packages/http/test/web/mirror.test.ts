/**
 * Mirror repositories in the web UI: listed on the index as a mirror with only what is cached,
 * browsable by name on their own page, package pages from the cached, verified registry entry —
 * and no page view ever asks the upstream (counted on the real upstream client).
 */
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MirrorCache, resolveUpstream, UpstreamClient } from '@hexrepo/mirror';
import { generateKeyPair, publicKeyPem } from '@hexrepo/registry';
import { buildRegistry, RepoService } from '@hexrepo/repo';
import { FsStore } from '@hexrepo/storage';
import { startStaticUpstream, type Listening } from '@hexrepo/test-support/hex-upstream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Access, createHostHandler, listen, type RunningServer } from '../../src/index.js';
import { FIXTURES, raw } from '../helpers.js';

let dir: string;
let upstream: Listening;
let client: UpstreamClient;
let server: RunningServer;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hexrepo-web-mirror-'));
  const up = new FsStore(join(dir, 'upstream'));
  for (const f of (await readdir(join(FIXTURES, 'tarballs'))).filter((f) => f.endsWith('.tar'))) await up.put(`tarballs/${f}`, await readFile(join(FIXTURES, 'tarballs', f)));
  const { privateKey } = await generateKeyPair();
  await buildRegistry({ store: up, repository: 'hexpm', privateKey, threads: 1 });
  upstream = await startStaticUpstream(join(dir, 'upstream'));
  client = new UpstreamClient(resolveUpstream({ url: upstream.url, publicKey: publicKeyPem(privateKey) }));
  const mirrorStore = new FsStore(join(dir, 'mirror'));
  const mirror = new MirrorCache({ store: mirrorStore, client, maxAgeMs: 0 });
  // What clients fetched through the mirror so far: bar with its tarball, foo's registry entry only.
  for (const path of ['packages/bar', 'tarballs/bar-1.0.0.tar', 'packages/foo']) expect(await mirror.get(path)).not.toBeNull();
  const { service } = await RepoService.open({ store: new FsStore(join(dir, 'acme')), repository: 'acme', privateKey });
  server = await listen(
    createHostHandler({
      repositories: [
        { name: 'acme', store: service.store, service, visibility: 'public', root: true },
        { name: 'hexpm', store: mirrorStore, visibility: 'public', mirror },
      ],
      access: new Access({ visibility: 'public', users: [] }),
    }),
    { host: '127.0.0.1', port: 0 },
  );
}, 60_000);

afterAll(async () => {
  await server?.close(0);
  await client?.close();
  await upstream?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

const page = async (path: string): Promise<{ status: number; text: string }> => {
  const r = await raw(server.url, path, { headers: { accept: 'text/html' } });
  return { status: r.status, text: r.body.toString('utf8') };
};
const names = (text: string): string[] => [...text.matchAll(/data-testid="package" data-name="([^"]+)"/g)].map((m) => m[1]!);

describe('a mirror in the web UI', () => {
  it('shows only what is cached, says so, and never asks the upstream', async () => {
    const before = client.requests;

    const index = await page('/-/');
    const section = /<section aria-labelledby="repo-hexpm">([\s\S]*?)<\/section>/.exec(index.text)![1]!;
    expect(section).toContain(`mirror of ${upstream.url} — cached only`);
    expect(section).toContain('2 packages cached');

    const list = await page('/-/search?repo=hexpm');
    expect(list.status).toBe(200);
    expect(names(list.text)).toEqual(['bar', 'foo']);
    expect(list.text).toContain('cached only');
    expect(names((await page('/-/search?repo=hexpm&q=ba')).text)).toEqual(['bar']);
    // A search over every repository says the mirror is not in it, and links to its list.
    expect((await page('/-/search?q=bar')).text).toMatch(/data-testid="mirror-not-searched">hexpm \(mirror of [^)]+\) is not searched here: <a href="\/-\/search\?repo=hexpm&#38;q=bar">/);

    const bar = await page('/-/packages/hexpm/bar');
    expect(bar.status).toBe(200);
    expect(bar.text).toContain("verified with the upstream's key");
    expect(bar.text).toContain('<a href="/repos/hexpm/tarballs/bar-1.0.0.tar" download>tarball</a>');
    // bar's tarball names foo's repository (acme): the link goes there, as on any package page.
    expect(bar.text).toContain('<a href="/-/packages/acme/foo">foo</a> <code>~&#62; 0.1</code>');
    const foo = await page('/-/packages/hexpm/foo');
    expect(names(foo.text)).toEqual([]);
    expect([...foo.text.matchAll(/data-testid="release" data-version="([^"]+)"/g)].map((m) => m[1])).toEqual(['0.2.0', '0.1.0']);
    expect(foo.text).not.toContain('/tarballs/foo-');
    expect(foo.text).toContain('not cached');
    // Not cached: not found, with why — and not fetched.
    const qux = await page('/-/packages/hexpm/qux');
    expect(qux.status).toBe(404);
    expect(qux.text).toContain('qux is not cached in hexpm');

    expect(client.requests).toBe(before);
  });
});
