import { readFile, rename, writeFile } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { HexrepoError, isHostConfig, parseHostConfig, parseSize, PROJECT_FILE } from '@hexrepo/core';
import { evict, exportBundle, importBundle, mirrorStatus, parseLockfile, resolveUpstream, syncMirror, UpstreamClient, withRetries, type ProxySettings, type SyncTarget, type Upstream } from '@hexrepo/mirror';
import { FsStore, type BlobStore } from '@hexrepo/storage';
import { type Command, type Io, str, usage } from '../command.js';
import { progressBar } from '../progress.js';
import { openStore } from '../stores.js';

const ACTIONS = ['sync', 'export', 'import', 'evict', 'status'] as const;
type Action = (typeof ACTIONS)[number];
type Values = Record<string, string | boolean | string[] | undefined>;

/** `30d`, `12h`, `90m`, `45s` or plain milliseconds. */
function parseDuration(text: string): number | null {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$/.exec(text);
  if (!m) return null;
  const mult: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };
  return Math.floor(Number(m[1]) * mult[m[2] ?? 'ms']!);
}

function positiveInt(name: string, text: string | undefined, dflt: number): number {
  if (text === undefined) return dflt;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1 || n > 1024) throw usage('mirror', `--${name} needs a whole number from 1 to 1024, got ${JSON.stringify(text)}`);
  return n;
}

async function readText(io: Io, file: string, what: string): Promise<string> {
  const path = resolve(io.cwd, file);
  return readFile(path, 'utf8').catch((err: NodeJS.ErrnoException) => {
    throw new HexrepoError('NOT_FOUND', `cannot read ${what} ${path}: ${err.code ?? err.message}`, { path });
  });
}

/** The mirror repository NAME of the host config in DIR: its store and upstream. */
async function hostMirror(io: Io, dir: string, name: string): Promise<{ store: BlobStore; upstream: Upstream }> {
  const path = join(dir, PROJECT_FILE);
  const raw = await readFile(path, 'utf8').then(
    (t) => JSON.parse(t) as unknown,
    (err: NodeJS.ErrnoException) => {
      throw new HexrepoError('NOT_FOUND', `--repo ${name}: cannot read ${path} (${err.code ?? err.message})`, { path, hint: 'run it in the host folder (where hexrepo.json is), pass that folder as DIR, or use --store URL with --upstream' });
    },
  );
  if (!isHostConfig(raw)) throw usage('mirror', `--repo needs the host form of hexrepo.json ("repositories": [...]); ${path} is a single repository`);
  const repo = parseHostConfig(raw as Record<string, unknown>, path).repositories.find((r) => r.name === name);
  if (!repo?.mirror) throw new HexrepoError('CONFIG_INVALID', `${path} has no mirror repository "${name}"`, { path, hint: 'add {"name": "hexpm", "publicDir": "mirror", "mirror": {}} to "repositories" (see docs/mirror.md)' });
  const { url, repository, publicKey } = repo.mirror;
  // The config's publicKey is PEM text or a path relative to the config file.
  const pem = publicKey === undefined || publicKey.includes('-----BEGIN') ? publicKey : await readText(io, resolve(dir, publicKey), 'the upstream public key');
  const upstream = resolveUpstream({ ...(url !== undefined ? { url } : {}), ...(repository !== undefined ? { repository } : {}), ...(pem !== undefined ? { publicKey: pem } : {}) });
  const store = repo.store !== undefined ? await openStore(repo.store, { cwd: dir }) : new FsStore(resolve(dir, repo.publicDir ?? 'public'));
  return { store, upstream };
}

/** The mirror store and its upstream: a mirror repository of the host config (--repo), or the flags. */
async function openMirror(io: Io, values: Values, dir: string | undefined): Promise<{ store: BlobStore; upstream: Upstream }> {
  const repoName = str(values, 'repo');
  const storeUrl = str(values, 'store');
  if (repoName !== undefined) {
    const clash = ['store', 'upstream', 'upstream-key', 'upstream-name'].find((k) => values[k] !== undefined);
    if (clash) throw usage('mirror', `--repo takes the store and the upstream from hexrepo.json; drop --${clash}`);
    return hostMirror(io, resolve(io.cwd, dir ?? '.'), repoName);
  }
  if (dir !== undefined) throw usage('mirror', `DIR (${dir}) is only read with --repo NAME`);
  if (storeUrl === undefined) throw usage('mirror', 'needs --repo NAME (a mirror repository of the host config) or --store URL (a folder, file://, s3:// or gs:// URL)');
  const key = str(values, 'upstream-key');
  const publicKey = key === undefined ? undefined : key.includes('-----BEGIN') ? key : await readText(io, key, 'the upstream public key');
  const url = str(values, 'upstream');
  const repository = str(values, 'upstream-name');
  const upstream = resolveUpstream({ ...(url !== undefined ? { url } : {}), ...(repository !== undefined ? { repository } : {}), ...(publicKey !== undefined ? { publicKey } : {}) });
  return { store: await openStore(storeUrl, { cwd: io.cwd }), upstream };
}

