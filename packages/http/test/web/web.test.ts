/**
 * The web UI over a real server (HTTP level; web/browser.test.ts drives it in Chromium): the
 * repository and API paths answer clients exactly as with the UI off, `/` is a page only for a
 * browser, package pages render the README sanitised, private packages, pages and docs stay
 * hidden from logged-out viewers, docs are unpacked and served sandboxed, unsafe docs tarballs
 * are refused, login sets a hardened cookie, and forms without the CSRF token are refused.
 */
import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { HexrepoError } from '@hexrepo/core';
import { docsKey } from '@hexrepo/repo';
import { writeTar } from '@hexrepo/tarball';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Access, createHostHandler, listen, type RunningServer } from '../../src/index.js';
import { createDocsHandler, docsFootprint, unpackDocs } from '../../src/web/docs.js';
import { raw } from '../helpers.js';
import { exdocTarball, PASSWORD, pkg, startWebHost, type WebHost } from './fixture.js';

let host: WebHost;
let plain: RunningServer;

const get = (path: string, headers: Record<string, string> = {}) => raw(host.server.url, path, { headers });
const text = (r: { body: Buffer }): string => r.body.toString('utf8');

/** Log in through the form, as a browser does: fetch the form (its CSRF cookie), post it, keep the session cookie. */
async function login(username: string, password = PASSWORD, next = '/-/'): Promise<{ status: number; cookie: string | null; setCookie: string[]; location: string | undefined }> {
  const form = await get('/-/login');
  const csrfCookie = String(form.headers['set-cookie']).split(';')[0]!;
  const csrf = /name="csrf" value="([^"]+)"/.exec(text(form))![1]!;
  const res = await raw(host.server.url, '/-/login', {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: csrfCookie, origin: host.server.url },
    body: new URLSearchParams({ csrf, username, password, next }).toString(),
  });
  const setCookie = ([] as string[]).concat(res.headers['set-cookie'] ?? []);
  const session = setCookie.find((c) => c.startsWith('hexrepo_session=') && !c.startsWith('hexrepo_session=;'));
  return { status: res.status, cookie: session ? session.split(';')[0]! : null, setCookie, location: typeof res.headers.location === 'string' ? res.headers.location : undefined };
}

beforeAll(async () => {
  host = await startWebHost();
  // The same repositories and credentials with the web UI off: what clients got before it existed.
  plain = await listen(
    createHostHandler({
      repositories: [
        { name: 'acme', store: host.acme.store, service: host.acme, visibility: 'public', root: true },
        { name: 'internal', store: host.internal.store, service: host.internal, visibility: 'private' },
      ],
      access: new Access({ visibility: 'public', users: [], tokens: host.tokens }),
      web: false,
    }),
    { host: '127.0.0.1', port: 0 },
  );
}, 60_000);

afterAll(async () => {
  await plain?.close();
  await host?.close();
});

