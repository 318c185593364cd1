/**
 * Locks and temp files a dead writer leaves in an FsStore folder: a lock whose owner was killed
 * (kill -9, a real process) must not wedge later writers, the sweep removes what dead writers left
 * and nothing a live one is using, and several processes breaking the same dead lock at once lose
 * no update.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, readdir, rm, utimes, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { HexrepoError } from '@hexrepo/core';
import { contentEtag, FsStore } from '../src/index.js';

const WORKER = fileURLToPath(new URL('./fixtures/lock-worker.mjs', import.meta.url));
const dirs: string[] = [];
const children: ChildProcess[] = [];
afterAll(async () => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'hexrepo-locks-'));
  dirs.push(d);
  return d;
}

function worker(root: string, rounds: number): ChildProcess {
  const child = spawn(process.execPath, [WORKER, root, String(rounds)], { stdio: ['ignore', 'ignore', 'pipe'] });
  children.push(child);
  return child;
}

/** The machine tag FsStore puts in temp file names: hostname and boot id, hashed. */
function hostTag(): string {
  const boot = existsSync('/proc/sys/kernel/random/boot_id') ? readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim() : '';
  return createHash('sha256').update(`${hostname()}\0${boot}`).digest('hex').slice(0, 10);
}

function startOf(pid: number): string {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]!;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const exited = (c: ChildProcess): Promise<number | null> => (c.exitCode !== null || c.signalCode !== null ? Promise.resolve(c.exitCode) : new Promise((r) => c.once('exit', r)));

/** Freeze a writer that loops on conditional writes at a moment it holds the lock of `counter`. */
async function frozenHoldingLock(root: string): Promise<ChildProcess> {
  const child = worker(root, 0);
  const lock = join(root, '.lock-counter');
  while (!existsSync(join(root, 'counter'))) await sleep(5);
  for (;;) {
    child.kill('SIGSTOP');
    await sleep(2);
    if (existsSync(lock)) return child;
    child.kill('SIGCONT');
    await sleep(Math.random() * 3);
  }
}

async function bump(store: FsStore): Promise<void> {
  const cur = await store.get('counter');
  await store.put('counter', new TextEncoder().encode(String(Number(new TextDecoder().decode(cur!.body)) + 1)), { ifMatch: cur!.etag });
}

