/**
 * The dev page (/_dev/, the vite build in dist/web) in headless Chromium against an in-process dev
 * server: the header and the seeded packages are shown, and tarballs dropped into the watched
 * folder show up without a reload, through the Server-Sent Events stream, and so do problems.
 * Skipped when /usr/bin/chromium is not installed (.ci/run and scripts/test.mjs install it).
 */
import { existsSync } from 'node:fs';
import { copyFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDevServer, type DevServer } from '../src/index.js';

const CHROMIUM = '/usr/bin/chromium';
const FIXTURES = fileURLToPath(new URL('../../../test-fixtures/tarballs/', import.meta.url));
const WEB_INDEX = fileURLToPath(new URL('../dist/web/index.html', import.meta.url));
/** How long a dropped file may take to reach the page: watcher debounce + rebuild + SSE + re-fetch. */
const LIVE_TIMEOUT = 10_000;

const hasChromium = existsSync(CHROMIUM);
if (!hasChromium) console.warn(`[page.test] skipped: ${CHROMIUM} is not installed (apt-get install chromium)`);

describe.skipIf(!hasChromium)('the dev page in headless Chromium', () => {
  let dir: string;
  let dev: DevServer;
  let browser: Browser;
  let page: Page;
  const pageErrors: string[] = [];

  const packageItem = (name: string) => page.locator(`[data-testid="package"][data-name="${name}"]`);
  const logLines = (text: string | RegExp) => page.locator('[data-testid="log-line"]', { hasText: text });

  beforeAll(async () => {
    if (!existsSync(WEB_INDEX)) {
      throw new Error(`${WEB_INDEX} is missing: the page is not built. Run "pnpm build" (or "pnpm --filter @hexrepo/dev build") first.`);
    }
    dir = await mkdtemp(join(tmpdir(), 'hexrepo-dev-page-'));
    dev = await startDevServer({ dir, port: 0, print: () => {} });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'],
    });
    page = await browser.newPage();
    page.on('pageerror', (err) => pageErrors.push(String(err)));
    page.on('console', (msg) => {
      if (msg.type() === 'error') pageErrors.push(`${msg.text()} (${msg.location().url})`);
    });
    await page.goto(`${dev.url}/_dev/`);
  });

  afterAll(async () => {
    await browser?.close();
    await dev?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('shows the repository, its key fingerprint, the client set-up and the seeded packages', async () => {
    await packageItem('hello').waitFor({ timeout: LIVE_TIMEOUT });
    expect(await page.getByTestId('repository').textContent()).toBe('dev');
    expect(await page.getByTestId('fingerprint').textContent()).toBe(dev.fingerprint);
    expect(await page.getByTestId('url').textContent()).toBe(dev.url);
    expect(await page.getByTestId('setup-mix').textContent()).toContain(`mix hex.repo add dev ${dev.url}`);
    expect(await page.getByTestId('setup-rebar3').textContent()).toContain('repo_public_key');

    const names = await page.locator('[data-testid="package"]').evaluateAll((els) => els.map((e) => e.getAttribute('data-name')));
    expect(names).toEqual(['greeter', 'hello']);
    expect(await packageItem('hello').getByTestId('latest').textContent()).toBe('0.1.0');
    expect(await packageItem('greeter').getByTestId('latest').textContent()).toBe('0.1.0');
    expect(await packageItem('greeter').textContent()).toContain('hello ~> 0.1');
    await expect.poll(() => page.getByTestId('connection').getAttribute('data-state'), { timeout: LIVE_TIMEOUT }).toBe('open');
  });

  it('lists a dropped tarball and logs it, without a reload', async () => {
    await page.evaluate(() => Object.assign(globalThis, { notReloaded: true }));
    await copyFile(join(FIXTURES, 'foo-0.1.0.tar'), join(dev.publicDir, 'tarballs', 'foo-0.1.0.tar'));

    await packageItem('foo').waitFor({ timeout: LIVE_TIMEOUT });
    expect(await packageItem('foo').getByTestId('latest').textContent()).toBe('0.1.0');
    await logLines(/added foo 0\.1\.0/)
      .first()
      .waitFor({ timeout: LIVE_TIMEOUT });
    expect(await page.evaluate(() => (globalThis as { notReloaded?: boolean }).notReloaded)).toBe(true);
    const names = await page.locator('[data-testid="package"]').evaluateAll((els) => els.map((e) => e.getAttribute('data-name')));
    expect(names).toEqual(['foo', 'greeter', 'hello']);
  });

  it('shows a broken tarball as a problem, in the log and above the list', async () => {
    await writeFile(join(dev.publicDir, 'tarballs', 'broken-1.0.0.tar'), randomBytes(2048));

    const line = logLines('broken-1.0.0.tar').first();
    await line.waitFor({ timeout: LIVE_TIMEOUT });
    expect(await line.getAttribute('data-type')).toBe('problem');
    expect(await line.textContent()).toMatch(/Problem: broken-1\.0\.0\.tar/);
    await page.locator('[data-testid="problem"][data-file="broken-1.0.0.tar"]').waitFor({ timeout: LIVE_TIMEOUT });
    // The last good registry is still listed.
    expect(await page.locator('[data-testid="package"]').count()).toBe(3);
  });

  it('logs requests to the repository', async () => {
    const res = await fetch(`${dev.url}/names`, { headers: { 'user-agent': 'curl/8.0' } });
    expect(res.status).toBe(200);
    await logLines(/GET \/names 200 .* curl/)
      .first()
      .waitFor({ timeout: LIVE_TIMEOUT });
  });

  it('links to the web UI at /-/, which lists the same packages', async () => {
    const link = page.getByTestId('web-ui');
    expect(await link.getAttribute('href')).toBe('/-/');
    const ui = await browser.newPage();
    try {
      await ui.goto(`${dev.url}/-/`);
      expect(await ui.locator('h1').first().textContent()).toBe('Repositories');
      expect(await ui.locator('[data-testid="package"][data-name="hello"]').count()).toBe(1);
    } finally {
      await ui.close();
    }
  });

  it('raised no errors in the page', () => {
    expect(pageErrors).toEqual([]);
  });
});
