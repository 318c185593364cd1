/**
 * The dev server end to end, in-process on 127.0.0.1:0 with a real watcher on a temp folder:
 * dropped tarballs appear in a verified packages/NAME within a bounded wait, removals disappear,
 * a bad tarball is reported while the last good registry stays served, bursts are coalesced,
 * and the SSE stream delivers the events.
 */
import { copyFile, mkdtemp, open, readFile, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadPublicKey, unpackNames, unpackPackage } from '@hexrepo/registry';
import { createTarball } from '@hexrepo/tarball';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDevServer, type DevEvent, type DevServer, type RebuildEvent } from '../src/index.js';
import { until } from '../../../e2e/support/until.js';

const FIXTURES = new URL('../../../test-fixtures/tarballs/', import.meta.url).pathname;
let dir: string;
let dev: DevServer;
const events: DevEvent[] = [];
let sse: { events: { event: string; data: unknown }[]; close(): void };

/** A Server-Sent Events client on fetch's stream. */
async function subscribe(url: string): Promise<typeof sse> {
  const controller = new AbortController();
  const res = await fetch(url, { signal: controller.signal });
  const received: { event: string; data: unknown }[] = [];
  const reader = res.body!.getReader();
  let buffer = '';
  void (async () => {
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        buffer += new TextDecoder().decode(value);
        let end;
        while ((end = buffer.indexOf('\n\n')) !== -1) {
          const frame = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const event = /^event: (.*)$/m.exec(frame)?.[1];
          const data = /^data: (.*)$/m.exec(frame)?.[1];
          if (event && data) received.push({ event, data: JSON.parse(data) as unknown });
        }
      }
    } catch {
      /* aborted */
    }
  })();
  return { events: received, close: () => controller.abort() };
}

const served = async (name: string): Promise<string[] | undefined> => {
  const res = await fetch(`${dev.url}/packages/${name}`);
  if (res.status !== 200) return undefined;
  const publicKey = loadPublicKey(await readFile(join(dev.publicDir, 'public_key')));
  return unpackPackage(new Uint8Array(await res.arrayBuffer()), { publicKey, repository: 'dev', name }).releases.map((r) => r.version);
};

const rebuilds = (): RebuildEvent[] => events.filter((e): e is RebuildEvent => e.type === 'rebuild' && !e.initial);

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hexrepo-dev-'));
  dev = await startDevServer({ dir: join(dir, 'ws'), port: 0 });
  dev.hub.subscribe((e) => events.push(e));
  sse = await subscribe(`${dev.url}/_dev/events`);
}, 30_000);

afterAll(async () => {
  sse?.close();
  await dev?.close();
  await rm(dir, { recursive: true, force: true });
});

