import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join, relative, resolve } from 'node:path';
import { assertRepoName, HexrepoError, isHostConfig, parseHostConfig, parseProjectConfig, PROJECT_FILE, type HostRepositoryConfig } from '@hexrepo/core';
import { fingerprint, publicKeyPem } from '@hexrepo/registry';
import { buildRegistry, clientSetup, defaultCachePath, formatClientSetup, storeCachePath, PUBLIC_KEY_KEY, saveCache, writeNewKey } from '@hexrepo/repo';
import { mirrorSetupLines, resolveUpstream, type Upstream } from '@hexrepo/mirror';
import { FsStore, type BlobStore } from '@hexrepo/storage';
import { type Command, str, usage } from '../command.js';
import { displayPath, isInside } from '../project.js';
import { openStore } from '../stores.js';

/** The host's hexrepo.json as JSON (host form, or the single form read as a host of one root repository). */
async function readHostFile(path: string): Promise<{ raw: Record<string, unknown>; repositories: HostRepositoryConfig[] } | null> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    return null;
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new HexrepoError('CONFIG_INVALID', `${path} is not valid JSON: ${(err as Error).message}`, { path });
  }
  if (isHostConfig(raw)) {
    const obj = raw as Record<string, unknown>;
    return { raw: obj, repositories: parseHostConfig(obj, path).repositories };
  }
  // The single form becomes the host's root repository, served exactly as before.
  const single = parseProjectConfig(raw, path);
  const entry: HostRepositoryConfig = { name: single.name, publicDir: single.publicDir, privateKey: single.privateKey, access: 'auto', root: true, limits: single.limits };
  const { limits, ...rest } = raw as Record<string, unknown>;
  return {
    raw: { repositories: [{ name: single.name, publicDir: single.publicDir, privateKey: single.privateKey, root: true, ...(limits !== undefined ? { limits } : {}) }], ...omit(rest, ['name', 'publicDir', 'privateKey']) },
    repositories: [entry],
  };
}

function omit(obj: Record<string, unknown>, keys: string[]): Record<string, unknown> {
  return Object.fromEntries(Object.entries(obj).filter(([k]) => !keys.includes(k)));
}

