import { createHash, randomBytes } from 'node:crypto';
import {
  type BigIntStats,
  type Dir,
  type Dirent,
  closeSync,
  constants as fsConstants,
  fstatSync,
  openSync,
  opendirSync,
  readSync,
  realpathSync,
  statSync,
  close as closeCb,
  fstat as fstatCb,
  open as openCb,
  read as readCb,
  readFileSync,
  readlinkSync,
  realpath as realpathCb,
  stat as statCb,
} from 'node:fs';
import { link, mkdir, open, readFile, rename, rm, unlink, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
// The process's own identity (pid) and liveness checks of others, never its environment.
import { kill, pid as ownPid, platform } from 'node:process';
import { promisify } from 'node:util';
import { dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { pathToFileURL } from 'node:url';
import { HexrepoError } from '@hexrepo/core';
import { assertSafeKey, contentEtag } from './keys.js';
import { checkCondition } from './driver-kit.js';
import type { BatchEntry, BlobStore, ObjectInfo, PutOptions, PutResult, StoredObject } from './types.js';

export interface FsStoreOptions {
  /**
   * fsync each file before renaming it into place, so a power loss never leaves an empty file.
   * @default true
   */
  durable?: boolean;
  /**
   * How long a conditional write waits for another writer's lock before failing with STORAGE_LOCKED.
   * @default 10_000 ms
   */
  lockTimeoutMs?: number;
  /**
   * How long a lock is valid. A lock whose owner died on this machine is broken at once; one held
   * by a process on another machine (a shared network folder) only once its lease has expired.
   * @default 30_000 ms
   */
  leaseMs?: number;
}

/** What `sweep` removed. */
export interface SweepResult {
  /** Temp files of writers that died (or, from another machine, older than an hour). */
  temps: string[];
  /** Locks whose owner died or whose lease expired. */
  locks: string[];
}

interface EtagMemo {
  stamp: string;
  etag: string;
}

/**
 * A store on a local folder. Every write goes to a hidden temp file that is renamed into place, so
 * readers see the old or the new bytes, never a torn file. `ifNoneMatch: '*'` uses link(2), which is
 * atomic; `ifMatch` holds a lock file while it compares and renames. Keys may not leave the folder:
 * a key whose path (any folder on the way included) resolves outside it, or to a hidden file, reads
 * as missing, and so does a file that is a PEM private key.
 */
export class FsStore implements BlobStore {
  readonly root: string;
  readonly url: string;
  readonly #durable: boolean;
  readonly #lockTimeoutMs: number;
  readonly #leaseMs: number;
  readonly #etags = new Map<string, EtagMemo>();
  /** Folders known to exist (created or seen by this store). */
  readonly #dirs = new Set<string>();
  #realRoot: string | undefined;

  constructor(root: string, opts: FsStoreOptions = {}) {
    this.root = resolve(root);
    this.url = pathToFileURL(this.root).href;
    this.#durable = opts.durable ?? true;
    this.#lockTimeoutMs = opts.lockTimeoutMs ?? 10_000;
    this.#leaseMs = opts.leaseMs ?? 30_000;
  }

  /** Absolute path of a key (after the key check). */
  pathOf(key: string): string {
    return join(this.root, ...assertSafeKey(key).split('/'));
  }

  async get(key: string): Promise<StoredObject | null> {
    const inside = await this.#inside(key);
    if (!inside) return null;
    const { path, real } = inside;
    // One open file for both the stat and the bytes, so they describe the same file even when a
    // writer renames a new version into place meanwhile; the etag memo then spares re-hashing.
    let read: { body: Buffer; st: BigIntStats } | null;
    try {
      read = await readWithStat(path, (fd, st) => openedInside(fd, st, this.#realRoot!, key, real));
    } catch (err) {
      if (notThere(err)) return null;
      throw ioError('read', key, err);
    }
    // A private key is never part of a repository, whatever link or copy put it under a key.
    if (!read || looksLikePrivateKey(read.body)) return null;
    const { body, st } = read;
    const bytes = new Uint8Array(body.buffer, body.byteOffset, body.byteLength);
    const stamp = stampOf(st);
    const memo = this.#etags.get(path);
    const etag = memo && memo.stamp === stamp ? memo.etag : contentEtag(bytes);
    this.#etags.set(path, { stamp, etag });
    return { body: bytes, etag, size: Number(st.size), mtime: mtimeOf(st) };
  }

  async head(key: string): Promise<(ObjectInfo & { etag: string }) | null> {
    const path = await this.#insidePath(key);
    if (!path) return null;
    const st = await stat(path).catch((err: unknown) => (notThere(err) ? null : Promise.reject(ioError('stat', key, err))));
    if (!st?.isFile()) return null;
    const memo = this.#etags.get(path);
    if (memo && memo.stamp === stampOf(st)) return { key, size: Number(st.size), mtime: mtimeOf(st), etag: memo.etag };
    const obj = await this.get(key);
    return obj ? { key, size: obj.size, mtime: obj.mtime, etag: obj.etag } : null;
  }

  async put(key: string, body: Uint8Array, opts: PutOptions = {}): Promise<PutResult> {
    const path = this.pathOf(key);
    const { temp, made } = await this.#stage(path, key, body);
    let placed = false;
    try {
      placed = await this.#place(temp, path, key, opts);
    } finally {
      if (!placed) await rm(temp, { force: true });
    }
    return this.#placed(path, body, made);
  }

  /**
   * A batch in waves: every temp file is written and fsync'ed at once, then each is moved into place
   * in the order given (under the same per-key lock as `put` for ifMatch, by link(2) for ifNoneMatch),
   * then each folder that received a file is fsync'ed once, so the renames are on disk when this
   * resolves. One entry after another would wait for an fsync per file; here the file system can
   * commit the whole wave together. A failure writing any temp file stores nothing. On a full disk
   * (writing a temp file or a lock) the rest of the batch is written one entry after another: the
   * batch needs room for all its new files at once, while each single rename frees the old file's
   * space for the next (a revert on a full disk relies on that).
   */
  async putMany(entries: readonly BatchEntry[]): Promise<PutResult[]> {
    const paths = entries.map((e) => this.pathOf(e.key));
    const staged = await Promise.allSettled(entries.map((e, i) => this.#stage(paths[i]!, e.key, e.body)));
    const temps = staged.map((r) => (r.status === 'fulfilled' ? r.value.temp : null));
    const made = staged.map((r) => (r.status === 'fulfilled' ? r.value.made : ''));
    const placed = temps.map(() => false);
    // Entries from here on are written one by one (the disk is full), else the failure is thrown.
    let alone = entries.length;
    try {
      const failed = staged.find((r) => r.status === 'rejected');
      if (failed) {
        if (!isFull(failed.reason)) throw failed.reason;
        alone = 0;
      }
      for (let i = 0; i < alone; i++) {
        try {
          placed[i] = await this.#place(temps[i]!, paths[i]!, entries[i]!.key, entries[i]!.opts ?? {});
        } catch (err) {
          if (!isFull(err)) throw err;
          alone = i;
        }
      }
    } finally {
      await Promise.all(temps.map((t, i) => (t && !placed[i] ? rm(t, { force: true }) : undefined)));
    }
    const results = await Promise.all(entries.slice(0, alone).map((e, i) => this.#placed(paths[i]!, e.body, made[i]!)));
    for (const e of entries.slice(alone)) results.push(await this.put(e.key, e.body, e.opts));
    await this.#syncDirs(paths);
    return results;
  }

  /** fsync each folder of `paths` once (in parallel), when durable. */
  async #syncDirs(paths: readonly string[]): Promise<void> {
    if (this.#durable) await Promise.all([...new Set(paths.map((p) => dirname(p)))].map((dir) => syncDir(dir, relative(this.root, dir) || '.')));
  }

  /** Write `body` to a fresh temp file next to `path` (fsync'ed when durable); returns its path and identity (madeBy). */
  async #stage(path: string, key: string, body: Uint8Array): Promise<{ temp: string; made: string }> {
    const dir = dirname(path);
    if (!this.#dirs.has(dir)) {
      await mkdir(dir, { recursive: true });
      this.#dirs.add(dir);
    }
    const temp = join(dir, tempName(path.slice(dir.length + 1)));
    try {
      return { temp, made: await this.#writeTemp(temp, body, key) };
    } catch (err) {
      // The folder went away behind this store's back: create it again, once.
      if ((err as HexrepoError).details?.errno !== 'ENOENT') throw err;
      await mkdir(dir, { recursive: true });
      return { temp, made: await this.#writeTemp(temp, body, key) };
    }
  }

  /**
   * Move a staged temp file to `path` if the conditions hold. True when the temp file was renamed
   * (and so is gone); false when it was linked and must still be removed. Throws STORAGE_CONFLICT.
   */
  async #place(temp: string, path: string, key: string, opts: PutOptions): Promise<boolean> {
    if (opts.ifNoneMatch === '*') {
      try {
        await link(temp, path);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'EEXIST') checkCondition(key, 'existing', opts);
        throw ioError('create', key, err);
      }
      return false;
    }
    if (opts.ifMatch !== undefined) {
      await this.#withLock(path, key, async (stillHeld) => {
        const current = await this.head(key);
        checkCondition(key, current?.etag ?? null, opts);
        stillHeld();
        await rename(temp, path).catch((err: unknown) => Promise.reject(ioError('rename', key, err)));
      });
      return true;
    }
    await rename(temp, path).catch((err: unknown) => Promise.reject(ioError('rename', key, err)));
    return true;
  }

  /**
   * What a write reports, and the etag memo of the file just placed. The stat comes after the lock
   * is released: another writer may have put its own file there meanwhile, which must not be
   * memoised with this write's etag (a later ifMatch on this etag would pass over its content).
   * `made`: the identity of the file this write staged (madeBy), which rename and link keep.
   */
  async #placed(path: string, body: Uint8Array, made: string): Promise<PutResult> {
    const etag = contentEtag(body);
    const st = await stat(path).catch(() => null);
    if (!st || madeBy(st) !== made) {
      this.#etags.delete(path);
      return { etag };
    }
    this.#etags.set(path, { stamp: stampOf(st), etag });
    return { etag, mtime: mtimeOf(st) };
  }

  async delete(key: string): Promise<void> {
    const path = this.pathOf(key);
    await unlink(path).catch((err: unknown) => (isMissing(err) ? undefined : Promise.reject(ioError('delete', key, err))));
    this.#etags.delete(path);
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    const slash = prefix.lastIndexOf('/');
    const dirKey = slash >= 0 ? prefix.slice(0, slash) : '';
    const start = dirKey === '' ? this.root : this.pathOf(dirKey);
    // One generator with a stack of folders, not one per folder delegated to: every entry passed
    // through each level's generator costs a promise (a quarter of listing 20,000 tarballs).
    const stack: { dir: string; dirKey: string }[] = [{ dir: start, dirKey }];
    for (let next = stack.pop(); next; next = stack.pop()) {
      const { dir, dirKey: key0 } = next;
      let handle: Dir;
      try {
        handle = opendirSync(dir);
      } catch (err) {
        if (isMissing(err) || (err as NodeJS.ErrnoException).code === 'ENOTDIR') continue;
        throw ioError('list', key0 || '.', err);
      }
      const folders: { dir: string; dirKey: string }[] = [];
      try {
        // Entries are read and stat'ed synchronously, a slice at a time, yielding to the event loop
        // between slices: for files the OS has cached, the thread pool's round trip costs several
        // times the stat itself (20,000 tarballs: 0.09 s this way, 0.44 s with one promise per entry).
        for (;;) {
          const found: ObjectInfo[] = [];
          let read = 0;
          for (let entry = handle.readSync(); entry !== null; entry = read < LIST_BATCH ? handle.readSync() : null) {
            read++;
            if (entry.name.startsWith('.')) continue;
            const key = key0 === '' ? entry.name : `${key0}/${entry.name}`;
            if (entry.isDirectory()) {
              if (prefix.startsWith(`${key}/`) || key.startsWith(prefix)) folders.push({ dir: join(dir, entry.name), dirKey: key });
            } else if ((entry.isFile() || entry.isSymbolicLink()) && key.startsWith(prefix)) {
              const st = listStat(`${dir}/${entry.name}`);
              if (st) found.push({ key, size: st.size, mtime: st.mtime });
            }
          }
          for (const o of found) yield o;
          if (read < LIST_BATCH) break;
          await new Promise((resolve) => setImmediate(resolve));
        }
      } finally {
        handle.closeSync();
      }
      // Depth first, in the order read, as the recursive walk went.
      for (let i = folders.length - 1; i >= 0; i--) stack.push(folders[i]!);
    }
  }

  /**
   * The file path for a key when it exists and resolves inside the root, to a path that is itself a
   * storable key; null otherwise. Every component is resolved, not just the last: a folder of the
   * repository that is a symlink out of it leads out as surely as a symlinked file, and a link to a
   * hidden file inside (`.env`) is no better than the file.
   */
  async #insidePath(key: string): Promise<string | null> {
    return (await this.#inside(key))?.path ?? null;
  }

  /** #insidePath with the resolved path it was checked by. */
  async #inside(key: string): Promise<{ path: string; real: string } | null> {
    const path = this.pathOf(key);
    try {
      this.#realRoot ??= await realpathNative(this.root);
      const real = await realpathNative(path);
      return resolvesInside(this.#realRoot, key, real) ? { path, real } : null;
    } catch (err) {
      if (notThere(err)) return null;
      throw ioError('stat', key, err);
    }
  }

  async #writeTemp(temp: string, body: Uint8Array, key: string): Promise<string> {
    const fh = await open(temp, 'wx', 0o644).catch((err: unknown) => Promise.reject(ioError('write', key, err)));
    try {
      await fh.writeFile(body);
      if (this.#durable) await fh.datasync();
      return madeBy(await fh.stat({ bigint: true }));
    } catch (err) {
      await rm(temp, { force: true });
      throw ioError('write', key, err);
    } finally {
      await fh.close();
    }
  }

  /**
   * Run `fn` holding the write lock of `path`. The lock file names its owner (machine, boot, pid,
   * process start time) and a lease expiry, so a lock left by a killed process never wedges the
   * folder: a waiter breaks it as soon as the owner is known dead, or once the lease expired.
   * `fn` gets a check to call just before its one irreversible step: it throws if the lease ran out
   * meanwhile (someone may have broken the lock since).
   */
  async #withLock<T>(path: string, key: string, fn: (stillHeld: () => void) => Promise<T>): Promise<T> {
    const lock = join(dirname(path), `.lock-${path.slice(dirname(path).length + 1)}`);
    const deadline = Date.now() + this.#lockTimeoutMs;
    let owner: LockOwner | null;
    for (let delay = 2; ; delay = Math.min(delay * 2, 50)) {
      owner = await claimFile(lock, this.#leaseMs).catch((err: unknown) => Promise.reject(ioError('lock', key, err)));
      if (owner) break;
      const held = await readLock(lock);
      // Broken: try again at once. Not broken (another process is removing it): wait like for a live one.
      if (held && isStale(held, this.#leaseMs) && (await breakLock(lock, held, this.#leaseMs))) continue;
      if (Date.now() > deadline) {
        const who = held?.owner ? `process ${held.owner.pid} on ${held.owner.host}, lease until ${new Date(held.owner.expiresAt).toISOString()}` : 'an unknown writer';
        throw new HexrepoError('STORAGE_LOCKED', `gave up waiting ${this.#lockTimeoutMs} ms for the write lock on ${key}, held by ${who}`, {
          key,
          lock,
          hint: 'another writer is busy or stuck; retry shortly (a lock of a dead process is broken automatically, one from another machine when its lease expires)',
        });
      }
      await new Promise((r) => setTimeout(r, delay + Math.random() * delay));
    }
    const margin = Math.min(1000, this.#leaseMs / 10);
    const mine = owner;
    const stillHeld = (): void => {
      if (Date.now() > mine.expiresAt - margin) throw new HexrepoError('STORAGE_LOCKED', `the write lock on ${key} expired before the write could finish; nothing was written`, { key, lock });
    };
    try {
      return await fn(stillHeld);
    } finally {
      await releaseLock(lock, mine, this.#leaseMs);
    }
  }

  /**
   * Remove what crashed writers left behind in the folder: temp files whose writer is dead (or,
   * written on another machine, older than an hour) and locks whose owner is dead or whose lease
   * expired. Safe while other live writers use the folder: their files are left alone.
   */
  async sweep(): Promise<SweepResult> {
    const result: SweepResult = { temps: [], locks: [] };
    const visit = async (dir: string): Promise<void> => {
      let handle: Dir;
      try {
        handle = opendirSync(dir);
      } catch (err) {
        if (isMissing(err) || (err as NodeJS.ErrnoException).code === 'ENOTDIR') return;
        throw ioError('list', relative(this.root, dir) || '.', err);
      }
      const subdirs: string[] = [];
      const hidden: Dirent[] = [];
      // Read synchronously, a slice at a time (as #walk does): an async iterator costs a promise per
      // entry, most of the sweep's time in a folder of 20,000 tarballs where nothing is hidden.
      try {
        for (let read = LIST_BATCH; read === LIST_BATCH;) {
          read = 0;
          for (let entry = handle.readSync(); entry !== null; entry = read < LIST_BATCH ? handle.readSync() : null) {
            read++;
            if (entry.isDirectory()) subdirs.push(join(dir, entry.name));
            else if (entry.name.startsWith('.') && entry.isFile()) hidden.push(entry);
          }
          if (read === LIST_BATCH) await new Promise((resolve) => setImmediate(resolve));
        }
      } finally {
        handle.closeSync();
      }
      for (const entry of hidden) {
        const full = join(dir, entry.name);
        if (entry.name.startsWith('.tmp-')) {
          if (await isAbandonedTemp(full, entry.name)) {
            await rm(full, { force: true });
            result.temps.push(relative(this.root, full));
          }
        } else if (entry.name.startsWith('.lock-')) {
          // A lock or a removal marker (LOCK.broken-TOKEN) whose creator died: both are judged alike.
          const held = await readLock(full);
          if (held && isStale(held, this.#leaseMs) && (await breakLock(full, held, this.#leaseMs))) result.locks.push(relative(this.root, full));
        }
      }
      for (const sub of subdirs) await visit(sub);
    };
    await visit(this.root);
    return result;
  }
}

/** Who holds a lock, as written inside the lock file. */
interface LockOwner {
  host: string;
  boot: string;
  pid: number;
  /** The process's start time (clock ticks since boot, from /proc), to tell a reused pid. */
  start: string;
  /** Unique per acquisition: names the break marker, so each lock is removed exactly once. */
  token: string;
  expiresAt: number;
}

/** This process as a lock owner and temp-file writer. */
const SELF: Omit<LockOwner, 'token' | 'expiresAt'> = { host: hostname(), boot: bootId(), pid: ownPid, start: processStart(ownPid) ?? '' };
/** Short tag of this machine and boot, carried by temp file names. */
const HOST_TAG = createHash('sha256').update(`${SELF.host}\0${SELF.boot}`).digest('hex').slice(0, 10);
/** A temp file from another machine (whose liveness cannot be checked) is removed after this. */
const FOREIGN_TEMP_MAX_AGE_MS = 60 * 60 * 1000;
const TEMP_NAME = /^\.tmp-([0-9a-f]{10})\.(\d+)\.(\d*)-/;

/** `.tmp-HOSTTAG.PID.START-RANDOM-BASE`: the sweep can tell whether its writer is still alive. */
function tempName(base: string): string {
  return `.tmp-${HOST_TAG}.${SELF.pid}.${SELF.start}-${randomBytes(6).toString('hex')}-${base}`;
}

function bootId(): string {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    return '';
  }
}

/** Field 22 of /proc/PID/stat (start time in clock ticks since boot); null when there is no such process. */
function processStart(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) is in parentheses and may contain spaces: count from after it.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? null;
  } catch {
    if (platform === 'linux') return null;
    try {
      kill(pid, 0);
      return '';
    } catch (err) {
      return (err as NodeJS.ErrnoException).code === 'EPERM' ? '' : null;
    }
  }
}

/** Whether a process of this machine and boot is alive: same pid and, where known, same start time. */
function isAlive(pid: number, start: string): boolean {
  const now = processStart(pid);
  return now !== null && (start === '' || now === '' || now === start);
}

async function isAbandonedTemp(path: string, name: string): Promise<boolean> {
  const m = TEMP_NAME.exec(name);
  if (m && m[1] === HOST_TAG) return !isAlive(Number(m[2]), m[3]!);
  const st = await stat(path).catch(() => null);
  return st !== null && Date.now() - Number(st.mtimeMs) > FOREIGN_TEMP_MAX_AGE_MS;
}

/** The lock's owner record; `owner` is null for a lock without a readable record (older hexrepo). */
async function readLock(lock: string): Promise<{ owner: LockOwner | null; mtimeMs: number; raw: string } | null> {
  try {
    const [raw, st] = await Promise.all([readFile(lock, 'utf8'), stat(lock)]);
    let owner: LockOwner | null = null;
    try {
      const parsed = JSON.parse(raw) as Partial<LockOwner>;
      if (typeof parsed.token === 'string' && /^[0-9a-f]+$/.test(parsed.token) && typeof parsed.pid === 'number' && typeof parsed.expiresAt === 'number') owner = parsed as LockOwner;
    } catch {
      // an empty lock file, as hexrepo versions without leases made them
    }
    return { owner, mtimeMs: Number(st.mtimeMs), raw };
  } catch (err) {
    if (isMissing(err)) return null;
    throw err;
  }
}

function isStale(held: { owner: LockOwner | null; mtimeMs: number }, leaseMs: number): boolean {
  const { owner } = held;
  if (!owner) return Date.now() - held.mtimeMs > leaseMs;
  if (Date.now() > owner.expiresAt) return true;
  if (owner.host !== SELF.host) return false;
  return owner.boot !== SELF.boot || !isAlive(owner.pid, owner.start ?? '');
}

/**
 * Create `path` holding this process's owner record, in one step (link of a complete temp file):
 * the record when created, null when the file exists already.
 */
async function claimFile(path: string, leaseMs: number): Promise<LockOwner | null> {
  const owner: LockOwner = { ...SELF, token: randomBytes(9).toString('hex'), expiresAt: Date.now() + leaseMs };
  const temp = join(dirname(path), tempName('lock'));
  try {
    await writeFile(temp, JSON.stringify(owner), { flag: 'wx', mode: 0o644 });
    await link(temp, path);
    return owner;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return null;
    throw err;
  } finally {
    await rm(temp, { force: true });
  }
}

/**
 * Become the one process that removes `lock` as read in `held`. Every removal of a lock, by its
 * owner or by a breaker, happens while holding the marker `LOCK.broken-TOKEN`, created exclusively
 * and removed right after: of several processes that judged the same lock stale only one removes
 * it, after checking it still holds that token (tokens are unique per acquisition, so a waiter
 * acting on an old reading finds another token and leaves the next owner's lock alone). A marker
 * whose creator died before finishing is judged like a lock, one level down. Returns the markers
 * to remove once done, or null when another live process is removing it.
 */
async function winRemoval(lock: string, held: { owner: LockOwner | null; raw: string }, leaseMs: number, depth = 0): Promise<string[] | null> {
  const token = held.owner?.token ?? createHash('sha256').update(held.raw).digest('hex').slice(0, 18);
  const mark = `${lock}.broken-${token}`;
  if (await claimFile(mark, leaseMs)) return [mark];
  const claimant = await readLock(mark);
  if (!claimant || !isStale(claimant, leaseMs) || depth > 8) return null;
  const deeper = await winRemoval(mark, claimant, leaseMs, depth + 1);
  return deeper && [...deeper, mark];
}

/** Remove a lock judged stale, unless another process does (see winRemoval). True when this call removed it. */
async function breakLock(lock: string, held: { owner: LockOwner | null; raw: string }, leaseMs: number): Promise<boolean> {
  const marks = await winRemoval(lock, held, leaseMs);
  if (!marks) return false;
  try {
    const now = await readLock(lock);
    if (!now || now.raw !== held.raw) return false;
    await rm(lock, { force: true });
    return true;
  } finally {
    for (const mark of marks) await rm(mark, { force: true });
  }
}

/** Release a lock this process holds, through the same marker as a breaker (see winRemoval). */
async function releaseLock(lock: string, owner: LockOwner, leaseMs: number): Promise<void> {
  const mark = `${lock}.broken-${owner.token}`;
  let claimed: LockOwner | null;
  try {
    claimed = await claimFile(mark, leaseMs);
  } catch {
    // No room for the marker (disk full): within the lease nobody else may remove this lock anyway.
    await rm(lock, { force: true });
    return;
  }
  // Not claimed: the lease ran out and a waiter broke the lock; it is not ours to remove any more.
  if (!claimed) return;
  await rm(lock, { force: true });
  await rm(mark, { force: true });
}

/** Folder entries read and stat'ed between two turns of the event loop while listing. */
const LIST_BATCH = 256;

// The hot read path uses the callback API: fs/promises costs several times more per small file
// (measured: 20,000 5 KiB tarballs read in 0.42 s with callbacks, 1.9 s with fs/promises).
// Stats are read as bigints for the nanoseconds of the mtime (see mtimeOf).
const statBig = promisify(statCb) as (path: string, opts: { bigint: true }) => Promise<BigIntStats>;
const stat = (path: string): Promise<BigIntStats> => statBig(path, { bigint: true });
/**
 * A regular file's size and mtime (truncated to the millisecond, as mtimeOf), or null when it is
 * not a file, vanished or cannot be read (a listing skips it). A listing stats every tarball, so
 * this takes the plain stat, whose `mtimeMs` (seconds × 1000 + nanoseconds / 10⁶, a double) is
 * within 2⁻¹¹ ms of the exact time for any date before 2109: its floor is the exact truncation
 * unless it lies within 0.001 ms of a whole millisecond, and only then (or for dates out of that
 * range) the file is stat'ed again for the nanoseconds as bigints.
 */
function listStat(path: string): { size: number; mtime: Date } | null {
  try {
    const st = statSync(path, { throwIfNoEntry: false });
    if (!st?.isFile()) return null;
    const ms = st.mtimeMs;
    const whole = Math.floor(ms);
    if (ms >= 0 && ms < 2 ** 42 && ms - whole >= 0.001 && ms - whole <= 0.999) return { size: st.size, mtime: new Date(whole) };
    const big = statSync(path, { bigint: true, throwIfNoEntry: false });
    return big?.isFile() ? { size: Number(big.size), mtime: mtimeOf(big) } : null;
  } catch {
    return null;
  }
}
const openFd = promisify(openCb) as (path: string, flags: string | number) => Promise<number>;
const fstatBig = promisify(fstatCb) as (fd: number, opts: { bigint: true }) => Promise<BigIntStats>;
const fstat = (fd: number): Promise<BigIntStats> => fstatBig(fd, { bigint: true });
const closeFd = promisify(closeCb);

function readFd(fd: number, buffer: Buffer, offset: number, position: number): Promise<number> {
  return new Promise((resolve, reject) => readCb(fd, buffer, offset, buffer.length - offset, position, (err, n) => (err ? reject(err) : resolve(n))));
}

/** The bytes and the stat of one regular file, read through one descriptor; null for a non-file. */
/**
 * The bytes and stat of the file at `path`, through one descriptor; null when it is not a file or
 * `opened` refuses it. Opened non-blocking: a FIFO in place of a file would otherwise hold one of
 * libuv's few threads forever.
 */
async function readWithStat(path: string, opened: (fd: number, st: BigIntStats) => boolean): Promise<{ body: Buffer; st: BigIntStats } | null> {
  const fd = await openFd(path, fsConstants.O_RDONLY | fsConstants.O_NONBLOCK);
  try {
    const st = await fstat(fd);
    if (!st.isFile() || !opened(fd, st)) return null;
    const body = Buffer.allocUnsafe(Number(st.size));
    let at = 0;
    while (at < body.length) {
      const n = await readFd(fd, body, at, at);
      if (n === 0) break;
      at += n;
    }
    return { body: at === body.length ? body : body.subarray(0, at), st };
  } finally {
    await closeFd(fd);
  }
}
const realpathNative = promisify(realpathCb.native) as (path: string) => Promise<string>;

/** True when `real` (the resolved path of `key`) lies inside `realRoot` at a path that is itself a storable key. */
function resolvesInside(realRoot: string, key: string, real: string): boolean {
  if (real === join(realRoot, ...key.split('/'))) return true;
  const rel = relative(realRoot, real);
  if (rel === '' || rel.startsWith('..') || isAbsolute(rel)) return false;
  try {
    assertSafeKey(rel.split(sep).join('/'));
  } catch {
    return false;
  }
  return true;
}

/** Resolved folder-store roots, for readFileInside (a root is resolved once per thread). */
const realRoots = new Map<string, string>();

/**
 * What `new FsStore(root).get(key)` returns, read synchronously and without the etag: the same key
 * check, the same refusal of paths that resolve outside the folder or to a private key, the same
 * errors. For a build's worker threads, which read tarballs by path (each thread blocks only itself)
 * so that their bytes never pass through the main thread.
 */
export function readFileInside(root: string, key: string): { body: Uint8Array; size: number; mtime: Date } | null {
  const path = join(root, ...assertSafeKey(key).split('/'));
  let realRoot: string | undefined;
  let real: string;
  try {
    realRoot = realRoots.get(root);
    if (realRoot === undefined) realRoots.set(root, (realRoot = realpathSync.native(root)));
    real = realpathSync.native(path);
    if (!resolvesInside(realRoot, key, real)) return null;
  } catch (err) {
    if (notThere(err)) return null;
    throw ioError('stat', key, err);
  }
  let fd: number;
  try {
    // Non-blocking: a FIFO put in place of the file would otherwise block this thread forever.
    fd = openSync(path, fsConstants.O_RDONLY | fsConstants.O_NONBLOCK);
  } catch (err) {
    if (notThere(err)) return null;
    throw ioError('read', key, err);
  }
  try {
    const st = fstatSync(fd, { bigint: true });
    if (!st.isFile() || !openedInside(fd, st, realRoot, key, real)) return null;
    const body = Buffer.allocUnsafeSlow(Number(st.size));
    let at = 0;
    while (at < body.length) {
      const n = readSync(fd, body, at, body.length - at, at);
      if (n === 0) break;
      at += n;
    }
    const bytes = new Uint8Array(body.buffer, 0, at);
    return looksLikePrivateKey(bytes) ? null : { body: bytes, size: Number(st.size), mtime: mtimeOf(st) };
  } catch (err) {
    if (notThere(err)) return null;
    throw ioError('read', key, err);
  } finally {
    closeSync(fd);
  }
}

/**
 * Whether the file open as `fd` is the one checked inside the folder: the path may have been
 * swapped for a link out of it between that check and the open. Where the system names an open
 * file (/proc/self/fd on Linux), that name is checked; elsewhere the file must still be the one at
 * the checked path.
 */
function openedInside(fd: number, st: BigIntStats, realRoot: string, key: string, real: string): boolean {
  let name: string | null = null;
  try {
    name = readlinkSync(`/proc/self/fd/${fd}`);
  } catch {
    // No /proc: compare with the checked path below.
  }
  if (name !== null) return resolvesInside(realRoot, key, name);
  const now = statSync(real, { bigint: true, throwIfNoEntry: false });
  return now !== undefined && now.ino === st.ino && now.dev === st.dev;
}

/** A staged file's identity, which renaming or linking it into place keeps (unlike its ctime). */
function madeBy(st: BigIntStats): string {
  return `${st.ino}:${st.size}:${st.mtimeNs}`;
}

function stampOf(st: BigIntStats): string {
  return `${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`;
}

/**
 * The mtime truncated to the millisecond, as Erlang truncates it (mix dates `names` from it).
 * `Stats.mtime` rounds, and `mtimeMs` is a double too coarse for the nanoseconds, so a tarball
 * touched at …999.9996 s would be dated a second later than by `mix hex.registry build`.
 */
function mtimeOf(st: BigIntStats): Date {
  const ms = st.mtimeNs / 1_000_000n;
  // BigInt division truncates toward zero; a time before 1970 rounds down like the others.
  return new Date(Number(ms * 1_000_000n > st.mtimeNs ? ms - 1n : ms));
}

/**
 * fsync a folder, so the renames into it survive a power loss. A file system that cannot sync a
 * folder (EINVAL) has nothing more to offer; any other error fails the write.
 */
async function syncDir(dir: string, what: string): Promise<void> {
  const fh = await open(dir, 'r').catch((err: unknown) => Promise.reject(ioError('sync', what, err)));
  try {
    await fh.sync();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EINVAL') throw ioError('sync', what, err);
  } finally {
    await fh.close();
  }
}

function isFull(err: unknown): boolean {
  return err instanceof HexrepoError && err.code === 'STORAGE_FULL';
}

function isMissing(err: unknown): boolean {
  return (err as NodeJS.ErrnoException | undefined)?.code === 'ENOENT';
}

/**
 * Read errors that mean "no such object": a name too long for the file system (a client chooses
 * it), a file where a folder should be, a symlink loop.
 */
function notThere(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return code === 'ENOENT' || code === 'ENOTDIR' || code === 'ENAMETOOLONG' || code === 'ELOOP';
}

const PEM_PRIVATE_KEY = /^[\t\n\r\x20-\x7e]*?-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----/;

/**
 * True when the bytes are a PEM private key (RSA, PKCS#8, EC, OpenSSH, encrypted or not), possibly
 * after a few lines of text such as OpenSSL's "Bag Attributes". Only text from the first byte
 * counts: a tarball or gzip file that mentions a key in its metadata is not one.
 */
export function looksLikePrivateKey(bytes: Uint8Array): boolean {
  const first = bytes[0];
  if (first === undefined || first === 0x1f) return false;
  // The pattern matches text only: decoding stops at the first other byte (a tarball's first header
  // name ends in a NUL after a few bytes), not after 8 KiB.
  let end = 0;
  const max = Math.min(bytes.byteLength, 8192);
  while (end < max && isPemText(bytes[end]!)) end++;
  return PEM_PRIVATE_KEY.test(Buffer.from(bytes.buffer, bytes.byteOffset, end).toString('latin1'));
}

/** A byte PEM_PRIVATE_KEY's text may hold: tab, LF, CR or printable ASCII. */
function isPemText(b: number): boolean {
  return (b >= 0x20 && b <= 0x7e) || b === 0x09 || b === 0x0a || b === 0x0d;
}

function ioError(op: string, key: string, err: unknown): HexrepoError {
  if (err instanceof HexrepoError) return err;
  const code = (err as NodeJS.ErrnoException).code ?? 'unknown';
  if (code === 'ENOSPC' || code === 'EDQUOT') {
    return new HexrepoError(
      'STORAGE_FULL',
      `could not ${op} ${key}: ${code === 'ENOSPC' ? 'no space left on the device' : 'the disk quota is exhausted'} (${code})`,
      { key, errno: code, hint: 'free space on the disk that holds the repository folder; the operation was not applied' },
      { cause: err },
    );
  }
  return new HexrepoError('STORAGE_IO', `could not ${op} ${key}: ${code} ${(err as Error).message}`, { key, errno: code }, { cause: err });
}