describe('hexrepo dev', () => {
  it('seeds two example packages, one depending on the other, and serves them signed', async () => {
    expect(dev.repository).toBe('dev');
    expect(await served('hello')).toEqual(['0.1.0']);
    const publicKey = loadPublicKey(await readFile(join(dev.publicDir, 'public_key')));
    const greeter = unpackPackage(new Uint8Array(await (await fetch(`${dev.url}/packages/greeter`)).arrayBuffer()), { publicKey, repository: 'dev', name: 'greeter' });
    expect(greeter.releases[0]!.dependencies).toEqual([expect.objectContaining({ package: 'hello', requirement: '~> 0.1' })]);
    await expect(readFile(join(dir, 'ws/private_key.pem'))).resolves.toBeTruthy();
    expect(dev.setup).toContain('mix hex.repo add dev');
  });

  it('a dropped tarball is in a verified packages/NAME within a bounded wait; the SSE stream says so', async () => {
    await copyFile(join(FIXTURES, 'foo-0.1.0.tar'), join(dev.publicDir, 'tarballs/foo-0.1.0.tar'));
    expect(await until('foo to be served', () => served('foo'), 5_000)).toEqual(['0.1.0']);
    const frame = await until('the SSE rebuild event', () => sse.events.find((e) => e.event === 'rebuild' && JSON.stringify(e.data).includes('"name":"foo"')));
    expect(frame.data).toMatchObject({ type: 'rebuild', added: [{ file: 'foo-0.1.0.tar', name: 'foo', version: '0.1.0' }] });
    expect(sse.events[0]!.event).toBe('hello');
  });

  it('a removed tarball leaves the registry', async () => {
    await unlink(join(dev.publicDir, 'tarballs/foo-0.1.0.tar'));
    await until('packages/foo to be gone', async () => ((await fetch(`${dev.url}/packages/foo`)).status === 404 ? true : undefined), 5_000);
    const publicKey = loadPublicKey(await readFile(join(dev.publicDir, 'public_key')));
    expect(unpackNames(await readFile(join(dev.publicDir, 'names')), { publicKey, repository: 'dev' }).packages.map((p) => p.name)).not.toContain('foo');
  });

  it('a bad tarball is reported with its reason; the last good registry keeps being served', async () => {
    const names = await readFile(join(dev.publicDir, 'names'));
    await writeFile(join(dev.publicDir, 'tarballs/broken-1.0.0.tar'), Buffer.from('this is not a tarball'));
    const bad = await until('the problem event', () => rebuilds().find((e) => e.problems.some((p) => p.file === 'broken-1.0.0.tar')));
    expect(bad.problems[0]!.code).toMatch(/^TAR_/);
    expect(Buffer.compare(await readFile(join(dev.publicDir, 'names')), names)).toBe(0);
    expect(await served('hello')).toEqual(['0.1.0']);
    const state = (await (await fetch(`${dev.url}/_dev/api/state`)).json()) as { problems: { file: string }[] };
    expect(state.problems.map((p) => p.file)).toContain('broken-1.0.0.tar');
    await unlink(join(dev.publicDir, 'tarballs/broken-1.0.0.tar'));
  });

  it('a file still being written is not read half-way', async () => {
    const { tarball } = createTarball({ name: 'slow', version: '1.0.0' }, [{ path: 'src/slow.erl', contents: Buffer.from('-module(slow).\n'.repeat(2000)) }]);
    const before = rebuilds().length;
    const fh = await open(join(dev.publicDir, 'tarballs/slow-1.0.0.tar'), 'w');
    await fh.write(tarball.subarray(0, 1024));
    await new Promise((r) => setTimeout(r, 15));
    await fh.write(tarball.subarray(1024));
    await fh.close();
    expect(await until('slow to be served', () => served('slow'), 5_000)).toEqual(['1.0.0']);
    expect(
      rebuilds()
        .slice(before)
        .flatMap((e) => e.problems),
    ).toEqual([]);
  });

  it('a burst of 100 files is coalesced into a few rebuilds', async () => {
    const before = rebuilds().length;
    const files = Array.from({ length: 100 }, (_, i) => ({ file: `burst-1.${i}.0.tar`, bytes: createTarball({ name: 'burst', version: `1.${i}.0` }, [{ path: 'src/burst.erl', contents: Buffer.from('-module(burst).\n') }]).tarball }));
    await Promise.all(files.map((f) => writeFile(join(dev.publicDir, 'tarballs', f.file), f.bytes)));
    const versions = await until('100 burst releases', async () => ((await served('burst'))?.length === 100 ? true : undefined), 15_000);
    expect(versions).toBe(true);
    const count = rebuilds().length - before;
    expect(count).toBeGreaterThan(0);
    expect(count).toBeLessThanOrEqual(10);
  });

  it('logs every request with the client kind', async () => {
    await fetch(`${dev.url}/packages/hello`, { headers: { 'user-agent': 'hex_core/0.7.1 (rebar3/3.19.0) (httpc)' } });
    const line = await until('the request event', () => events.find((e) => e.type === 'request' && e.path === '/packages/hello' && e.client === 'rebar3'));
    expect(line).toMatchObject({ method: 'GET', status: 200 });
    expect(sse.events.some((e) => e.event === 'request')).toBe(true);
  });
});

describe('the /_dev routes', () => {
  it('replays recent events to a new SSE client and refuses malformed paths', async () => {
    const late = await subscribe(`${dev.url}/_dev/events`);
    try {
      const replayed = await until('a replayed initial build', () => late.events.find((e) => e.event === 'rebuild' && (e.data as { initial?: boolean }).initial));
      expect(replayed.data).toMatchObject({ replayed: true });
    } finally {
      late.close();
    }
    expect((await fetch(`${dev.url}/_dev/%E0`)).status).toBe(400);
    expect((await fetch(`${dev.url}/_dev/..%2f..%2fprivate_key.pem`)).status).toBe(404);
  });
});