/** Replace the file in one step (temp + rename): a reader never sees half a config. */
async function writeAtomically(path: string, text: string): Promise<void> {
  const tmp = `${path}.${randomBytes(6).toString('hex')}.tmp`;
  await writeFile(tmp, text);
  try {
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

/** Where clients reach a repository of the host: the root one at the base URL, the others under /repos/NAME. */
export function repositoryUrl(base: string, repo: { name: string; root: boolean }): string {
  const trimmed = base.replace(/\/+$/, '');
  return repo.root ? trimmed : `${trimmed}/repos/${repo.name}`;
}

export const repo: Command = {
  name: 'repo',
  summary: 'Add repositories to a host (one server, several repositories) and list them.',
  usage:
    'hexrepo repo add NAME [DIR | --public-dir DIR | --store URL] [--access private|public] [--root] [--url URL]\n       hexrepo repo add NAME --mirror [--upstream URL --upstream-name NAME --upstream-key PEM] [DIR | --public-dir DIR | --store URL] [...]\n       hexrepo repo list [--json]',
  help: `
  hexrepo repo add  NAME [DIR | --public-dir DIR | --store URL] [--access private|public] [--root] [--url URL] [--json]
  hexrepo repo add  NAME --mirror [--upstream URL --upstream-name NAME --upstream-key PEM] [DIR | --public-dir DIR | --store URL] [...]
  hexrepo repo list [--url URL] [--json]

Run in the host's folder: its hexrepo.json lists the repositories "hexrepo serve" serves, each
under /repos/NAME/ (its publish API under /api/repos/NAME/), and the root one (--root) also at /
and /api. A hexrepo.json of one repository (from "hexrepo init") becomes the host's root
repository, served as before.

add creates the repository: a signing key keys/NAME.pem (mode 0600, outside every served folder),
its public folder DIR (default repos/NAME/public) or the store URL, initialised with public_key
and an empty signed registry, and its entry in hexrepo.json; then prints the Mix and rebar3 set-up
lines with the repository's URL. Restart "hexrepo serve" to serve it.

add --mirror adds a read-only mirror instead (docs/mirror.md): no key, its cache folder DIR
(default repos/NAME/public) or the store URL, and an entry with "mirror" in hexrepo.json. Without
--upstream it mirrors hex.pm (and may be named hexpm); another upstream needs its URL and public key.

Options:
  --public-dir DIR   the repository's folder (the same as DIR)
  --store URL        keep the repository in this store (s3://…, gs://…, file://…) instead of a folder
  --mirror           a mirror of an upstream Hex repository (default https://repo.hex.pm)
  --upstream URL     the upstream's repository URL (with --mirror)
  --upstream-name N  the repository name the upstream signs (with --mirror; default hexpm)
  --upstream-key PEM the upstream's public key file (or PEM text); required unless it is hex.pm
  --access MODE      private (every read needs credentials; the default) or public (reads open)
  --root             also mount it at / and /api (at most one repository is the root)
  --url URL          the server's URL, for the printed set-up lines (default http://localhost:PORT)
  --json             print JSON`,
  options: {
    store: { type: 'string' },
    'public-dir': { type: 'string' },
    mirror: { type: 'boolean' },
    upstream: { type: 'string' },
    'upstream-name': { type: 'string' },
    'upstream-key': { type: 'string' },
    access: { type: 'string' },
    root: { type: 'boolean' },
    url: { type: 'string' },
    json: { type: 'boolean' },
  },
  async run({ values, positionals }, io) {
    const [action, ...rest] = positionals;
    if (action !== 'add' && action !== 'list') throw usage('repo', `expected add or list, got ${action === undefined ? 'nothing' : JSON.stringify(action)}`);
    const file = join(io.cwd, PROJECT_FILE);
    const host = await readHostFile(file);
    const port = typeof host?.raw.port === 'number' ? host.raw.port : 4000;
    const base = str(values, 'url') ?? `http://localhost:${port}`;
    if (!/^https?:\/\/[^/]+/.test(base)) throw usage('repo', `--url ${JSON.stringify(base)} is not an http(s) URL`);

    if (action === 'list') {
      if (rest.length > 0) throw usage('repo', 'list takes no arguments');
      const list = (host?.repositories ?? []).map((r) => ({
        name: r.name,
        access: r.access,
        root: r.root,
        ...(r.publicDir !== undefined ? { publicDir: r.publicDir } : {}),
        ...(r.store !== undefined ? { store: r.store } : {}),
        ...(r.privateKey !== undefined ? { privateKey: r.privateKey } : {}),
        url: repositoryUrl(base, r),
      }));
      if (values.json) io.out(`${JSON.stringify(list, null, 2)}\n`);
      else if (list.length === 0) io.err(`no repositories in ${displayPath(io.cwd, file)}; add one with "hexrepo repo add NAME"\n`);
      else for (const r of list) io.out(`${r.name}\t${r.access}${r.root ? '\troot' : '\t'}\t${r.store ?? r.publicDir}\t${r.url}\n`);
      return 0;
    }

    const [name, dirPositional, extra] = rest;
    if (!name) throw usage('repo', 'add needs the repository NAME');
    if (extra !== undefined) throw usage('repo', `add takes NAME and at most one DIR, got ${rest.length} arguments`);
    const mirror = values.mirror === true;
    // A mirror of hex.pm may take hex.pm's name, as in hexrepo.json.
    if (!(mirror && name === 'hexpm')) assertRepoName(name, 'NAME');
    for (const flag of ['upstream', 'upstream-name', 'upstream-key']) if (!mirror && values[flag] !== undefined) throw usage('repo', `--${flag} describes the upstream of a mirror: add --mirror`);
    const publicDirFlag = str(values, 'public-dir');
    if (publicDirFlag !== undefined && dirPositional !== undefined) throw usage('repo', 'give the folder once: DIR or --public-dir DIR');
    const dirArg = publicDirFlag ?? dirPositional;
    const storeUrl = str(values, 'store');
    if (storeUrl !== undefined && dirArg !== undefined) throw usage('repo', 'give either DIR (a folder) or --store URL, not both');
    const access = str(values, 'access') ?? 'private';
    if (access !== 'private' && access !== 'public') throw usage('repo', `--access must be private or public, got ${JSON.stringify(access)}`);
    const root = values.root === true;
    const existing = host?.repositories ?? [];
    if (existing.some((r) => r.name === name)) throw new HexrepoError('ALREADY_EXISTS', `${displayPath(io.cwd, file)} already has a repository ${name}`, { hint: 'pick another name, or see "hexrepo repo list"' });
    const currentRoot = existing.find((r) => r.root);
    if (root && currentRoot)
      throw new HexrepoError('CONFIG_INVALID', `${currentRoot.name} is already mounted at /; only one repository can be the root`, {
        setting: 'root',
        hint: `drop --root (${name} is then served at /repos/${name}), or remove "root" from ${currentRoot.name} in ${PROJECT_FILE}`,
      });

    const keyRel = join('keys', `${name}.pem`);
    const keyPath = resolve(io.cwd, keyRel);
    const publicRel = storeUrl === undefined ? (dirArg ?? join('repos', name, 'public')) : undefined;
    const publicDir = publicRel !== undefined ? resolve(io.cwd, publicRel) : undefined;
    // A mirror has no key; the check is for the key this command writes.
    for (const r of mirror ? [] : [...existing.filter((x) => x.publicDir !== undefined).map((x) => resolve(io.cwd, x.publicDir!)), ...(publicDir ? [publicDir] : [])]) {
      if (isInside(keyPath, r)) throw new HexrepoError('CONFIG_INVALID', `the key ${keyPath} would be inside the served folder ${r}`, { hint: 'serve folders below the host folder (e.g. repos/NAME/public), never the host folder itself' });
    }
    const store = publicDir !== undefined ? new FsStore(publicDir) : await openStore(storeUrl!, { cwd: io.cwd });
    if (mirror) return addMirror({ name, access, root, base, file, raw: host?.raw ?? {}, publicRel, publicDir, storeUrl, store, values }, io);
    // Never sign somebody's repository with a new key: its clients would refuse every file.
    if (await store.head(PUBLIC_KEY_KEY)) throw new HexrepoError('ALREADY_EXISTS', `${publicDir ?? store.url} already holds a repository (it has a public_key)`, { hint: 'add an empty folder or store, or serve that one with its own key' });

    const privateKey = await writeNewKey(keyPath);
    if (publicDir !== undefined) await mkdir(join(publicDir, 'tarballs'), { recursive: true });
    const { cache } = await buildRegistry({ store, repository: name, privateKey });
    await saveCache(publicDir !== undefined ? defaultCachePath(publicDir) : storeCachePath(io.cwd, store.url), cache);

    const entry = { name, ...(publicRel !== undefined ? { publicDir: publicRel } : { store: storeUrl }), privateKey: keyRel, access, ...(root ? { root: true } : {}) };
    const raw = host?.raw ?? {};
    const next = { ...raw, repositories: [...((raw.repositories as unknown[] | undefined) ?? []), entry] };
    await writeAtomically(file, `${JSON.stringify(next, null, 2)}\n`);

    const url = repositoryUrl(base, { name, root });
    const shown = (p: string): string => displayPath(io.cwd, p);
    // Mix reads the public key from a file: a store's copy is kept beside the key (it is not secret).
    const pubPath = publicDir !== undefined ? join(publicDir, 'public_key') : resolve(io.cwd, 'keys', `${name}.pub`);
    if (publicDir === undefined) await writeFile(pubPath, publicKeyPem(privateKey));
    const setupInput = { repository: name, url, publicKeyPath: shown(pubPath), publicKeyPem: publicKeyPem(privateKey), fingerprint: fingerprint(privateKey) };
    if (values.json) {
      io.out(`${JSON.stringify({ ...entry, url, privateKey: keyPath, ...(publicDir !== undefined ? { publicDir } : {}), fingerprint: setupInput.fingerprint, setup: clientSetup(setupInput) }, null, 2)}\n`);
      return 0;
    }
    io.out(
      [
        `* creating ${shown(keyPath)} (mode 0600: keep it secret, never in a served folder)`,
        `* creating ${publicDir !== undefined ? `${shown(publicDir)}/` : `${store.url} `}public_key, names, versions`,
        `* adding ${name} (${access}${root ? ', root' : ''}) to ${shown(file)}`,
        '',
        `Repository "${name}" is ready at ${url} once "hexrepo serve" restarts. Key fingerprint: ${setupInput.fingerprint}`,
        '',
        // Tokens belong to the host: one for this repository is granted it by name.
        access === 'private'
          ? `Tokens for it: hexrepo token create --label ${name}-ci --repo ${name} --scope read (every read needs one; add --scope write to publish)`
          : `Tokens for it: hexrepo token create --label ${name}-ci --repo ${name} --scope write (reads are open; a token is for publishing)`,
        '',
        formatClientSetup(setupInput),
        '',
      ].join('\n'),
    );
    return 0;
  },
};

/**
 * `repo add NAME --mirror`: the host entry of a read-only mirror. The upstream is checked as
 * `hexrepo serve` will check it (URL, name, a key that loads) before hexrepo.json changes.
 */
async function addMirror(
  a: {
    name: string;
    access: string;
    root: boolean;
    base: string;
    file: string;
    raw: Record<string, unknown>;
    publicRel: string | undefined;
    publicDir: string | undefined;
    storeUrl: string | undefined;
    store: BlobStore;
    values: Record<string, unknown>;
  },
  io: { cwd: string; out(s: string): void },
): Promise<number> {
  const { values } = a;
  const url = str(values, 'upstream');
  const repository = str(values, 'upstream-name');
  const keyArg = str(values, 'upstream-key');
  let keyPem: string | undefined;
  // Kept in hexrepo.json as given: PEM text as it is, a file by its path from the host folder.
  let keySetting: string | undefined;
  if (keyArg !== undefined && keyArg.trimStart().startsWith('-----BEGIN')) {
    keyPem = keySetting = keyArg;
  } else if (keyArg !== undefined) {
    const keyPath = resolve(io.cwd, keyArg);
    try {
      keyPem = await readFile(keyPath, 'utf8');
    } catch (err) {
      throw new HexrepoError('CONFIG_INVALID', `--upstream-key ${keyPath} cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`, {
        setting: 'mirror.publicKey',
        hint: "give the upstream's public_key file (e.g. curl -o upstream.pem URL/public_key) or its PEM text",
      });
    }
    keySetting = relative(io.cwd, keyPath);
  }
  let upstream: Upstream;
  try {
    upstream = resolveUpstream({ ...(url !== undefined ? { url } : {}), ...(repository !== undefined ? { repository } : {}), ...(keyPem !== undefined ? { publicKey: keyPem } : {}) });
  } catch (err) {
    if (err instanceof HexrepoError && err.details?.setting === 'mirror.publicKey' && keyPem === undefined) {
      throw new HexrepoError('CONFIG_INVALID', `the upstream ${url ?? ''} needs its public key: pass --upstream-key FILE (only hex.pm's key is built in)`, {
        setting: 'mirror.publicKey',
        hint: "fetch it from the upstream's /public_key and check its fingerprint out of band",
      });
    }
    throw err;
  }
  // A folder or store holding a repository is not a cache: its files would fail the upstream's checks.
  if (await a.store.head(PUBLIC_KEY_KEY)) throw new HexrepoError('ALREADY_EXISTS', `${a.publicDir ?? a.store.url} already holds a repository (it has a public_key)`, { hint: 'give the mirror an empty folder or store of its own' });
  if (a.publicDir !== undefined) await mkdir(a.publicDir, { recursive: true });

  const mirrorSetting = { ...(url !== undefined ? { url } : {}), ...(repository !== undefined ? { repository } : {}), ...(keySetting !== undefined ? { publicKey: keySetting } : {}) };
  const entry = { name: a.name, ...(a.publicRel !== undefined ? { publicDir: a.publicRel } : { store: a.storeUrl }), mirror: mirrorSetting, access: a.access, ...(a.root ? { root: true } : {}) };
  const next = { ...a.raw, repositories: [...((a.raw.repositories as unknown[] | undefined) ?? []), entry] };
  await writeAtomically(a.file, `${JSON.stringify(next, null, 2)}\n`);

  const servedAt = repositoryUrl(a.base, { name: a.name, root: a.root });
  const setup = mirrorSetupLines(servedAt, upstream);
  if (values.json) {
    io.out(`${JSON.stringify({ ...entry, url: servedAt, upstream: { url: upstream.url, repository: upstream.repository }, setup }, null, 2)}\n`);
    return 0;
  }
  const shown = (p: string): string => displayPath(io.cwd, p);
  io.out(
    [
      ...(a.publicDir !== undefined ? [`* creating ${shown(a.publicDir)}/ (the mirror's cache)`] : []),
      `* adding ${a.name} (mirror of ${upstream.url}, repository ${upstream.repository}; ${a.access}${a.root ? ', root' : ''}) to ${shown(a.file)}`,
      '',
      `Mirror "${a.name}" is ready at ${servedAt} once "hexrepo serve" restarts; fill it ahead of time with "hexrepo mirror sync".`,
      ...(a.access === 'private' ? ['', `Reads need a token: hexrepo token create --label ${a.name}-ci --repo ${a.name} --scope read (or add it with --access public)`] : []),
      '',
      ...setup,
      '',
    ].join('\n'),
  );
  return 0;
}