/** HTTPS_PROXY / HTTP_PROXY / NO_PROXY (either case), as curl reads them. */
function proxyFromEnv(env: Io['env']): ProxySettings {
  const read = (name: string): string | undefined => env[name] || env[name.toLowerCase()] || undefined;
  const httpProxy = read('HTTP_PROXY');
  const httpsProxy = read('HTTPS_PROXY');
  const noProxy = read('NO_PROXY');
  return { ...(httpProxy ? { httpProxy } : {}), ...(httpsProxy ? { httpsProxy } : {}), ...(noProxy ? { noProxy } : {}) };
}

function mb(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

async function runSync(io: Io, values: Values, dir: string | undefined): Promise<number> {
  const packages = (values.package as string[] | undefined) ?? [];
  const lockFile = str(values, 'lock');
  const chosen = [values.all === true, packages.length > 0, lockFile !== undefined].filter(Boolean).length;
  if (chosen !== 1) throw usage('mirror', 'sync needs exactly one of --all, --package NAME (repeatable) or --lock FILE');
  const maxAgeText = str(values, 'max-age');
  const maxAgeMs = maxAgeText === undefined ? undefined : parseDuration(maxAgeText);
  if (maxAgeMs === null) throw usage('mirror', `--max-age needs a duration such as 10m, 2h or 0, got ${JSON.stringify(maxAgeText)}`);
  const target: SyncTarget =
    values.all === true
      ? { kind: 'all', tarballs: values.tarballs === true }
      : lockFile !== undefined
        ? { kind: 'lock', lock: parseLockfile(await readText(io, lockFile, 'the lockfile'), lockFile) }
        : { kind: 'packages', names: packages, includeOptional: values.optional === true };
  const { store, upstream } = await openMirror(io, values, dir);
  const bar = progressBar(io, { minTotal: 1 });
  const retries = values.retries === undefined ? 5 : Number(values.retries);
  if (!Number.isInteger(retries) || retries < 0 || retries > 100) throw usage('mirror', `--retries needs a whole number from 0 to 100`);
  const concurrency = positiveInt('concurrency', str(values, 'concurrency'), 8);
  const client = new UpstreamClient(upstream, { proxy: proxyFromEnv(io.env) });
  const started = Date.now();
  const summary = await syncMirror(target, {
    store,
    upstream,
    get: withRetries((path, o) => client.get(path, o), { retries }),
    concurrency,
    ...(maxAgeMs !== undefined ? { maxAgeMs } : {}),
    onProgress: (p) => bar.update(p.phase === 'registry' ? 'index' : 'tars', p.done, p.total),
  }).finally(() => client.close());
  bar.done();
  const seconds = (Date.now() - started) / 1000;
  if (values.json) io.out(`${JSON.stringify({ ok: summary.failures.length === 0, upstream: upstream.url, store: store.url, seconds, ...summary }, null, 2)}\n`);
  else {
    for (const n of summary.notes) io.out(`note: ${n}\n`);
    for (const f of summary.failures) io.out(`✗ ${f.path}: [${f.code}] ${f.message}\n`);
    io.out(
      `${summary.failures.length === 0 ? '✓' : '✗'} synced from ${upstream.url} into ${store.url}: ${summary.fetched} fetched (${mb(summary.bytes)}), ${summary.skipped} already there, ${summary.failures.length} failed; ${summary.packages} packages, ${summary.tarballs} tarballs in ${seconds.toFixed(1)} s\n`,
    );
    if (summary.failures.length > 0) io.out('Run the same command again to retry: what is stored and verified is not downloaded again.\n');
  }
  return summary.failures.length === 0 ? 0 : 1;
}

async function runExport(io: Io, values: Values, dir: string | undefined): Promise<number> {
  const lockFile = str(values, 'lock');
  const out = str(values, 'output');
  if (lockFile === undefined || out === undefined) throw usage('mirror', 'export needs --lock FILE and -o BUNDLE');
  const lock = parseLockfile(await readText(io, lockFile, 'the lockfile'), lockFile);
  const { store, upstream } = await openMirror(io, values, dir);
  const { bundle, manifest } = await exportBundle(store, upstream, lock, { source: basename(lockFile) });
  const path = resolve(io.cwd, out);
  // Temp name then rename: a bundle on disk is always whole.
  await writeFile(`${path}.tmp`, bundle);
  await rename(`${path}.tmp`, path);
  if (values.json) io.out(`${JSON.stringify({ ok: true, bundle: path, bytes: bundle.length, objects: manifest.objects.length, upstream: manifest.upstream, notes: manifest.notes }, null, 2)}\n`);
  else {
    for (const n of manifest.notes) io.out(`note: ${n}\n`);
    io.out(`✓ wrote ${path}: ${manifest.objects.length} objects (${mb(bundle.length)}) for ${basename(lockFile)}, upstream "${upstream.repository}" ${manifest.upstream.fingerprint}\n`);
  }
  return 0;
}

async function runImport(io: Io, values: Values, file: string | undefined, dir: string | undefined): Promise<number> {
  if (file === undefined) throw usage('mirror', 'import needs the bundle file: hexrepo mirror import BUNDLE (--repo NAME | --store URL)');
  const path = resolve(io.cwd, file);
  const bytes = await readFile(path).catch((err: NodeJS.ErrnoException) => {
    throw new HexrepoError('NOT_FOUND', `cannot read the bundle ${path}: ${err.code ?? err.message}`, { path });
  });
  const { store, upstream } = await openMirror(io, values, dir);
  const result = await importBundle(store, upstream, bytes);
  if (values.json) io.out(`${JSON.stringify({ ok: true, ...result }, null, 2)}\n`);
  else {
    for (const n of result.notes) io.out(`note: ${n}\n`);
    io.out(`✓ imported ${path} into ${store.url}: ${result.stored} stored, ${result.kept} already there; pinned as ${result.pin}\n`);
  }
  return 0;
}

async function runEvict(io: Io, values: Values, dir: string | undefined): Promise<number> {
  const sizeText = str(values, 'max-size');
  const ageText = str(values, 'max-age');
  if (sizeText === undefined && ageText === undefined) throw usage('mirror', 'evict needs --max-size SIZE and/or --max-age DURATION');
  const maxSize = sizeText === undefined ? undefined : parseSize(sizeText);
  const maxAgeMs = ageText === undefined ? undefined : parseDuration(ageText);
  if (maxSize === null) throw usage('mirror', `--max-size needs a size such as 20GiB or 500MB, got ${JSON.stringify(sizeText)}`);
  if (maxAgeMs === null) throw usage('mirror', `--max-age needs a duration such as 30d or 12h, got ${JSON.stringify(ageText)}`);
  const { store } = await openMirror(io, values, dir);
  const result = await evict(store, { ...(maxSize !== undefined ? { maxSize } : {}), ...(maxAgeMs !== undefined ? { maxAgeMs } : {}), dryRun: values['dry-run'] === true });
  if (values.json) io.out(`${JSON.stringify({ ok: true, ...result }, null, 2)}\n`);
  else {
    for (const e of result.evicted) io.out(`${result.dryRun ? 'would evict' : 'evicted'} ${e.path} (${mb(e.size)}, fetched ${new Date(e.fetchedAt).toISOString()})\n`);
    io.out(
      `${result.dryRun ? 'dry run: ' : ''}${result.evicted.length} object(s), ${mb(result.evictedBytes)}; tarballs and docs ${mb(result.bytesBefore)} → ${mb(result.bytesAfter)}${result.keptPinned ? `; ${result.keptPinned} kept because pinned` : ''}\n`,
    );
  }
  return 0;
}

async function runStatus(io: Io, values: Values, dir: string | undefined): Promise<number> {
  const { store } = await openMirror(io, values, dir);
  const status = await mirrorStatus(store);
  if (values.json) io.out(`${JSON.stringify({ ok: true, store: store.url, ...status }, null, 2)}\n`);
  else {
    io.out(`${store.url}\n`);
    for (const [kind, { count, bytes }] of Object.entries(status.objects)) io.out(`  ${kind.padEnd(9)} ${String(count).padStart(7)}  ${mb(bytes)}\n`);
    io.out(`  without meta (stale) ${status.withoutMeta}\n  pins ${status.pins.length} (${status.pinnedPaths} paths)\n`);
    for (const p of status.pins) io.out(`    ${p.id}  ${new Date(p.created).toISOString()}  ${p.paths} paths  ${p.source}\n`);
  }
  return 0;
}

export const mirror: Command = {
  name: 'mirror',
  summary: 'Fill, export, import, evict and inspect a verified mirror of hex.pm (or another Hex repository).',
  usage: 'hexrepo mirror sync|export|import|evict|status [DIR] (--repo NAME | --store URL) [options]',
  help: `
  hexrepo mirror sync   [DIR] MIRROR (--all [--tarballs] | --package NAME… [--optional] | --lock FILE)
                        [--concurrency N] [--retries N] [--max-age DURATION] [--json]
  hexrepo mirror export [DIR] MIRROR --lock mix.lock|rebar.lock -o BUNDLE [--json]
  hexrepo mirror import BUNDLE [DIR] MIRROR [--json]
  hexrepo mirror evict  [DIR] MIRROR (--max-size SIZE | --max-age DURATION) [--dry-run] [--json]
  hexrepo mirror status [DIR] MIRROR [--json]

MIRROR is --repo NAME, a mirror repository of the host config (DIR/hexrepo.json, default the current
folder: its store and its "mirror" upstream settings), or --store URL with the --upstream flags.

A mirror store holds the upstream's files verbatim under their upstream paths (names, versions,
packages/NAME, tarballs/NAME-VERSION.tar), each verified before it is stored: registry files by
signature with the upstream key and repository name, tarballs by SHA-256 against the outer checksum
in the verified packages/NAME. Clients keep verifying the upstream's own signatures (HEX_MIRROR for
Mix, HEX_CDN for rebar3). See docs/mirror.md.

sync: --all fetches names, versions and every packages/NAME (add --tarballs for every tarball too);
--package NAME fetches every version of NAME and, transitively, every version of each dependency
that matches a requirement (optional dependencies only with --optional), tarballs included;
--lock FILE fetches exactly the packages and versions of a mix.lock or rebar.lock, checking its
outer checksums. A killed sync run again resumes: a stored object that verifies is not downloaded
again; a registry file confirmed less than --max-age ago is not asked for, an older one is
revalidated (If-None-Match). Exits 1 when any object failed (listed; run it again to retry).
HTTPS_PROXY, HTTP_PROXY and NO_PROXY are honoured.

export writes one file (a tar with a manifest) holding packages/NAME and the locked tarball of each
package of the lockfile, read from the store and verified (sync --lock first); import verifies all
of it again with this side's upstream key and name, stores nothing if anything fails, keeps a newer
stored packages/NAME, and pins what it imported. evict removes tarballs and docs, least recently
fetched first, never pinned ones and never registry files.

Options:
  --repo NAME            a mirror repository of the host config in DIR (or the current folder)
  --store URL            the mirror store: a folder, file:///PATH, s3://BUCKET/PREFIX or gs://BUCKET/PREFIX
  --upstream URL         the upstream repository (default https://repo.hex.pm)
  --upstream-key FILE    the upstream's public key, a PEM file or text (default: hex.pm's, built in;
                         required for any other upstream)
  --upstream-name NAME   the repository name the upstream signs (default hexpm)
  --all                  sync: the whole registry
  --tarballs             sync --all: every tarball too
  --package NAME         sync: NAME and its dependency closure; repeatable
  --optional             sync --package: follow optional dependencies too
  --lock FILE            sync, export: a mix.lock or rebar.lock
  --concurrency N        sync: requests in flight at once (default 8)
  --retries N            sync: retries per request on 5xx, 429 and network errors, with exponential
                         backoff and jitter (default 5)
  --max-age DURATION     sync: revalidate registry files older than this (default 10m; 0 = always);
                         evict: evict tarballs and docs fetched longer ago than this (30d, 12h)
  --max-size SIZE        evict: keep tarballs and docs under SIZE (20GiB, 500MB)
  --dry-run              evict: list what would go, remove nothing
  -o, --output FILE      export: the bundle to write
  --json                 print a JSON summary (sync: fetched, skipped, bytes, failures, notes)`,
  options: {
    repo: { type: 'string' },
    store: { type: 'string' },
    upstream: { type: 'string' },
    'upstream-key': { type: 'string' },
    'upstream-name': { type: 'string' },
    all: { type: 'boolean' },
    tarballs: { type: 'boolean' },
    package: { type: 'string', multiple: true },
    optional: { type: 'boolean' },
    lock: { type: 'string' },
    concurrency: { type: 'string' },
    retries: { type: 'string' },
    'max-age': { type: 'string' },
    'max-size': { type: 'string' },
    'dry-run': { type: 'boolean' },
    output: { type: 'string', short: 'o' },
    json: { type: 'boolean' },
  },
  async run({ values, positionals }, io) {
    const [action, ...rest] = positionals;
    if (!ACTIONS.includes(action as Action)) throw usage('mirror', `expected ${ACTIONS.join(', ')}; got ${action === undefined ? 'nothing' : JSON.stringify(action)}`);
    const file = action === 'import' ? rest.shift() : undefined;
    if (rest.length > 1) throw usage('mirror', `unexpected argument ${JSON.stringify(rest.at(-1))}`);
    const dir = rest[0];
    switch (action as Action) {
      case 'sync':
        return runSync(io, values, dir);
      case 'export':
        return runExport(io, values, dir);
      case 'import':
        return runImport(io, values, file, dir);
      case 'evict':
        return runEvict(io, values, dir);
      case 'status':
        return runStatus(io, values, dir);
    }
  },
};
