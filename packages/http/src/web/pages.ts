/**
 * The web UI of a host, for people: the index (`/` for a browser, `/-/`), search (`/-/search`),
 * package pages (`/-/packages/REPO/NAME`), the built assets (`/-/assets/`), login and tokens, and
 * hosted docs (docs.ts). Everything is rendered on the server from the search index and the
 * registry, so pages work without JavaScript. Pages live under `/-/`, a prefix no repository or
 * API path uses; `/` is a page only for a GET that accepts text/html (no Hex client sends that).
 */
import { createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { compareVersions, formatError, type Advisory } from '@hexrepo/core';
import { SearchIndex, tarballKey, type PackageSummary, type RepoService } from '@hexrepo/repo';
import type { Logger } from 'pino';
import type { Access, Identity } from '../auth.js';
import type { HostedRepository } from '../host.js';
import { configsOf } from '../api.js';
import { asset } from './assets.js';
import { createDocsHandler, docsPath } from './docs.js';
import { day, h, layout, raw, safeHref, type Html } from './html.js';
import { cachedPackage, cachedPackageNames, cachedTarballs } from './mirror.js';
import { readmeOf } from './readme.js';
import { createSessions, type Sessions } from './session.js';

export interface WebOptions {
  repositories: readonly HostedRepository[];
  access: Access;
  logger?: Logger;
  /** Trust `X-Forwarded-Proto: https` from a proxy in front (cookies get `Secure`). @default false */
  trustProxy?: boolean;
}

export interface WebHandler {
  /** True when the request is for the web UI (a page, an asset, or hosted docs). */
  matches(req: IncomingMessage): boolean;
  handle(req: IncomingMessage, res: ServerResponse, state: { identity: Identity | null; route: string }): Promise<void>;
}

const NAME_RE = /^[a-z][a-z0-9_]*$/;
/** Rendered READMEs kept, per release. */
const README_CACHE = 200;

/** An advisory in words (never colour only), linked to where a person reads it. */
function advisoryText(a: Advisory): Html {
  const href = safeHref(a.htmlUrl);
  return h`<span class="badge" data-testid="advisory">⚠ advisory${a.severity ? `: ${a.severity}` : ''}</span> ${href ? h`<a href="${href}" rel="noopener nofollow">${a.id}</a>` : a.id}: ${a.summary}`;
}

/** Security headers every page carries: scripts and styles from this origin only, no framing. */
const PAGE_CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' https: data:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'; connect-src 'self'";

export function wantsHtml(req: IncomingMessage): boolean {
  return (req.headers.accept ?? '').includes('text/html');
}

/** Send a page (or JSON) with a strong ETag of its bytes; 304 when the client has it. */
export function sendPage(req: IncomingMessage, res: ServerResponse, status: number, body: string, headers: Record<string, string> = {}): void {
  const bytes = Buffer.from(body);
  const etag = `"${createHash('sha256').update(bytes).digest('base64url').slice(0, 27)}"`;
  const all: Record<string, string> = {
    'content-type': 'text/html; charset=utf-8',
    'content-security-policy': PAGE_CSP,
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'same-origin',
    // A page shows what its viewer may read: never shared by a cache between viewers.
    'cache-control': 'private, no-cache',
    vary: 'cookie, authorization',
    etag,
    ...headers,
  };
  for (const [k, v] of Object.entries(all)) res.setHeader(k, v);
  if (status === 200 && req.headers['if-none-match'] === etag) {
    res.writeHead(304);
    res.end();
    return;
  }
  res.setHeader('content-length', String(bytes.length));
  res.writeHead(status);
  res.end(req.method === 'HEAD' ? undefined : bytes);
}

/** A path segment decoded; as it came when its percent-encoding is malformed (it then names nothing, and the page is a 404, not a 500). */
function decodedOr(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

/** The web UI of a host: see the module comment. */
export function createWebHandler(opts: WebOptions): WebHandler {
  const repos = opts.repositories;
  const byName = new Map(repos.map((r) => [r.name, r]));
  const sessions: Sessions = createSessions({ access: opts.access, ...(opts.trustProxy !== undefined ? { trustProxy: opts.trustProxy } : {}) });
  const docs = createDocsHandler({
    repositories: repos,
    canRead: (id, repo, pkg) => canRead(id, repo, pkg),
    viewer: (req) => viewer(req),
    ...(opts.access.options.tokens ? { tokens: opts.access.options.tokens } : {}),
    ...(opts.logger ? { logger: opts.logger } : {}),
  });
  const readmes = new Map<string, string | null>();

  // The search index of every repository is built in the background from the start, so the first
  // search does not wait for every package's metadata to be read.
  for (const r of repos)
    if (r.service)
      void SearchIndex.of(r.service)
        .catchUp()
        .catch((err: unknown) => opts.logger?.warn({ err: formatError(err), repository: r.name }, 'could not build the search index'));

  /** Who is looking: a session (the cookie) or credentials sent with the request (Basic, a token). */
  const viewer = async (req: IncomingMessage): Promise<Identity | null> => {
    const session = await sessions.identity(req);
    if (session) return session.identity;
    if (req.headers.authorization === undefined) return null;
    const id = await opts.access.identify(req.headers.authorization);
    return id === 'invalid' ? null : id;
  };
  const canRead = (id: Identity | null, repo: HostedRepository, pkg?: string): boolean => {
    if (repo.visibility === 'public') return true;
    return id !== null && opts.access.authorize(id, 'read', pkg, repo.name).ok;
  };
  const readable = (id: Identity | null): HostedRepository[] => repos.filter((r) => canRead(id, r));
  const userLabel = (id: Identity | null): string | null => (id === null ? null : id.kind === 'user' ? id.username : (id.token.user ?? id.token.label));

  const page = async (req: IncomingMessage, res: ServerResponse, id: Identity | null, title: string, body: Html, extra: { query?: string; status?: number } = {}): Promise<void> => {
    const csrf = await sessions.csrfFor(req);
    // A logged-in page carries the session's CSRF token (and on /-/tokens a new secret): never stored.
    const cache = id !== null || csrf ? { 'cache-control': 'private, no-store' } : {};
    sendPage(req, res, extra.status ?? 200, layout({ title, user: userLabel(id), ...(extra.query !== undefined ? { query: extra.query } : {}), ...(csrf ? { csrf } : {}) }, body), cache);
  };
  const notFound = (req: IncomingMessage, res: ServerResponse, id: Identity | null, what: string): Promise<void> =>
    page(req, res, id, 'Not found', h`<h1>Not found</h1><p>${what}</p><p><a href="/-/">Back to the index</a></p>`, { status: 404 });

  const packageUrl = (repo: string, name: string): string => `/-/packages/${encodeURIComponent(repo)}/${name}`;
  const summaryItem = (repo: HostedRepository, p: PackageSummary, showRepo: boolean): Html =>
    h`<li data-testid="package" data-name="${p.name}"><a href="${packageUrl(repo.name, p.name)}"><strong>${p.name}</strong></a> <span class="muted">${p.latestStableVersion ?? p.latestVersion}</span>${showRepo ? h` <span class="badge">${repo.name}</span>` : ''}${p.retired ? h` <span class="badge" title="the latest release is retired">⚠ retired</span>` : ''}<br>${p.description ?? ''}</li>`;

  const index = async (req: IncomingMessage, res: ServerResponse, id: Identity | null): Promise<void> => {
    const sections: Html[] = [];
    for (const repo of readable(id)) {
      if (repo.mirror) {
        const count = (await cachedPackageNames(repo)).filter((n) => canRead(id, repo, n)).length;
        sections.push(h`<section aria-labelledby="repo-${repo.name}">
<h2 id="repo-${repo.name}">${repo.name} ${repo.visibility === 'private' ? h`<span class="badge">🔒 private</span>` : ''}</h2>
<p data-testid="mirror-note">${mirrorBadge(repo)}</p>
<p>${count} ${count === 1 ? 'package' : 'packages'} cached · <a href="/-/search?repo=${encodeURIComponent(repo.name)}">browse the cached packages</a></p>
</section>`);
        continue;
      }
      if (!repo.service) {
        sections.push(h`<section><h2>${repo.name}</h2><p class="muted">Served read-only: this server has no index of it.</p></section>`);
        continue;
      }
      // A credential limited to some packages sees only those, in the count too.
      const visible = repo.visibility === 'private' && id ? (name: string) => opts.access.authorize(id, 'read', name, repo.name).ok : undefined;
      const listed = await SearchIndex.of(repo.service).search({ sort: 'recent_updated', perPage: 10, ...(visible ? { visible } : {}) });
      const recent = listed.packages;
      const search = { size: listed.total };
      sections.push(h`<section aria-labelledby="repo-${repo.name}">
<h2 id="repo-${repo.name}">${repo.name} ${repo.visibility === 'private' ? h`<span class="badge">🔒 private</span>` : ''}</h2>
<p>${search.size} ${search.size === 1 ? 'package' : 'packages'} · <a href="/-/search?repo=${encodeURIComponent(repo.name)}">browse all</a></p>
${recent.length ? h`<h3>Recently updated</h3><ul class="packages">${recent.map((p) => summaryItem(repo, p, false))}</ul>` : h`<p class="muted">No packages yet.</p>`}
</section>`);
    }
    const hidden = repos.length - readable(id).length;
    await page(req, res, id, 'Repositories', h`<h1>Repositories</h1>${sections}${hidden > 0 && !id ? h`<p>${hidden} more ${hidden === 1 ? 'repository needs' : 'repositories need'} you to <a href="/-/login">log in</a>.</p>` : ''}`);
  };

  const searchPage = async (req: IncomingMessage, res: ServerResponse, id: Identity | null, query: URLSearchParams): Promise<void> => {
    const q = (query.get('q') ?? '').slice(0, 200);
    const only = query.get('repo');
    const pageNo = Math.max(1, Math.min(10_000, Number.parseInt(query.get('page') ?? '1', 10) || 1));
    const mirrored = readable(id).find((r) => r.mirror && r.name === only);
    if (mirrored) return mirrorList(req, res, id, mirrored, q, pageNo);
    const targets = readable(id).filter((r) => r.service && (only === null || r.name === only));
    const mirrors = only === null ? readable(id).filter((r) => r.mirror) : [];
    const results: Html[] = [];
    let total = 0;
    let more = false;
    for (const repo of targets) {
      const visible = repo.visibility === 'private' && id ? (name: string) => opts.access.authorize(id, 'read', name, repo.name).ok : undefined;
      const found = await SearchIndex.of(repo.service!).search({ term: q, sort: q ? 'relevance' : 'name', page: pageNo, perPage: 50, ...(visible ? { visible } : {}) });
      total += found.total;
      more ||= found.total > pageNo * 50;
      results.push(...found.packages.map((p) => summaryItem(repo, p, targets.length > 1)));
    }
    const params = (p: number): string => `/-/search?${new URLSearchParams({ ...(q ? { q } : {}), ...(only ? { repo: only } : {}), page: String(p) }).toString()}`;
    await page(
      req,
      res,
      id,
      q ? `Search: ${q}` : 'All packages',
      h`<h1>${q ? `Packages matching “${q}”` : 'All packages'}${only ? ` in ${only}` : ''}</h1>
<p role="status">${total} ${total === 1 ? 'package' : 'packages'}</p>
<ul class="packages" data-testid="results">${results}</ul>
${mirrors.map((m) => h`<p class="muted" data-testid="mirror-not-searched">${m.name} (mirror of ${m.mirror!.upstream.url}) is not searched here: <a href="/-/search?repo=${encodeURIComponent(m.name)}${q ? `&q=${encodeURIComponent(q)}` : ''}">look among its cached packages by name</a>.</p>`)}
<nav aria-label="Pages">${pageNo > 1 ? h`<a href="${params(pageNo - 1)}">Previous page</a> ` : ''}${more ? h`<a href="${params(pageNo + 1)}">Next page</a>` : ''}</nav>`,
      { query: q },
    );
  };

  const readme = async (service: RepoService, name: string, version: string): Promise<string | null> => {
    const cacheKey = `${service.repository}/${name}/${version}`;
    if (readmes.has(cacheKey)) return readmes.get(cacheKey)!;
    const obj = await service.store.get(tarballKey(name, version));
    let rendered: string | null = null;
    try {
      rendered = obj ? readmeOf(obj.body) : null;
    } catch (err) {
      opts.logger?.warn({ err: formatError(err), package: name, version }, 'could not render the README');
    }
    if (readmes.size >= README_CACHE) readmes.delete(readmes.keys().next().value!);
    readmes.set(cacheKey, rendered);
    return rendered;
  };

  const depLink = (repo: HostedRepository, dep: { package: string; repository?: string }): Html => {
    const where = dep.repository ?? repo.name;
    if (byName.has(where)) return h`<a href="${packageUrl(where, dep.package)}">${dep.package}</a>`;
    if (where === 'hexpm') return h`<a href="https://hex.pm/packages/${dep.package}" rel="noopener">${dep.package}</a> <span class="muted">(hex.pm)</span>`;
    return h`${dep.package} <span class="muted">(${where})</span>`;
  };

  const packagePage = async (req: IncomingMessage, res: ServerResponse, id: Identity | null, repoName: string, name: string): Promise<void> => {
    const repo = byName.get(repoName);
    if (repo?.mirror && NAME_RE.test(name) && canRead(id, repo, name)) return mirrorPackagePage(req, res, id, repo, name);
    // A package the viewer may not read is "not found", exactly like one that does not exist.
    if (!repo || !repo.service || !NAME_RE.test(name) || !canRead(id, repo, name)) return notFound(req, res, id, `There is no package ${name} in ${repoName} that you can see.`);
    const service = repo.service;
    const summary = await SearchIndex.of(service).get(name);
    if (!summary) return notFound(req, res, id, `There is no package ${name} in ${repoName} that you can see.`);
    const releases = service.releases(name).sort((a, b) => compareVersions(b.version, a.version));
    const shown = releases.find((r) => r.version === summary.latestStableVersion) ?? releases[0]!;
    const meta = await service.metadata(name, shown.version);
    const configs = configsOf(repo.name, name, meta.app, shown.version);
    const repoRoot = repo.root ? '' : `/repos/${repo.name}`;
    const hasDocs = await service.hasDocs(name, shown.version);
    const docsRoot = `${repoRoot}/docs/${name}/`;
    const body = await readme(service, name, shown.version);
    const snippet = (label: string, key: string, text: string): Html => h`<h3>${label}</h3><div class="snippet"><pre><code id="dep-${key}">${text}</code></pre><button type="button" data-copy="dep-${key}" hidden>Copy</button></div>`;
    const links = meta.links.map(([label, url]) => {
      const href = safeHref(url);
      return href ? h`<li><a href="${href}" rel="noopener nofollow">${label}</a></li>` : h`<li>${label}: ${url}</li>`;
    });
    const rows = releases.map(
      (r) =>
        h`<tr data-testid="release" data-version="${r.version}"><td>${r.version}${r.version.includes('-') ? h` <span class="badge">pre-release</span>` : ''}</td><td>${day(r.publishedAt)}</td><td>${
          r.retired ? h`<span class="badge" data-testid="retired">⚠ retired: ${r.retired.reason}</span>${r.retired.message ? h` ${r.retired.message}` : ''}` : ''
        }${(r.advisories ?? []).map((a, i) => h`${r.retired || i > 0 ? h`<br>` : ''}${advisoryText(a)}`)}</td><td><a href="${repoRoot}/tarballs/${name}-${r.version}.tar" download>tarball</a></td></tr>`,
    );
    const advisories = service.advisories(name);
    const advisoryList = advisories.map(
      (v) =>
        h`<li data-testid="package-advisory" data-id="${v.advisory.id}">${advisoryText(v.advisory)}<br><span class="muted">affects ${v.versions.join(', ')}${v.advisory.aliases.length ? ` · also known as ${v.advisory.aliases.join(', ')}` : ''}</span></li>`,
    );
    const shownAdvisories = shown.advisories ?? [];
    const advisoryNote = shownAdvisories.length
      ? h`<p class="warning" role="note"><strong>⚠ ${shown.version} has ${shownAdvisories.length === 1 ? 'a security advisory' : `${shownAdvisories.length} security advisories`}</strong>: see <a href="#advisories-h">Advisories</a>.</p>`
      : '';
    const retiredNote = shown.retired ? h`<p class="warning" role="note"><strong>⚠ Retired (${shown.retired.reason})</strong>${shown.retired.message ? `: ${shown.retired.message}` : ''}</p>` : '';
    const deps = shown.dependencies.map((d) => h`<li>${depLink(repo, d)} <code>${d.requirement}</code>${d.optional ? h` <span class="muted">optional</span>` : ''}</li>`);
    await page(
      req,
      res,
      id,
      `${name} ${shown.version}`,
      h`<div class="layout"><div>
<p class="muted"><a href="/-/search?repo=${encodeURIComponent(repo.name)}">${repo.name}</a></p>
<h1>${name} <span class="muted">${shown.version}</span></h1>
<p data-testid="description">${meta.description ?? ''}</p>
${retiredNote}
${advisoryNote}
<section aria-labelledby="readme-h"><h2 id="readme-h">README</h2>${body === null ? h`<p class="muted">This release has no README.</p>` : h`<div class="readme" data-testid="readme">${raw(body)}</div>`}</section>
${advisoryList.length ? h`<section aria-labelledby="advisories-h"><h2 id="advisories-h">Advisories</h2><ul class="advisories">${advisoryList}</ul></section>` : ''}
<section aria-labelledby="versions-h"><h2 id="versions-h">Versions</h2><div class="table-wrap" role="region" aria-labelledby="versions-h" tabindex="0"><table><thead><tr><th scope="col">Version</th><th scope="col">Published</th><th scope="col">Status</th><th scope="col">Download</th></tr></thead><tbody>${rows}</tbody></table></div></section>
</div><aside aria-label="About ${name}">
<h2>Install</h2>
${snippet('Mix', 'mix', configs['mix.exs']!)}${snippet('rebar3', 'rebar', configs['rebar.config']!)}${snippet('erlang.mk', 'erlangmk', configs['erlang.mk']!)}
<dl class="facts">
<dt>Licenses</dt><dd>${meta.licenses.length ? meta.licenses.join(', ') : 'none given'}</dd>
${summary.maintainers.length ? h`<dt>Maintainers</dt><dd>${summary.maintainers.join(', ')}</dd>` : ''}
${links.length ? h`<dt>Links</dt><dd><ul>${links}</ul></dd>` : ''}
<dt>Docs</dt><dd>${hasDocs ? h`<a href="${docsRoot}${shown.version}/" data-testid="docs-link">Documentation for ${shown.version}</a>` : 'not published'}</dd>
<dt>Dependencies</dt><dd>${deps.length ? h`<ul>${deps}</ul>` : 'none'}</dd>
</dl>
</aside></div>`,
    );
  };

  const mirrorBadge = (repo: HostedRepository): Html => h`<span class="badge">mirror of ${repo.mirror!.upstream.url} — cached only</span>`;

  /** A mirror's cached packages, by name (descriptions live in tarballs the mirror may not hold). */
  const mirrorList = async (req: IncomingMessage, res: ServerResponse, id: Identity | null, repo: HostedRepository, q: string, pageNo: number): Promise<void> => {
    const words = q.toLowerCase().split(/\s+/).filter(Boolean);
    const names = (await cachedPackageNames(repo)).filter((n) => canRead(id, repo, n) && words.every((w) => n.includes(w)));
    const shown = names.slice((pageNo - 1) * 50, pageNo * 50);
    const params = (p: number): string => `/-/search?${new URLSearchParams({ ...(q ? { q } : {}), repo: repo.name, page: String(p) }).toString()}`;
    await page(
      req,
      res,
      id,
      q ? `Search: ${q}` : `${repo.name}: cached packages`,
      h`<h1>${q ? `Cached packages matching “${q}”` : 'Cached packages'} in ${repo.name}</h1>
<p data-testid="mirror-note">${mirrorBadge(repo)}: only packages someone has fetched through this server are listed, by name.</p>
<p role="status">${names.length} ${names.length === 1 ? 'package' : 'packages'}</p>
<ul class="packages" data-testid="results">${shown.map((n) => h`<li data-testid="package" data-name="${n}"><a href="${packageUrl(repo.name, n)}"><strong>${n}</strong></a></li>`)}</ul>
<nav aria-label="Pages">${pageNo > 1 ? h`<a href="${params(pageNo - 1)}">Previous page</a> ` : ''}${names.length > pageNo * 50 ? h`<a href="${params(pageNo + 1)}">Next page</a>` : ''}</nav>`,
      { query: q },
    );
  };

  /** A mirror's package: its cached, verified `packages/NAME`; downloads only for cached tarballs. */
  const mirrorPackagePage = async (req: IncomingMessage, res: ServerResponse, id: Identity | null, repo: HostedRepository, name: string): Promise<void> => {
    const pkg = await cachedPackage(repo, name);
    if (!pkg) return notFound(req, res, id, `${name} is not cached in ${repo.name} (a mirror of ${repo.mirror!.upstream.url}); it is fetched the first time a client asks for it.`);
    const releases = [...pkg.releases].sort((a, b) => compareVersions(b.version, a.version));
    const cached = await cachedTarballs(
      repo,
      name,
      releases.map((r) => r.version),
    );
    const repoRoot = repo.root ? '' : `/repos/${repo.name}`;
    const shown = releases.find((r) => !r.version.includes('-')) ?? releases[0];
    const rows = releases.map(
      (r) =>
        h`<tr data-testid="release" data-version="${r.version}"><td>${r.version}</td><td>${
          r.retired ? h`<span class="badge" data-testid="retired">⚠ retired: ${r.retired.reason}</span>${r.retired.message ? h` ${r.retired.message}` : ''}` : ''
        }${(r.advisories ?? []).map((a, i) => h`${r.retired || i > 0 ? h`<br>` : ''}${advisoryText(a)}`)}</td><td>${cached.has(r.version) ? h`<a href="${repoRoot}/tarballs/${name}-${r.version}.tar" download>tarball</a>` : h`<span class="muted">not cached</span>`}</td></tr>`,
    );
    const deps = (shown?.dependencies ?? []).map((d) => h`<li>${depLink(repo, d)} <code>${d.requirement}</code>${d.optional ? h` <span class="muted">optional</span>` : ''}</li>`);
    await page(
      req,
      res,
      id,
      `${name} (${repo.name})`,
      h`<p class="muted"><a href="/-/search?repo=${encodeURIComponent(repo.name)}">${repo.name}</a></p>
<h1>${name}${shown ? h` <span class="muted">${shown.version}</span>` : ''}</h1>
<p data-testid="mirror-note">${mirrorBadge(repo)}: this page shows the registry entry this server has cached and verified with the upstream's key; descriptions, READMEs and docs are on the upstream.</p>
<section aria-labelledby="versions-h"><h2 id="versions-h">Versions</h2><div class="table-wrap" role="region" aria-labelledby="versions-h" tabindex="0"><table><thead><tr><th scope="col">Version</th><th scope="col">Status</th><th scope="col">Download</th></tr></thead><tbody>${rows}</tbody></table></div></section>
<section aria-labelledby="deps-h"><h2 id="deps-h">Dependencies${shown ? ` of ${shown.version}` : ''}</h2>${deps.length ? h`<ul>${deps}</ul>` : h`<p>none</p>`}</section>`,
    );
  };

  const assets = (req: IncomingMessage, res: ServerResponse, name: string): void => {
    const a = asset(name);
    if (!a) {
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' });
      res.end('the web assets are not built: run "pnpm build"\n');
      return;
    }
    const headers = { 'content-type': a.type, etag: a.etag, 'cache-control': 'no-cache', 'x-content-type-options': 'nosniff' };
    if (req.headers['if-none-match'] === a.etag) {
      res.writeHead(304, headers);
      res.end();
      return;
    }
    res.writeHead(200, { ...headers, 'content-length': String(a.body.length) });
    res.end(req.method === 'HEAD' ? undefined : a.body);
  };

  return {
    matches(req) {
      const url = req.url ?? '/';
      // Most requests are for registry files: rule them out before any split or pattern.
      if (url.charCodeAt(1) !== 0x2d && url !== '/' && url[1] !== '?' && !url.includes('/docs/')) return false;
      const path = url.split('?', 1)[0]!;
      if (path === '/-' || path.startsWith('/-/')) return true;
      if (path === '/' && (req.method === 'GET' || req.method === 'HEAD') && wantsHtml(req)) return true;
      return docsPath(path) !== null;
    },
    async handle(req, res, state) {
      const url = new URL(req.url ?? '/', 'http://host');
      const path = url.pathname;
      try {
        if (docsPath(path) !== null) {
          state.route = '/docs';
          return await docs.handle(req, res, state);
        }
        state.route = '/-';
        if (path.startsWith('/-/assets/')) return assets(req, res, path.slice('/-/assets/'.length));
        if (path === '/-/login' || path === '/-/logout' || path.startsWith('/-/tokens')) {
          return await sessions.handle(req, res, path, { page: (id, title, body, status) => page(req, res, id, title, body, status ? { status } : {}), repositories: repos });
        }
        if (req.method !== 'GET' && req.method !== 'HEAD') {
          res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain; charset=utf-8' });
          res.end('method not allowed\n');
          return;
        }
        const id = await viewer(req);
        state.identity = id;
        if (path === '/' || path === '/-/' || path === '/-') return await index(req, res, id);
        if (path === '/-/search') return await searchPage(req, res, id, url.searchParams);
        const pkg = /^\/-\/packages\/([^/]+)\/([^/]+)\/?$/.exec(path);
        if (pkg) return await packagePage(req, res, id, decodedOr(pkg[1]!), pkg[2]!);
        return await notFound(req, res, id, 'There is no page here.');
      } catch (err) {
        opts.logger?.error({ err: formatError(err), path: path.slice(0, 200) }, 'web page failed');
        if (!res.headersSent) sendPage(req, res, 500, layout({ title: 'Error', user: null }, h`<h1>Something went wrong</h1><p>The server could not show this page; the log says why.</p>`));
        else res.destroy();
      }
    },
  };
}