describe('clients see the repository and the API exactly as without the web UI', () => {
  const paths = [
    '/',
    '/names',
    '/versions',
    '/public_key',
    '/packages/widget',
    '/tarballs/widget-1.2.0.tar',
    '/docs/widget-1.2.0.tar.gz',
    '/repos/internal/names',
    '/repos/internal/packages/team_secret',
    '/api/packages/widget',
    '/api/packages?search=widget',
    '/api/repos/internal/packages/team_secret',
    '/nothing',
    '/repos/nope/names',
  ];
  for (const accept of [undefined, 'application/vnd.hex+erlang', '*/*']) {
    it(`same status, type and bytes with Accept: ${accept ?? '(none)'}`, async () => {
      for (const path of paths) {
        const headers: Record<string, string> = accept ? { accept } : {};
        const [a, b] = await Promise.all([raw(host.server.url, path, { headers }), raw(plain.url, path, { headers })]);
        // API responses name the server's own address in their URLs: compare them with it replaced.
        const norm = (r: { body: Buffer }, url: string) => r.body.toString('latin1').replaceAll(url.replace('http://', ''), 'HOST');
        expect({ path, status: a.status, type: a.headers['content-type'] }).toEqual({ path, status: b.status, type: b.headers['content-type'] });
        expect(norm(a, host.server.url) === norm(b, plain.url), path).toBe(true);
      }
    });
  }

  it('`/` is the index only for a browser (Accept: text/html)', async () => {
    const page = await get('/', { accept: 'text/html,application/xhtml+xml' });
    expect(page.status).toBe(200);
    expect(page.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(text(page)).toContain('<h1>Repositories</h1>');
    expect((await get('/')).status).toBe(404);
  });
});

describe('pages', () => {
  it('the index lists the public repository with its package count and recent releases, not the private one', async () => {
    const page = text(await get('/-/'));
    expect(page).toContain('3 packages');
    expect(page).toContain('data-name="widget"');
    expect(page).not.toContain('internal');
    expect(page).not.toContain('team_secret');
  });

  it('a package page: description, versions with dates, retirement in words, dependencies linked, snippets, docs and downloads', async () => {
    const page = text(await get('/-/packages/acme/widget'));
    expect(page).toContain('<h1>widget <span class="muted">1.2.0</span></h1>');
    expect(page).toContain('Makes widgets for everyone');
    expect(page).toMatch(/data-version="2\.0\.0-rc\.1"><td>2\.0\.0-rc\.1 <span class="badge">pre-release<\/span><\/td><td>\d{4}-\d\d-\d\d<\/td>/);
    expect(page).toContain('⚠ retired: security</span> CVE-2026-0001: use 1.2.0');
    expect(page).toContain('<a href="/-/packages/acme/gadget">gadget</a>');
    expect(page).toContain('<a href="https://hex.pm/packages/jason" rel="noopener">jason</a>');
    expect(page).toContain('{:widget, &#34;~&#62; 1.2&#34;, repo: &#34;acme&#34;}');
    expect(page).toContain('dep_widget = hex 1.2.0');
    expect(page).toContain('<a href="/docs/widget/1.2.0/" data-testid="docs-link">');
    expect(page).toContain('<a href="/tarballs/widget-1.0.0.tar" download>');
    expect(page).toContain('Makes <strong>widgets</strong>');
  });

  it('advisories in words, linked: per version, a note on the shown release, and the package-level list', async () => {
    const page = text(await get('/-/packages/acme/widget'));
    const row = (v: string): string => new RegExp(`<tr data-testid="release" data-version="${v.replace(/\./g, '\\.')}">[\\s\\S]*?</tr>`).exec(page)![0];
    expect(row('1.0.0')).toContain(
      '<span class="badge" data-testid="advisory">⚠ advisory: high</span> <a href="https://github.com/advisories/GHSA-abcd-1234-wxyz" rel="noopener nofollow">GHSA-abcd-1234-wxyz</a>: Widgets leak &#60;b&#62;secrets&#60;/b&#62;',
    );
    expect(row('1.0.0')).toContain('⚠ retired: security');
    expect(row('1.2.0')).toContain('⚠ advisory: low</span> <a href="https://security.example.com/ACME-2026-7" rel="noopener nofollow">ACME-2026-7</a>: Slow on long names');
    expect(row('2.0.0-rc.1')).not.toContain('advisory');
    expect(page).toContain('<strong>⚠ 1.2.0 has a security advisory</strong>');
    const list = /<h2 id="advisories-h">Advisories<\/h2>([\s\S]*?)<\/section>/.exec(page)![1]!;
    expect([...list.matchAll(/data-testid="package-advisory" data-id="([^"]+)"/g)].map((m) => m[1])).toEqual(['ACME-2026-7', 'GHSA-abcd-1234-wxyz']);
    expect(list).toContain('affects 1.0.0 · also known as CVE-2026-0002');
    expect(list).toContain('affects 1.2.0');
    // A package without advisories has no such section.
    expect(text(await get('/-/packages/acme/gadget'))).not.toContain('Advisories');
  });

  it('a README with script injection is sanitised on the server (the browser test checks nothing runs)', async () => {
    const page = text(await get('/-/packages/acme/evil'));
    const readme = /<div class="readme" data-testid="readme">([\s\S]*?)<\/div><\/section>/.exec(page)![1]!;
    expect(readme).toContain('Plain <strong>bold</strong> text survives.');
    for (const bad of ['<script', 'onerror', 'onclick', 'javascript:', 'data:text', '<iframe', 'style=']) expect(readme.toLowerCase()).not.toContain(bad);
    // The metadata is escaped too: a javascript: link is shown as text, never as a link.
    expect(page).not.toContain('href="javascript:');
    expect(page).toContain('&#60;script&#62;alert(&#34;desc&#34;)');
  });

  it("a README's ids cannot take those of the page: the Copy button copies the real dependency line", async () => {
    await host.acme.publish(pkg('clobber', '1.0.0', { readme: '<h2 id="dep-mix">{:evil, git: "https://evil.example/evil.git"}</h2>\n\n<h3 id="main">x</h3>\n\n[up](#dep-mix)\n' }));
    const page = text(await get('/-/packages/acme/clobber'));
    for (const id of ['dep-mix', 'main']) expect(page.match(new RegExp(`id="${id}"`, 'g')), id).toHaveLength(1);
    expect(page).toContain('<h2 id="user-content-dep-mix">');
    expect(page).toContain('<a href="#user-content-dep-mix">up</a>');
    expect(/<code id="dep-mix">([^<]*)<\/code>/.exec(page)![1]).toBe('{:clobber, &#34;~&#62; 1.0&#34;, repo: &#34;acme&#34;}');
  });

  it('a package path with malformed percent-encoding is not found, not a server error', async () => {
    for (const path of ['/-/packages/%E0/widget', '/-/packages/%/widget', '/-/packages/acme/%E0']) expect((await get(path)).status, path).toBe(404);
  });

  it('pages carry a CSP, an ETag, and answer 304 to a matching If-None-Match', async () => {
    const first = await get('/-/packages/acme/widget');
    expect(first.headers['content-security-policy']).toContain("script-src 'self'");
    expect(first.headers['content-security-policy']).toContain("frame-ancestors 'none'");
    const etag = String(first.headers.etag);
    expect(etag).toMatch(/^"[A-Za-z0-9_-]{27}"$/);
    expect((await get('/-/packages/acme/widget', { 'if-none-match': etag })).status).toBe(304);
    const css = await get('/-/assets/app.css');
    expect(css.status).toBe(200);
    expect(css.headers['content-type']).toBe('text/css; charset=utf-8');
    expect((await get('/-/assets/app.css', { 'if-none-match': String(css.headers.etag) })).status).toBe(304);
  });
});

describe('private repositories', () => {
  it('logged out: their packages, pages, search results and docs are not found', async () => {
    expect((await get('/-/packages/internal/team_secret')).status).toBe(404);
    expect(text(await get('/-/search?q=secret'))).not.toContain('team_secret');
    expect((await get('/repos/internal/docs/team_secret/0.1.0/readme.html')).status).toBe(404);
    expect((await get('/repos/internal/docs/team_secret/')).status).toBe(404);
    // A user without read access to it is no better off.
    const bob = await login('bob');
    expect(bob.cookie).not.toBeNull();
    expect((await get('/-/packages/internal/team_secret', { cookie: bob.cookie! })).status).toBe(404);
    expect((await get('/repos/internal/docs/team_secret/0.1.0/readme.html', { cookie: bob.cookie! })).status).toBe(404);
  });

  it('logged in with read access: listed, searchable, shown, docs served', async () => {
    const alice = await login('alice');
    const cookie = alice.cookie!;
    expect(text(await get('/-/', { cookie }))).toContain('team_secret');
    expect(text(await get('/-/search?q=secret', { cookie }))).toContain('data-name="team_secret"');
    const page = text(await get('/-/packages/internal/team_secret', { cookie }));
    expect(page).toContain('Top secret internal package');
    expect(page).toContain('<a href="/-/packages/acme/widget">widget</a>');
    expect(page).toContain('{:team_secret, &#34;~&#62; 0.1.0&#34;, repo: &#34;internal&#34;}');
    // Private docs: the session is sent to a link of its own, which works without the cookie
    // (a sandboxed docs page's own requests carry none) and dies with the session.
    const toLink = await get('/repos/internal/docs/team_secret/0.1.0/readme.html', { cookie });
    expect(toLink.status).toBe(302);
    const link = String(toLink.headers.location);
    expect(link).toMatch(/^\/repos\/internal\/docs\/team_secret\/0\.1\.0\/~[a-z0-9]{10}\.\d+\.[A-Za-z0-9_-]{43}\/readme\.html$/);
    expect((await get(link)).status).toBe(200);
    expect((await get(link.replace('readme.html', 'dist/html-XYZ789.js'))).status).toBe(200);
    // Not for another package or version, nor with a changed MAC.
    expect((await get(link.replace('/team_secret/', '/team_other/'))).status).toBe(404);
    expect((await get(link.replace(/\.([A-Za-z0-9_-])([A-Za-z0-9_-]{42})\//, (_m, a: string, b: string) => `.${a === 'A' ? 'B' : 'A'}${b}/`))).status).toBe(404);
    await host.tokens.revoke(link.split('/~')[1]!.slice(0, 10));
    expect((await get(link)).status).toBe(404);
  });

  it('a user limited to some packages sees only those: in the index, its count, search, pages and docs', async () => {
    const { cookie } = await login('carol');
    const index = text(await get('/-/', { cookie: cookie! }));
    expect(index).toContain('data-name="ops_tool"');
    expect(index).not.toContain('team_secret');
    expect(index).toMatch(/<h2 id="repo-internal">[\s\S]*?<p>1 package ·/);
    expect(text(await get('/-/search?q=&repo=internal', { cookie: cookie! }))).not.toContain('team_secret');
    expect((await get('/-/packages/internal/ops_tool', { cookie: cookie! })).status).toBe(200);
    expect((await get('/-/packages/internal/team_secret', { cookie: cookie! })).status).toBe(404);
    expect((await get('/repos/internal/docs/team_secret/0.1.0/readme.html', { cookie: cookie! })).status).toBe(404);
  });
});

describe('login, sessions and CSRF', () => {
  it('the session cookie is HttpOnly and SameSite=Lax, stored as a hashed, expiring token owned by the user', async () => {
    const alice = await login('alice');
    expect(alice.status).toBe(303);
    const set = alice.setCookie.find((c) => c.startsWith('hexrepo_session='))!;
    expect(set).toMatch(/; HttpOnly/);
    expect(set).toMatch(/; SameSite=Lax/);
    expect(set).not.toMatch(/; Secure/);
    const secret = alice.cookie!.slice('hexrepo_session='.length);
    const session = host.tokens.list().find((t) => t.id === secret.split('_')[1]);
    expect(session).toMatchObject({ user: 'alice', label: 'web session', grants: [{ repository: 'internal', scopes: ['read', 'write'], packages: [] }] });
    expect(Date.parse(session!.expiresAt!)).toBeGreaterThan(Date.now());
    // Only the hash is stored.
    expect(JSON.stringify(host.tokens.list())).not.toContain(secret);
    expect(createHash('sha256').update(secret).digest('hex')).toHaveLength(64);
  });

  it('a session is not an API key: GET /api/keys leaves it out, and no key may take its label', async () => {
    await login('alice');
    const basic = `Basic ${Buffer.from(`alice:${PASSWORD}`).toString('base64')}`;
    const keys = await fetch(`${host.server.url}/api/keys`, { headers: { authorization: basic, accept: 'application/json' } });
    expect(keys.status).toBe(200);
    expect(((await keys.json()) as { name: string }[]).map((k) => k.name)).not.toContain('web session');
    expect(host.tokens.list().some((t) => t.user === 'alice' && t.label === 'web session')).toBe(true);
    const taken = await fetch(`${host.server.url}/api/keys`, {
      method: 'POST',
      headers: { authorization: basic, accept: 'application/json', 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'web session', permissions: [{ domain: 'api', resource: 'read' }] }),
    });
    expect(taken.status).toBe(422);
  });

  it('a wrong password is refused with a message, and a login post without the CSRF cookie is refused', async () => {
    const bad = await login('alice', 'wrong password!!');
    expect(bad.status).toBe(401);
    expect(bad.cookie).toBeNull();
    const noCsrf = await raw(host.server.url, '/-/login', { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `username=alice&password=${encodeURIComponent(PASSWORD)}&csrf=x` });
    expect(noCsrf.status).toBe(403);
    expect(noCsrf.headers['set-cookie'] ?? []).not.toEqual(expect.arrayContaining([expect.stringMatching(/^hexrepo_session=hxr_/)]));
  });

  it('creating a token needs the CSRF token of the session; without it (or from another origin) nothing is created', async () => {
    const { cookie } = await login('alice');
    const before = host.tokens.list().length;
    const body = new URLSearchParams({ label: 'forged', repository: 'internal', scope: 'read', expires: '7' }).toString();
    const forged = await raw(host.server.url, '/-/tokens', { method: 'POST', headers: { cookie: cookie!, 'content-type': 'application/x-www-form-urlencoded' }, body });
    expect(forged.status).toBe(403);
    const page = text(await get('/-/tokens', { cookie: cookie! }));
    const csrf = /name="csrf" value="([^"]+)"/.exec(page)![1]!;
    const crossOrigin = await raw(host.server.url, '/-/tokens', { method: 'POST', headers: { cookie: cookie!, origin: 'https://evil.example', 'content-type': 'application/x-www-form-urlencoded' }, body: `${body}&csrf=${csrf}` });
    expect(crossOrigin.status).toBe(403);
    expect(host.tokens.list().length).toBe(before);
    // Nor may a user give a token more than they have.
    const wider = await raw(host.server.url, '/-/tokens', {
      method: 'POST',
      headers: { cookie: cookie!, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ label: 'wider', repository: 'internal', scope: 'admin', expires: '7', csrf }).toString(),
    });
    expect(wider.status).toBe(403);
    expect(host.tokens.list().length).toBe(before);
  });

  it('the `next` of a login never leaves the site, whatever a browser strips or a header cannot hold', async () => {
    // A browser drops tabs and newlines from a URL, so `/<TAB>/evil.example` is `//evil.example` to it.
    for (const next of ['/\t/evil.example/', '/\n/evil.example/', '/\r\n/evil.example/', '/\t\\evil.example/', '/€/ünïcode?q=é#x']) {
      const { status, location } = await login('alice', PASSWORD, next);
      expect(status, JSON.stringify(next)).toBe(303);
      expect(new URL(location!, host.server.url).origin, JSON.stringify(next)).toBe(host.server.url);
    }
    expect((await login('alice', PASSWORD, '/-/packages/acme/widget?x=1')).location).toBe('/-/packages/acme/widget?x=1');
    const page = text(await get(`/-/login?next=${encodeURIComponent('/\t/evil.example/')}`));
    expect(page).not.toMatch(/name="next" value="\/\t\//);
  });

  it('no token from the tokens page may take the label of the login sessions', async () => {
    const { cookie } = await login('alice');
    const csrf = /name="csrf" value="([^"]+)"/.exec(text(await get('/-/tokens', { cookie: cookie! })))![1]!;
    const before = host.tokens.list().length;
    const res = await raw(host.server.url, '/-/tokens', {
      method: 'POST',
      headers: { cookie: cookie!, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ label: 'web session', repository: 'internal', scope: 'read', expires: 'never', csrf }).toString(),
    });
    expect(res.status).toBe(422);
    expect(host.tokens.list().length).toBe(before);
  });

  it('another site cannot log the viewer out: no revocation, no cleared cookie', async () => {
    const { cookie } = await login('alice');
    // What a cross-site form POST sends: its Origin, and no SameSite=Lax cookie.
    const forged = await raw(host.server.url, '/-/logout', { method: 'POST', headers: { origin: 'https://evil.example', 'content-type': 'application/x-www-form-urlencoded' }, body: 'csrf=x' });
    expect(forged.status).toBe(403);
    expect(forged.headers['set-cookie'] ?? []).not.toEqual(expect.arrayContaining([expect.stringMatching(/^hexrepo_session=;/)]));
    const wrongCsrf = await raw(host.server.url, '/-/logout', { method: 'POST', headers: { cookie: cookie!, 'content-type': 'application/x-www-form-urlencoded' }, body: 'csrf=x' });
    expect(wrongCsrf.status).toBe(403);
    expect(wrongCsrf.headers['set-cookie'] ?? []).not.toEqual(expect.arrayContaining([expect.stringMatching(/^hexrepo_session=;/)]));
    expect((await get('/-/packages/internal/team_secret', { cookie: cookie! })).status).toBe(200);
  });

  it('logout revokes the session', async () => {
    const { cookie } = await login('alice');
    const page = text(await get('/-/', { cookie: cookie! }));
    const csrf = /action="\/-\/logout" class="inline"><input type="hidden" name="csrf" value="([^"]+)"/.exec(page)![1]!;
    const out = await raw(host.server.url, '/-/logout', { method: 'POST', headers: { cookie: cookie!, 'content-type': 'application/x-www-form-urlencoded' }, body: `csrf=${csrf}` });
    expect(out.status).toBe(303);
    expect((await get('/-/packages/internal/team_secret', { cookie: cookie! })).status).toBe(404);
  });
});

