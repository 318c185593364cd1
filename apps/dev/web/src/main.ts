/**
 * The dev server's page at /_dev/: repository facts and client set-up, the package list, and a live
 * log fed by the Server-Sent Events at /_dev/events. Plain DOM; every text goes through textContent.
 */
import type { InfoEvent, RebuildEvent, RequestEvent } from '../../src/events.js';

interface Dependency {
  package: string;
  requirement: string;
  optional: boolean;
  app: string;
  repository?: string;
}

interface Release {
  version: string;
  checksum: string;
  retired: { reason: string; message?: string } | null;
  dependencies: Dependency[];
}

interface Problem {
  file: string;
  code: string;
  message: string;
}

/** GET /_dev/api/state, also the data of the `hello` event. */
interface State {
  repository: string;
  url: string;
  fingerprint: string;
  publicKeyPem: string;
  setup: { mix: string; mixFetch: string; mixDep: string; rebar3: string };
  problems: Problem[];
  packages: { name: string; releases: Release[] }[];
}

const MAX_LOG_LINES = 200;

function byId<T extends HTMLElement = HTMLElement>(id: string): T {
  const el = document.getElementById(id);
  if (!el) throw new Error(`#${id} is missing from the page`);
  return el as T;
}

/** A tiny element builder: attributes, then children (strings become text nodes). */
function h(tag: string, attrs: Record<string, string> = {}, ...children: (Node | string | null)[]): HTMLElement {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  for (const c of children) if (c !== null) el.append(c);
  return el;
}

