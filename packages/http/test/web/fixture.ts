/**
 * A host for the web UI tests: a public root repository `acme` (packages with READMEs, one with
 * script injection, a retired release, docs with ExDoc's layout) and a private repository
 * `internal`, behind one set of host credentials with a user `alice` (read+write on internal) and
 * a user `bob` (no access to internal) and a user `carol` (read on internal's `ops_*` packages only). Real store folders, a real server on 127.0.0.1.
 */
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { loadPrivateKey } from '@hexrepo/registry';
import { RepoService, TokenStore } from '@hexrepo/repo';
import { FsStore } from '@hexrepo/storage';
import { createTarball, writeTar, type TarWriteEntry } from '@hexrepo/tarball';
import { Access, createHostHandler, listen, type RunningServer } from '../../src/index.js';
import { FIXTURES } from '../helpers.js';

export const PASSWORD = 'correct horse battery staple';

/** Markdown with every injection a README could try; none of it may run. */
export const EVIL_README = `# Evil

<script>window.__pwned = 'script'; alert('script')</script>

<img src="x" onerror="window.__pwned = 'onerror'; alert('onerror')">

[click](javascript:window.__pwned='href')

<a href="data:text/html,<script>alert(1)</script>">data link</a>

<iframe src="https://example.com"></iframe>

<div style="background:url(javascript:alert(1))" onclick="alert('click')">styled</div>

Plain **bold** text survives.
`;

/**
 * Docs laid out as ExDoc 0.3x writes them (hand-made here: ExDoc is not installable offline):
 * index.html redirecting to readme.html, a page per module, dist/ with the sidebar items and the
 * search data as scripts that set globals, and an app script building the sidebar and searching.
 */
export function exdocTarball(name: string, version: string, extra: TarWriteEntry[] = []): Uint8Array {
  const page = (title: string, body: string): string => `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>${title} — ${name} v${version}</title>
<link rel="stylesheet" href="dist/html-elixir-ABC123.css">
<script defer src="dist/sidebar_items-DEF456.js"></script>
<script defer src="dist/search_data-0A1B2C.js"></script>
<script defer src="dist/html-XYZ789.js"></script>
<script>document.documentElement.classList.add("js")</script>
</head><body>
<nav id="sidebar" aria-label="Modules"><ul id="sidebar-list"></ul></nav>
<form id="search" action="search.html"><label for="search-input">Search</label><input id="search-input" name="q" type="search"><button>Go</button></form>
<main id="content">${body}</main></body></html>`;
  const app = `(function () {
  // The sidebar from sidebarNodes (dist/sidebar_items-*.js), as ExDoc's sidebar does.
  var list = document.getElementById('sidebar-list');
  (window.sidebarNodes.modules || []).forEach(function (m) {
    var li = document.createElement('li');
    var a = document.createElement('a');
    a.href = m.id + '.html'; a.textContent = m.title; a.className = 'sidebar-module';
    li.appendChild(a); list.appendChild(li);
  });
  document.body.dataset.sidebar = 'ready';
  // ExDoc caches the search index in sessionStorage; an opaque origin has none, so it must go on without.
  try { sessionStorage.setItem('probe', '1'); } catch (e) { document.body.dataset.storage = 'denied'; }
  var results = document.getElementById('search-results');
  if (results) {
    var q = new URLSearchParams(location.search).get('q') || '';
    window.searchData.items.filter(function (i) { return q && (i.title + ' ' + i.doc).toLowerCase().indexOf(q.toLowerCase()) !== -1; }).forEach(function (i) {
      var li = document.createElement('li'); var a = document.createElement('a');
      a.href = i.ref; a.textContent = i.title; a.className = 'search-result'; li.appendChild(a); results.appendChild(li);
    });
    document.body.dataset.search = 'done';
  }
  // What a hostile docs page would try: the host's cookies and the web UI as the viewer.
  try { window.__docsCookie = document.cookie; } catch (e) { window.__docsCookie = 'denied: ' + e.name; }
  fetch('/-/tokens', { credentials: 'include' }).then(function (r) { return r.text(); }).then(function (t) { window.__docsFetch = t.slice(0, 100); }, function (e) { window.__docsFetch = 'blocked: ' + e; });
})();`;
  const files: TarWriteEntry[] = [
    { name: 'index.html', data: Buffer.from(`<!DOCTYPE html><html><head><meta charset="utf-8"><title>${name}</title><meta http-equiv="refresh" content="0; url=readme.html"></head><body></body></html>`) },
    { name: 'readme.html', data: Buffer.from(page('README', `<h1>${name}</h1><p>See <a href="Acme.Widget.html#summary" id="to-widget">Acme.Widget</a>.</p>`)) },
    { name: 'Acme.Widget.html', data: Buffer.from(page('Acme.Widget', `<h1 id="summary">Acme.Widget</h1><p>Makes widgets.</p>`)) },
    { name: 'search.html', data: Buffer.from(page('Search', `<h1>Search results</h1><ul id="search-results"></ul>`)) },
    { name: 'dist/sidebar_items-DEF456.js', data: Buffer.from(`sidebarNodes={"modules":[{"id":"Acme.Widget","title":"Acme.Widget"}],"extras":[{"id":"readme","title":"README"}]}`) },
    { name: 'dist/search_data-0A1B2C.js', data: Buffer.from(`searchData={"items":[{"ref":"Acme.Widget.html","title":"Acme.Widget","type":"module","doc":"Makes widgets."}]}`) },
    { name: 'dist/html-XYZ789.js', data: Buffer.from(app) },
    { name: 'dist/html-elixir-ABC123.css', data: Buffer.from('body{font-family:sans-serif}') },
    { name: '.build', data: Buffer.from('index.html\nreadme.html\n') },
    ...extra,
  ];
  return gzipSync(writeTar(files));
}