describe('FsStore locks of dead writers', () => {
  it('breaks the lock of a writer killed with -9 while holding it, without waiting for its lease', async () => {
    const root = await tempDir();
    const child = await frozenHoldingLock(root);
    child.kill('SIGKILL');
    await exited(child);
    expect(existsSync(join(root, '.lock-counter'))).toBe(true);
    // A lease of 10 minutes and a wait of 2 s: only knowing the owner is dead can free the lock.
    const store = new FsStore(root, { lockTimeoutMs: 2000, leaseMs: 600_000 });
    await bump(store);
    expect(existsSync(join(root, '.lock-counter'))).toBe(false);
  });

  it('does not break the lock of a live writer: the wait ends with STORAGE_LOCKED naming the owner', async () => {
    const root = await tempDir();
    const child = await frozenHoldingLock(root);
    const store = new FsStore(root, { lockTimeoutMs: 200 });
    const err = await bump(store).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HexrepoError);
    expect((err as HexrepoError).code).toBe('STORAGE_LOCKED');
    expect((err as HexrepoError).message).toContain(`process ${child.pid} on ${hostname()}`);
    expect((await store.sweep()).locks).toEqual([]);
    expect(existsSync(join(root, '.lock-counter'))).toBe(true);
    child.kill('SIGKILL');
    await exited(child);
  });

  it('sweep removes the locks and temp files of dead writers, keeps those of live ones and real files', async () => {
    const root = await tempDir();
    // Frozen at a random moment while holding the lock: writing it, inside, or releasing it.
    const dead = await frozenHoldingLock(root);
    dead.kill('SIGKILL');
    await exited(dead);
    const store = new FsStore(root);
    await store.put('packages/foo', new Uint8Array([1]));
    // Temp files as a writer killed between writing and renaming leaves them: named after their
    // writer (machine and boot, pid, start time), one of the dead worker, one of this live process.
    const deadTemp = `.tmp-${hostTag()}.${dead.pid}.${startOf(process.pid)}-0123456789ab-foo`;
    const liveTemp = `.tmp-${hostTag()}.${process.pid}.${startOf(process.pid)}-0123456789ab-foo`;
    await writeFile(join(root, 'packages', deadTemp), 'partial');
    await writeFile(join(root, 'packages', liveTemp), 'partial');
    const swept = await store.sweep();
    expect(swept.locks).toContain('.lock-counter');
    expect(swept.temps).toContain(join('packages', deadTemp));
    expect(swept.temps).not.toContain(join('packages', liveTemp));
    expect((await readdir(root)).filter((f) => f.startsWith('.'))).toEqual([]);
    expect((await readdir(join(root, 'packages'))).sort()).toEqual([liveTemp, 'foo']);
    expect((await store.get('packages/foo'))!.body).toEqual(new Uint8Array([1]));
  });

  it('sweep finds every abandoned temp file in folders of thousands of entries, however the listing slices them', async () => {
    const root = await tempDir();
    const store = new FsStore(root, { durable: false });
    const old = new Date(Date.now() - 2 * 60 * 60 * 1000);
    const temps: string[] = [];
    for (const folder of ['tarballs', 'packages', 'tarballs/nested']) {
      for (let i = 0; i < 700; i++) {
        await store.put(`${folder}/f${String(i).padStart(4, '0')}`, new Uint8Array([i & 0xff]));
        // From another machine (its tag is not this one's) and two hours old: abandoned.
        if (i % 97 === 0) {
          const name = `.tmp-0000000000.1.1-0123456789ab-f${i}`;
          await writeFile(join(root, folder, name), 'partial');
          await utimes(join(root, folder, name), old, old);
          temps.push(join(folder, name));
        }
      }
    }
    const swept = await store.sweep();
    expect(swept.temps.sort()).toEqual(temps.sort());
    for (const folder of ['tarballs', 'packages', 'tarballs/nested']) {
      expect((await readdir(join(root, folder))).filter((f) => f.startsWith('.'))).toEqual([]);
    }
    expect((await readdir(join(root, 'tarballs'))).length).toBe(701);
  });

  it('a lock from another machine is broken only once its lease expired; one from an older hexrepo (empty) after the lease', async () => {
    const root = await tempDir();
    const store = new FsStore(root, { lockTimeoutMs: 200, leaseMs: 5000 });
    await store.put('counter', new TextEncoder().encode('0'));
    const lock = join(root, '.lock-counter');
    const record = { host: 'another-machine', boot: 'b', pid: 1, start: '1', token: 'abc123', expiresAt: Date.now() + 60_000 };
    await writeFile(lock, JSON.stringify(record));
    expect(((await bump(store).catch((e: unknown) => e)) as HexrepoError).code).toBe('STORAGE_LOCKED');
    await writeFile(lock, JSON.stringify({ ...record, token: 'abc124', expiresAt: Date.now() - 1 }));
    await bump(store);
    await writeFile(lock, '');
    expect(((await bump(store).catch((e: unknown) => e)) as HexrepoError).code).toBe('STORAGE_LOCKED');
    const old = new Date(Date.now() - 10_000);
    await utimes(lock, old, old);
    await bump(store);
    expect(new TextDecoder().decode((await store.get('counter'))!.body)).toBe('2');
  });

  it('several processes breaking the same dead lock at once lose no update', async () => {
    const root = await tempDir();
    const child = await frozenHoldingLock(root);
    child.kill('SIGKILL');
    await exited(child);
    const base = Number(new TextDecoder().decode((await new FsStore(root).get('counter'))!.body));
    const writers = Array.from({ length: 4 }, () => worker(root, 25));
    const codes = await Promise.all(writers.map(exited));
    expect(codes).toEqual([0, 0, 0, 0]);
    expect(Number(new TextDecoder().decode((await new FsStore(root).get('counter'))!.body))).toBe(base + 100);
    // No lock and no removal marker stays behind (a temp file of the killed one is the sweep's).
    expect((await readdir(root)).filter((f) => f.startsWith('.lock-'))).toEqual([]);
  });

  it('a write another writer overtook at once is not taken for its own: a conditional write over it conflicts', async () => {
    // Two stores on one folder (two servers) write the same key at the same time, then the one whose
    // file was overtaken writes on the condition that its own version is still there (as the audit
    // log and the release state do). It stat'ed the file after the race and memoised the other's
    // file under its own etag, so the condition passed and the other's version was lost.
    const dir = await tempDir();
    let overtaken = 0;
    for (let round = 0; round < 100; round++) {
      const a = new FsStore(dir);
      const b = new FsStore(dir);
      const bodies = [new TextEncoder().encode(`a ${round}`), new TextEncoder().encode(`bb ${round}`)];
      const [pa, pb] = await Promise.all([a.put('log.json', bodies[0]!), b.put('log.json', bodies[1]!)]);
      const onDisk = contentEtag(readFileSync(join(dir, 'log.json')));
      for (const [store, put] of [
        [a, pa],
        [b, pb],
      ] as const) {
        expect((await store.head('log.json'))?.etag).toBe(onDisk);
        if (put.etag === onDisk) continue;
        overtaken++;
        const err = await store.put('log.json', new TextEncoder().encode('over'), { ifMatch: put.etag }).catch((e: unknown) => e);
        expect(err instanceof HexrepoError && err.code === 'STORAGE_CONFLICT').toBe(true);
      }
    }
    expect(overtaken).toBe(100);
  });
});