describe('docs hosting', () => {
  it('/docs/NAME/ goes to the latest stable release with docs; files are served with a sandboxing CSP', async () => {
    const latest = await get('/docs/widget/');
    expect(latest.status).toBe(302);
    expect(latest.headers.location).toBe('/docs/widget/1.2.0/');
    expect((await get('/docs/widget/1.2.0')).headers.location).toBe('/docs/widget/1.2.0/');
    const index = await get('/docs/widget/1.2.0/');
    expect(text(index)).toContain('url=readme.html');
    const page = await get('/docs/widget/1.2.0/Acme.Widget.html');
    expect(page.status).toBe(200);
    expect(page.headers['content-type']).toBe('text/html; charset=utf-8');
    const csp = String(page.headers['content-security-policy']);
    expect(csp).toMatch(/^sandbox allow-scripts allow-popups allow-forms;/);
    expect(csp).not.toContain('allow-same-origin');
    expect((await get('/docs/widget/1.2.0/dist/html-XYZ789.js')).headers['content-type']).toBe('text/javascript; charset=utf-8');
    expect((await get('/docs/widget/1.2.0/../../../names')).status).toBe(404);
    expect((await get('/docs/widget/1.2.0/%2e%2e/%2e%2e/names')).status).toBe(404);
    expect((await get('/docs/widget/9.9.9/index.html')).status).toBe(404);
  });

  it('a docs file whose extension names a property of every object is served as bytes', async () => {
    await host.acme.putDocs(
      'gadget',
      '0.1.0',
      gzipSync(
        writeTar([
          { name: 'index.html', data: Buffer.from('<p>ok</p>') },
          { name: 'x.constructor', data: Buffer.from('<script>1</script>') },
        ]),
      ),
    );
    const res = await get('/docs/gadget/0.1.0/x.constructor');
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toBe('application/octet-stream');
    await host.acme.deleteDocs('gadget', '0.1.0');
  });

  it('a docs tarball with `..`, an absolute path or a link is refused at upload and when unpacked', async () => {
    const bad = [
      { name: '../escape.html', data: Buffer.from('x') },
      { name: '/etc/passwd', data: Buffer.from('x') },
      { name: 'link.html', type: 'symlink' as const, linkname: 'index.html', data: Buffer.alloc(0) },
      { name: 'hard.html', type: 'hardlink' as const, linkname: 'index.html', data: Buffer.alloc(0) },
    ];
    for (const entry of bad) {
      const gz = gzipSync(writeTar([{ name: 'index.html', data: Buffer.from('<p>ok</p>') }, entry]));
      expect(() => unpackDocs(gz), entry.name).toThrow(HexrepoError);
      await expect(host.acme.putDocs('gadget', '0.1.0', gz), entry.name).rejects.toThrow(/CONTENTS_UNSAFE|unsafe|link/i);
    }
    expect(await host.acme.hasDocs('gadget', '0.1.0')).toBe(false);
    expect(unpackDocs(exdocTarball('gadget', '0.1.0')).get('dist/html-XYZ789.js')).toBeDefined();
  });

  it('unpacked docs hold their files, not the archive, and the cache counts names and entries too', () => {
    // 2,000 one-byte files: 2 KB of content in a 2 MB archive (a header and padding per file).
    const many = Array.from({ length: 2000 }, (_, i) => ({ name: `${'p'.repeat(90)}${i}.html`, data: Buffer.from('x') }));
    const files = unpackDocs(gzipSync(writeTar(many)));
    expect(files.size).toBe(2000);
    for (const data of files.values()) expect(data.buffer.byteLength).toBe(1);
    // Empty files with long names cost memory as well: the cache must not see them as free.
    const empty = unpackDocs(gzipSync(writeTar(many.map((f) => ({ ...f, data: Buffer.alloc(0) })))));
    expect(docsFootprint(empty)).toBeGreaterThan(2000 * 2 * 90);
  });

  it('requests for the same docs at once unpack them once, and the cache counts them once', async () => {
    const docs = createDocsHandler({ repositories: [{ name: 'acme', store: host.acme.store, service: host.acme, visibility: 'public', root: true }], canRead: () => true, viewer: () => Promise.resolve(null) });
    const server = await listen((req, res) => void docs.handle(req, res, { identity: null }), { host: '127.0.0.1', port: 0 });
    try {
      const answers = await Promise.all(Array.from({ length: 4 }, () => raw(server.url, '/docs/widget/1.2.0/readme.html')));
      expect(answers.map((a) => a.status)).toEqual([200, 200, 200, 200]);
      const stored = await host.acme.store.get(docsKey('widget', '1.2.0'));
      expect(docs.cachedBytes()).toBe(docsFootprint(unpackDocs(stored!.body)));
    } finally {
      await server.close();
    }
  });
});