export const pkg = (name: string, version: string, opts: { description?: string; readme?: string; deps?: { package: string; requirement: string; repository?: string }[]; links?: [string, string][] } = {}): Uint8Array =>
  createTarball({ name, version, description: opts.description ?? `The ${name} package`, licenses: ['Apache-2.0'], links: opts.links ?? [['GitHub', `https://github.com/acme/${name}`]], requirements: opts.deps ?? [] }, [
    { path: `src/${name}.erl`, contents: Buffer.from(`-module(${name}).\n`) },
    ...(opts.readme !== undefined ? [{ path: 'README.md', contents: Buffer.from(opts.readme) }] : []),
  ]).tarball;

export interface WebHost {
  dir: string;
  server: RunningServer;
  acme: RepoService;
  internal: RepoService;
  tokens: TokenStore;
  close(): Promise<void>;
}

export async function startWebHost(): Promise<WebHost> {
  const key = loadPrivateKey(await readFile(join(FIXTURES, 'golden-acme/test-only-rsa.pem'), 'utf8'));
  const dir = await mkdtemp(join(tmpdir(), 'hexrepo-web-'));
  await mkdir(join(dir, 'acme'), { recursive: true });
  await mkdir(join(dir, 'internal'), { recursive: true });
  const { service: acme } = await RepoService.open({ store: new FsStore(join(dir, 'acme')), repository: 'acme', privateKey: key });
  const { service: internal } = await RepoService.open({ store: new FsStore(join(dir, 'internal')), repository: 'internal', privateKey: key });
  await acme.publish(pkg('widget', '1.0.0', { readme: '# Widget\n\nOld.' }));
  await acme.publish(
    pkg('widget', '1.2.0', {
      description: 'Makes widgets for everyone',
      readme: '# Widget\n\nMakes **widgets**. Use it with `Acme.Widget.new/0`.',
      deps: [
        { package: 'gadget', requirement: '~> 0.1' },
        { package: 'jason', requirement: '~> 1.4', repository: 'hexpm' },
      ],
    }),
  );
  await acme.publish(pkg('widget', '2.0.0-rc.1', { readme: '# Widget RC' }));
  await acme.retire('widget', '1.0.0', { reason: 'security', message: 'CVE-2026-0001: use 1.2.0' });
  await acme.putDocs('widget', '1.2.0', exdocTarball('widget', '1.2.0'));
  await acme.addAdvisory('widget', { id: 'GHSA-abcd-1234-wxyz', summary: 'Widgets leak <b>secrets</b>', htmlUrl: 'https://github.com/advisories/GHSA-abcd-1234-wxyz', severity: 'high', aliases: ['CVE-2026-0002'] }, ['< 1.2.0']);
  await acme.addAdvisory('widget', { id: 'ACME-2026-7', summary: 'Slow on long names', htmlUrl: 'https://security.example.com/ACME-2026-7', severity: 'low' }, ['1.2.0']);
  await acme.publish(pkg('gadget', '0.1.0', { readme: 'Gadget\n======\n\nA gadget.' }));
  await acme.publish(pkg('evil', '0.0.1', { description: '<script>alert("desc")</script> evil', readme: EVIL_README, links: [['Home', 'javascript:alert(1)']] }));
  await internal.publish(pkg('team_secret', '0.1.0', { description: 'Top secret internal package', readme: '# Team secret\n\nInternal only.', deps: [{ package: 'widget', requirement: '~> 1.2', repository: 'acme' }] }));
  await internal.putDocs('team_secret', '0.1.0', exdocTarball('team_secret', '0.1.0'));
  await internal.publish(pkg('ops_tool', '1.0.0', { description: 'Operations tooling' }));
  const tokens = await TokenStore.open(new FsStore(join(dir, 'state')));
  await tokens.addUser({ username: 'alice', password: PASSWORD, grants: [{ repository: 'internal', scopes: ['read', 'write'], packages: [] }] });
  await tokens.addUser({ username: 'bob', password: PASSWORD, grants: [{ repository: 'acme', scopes: ['write'], packages: [] }] });
  await tokens.addUser({ username: 'carol', password: PASSWORD, grants: [{ repository: 'internal', scopes: ['read'], packages: ['ops_*'] }] });
  const access = new Access({ visibility: 'public', users: [], tokens });
  const server = await listen(
    createHostHandler({
      repositories: [
        { name: 'acme', store: acme.store, service: acme, visibility: 'public', root: true },
        { name: 'internal', store: internal.store, service: internal, visibility: 'private' },
      ],
      access,
    }),
    { host: '127.0.0.1', port: 0 },
  );
  return {
    dir,
    server,
    acme,
    internal,
    tokens,
    async close() {
      await server.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
