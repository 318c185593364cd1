import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { HexrepoError } from '@hexrepo/core';
import { cacheControl, CONTENT_TYPES, routeRepository, type ResourceKind } from '@hexrepo/http';
import { HOST_STATE_PREFIX, STATE_PREFIX } from '@hexrepo/repo';
import { contentEtag, type BlobStore, type PutOptions } from '@hexrepo/storage';
import { type Command, str, usage } from '../command.js';
import { displayPath, resolvePublicDir } from '../project.js';
import { progressBar } from '../progress.js';
import { openStore } from '../stores.js';

/** What deploy uploads, in upload order (each group finishes before the next one starts). */
type Group = 'tarball' | 'state' | 'package' | 'versions' | 'names' | 'public_key';
const ORDER: Group[] = ['tarball', 'state', 'package', 'versions', 'names', 'public_key'];

interface LocalObject {
  key: string;
  path: string;
  group: Group;
  kind: ResourceKind | 'state';
  etag: string;
}

const STATE_RE = /^_hexrepo\/releases\/[a-z][a-z0-9_]*\.json$/;
/** Package owners (`hexrepo owner add` on the folder): a server on the target must see them too. */
const OWNERS_RE = /^_hexrepo\/owners\/[a-z][a-z0-9_]*\.json$/;
/** How many objects of one group are checked or uploaded at once. */
const PARALLEL = 8;

/** Every regular file under `root`, as `/`-separated relative paths (symlinks followed, cycles bounded by depth). */
async function walk(root: string, rel = '', depth = 0): Promise<string[]> {
  if (depth > 32) throw new HexrepoError('PATH_UNSAFE', `${join(root, rel)}: folders nested too deeply (a symlink loop?)`);
  const out: string[] = [];
  for (const name of (await readdir(join(root, rel))).sort()) {
    const relPath = rel === '' ? name : `${rel}/${name}`;
    const st = await stat(join(root, relPath)).catch(() => null);
    if (!st) continue; // a dangling symlink
    if (st.isDirectory()) out.push(...(await walk(root, relPath, depth + 1)));
    else if (st.isFile()) out.push(relPath);
  }
  return out;
}

/** The upload group of a relative path, or null when it is not part of a repository. */
function classify(rel: string): { group: Group; kind: ResourceKind | 'state' } | null {
  // The host's tokens and users are never copied anywhere, whatever else _hexrepo/ may hold one day.
  if (rel.startsWith(HOST_STATE_PREFIX)) return null;
  if ((STATE_RE.test(rel) && rel.startsWith(STATE_PREFIX)) || OWNERS_RE.test(rel)) return { group: 'state', kind: 'state' };
  const route = routeRepository(`/${rel}`);
  // The key must be the path itself (no percent-decoding games).
  if (!route.ok || route.resource.key !== rel) return null;
  const kind = route.resource.kind;
  // A bucket cannot enforce a private policy's read access: policies are served by "hexrepo serve" only.
  if (kind === 'policy') return null;
  const group: Group = kind === 'tarball' || kind === 'docs' ? 'tarball' : kind;
  return { group, kind };
}

function looksLikeKey(rel: string, body: Uint8Array): boolean {
  return /\.(pem|key)$/i.test(rel) || Buffer.from(body.buffer, body.byteOffset, body.byteLength).includes('PRIVATE KEY');
}

function putOptions(kind: ResourceKind | 'state'): PutOptions {
  if (kind === 'state') return { contentType: 'application/json' };
  return { contentType: CONTENT_TYPES[kind], cacheControl: cacheControl(kind, 'public') };
}

/** Run `fn` over `items`, at most `n` at a time. */
async function eachLimited<T>(items: T[], n: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(n, items.length) }, worker));
}

