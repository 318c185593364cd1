/**
 * The web UI in headless Chromium (playwright-core, Debian's /usr/bin/chromium) against a real
 * server: browse, search, open a package and read its README, open its docs (ExDoc's layout) and
 * follow an internal link with the sidebar and search working under the sandboxing CSP, log in
 * to the private repository, create a token, use it, revoke it. Security in the browser: README
 * injection does not run, docs cannot read the session cookie nor the host's pages as the viewer.
 * axe-core on the index, search, package and login pages: no serious or critical violation.
 * Skipped when /usr/bin/chromium is not installed.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { raw } from '../helpers.js';
import { PASSWORD, startWebHost, type WebHost } from './fixture.js';

const CHROMIUM = '/usr/bin/chromium';
const hasChromium = existsSync(CHROMIUM);
if (!hasChromium) console.warn(`[web browser.test] skipped: ${CHROMIUM} is not installed (apt-get install chromium)`);
const AXE = createRequire(import.meta.url).resolve('axe-core/axe.min.js');

describe.skipIf(!hasChromium)('the web UI in headless Chromium', () => {
  let host: WebHost;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  const dialogs: string[] = [];
  /** The private docs link of the login session, dead once it logs out. */
  let privateDocs = '';
  const pageErrors: string[] = [];

  const url = (path: string): string => `${host.server.url}${path}`;
  const logIn = async (p: Page, username: string): Promise<void> => {
    await p.goto(url('/-/login'));
    await p.getByLabel('User name').fill(username);
    await p.getByLabel('Password').fill(PASSWORD);
    await p.getByRole('button', { name: 'Log in' }).click();
    await p.waitForURL(url('/-/'));
  };

  beforeAll(async () => {
    host = await startWebHost();
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'],
    });
    context = await browser.newContext();
    page = await context.newPage();
    page.on('dialog', (d) => {
      dialogs.push(d.message());
      void d.dismiss();
    });
    page.on('pageerror', (err) => pageErrors.push(String(err)));
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await host?.close();
  });

  it('browse and search by keyboard, open a package, read its README', async () => {
    await page.goto(url('/'));
    await expect(page.locator('h1').textContent()).resolves.toBe('Repositories');
    await expect(page.locator('[data-testid="package"][data-name="widget"]').count()).resolves.toBe(1);
    // The first Tab reaches the skip link, and the search box is reachable and submits with Enter.
    await page.keyboard.press('Tab');
    await expect(page.evaluate<string | null>('document.activeElement && document.activeElement.textContent')).resolves.toBe('Skip to content');
    await page.getByLabel('Search packages').fill('widgets for everyone');
    await page.keyboard.press('Enter');
    await page.waitForURL(/\/-\/search\?q=/);
    const result = page.locator('[data-testid="results"] a', { hasText: 'widget' });
    await result.focus();
    await page.keyboard.press('Enter');
    await page.waitForURL(url('/-/packages/acme/widget'));
    await expect(page.locator('[data-testid="readme"] strong').textContent()).resolves.toBe('widgets');
    await expect(page.locator('[data-testid="release"][data-version="1.0.0"] [data-testid="retired"]').textContent()).resolves.toContain('retired: security');
    // The page's own script ran (copy buttons shown), so the CSP lets the bundled script through.
    await expect(page.locator('button[data-copy="dep-mix"]').isVisible()).resolves.toBe(true);
    expect(pageErrors).toEqual([]);
  });

  it('is readable at 320 px: nothing wider than the screen', async () => {
    const narrow = await context.newPage();
    await narrow.setViewportSize({ width: 320, height: 640 });
    for (const path of ['/-/', '/-/packages/acme/widget', '/-/search?q=widget', '/-/login']) {
      await narrow.goto(url(path));
      await expect(narrow.evaluate<number>('document.documentElement.scrollWidth'), path).resolves.toBeLessThanOrEqual(320);
    }
    await narrow.close();
  });

  it('script injection in a README renders inert: no dialog, no global set', async () => {
    await page.goto(url('/-/packages/acme/evil'));
    await expect(page.locator('[data-testid="readme"]').textContent()).resolves.toContain('Plain bold text survives.');
    // Give any handler a chance: click what a user would click.
    await page.locator('[data-testid="readme"] div', { hasText: 'styled' }).click();
    await page.locator('[data-testid="readme"] a', { hasText: 'click' }).click();
    await page.waitForLoadState('load');
    await expect(page.evaluate<string | null>('window.__pwned ?? null')).resolves.toBeNull();
    expect(dialogs).toEqual([]);
  });

  it("opens the docs from the package page; ExDoc's sidebar, internal links and search work in the sandbox", async () => {
    await page.goto(url('/-/packages/acme/widget'));
    await page.locator('[data-testid="docs-link"]').click();
    // index.html redirects to readme.html, as ExDoc's does.
    await page.waitForURL(url('/docs/widget/1.2.0/readme.html'));
    await page.waitForSelector('body[data-sidebar="ready"]');
    await expect(page.locator('#sidebar a.sidebar-module').textContent()).resolves.toBe('Acme.Widget');
    await page.locator('#to-widget').click();
    await page.waitForURL(url('/docs/widget/1.2.0/Acme.Widget.html#summary'));
    await expect(page.locator('h1#summary').textContent()).resolves.toBe('Acme.Widget');
    await page.locator('#search-input').fill('widgets');
    await page.keyboard.press('Enter');
    await page.waitForSelector('body[data-search="done"]');
    await expect(page.locator('a.search-result').textContent()).resolves.toBe('Acme.Widget');
  });

  it('logs in to the private repository; its docs work, and cannot read the session cookie or the host as the viewer', async () => {
    await logIn(page, 'alice');
    await expect(page.locator('[data-testid="package"][data-name="team_secret"]').count()).resolves.toBe(1);
    const cookies = await context.cookies();
    expect(cookies.find((c) => c.name === 'hexrepo_session')).toMatchObject({ httpOnly: true, sameSite: 'Lax' });
    await page.goto(url('/-/packages/internal/team_secret'));
    await expect(page.locator('[data-testid="readme"]').textContent()).resolves.toContain('Internal only.');
    await page.locator('[data-testid="docs-link"]').click();
    await page.waitForURL(/\/repos\/internal\/docs\/team_secret\/0\.1\.0\/~[^/]+\/readme\.html$/);
    privateDocs = page.url();
    // The docs' scripts and data load (a private repository's docs need the session: it is sent).
    await page.waitForSelector('body[data-sidebar="ready"]');
    await page.waitForFunction('window.__docsFetch !== undefined');
    // Expressions as text: this test is compiled without the DOM's types.
    const seen = await page.evaluate<{ cookie: string; fetched: string; origin: string }>('({ cookie: window.__docsCookie, fetched: window.__docsFetch, origin: window.origin })');
    // An opaque origin: reading the cookie throws, and the host's pages (the tokens page) cannot be read by the docs.
    expect(seen.origin).toBe('null');
    expect(seen.cookie).toBe('denied: SecurityError');
    expect(seen.fetched).toMatch(/^blocked/);
  });

  it('creates a token on the tokens page, uses it, revokes it', async () => {
    await page.goto(url('/-/tokens'));
    await page.getByLabel('Label').fill('ci reader');
    await page.getByLabel('Repository').selectOption('internal');
    await page.getByLabel('Expires after').selectOption('7');
    await page.getByRole('button', { name: 'Create token' }).click();
    const secret = (await page.locator('[data-testid="new-token"]').textContent())!.trim();
    expect(secret).toMatch(/^hxr_[a-z0-9]{10}_/);
    const registry = (): Promise<number> => raw(host.server.url, '/repos/internal/packages/team_secret', { headers: { authorization: secret } }).then((r) => r.status);
    expect(await registry()).toBe(200);
    // Shown once: a reload shows the list, not the secret.
    await page.goto(url('/-/tokens'));
    await expect(page.locator('[data-testid="new-token"]').count()).resolves.toBe(0);
    await page.getByRole('button', { name: new RegExp(`^Revoke ci reader \\(${secret.split('_')[1]}\\)$`) }).click();
    await page.waitForURL(url('/-/tokens'));
    expect(await registry()).toBe(401);
  });

  it('logging out hides the private repository again', async () => {
    await page.goto(url('/-/'));
    await page.getByRole('button', { name: /^Log out/ }).click();
    await page.waitForURL(url('/-/'));
    await expect(page.locator('[data-name="team_secret"]').count()).resolves.toBe(0);
    for (const docs of [url('/repos/internal/docs/team_secret/0.1.0/readme.html'), privateDocs]) {
      await page.goto(docs);
      await expect(page.locator('body').textContent()).resolves.toContain('no such docs here');
    }
  });

  it('axe-core: no serious or critical violations on the index, search, package and login pages', async () => {
    // axe is injected as a script, which the pages' CSP would refuse: this context bypasses it for the audit only.
    const audit = await browser.newContext({ bypassCSP: true });
    const p = await audit.newPage();
    const found: string[] = [];
    for (const path of ['/-/', '/-/search?q=widget', '/-/packages/acme/widget', '/-/login']) {
      await p.goto(url(path));
      await p.addScriptTag({ path: AXE });
      const violations = await p.evaluate<{ id: string; impact: string | null; nodes: number }[]>('window.axe.run(document).then((r) => r.violations.map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.length })))');
      for (const v of violations) if (v.impact === 'serious' || v.impact === 'critical') found.push(`${path}: ${v.id} (${v.impact}, ${v.nodes} nodes)`);
    }
    await audit.close();
    expect(found).toEqual([]);
  });
});
