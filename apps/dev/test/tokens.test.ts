/**
 * A token created with the CLI while the dev server runs is accepted without a restart: the built
 * `hexrepo token create` writes the workspace's credentials (.hexrepo/state/), the running server re-reads them.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDevServer, type DevEvent, type DevServer } from '../src/index.js';

const CLI = fileURLToPath(new URL('../../cli/dist/bin.js', import.meta.url));
const FIXTURES = new URL('../../../test-fixtures/tarballs/', import.meta.url).pathname;
const unavailable = existsSync(CLI) ? null : `${CLI} is missing: run "pnpm build" first`;
if (unavailable) console.warn(`skipping the dev token reload test: ${unavailable}`);

let dir: string;
let dev: DevServer;
const events: DevEvent[] = [];

/** Poll until `ok` holds for the response (the file is polled by the server, not watched). */
async function until(request: () => Promise<Response>, ok: (status: number) => boolean): Promise<number> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const { status } = await request();
    if (ok(status) || Date.now() > deadline) return status;
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe.skipIf(unavailable !== null)('hexrepo dev and tokens created while it runs', () => {
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'hexrepo-dev-tokens-'));
    dev = await startDevServer({ dir: join(dir, 'ws'), port: 0, seed: false });
    dev.hub.subscribe((e) => events.push(e));
  });

  afterAll(async () => {
    await dev?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('accepts a token made by "hexrepo token create" and publishes with it', async () => {
    const created = spawnSync(process.execPath, [CLI, 'token', 'create', join(dir, 'ws'), '--label', 'live', '--scope', 'write', '--json'], { encoding: 'utf8' });
    expect(created.status, created.stderr).toBe(0);
    const { token } = JSON.parse(created.stdout) as { token: string };
    const me = (): Promise<Response> => fetch(`${dev.url}/api/users/me`, { headers: { authorization: token } });
    expect(await until(me, (s) => s === 200)).toBe(200);
    expect(await (await me()).json()).toMatchObject({ username: 'live' });
    expect(events.some((e) => e.type === 'info' && e.message.startsWith('credentials reloaded: 1 token'))).toBe(true);

    const tarball = await readFile(join(FIXTURES, 'foo-0.1.0.tar'));
    const published = await fetch(`${dev.url}/api/publish`, { method: 'POST', headers: { authorization: token, 'content-type': 'application/octet-stream' }, body: tarball });
    expect(published.status, await published.text()).toBe(201);
    expect((await fetch(`${dev.url}/packages/foo`)).status).toBe(200);
  });

  it('stops accepting a token revoked while it runs', async () => {
    const created = spawnSync(process.execPath, [CLI, 'token', 'create', join(dir, 'ws'), '--label', 'short', '--scope', 'read', '--json'], { encoding: 'utf8' });
    const { token, id } = JSON.parse(created.stdout) as { token: string; id: string };
    const me = (): Promise<Response> => fetch(`${dev.url}/api/users/me`, { headers: { authorization: token } });
    expect(await until(me, (s) => s === 200)).toBe(200);
    const revoked = spawnSync(process.execPath, [CLI, 'token', 'revoke', join(dir, 'ws'), id], { encoding: 'utf8' });
    expect(revoked.status, revoked.stderr).toBe(0);
    // Refused: 401, or 429 once this address's failed attempts (the polls above while the server had
    // not yet read a new token count too) reach the limit; never 200 again.
    expect([401, 429]).toContain(await until(me, (s) => s !== 200));
  });
});