export const deploy: Command = {
  name: 'deploy',
  summary: 'Upload a public folder to a store (S3 bucket or folder) in a safe order, only what changed.',
  usage: 'hexrepo deploy [DIR|PUBLIC] --to URL [--dry-run] [--delete] [--json]',
  help: `
Uploads the repository files of a local public folder (names, versions, public_key,
packages/NAME, tarballs/NAME-VERSION.tar, docs/NAME-VERSION.tar.gz, the retirement records
_hexrepo/releases/NAME.json kept by the publish API, and the package owners _hexrepo/owners/NAME.json)
to a store, in an order that never lets a
client see an index naming a file that is not there yet: tarballs and docs first, then
_hexrepo/releases/, packages/*, versions, names, and public_key last. An object whose content is
already on the target (same content etag) is skipped. Every object gets the Content-Type and
Cache-Control that "hexrepo serve" sends (tarballs immutable for a year, indexes 60 s, public) and
never Content-Encoding. Anything else in the folder is not uploaded and is listed as ignored.

Refuses, uploading nothing, when any file in the folder looks like a private key (named *.pem
or *.key, or containing "PRIVATE KEY"). URL is s3://BUCKET/PREFIX?region=R[&endpoint=URL]
(credentials from the AWS environment variables, profile or instance role), gs://BUCKET/PREFIX
(Google Application Default Credentials), file:///ABS/PATH or a folder path. DIR is a folder with hexrepo.json (its public folder is deployed); with neither
DIR nor PUBLIC, ./hexrepo.json is used. See docs/deploy.md.

Options:
  --to URL     the target store (required)
  --dry-run    print what would be uploaded (and deleted), upload nothing
  --delete     after names is uploaded, delete the target's packages/* and then tarballs/*
               objects that no longer exist locally
  --json       print {uploaded, skipped, ignored[, deleted]} on stdout (keys, in upload order)
  --quiet      print nothing but errors

Exit status: 0 deployed, 1 refused or failed, 2 wrong usage.`,
  options: {
    to: { type: 'string' },
    'dry-run': { type: 'boolean' },
    delete: { type: 'boolean' },
    json: { type: 'boolean' },
    quiet: { type: 'boolean' },
  },
  async run({ values, positionals }, io) {
    if (positionals.length > 1) throw usage('deploy', `expected one PUBLIC folder, got ${positionals.length}`);
    const to = str(values, 'to');
    if (to === undefined) throw usage('deploy', 'missing --to URL (s3://BUCKET/PREFIX?region=R, gs://BUCKET/PREFIX, file:///PATH or a folder)');
    const { publicDir } = await resolvePublicDir('deploy', io.cwd, positionals[0]);
    const target: BlobStore = await openStore(to, { cwd: io.cwd });
    const dryRun = values['dry-run'] === true;
    const shown = displayPath(io.cwd, publicDir);

    // 1. Read the folder: refuse keys, sort repository files into groups, ignore the rest.
    const files = await walk(publicDir);
    const keys: string[] = [];
    const ignored: string[] = [];
    const local: LocalObject[] = [];
    for (const rel of files) {
      const path = join(publicDir, ...rel.split('/'));
      const body = await readFile(path);
      if (looksLikeKey(rel, body)) {
        keys.push(rel);
        continue;
      }
      const c = classify(rel);
      if (!c) ignored.push(rel);
      else local.push({ key: rel, path, ...c, etag: contentEtag(body) });
    }
    if (keys.length > 0) {
      throw new HexrepoError('KEY_UNSAFE_LOCATION', `refusing to deploy ${shown}: ${keys.map((k) => `${k}`).join(', ')} look${keys.length === 1 ? 's' : ''} like a private key; nothing was uploaded`, {
        files: keys,
        hint: 'move private keys out of the public folder (hexrepo init keeps the key beside it), then deploy again',
      });
    }
    local.sort((a, b) => ORDER.indexOf(a.group) - ORDER.indexOf(b.group) || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));

    // 2. Compare with the target and upload, group by group.
    const uploaded: string[] = [];
    const skipped: string[] = [];
    const deleted: string[] = [];
    const bar = progressBar(io, { minTotal: 1 });
    let done = 0;
    const total = local.length;
    const say = (line: string): void => {
      if (!values.json && !values.quiet) io.out(line);
    };
    try {
      for (const group of ORDER) {
        const batch = local.filter((o) => o.group === group);
        const changed = new Set<string>();
        await eachLimited(batch, PARALLEL, async (o) => {
          const head = await target.head(o.key);
          if (head?.etag === o.etag) {
            bar.update(dryRun ? 'check' : 'upload', ++done, total);
            return;
          }
          changed.add(o.key);
          if (!dryRun) {
            const body = await readFile(o.path);
            if (contentEtag(body) !== o.etag) throw new HexrepoError('STORAGE_CONFLICT', `${o.path} changed while deploying; run the deploy again`, { key: o.key });
            // Conditional on what was seen, so a concurrent writer makes this fail instead of being overwritten.
            await target.put(o.key, body, { ...putOptions(o.kind), ...(head ? { ifMatch: head.etag } : { ifNoneMatch: '*' }) });
          }
          bar.update(dryRun ? 'check' : 'upload', ++done, total);
        });
        for (const o of batch) {
          if (changed.has(o.key)) {
            uploaded.push(o.key);
            say(`* ${dryRun ? 'would upload' : 'uploading'} ${o.key}\n`);
          } else skipped.push(o.key);
        }
        if (group === 'names' && values.delete === true) {
          // Only after names no longer lists them: first the package indexes, then the tarballs.
          const have = new Set(local.map((o) => o.key));
          for (const prefix of ['packages/', 'tarballs/']) {
            const gone: string[] = [];
            for await (const info of target.list(prefix)) {
              if (!have.has(info.key) && classify(info.key) !== null) gone.push(info.key);
            }
            gone.sort();
            for (const key of gone) {
              if (!dryRun) await target.delete(key);
              deleted.push(key);
              say(`* ${dryRun ? 'would delete' : 'deleting'} ${key}\n`);
            }
          }
        }
      }
    } finally {
      bar.done();
    }

    if (values.json) {
      io.out(`${JSON.stringify({ ok: true, dryRun, from: publicDir, to: target.url, uploaded, skipped, ignored, ...(values.delete === true ? { deleted } : {}) }, null, 2)}\n`);
      return 0;
    }
    if (!values.quiet) {
      for (const rel of ignored) io.err(`note: not a repository file, not uploaded: ${rel}\n`);
      io.out(
        `${dryRun ? 'Dry run: would deploy' : 'Deployed'} ${shown} to ${target.url}: ${uploaded.length} uploaded, ${skipped.length} unchanged, ${ignored.length} ignored` + `${values.delete === true ? `, ${deleted.length} deleted` : ''}.\n`,
      );
    }
    return 0;
  },
};
