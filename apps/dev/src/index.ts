/**
 * `hexrepo dev` / `pnpm dev`: a workspace whose `tarballs/` folder is watched; every added,
 * changed or removed tarball is validated and the signed registry updated incrementally, then
 * served at once. Live logs go to the terminal, to a Server-Sent Events stream at /_dev/events,
 * and to a small browser page at /_dev/.
 */
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { extname, join, normalize, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { formatError, parseProjectConfig, PROJECT_FILE } from '@hexrepo/core';
import { Access, clientKind, createHostHandler, listen, type RunningServer } from '@hexrepo/http';
import { fingerprint, loadPrivateKey, publicKeyPem } from '@hexrepo/registry';
import { clientSetup, createProject, defaultCachePath, defaultHostStateDir, defaultTokensPath, formatClientSetup, openCredentials, openRepository, type RepoService } from '@hexrepo/repo';
import { CachedStore, FsStore } from '@hexrepo/storage';
import { EventHub, type DevEvent, type RebuildEvent } from './events.js';
import { seed } from './seed.js';
import { formatEvent } from './terminal.js';
import { TarballWatcher, type WatchOptions } from './watcher.js';

export { EventHub, formatEvent, TarballWatcher };
export type { DevEvent, RebuildEvent, WatchOptions };
export { examplePackages } from './seed.js';

export interface DevServerOptions {
  /** The workspace folder; created (key, public/, hexrepo.json) when it holds no hexrepo.json. */
  dir: string;
  /** Repository name for a new workspace. @default "dev" */
  name?: string;
  host?: string;
  /** @default 4000; 0 picks a free port */
  port?: number;
  /** Seed example packages into an empty tarballs/ folder. @default true */
  seed?: boolean;
  /** Where terminal lines go. */
  print?: (line: string) => void;
  colour?: boolean;
  watch?: WatchOptions;
}

export interface DevServer {
  url: string;
  dir: string;
  publicDir: string;
  repository: string;
  fingerprint: string;
  hub: EventHub;
  service: RepoService;
  /** The client set-up text printed at start. */
  setup: string;
  close(): Promise<void>;
}

const CONTENT_TYPES: Record<string, string> = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8', '.svg': 'image/svg+xml', '.json': 'application/json' };

/** The built page (vite output): next to the compiled module, or in dist/ when running from source. */
function webRoot(): string | null {
  for (const rel of ['./web/', '../dist/web/']) {
    const dir = fileURLToPath(new URL(rel, import.meta.url));
    if (existsSync(join(dir, 'index.html'))) return dir;
  }
  return null;
}

async function openProject(dir: string, name: string): Promise<{ publicDir: string; keyPath: string; repository: string; created: boolean }> {
  const file = join(dir, PROJECT_FILE);
  if (!existsSync(file)) {
    const created = await createProject(dir, name);
    return { publicDir: created.publicDir, keyPath: created.keyPath, repository: name, created: true };
  }
  const config = parseProjectConfig(JSON.parse(await readFile(file, 'utf8')) as unknown, file);
  return { publicDir: resolve(dir, config.publicDir), keyPath: resolve(dir, config.privateKey), repository: config.name, created: false };
}

export async function startDevServer(opts: DevServerOptions): Promise<DevServer> {
  const print = opts.print ?? (() => undefined);
  const colour = opts.colour ?? false;
  const hub = new EventHub();
  hub.subscribe((e) => print(formatEvent(e, colour)));
  const now = (): string => new Date().toISOString();

  const dir = resolve(opts.dir);
  const project = await openProject(dir, opts.name ?? 'dev');
  const tarballsDir = join(project.publicDir, 'tarballs');
  if ((opts.seed ?? true) && !(await readdir(tarballsDir).catch(() => [])).some((f) => f.endsWith('.tar'))) {
    const seeded = await seed(tarballsDir);
    hub.emit({ type: 'info', at: now(), message: `seeded example packages: ${seeded.join(', ')}` });
  }
  const privateKey = loadPrivateKey(await readFile(project.keyPath, 'utf8'));
  // Every read revalidates (cheap: a stat), so a dropped file is never shadowed by a cached one.
  const store = new CachedStore(new FsStore(project.publicDir), { revalidateMs: 0 });
  const started = performance.now();
  const opened = await openRepository({ store, repository: project.repository, privateKey, cachePath: defaultCachePath(project.publicDir) });
  const service = opened.service!;
  const summary = opened.summary!;
  await opened.save();
  const problems = new Map(summary.skipped.map((p) => [p.file, p]));
  hub.emit({
    type: 'rebuild',
    at: now(),
    initial: true,
    changed: [],
    added: [],
    removed: [],
    problems: summary.skipped,
    ms: performance.now() - started,
    packages: summary.packages,
    releases: summary.releases,
  });

  let saveTimer: NodeJS.Timeout | null = null;
  const watcher = new TarballWatcher(
    tarballsDir,
    async (files) => {
      const t0 = performance.now();
      try {
        const r = await service.refresh(files);
        for (const f of files) problems.delete(f);
        for (const p of r.problems) problems.set(p.file, p);
        const { packages, releases } = service.index.size;
        hub.emit({ type: 'rebuild', at: now(), changed: files, added: r.added, removed: r.removed, problems: r.problems, ms: performance.now() - t0, packages, releases });
        if (saveTimer) clearTimeout(saveTimer);
        saveTimer = setTimeout(() => void opened.save().catch(() => undefined), 1000);
      } catch (err) {
        hub.emit({ type: 'error', at: now(), message: `rebuild failed, the last good registry is still served: ${formatError(err)}` });
      }
    },
    opts.watch,
  );
  await watcher.ready;

  // The host's credentials, in the workspace's state store, as "hexrepo serve" and "hexrepo token
  // create DIR" use them (an older token file is moved there once).
  const stateDir = defaultHostStateDir(project.publicDir);
  await mkdir(stateDir, { recursive: true, mode: 0o700 });
  const { tokens, migration } = await openCredentials({ store: new FsStore(stateDir), legacyFile: defaultTokensPath(project.publicDir), repository: project.repository });
  if (migration.status === 'imported') hub.emit({ type: 'info', at: now(), message: `moved ${migration.tokens} token(s) to ${tokens.where}; the old file is kept as ${migration.renamedTo}` });
  // Tokens created or revoked while dev runs take effect within half a second (a local file: one
  // stat per check; hexrepo serve checks every two seconds, fit for a bucket); an unreadable
  // credentials object keeps the previous tokens.
  let refreshing = false;
  const refresher = setInterval(() => {
    if (refreshing) return;
    refreshing = true;
    tokens
      .refresh()
      .then(
        (changed) => {
          const n = tokens.list().length;
          if (changed) hub.emit({ type: 'info', at: now(), message: `credentials reloaded: ${n} token${n === 1 ? '' : 's'}` });
        },
        (err: unknown) => hub.emit({ type: 'error', at: now(), message: `credentials reload failed, the previous tokens stay: ${formatError(err)}` }),
      )
      .finally(() => (refreshing = false));
  }, 500);
  // The same host as "hexrepo serve", with this one repository at / (and /repos/NAME/); /_dev/ sits beside it.
  const repoHandler = createHostHandler({ repositories: [{ name: project.repository, store, service, visibility: 'public', root: true }], access: new Access({ repository: project.repository, visibility: 'public', users: [], tokens }) });
  let baseUrl = '';

  const state = (): Record<string, unknown> => ({
    repository: project.repository,
    url: baseUrl,
    fingerprint: fingerprint(privateKey),
    publicKeyPem: publicKeyPem(privateKey),
    setup: clientSetup({ repository: project.repository, url: baseUrl, publicKeyPath: join(project.publicDir, 'public_key'), publicKeyPem: publicKeyPem(privateKey), fingerprint: fingerprint(privateKey) }),
    problems: [...problems.values()],
    packages: service.packageNames().map((name) => ({
      name,
      releases: service.releases(name).map((r) => ({ version: r.version, checksum: r.checksum, retired: r.retired ?? null, dependencies: r.dependencies })),
    })),
  });

  const sse = new Set<ServerResponse>();
  const unsubscribe = hub.subscribe((e) => {
    const frame = `event: ${e.type}\ndata: ${JSON.stringify(e)}\n\n`;
    for (const res of sse) res.write(frame);
  });
  const heartbeat = setInterval(() => {
    for (const res of sse) res.write(': keep-alive\n\n');
  }, 15_000);
  heartbeat.unref();

  const devRoute = async (req: IncomingMessage, res: ServerResponse, path: string): Promise<void> => {
    if (path === '/_dev/events') {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive' });
      res.write(`retry: 1000\nevent: hello\ndata: ${JSON.stringify(state())}\n\n`);
      // What happened before this client connected (the first build, seeding, recent requests).
      for (const e of hub.recent()) res.write(`event: ${e.type}\ndata: ${JSON.stringify({ ...e, replayed: true })}\n\n`);
      sse.add(res);
      req.on('close', () => sse.delete(res));
      return;
    }
    if (path === '/_dev/api/state') {
      const body = JSON.stringify(state());
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store', 'content-length': Buffer.byteLength(body) });
      res.end(body);
      return;
    }
    if (path === '/_dev') {
      res.writeHead(302, { location: '/_dev/' });
      res.end();
      return;
    }
    // The page: files of the vite build only (looked up per request: it may be built later).
    const web = webRoot();
    let rel: string;
    try {
      rel = decodeURIComponent(path.slice('/_dev/'.length)) || 'index.html';
    } catch {
      res.writeHead(400, { 'content-type': 'text/plain; charset=utf-8' });
      res.end('bad request: malformed percent-encoding\n');
      return;
    }
    const file = web ? normalize(join(web, rel)) : null;
    if (!web || !file || !file.startsWith(web.endsWith(sep) ? web : web + sep) || rel.includes('\0')) {
      const body = web ? 'not found\n' : 'the dev page is not built: run "pnpm build"\n';
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' });
      res.end(body);
      return;
    }
    const bytes = await readFile(file).catch(() => null);
    if (!bytes) {
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' });
      res.end('not found\n');
      return;
    }
    res.writeHead(200, { 'content-type': CONTENT_TYPES[extname(file)] ?? 'application/octet-stream', 'cache-control': 'no-cache', 'content-length': bytes.length });
    res.end(bytes);
  };

  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    const path = (req.url ?? '/').split('?')[0]!;
    if (path === '/_dev' || path.startsWith('/_dev/')) {
      devRoute(req, res, path).catch((err: unknown) => {
        if (!res.headersSent) res.writeHead(500);
        res.end(String(err));
      });
      return;
    }
    if (path === '/') {
      res.writeHead(302, { location: '/_dev/' });
      res.end();
      return;
    }
    const t0 = performance.now();
    res.on('finish', () => hub.emit({ type: 'request', at: now(), method: req.method ?? 'GET', path, status: res.statusCode, ms: performance.now() - t0, client: clientKind(req.headers['user-agent']) }));
    repoHandler(req, res);
  };

  let server: RunningServer;
  try {
    server = await listen(handler, { host: opts.host ?? '127.0.0.1', port: opts.port ?? 4000 });
  } catch (err) {
    clearInterval(refresher);
    await watcher.close();
    throw err;
  }
  baseUrl = server.url;
  const policies = (await service.listPolicies().catch(() => [])).map((p) => p.name);
  const setup = formatClientSetup({ repository: project.repository, url: baseUrl, publicKeyPath: join(project.publicDir, 'public_key'), publicKeyPem: publicKeyPem(privateKey), fingerprint: fingerprint(privateKey), policies });

  return {
    url: baseUrl,
    dir,
    publicDir: project.publicDir,
    repository: project.repository,
    fingerprint: fingerprint(privateKey),
    hub,
    service,
    setup,
    async close() {
      unsubscribe();
      clearInterval(heartbeat);
      if (saveTimer) clearTimeout(saveTimer);
      clearInterval(refresher);
      await watcher.close();
      for (const res of sse) res.end();
      await server.close(2_000);
      await opened.close();
    },
  };
}