const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? '' : 's'}`;

// ---- state ----------------------------------------------------------------------------------

function renderHeader(state: State): void {
  document.title = `hexrepo dev: ${state.repository}`;
  byId('repository').textContent = state.repository;
  const url = byId<HTMLAnchorElement>('url');
  url.textContent = state.url;
  url.href = state.url;
  byId('fingerprint').textContent = state.fingerprint;
  byId('setup-mix').textContent = state.setup.mix;
  byId('setup-mix-fetch').textContent = state.setup.mixFetch;
  byId('setup-mix-dep').textContent = state.setup.mixDep;
  byId('setup-rebar3').textContent = state.setup.rebar3;
}

function retiredText(r: Release): string {
  if (!r.retired) return '';
  return `retired (${r.retired.reason}${r.retired.message ? `: ${r.retired.message}` : ''})`;
}

function dependencyText(d: Dependency): string {
  const extras = [d.optional ? 'optional' : '', d.app !== d.package ? `app ${d.app}` : '', d.repository ? `repo ${d.repository}` : ''].filter(Boolean);
  return `${d.package} ${d.requirement}${extras.length ? ` (${extras.join(', ')})` : ''}`;
}

function renderPackage(pkg: State['packages'][number]): HTMLElement {
  // Releases come ascending by SemVer; the latest is the highest one not retired, else the highest.
  const latest = [...pkg.releases].reverse().find((r) => !r.retired) ?? pkg.releases[pkg.releases.length - 1];
  const retiredCount = pkg.releases.filter((r) => r.retired).length;
  const releases = h(
    'ul',
    { class: 'releases', 'aria-label': `Releases of ${pkg.name}` },
    ...[...pkg.releases]
      .reverse()
      .map((r) =>
        h(
          'li',
          { 'data-testid': 'release', 'data-version': r.version, ...(r.retired ? { 'data-retired': r.retired.reason } : {}) },
          h('code', {}, r.version),
          r.retired ? ' ' : null,
          r.retired ? h('span', { class: 'retired' }, `[${retiredText(r)}]`) : null,
          r.dependencies.length ? ` depends on ${r.dependencies.map(dependencyText).join('; ')}` : ' no dependencies',
        ),
      ),
  );
  return h(
    'li',
    { 'data-testid': 'package', 'data-name': pkg.name },
    h('h3', {}, pkg.name),
    h('span', { 'data-testid': 'latest' }, latest ? latest.version : '—'),
    ' ',
    h('span', { class: 'meta' }, `(${plural(pkg.releases.length, 'release')}${retiredCount ? `, ` : ''}`, retiredCount ? h('span', { class: 'retired' }, `${retiredCount} retired`) : null, ')'),
    releases,
  );
}

function renderState(state: State): void {
  renderHeader(state);
  const releaseCount = state.packages.reduce((n, p) => n + p.releases.length, 0);
  byId('package-count').textContent = `(${plural(state.packages.length, 'package')}, ${plural(releaseCount, 'release')})`;
  byId('problems').replaceChildren(...state.problems.map((p) => h('li', { 'data-testid': 'problem', 'data-file': p.file }, h('strong', {}, 'Problem: '), `${p.file}: ${p.message} (${p.code})`)));
  byId('no-packages').hidden = state.packages.length > 0;
  byId('packages').replaceChildren(...state.packages.map(renderPackage));
}

// Re-fetches may overlap; only the newest request's answer is rendered.
let fetchSeq = 0;
async function refresh(): Promise<void> {
  const seq = ++fetchSeq;
  try {
    const res = await fetch('/_dev/api/state', { cache: 'no-store' });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    const state = (await res.json()) as State;
    if (seq === fetchSeq) renderState(state);
  } catch (err) {
    log('error', `could not load the state: ${String(err)}`, true);
  }
}

// ---- log ------------------------------------------------------------------------------------

function log(type: string, text: string | (Node | string)[], bad = false, at = new Date().toISOString()): void {
  const list = byId('log');
  const time = new Date(at);
  const line = h(
    'li',
    { 'data-testid': 'log-line', 'data-type': type, ...(bad ? { class: 'bad' } : {}) },
    h('time', { datetime: at }, Number.isNaN(time.getTime()) ? at : time.toLocaleTimeString()),
    ...(typeof text === 'string' ? [text] : text),
  );
  list.prepend(line);
  while (list.children.length > MAX_LOG_LINES) list.lastElementChild?.remove();
}

const ms = (n: number): string => `${n < 10 ? n.toFixed(1) : Math.round(n)} ms`;

function logRebuild(e: RebuildEvent): void {
  const parts: string[] = [];
  if (e.added.length) parts.push(`added ${e.added.map((a) => `${a.name} ${a.version}`).join(', ')}`);
  if (e.removed.length) parts.push(`removed ${e.removed.map((r) => `${r.name} ${r.version}`).join(', ')}`);
  if (e.problems.length) parts.push(plural(e.problems.length, 'problem'));
  if (!parts.length) parts.push(e.initial ? 'initial build' : `no change (${e.changed.join(', ') || 'nothing'})`);
  log('rebuild', `Rebuilt in ${ms(e.ms)}: ${parts.join('; ')} — ${plural(e.packages, 'package')}, ${plural(e.releases, 'release')}`, false, e.at);
  for (const p of e.problems) log('problem', `Problem: ${p.file}: ${p.message} (${p.code})`, true, e.at);
}

function logRequest(e: RequestEvent): void {
  log('request', `${e.method} ${e.path} ${e.status} ${ms(e.ms)} ${e.client}`, e.status >= 500, e.at);
}

// ---- live updates ---------------------------------------------------------------------------

function setConnection(state: 'connecting' | 'open' | 'error' | 'closed'): void {
  const el = byId('connection');
  el.dataset['state'] = state;
  el.textContent = {
    connecting: 'Live updates: connecting…',
    open: 'Live updates: connected',
    error: 'Live updates: disconnected, retrying…',
    closed: 'Live updates: disconnected (reload the page)',
  }[state];
}

function parse<T>(e: Event): T | null {
  try {
    return JSON.parse((e as MessageEvent<string>).data) as T;
  } catch {
    return null;
  }
}

function connect(): void {
  const source = new EventSource('/_dev/events');
  let wasOpen = false;
  source.addEventListener('open', () => {
    setConnection('open');
    if (wasOpen) log('info', 'reconnected');
    wasOpen = true;
  });
  source.addEventListener('error', () => {
    setConnection(source.readyState === EventSource.CLOSED ? 'closed' : 'error');
  });
  source.addEventListener('hello', (e) => {
    const state = parse<State>(e);
    if (state) {
      fetchSeq++; // a re-fetch still in flight is older than this
      renderState(state);
    }
  });
  source.addEventListener('rebuild', (e) => {
    const event = parse<RebuildEvent>(e);
    if (!event) return;
    logRebuild(event);
    void refresh();
  });
  source.addEventListener('request', (e) => {
    const event = parse<RequestEvent>(e);
    if (event) logRequest(event);
  });
  for (const type of ['info', 'error'] as const) {
    source.addEventListener(type, (e) => {
      const event = parse<InfoEvent>(e);
      if (event) log(type, type === 'error' ? `Error: ${event.message}` : event.message, type === 'error', event.at);
    });
  }
}

// ---- copy buttons ---------------------------------------------------------------------------

async function copy(button: HTMLButtonElement): Promise<void> {
  const target = byId(button.dataset['copy'] ?? '');
  const text = target.textContent ?? '';
  try {
    await navigator.clipboard.writeText(text);
    button.textContent = 'Copied';
  } catch {
    // No clipboard access (e.g. not a secure context): select the text for Ctrl+C instead.
    const range = document.createRange();
    range.selectNodeContents(target);
    const selection = window.getSelection();
    selection?.removeAllRanges();
    selection?.addRange(range);
    button.textContent = 'Selected: press Ctrl+C';
  }
  setTimeout(() => (button.textContent = 'Copy'), 2000);
}

for (const button of document.querySelectorAll<HTMLButtonElement>('button[data-copy]')) {
  button.addEventListener('click', () => void copy(button));
}

setConnection('connecting');
connect();
