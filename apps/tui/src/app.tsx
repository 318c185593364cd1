/**
 * The terminal UI: package list (type to filter, windowed), package view (releases, checksums,
 * dependencies, retirement, tarball metadata), publish (path with Tab completion, validate,
 * confirm), retire / unretire, a log pane and a status bar. Readable without colour: the cursor
 * is ">", states are words in brackets.
 */
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { Box, Text, useApp, useInput, useStdout, type Key } from 'ink';
import { useCallback, useEffect, useRef, useState, type ReactNode } from 'react';
import { formatError, RETIREMENT_REASONS, type RetirementReasonName } from '@hexrepo/core';
import { parseTarball } from '@hexrepo/tarball';
import { completePath } from './complete.js';
import type { DataSource, PackageSummary, Release, ReleaseMetadata } from './source.js';

export interface AppProps {
  source: DataSource;
  /** Folder the publish path is relative to. */
  cwd: string;
  /** Use colour (off for NO_COLOR or when not a terminal). */
  colour?: boolean;
  /** Terminal size; default: the output stream's, else 80×24. */
  rows?: number;
  columns?: number;
  /** Log lines to start with (what opening the source did). */
  initialLog?: string[];
  /** Read a file to publish (tests pass their own). */
  readFile?: (path: string) => Promise<Uint8Array>;
  /** Called once the user quits. */
  onQuit?: () => void;
}

type Screen = { kind: 'list' } | { kind: 'package'; name: string } | { kind: 'publish'; from: Screen } | { kind: 'retire'; name: string; version: string } | { kind: 'help'; from: Screen };

interface LogEntry {
  at: Date;
  text: string;
  error: boolean;
}

const LOG_LINES = 3;
/** Header, log separator, log lines, status bar, and one spare line so Ink never fills the screen. */
const CHROME = 1 + 1 + LOG_LINES + 1 + 1;
const REASONS = Object.keys(RETIREMENT_REASONS) as RetirementReasonName[];

function errorText(err: unknown): string {
  return formatError(err).split('\n')[0]!.replace(/^error(\s*\[[A-Z_]+\])?:\s*/i, '');
}

function clamp(n: number, lo: number, hi: number): number {
  return Math.max(lo, Math.min(hi, n));
}

function fit(text: string, width: number): string {
  return text.length > width ? `${text.slice(0, Math.max(0, width - 1))}…` : text.padEnd(width);
}

function date(seconds: number | undefined): string {
  return seconds === undefined ? '-' : new Date(seconds * 1000).toISOString().slice(0, 16).replace('T', ' ');
}

function size(bytes: number): string {
  return bytes < 1024 ? `${bytes} B` : bytes < 1024 * 1024 ? `${(bytes / 1024).toFixed(1)} KiB` : `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

/** One line of text, cut to the width; styles only with colour on. */
function Line(props: { children: ReactNode; colour: boolean; color?: string; bold?: boolean; inverse?: boolean; dim?: boolean }): ReactNode {
  const style = props.colour ? { ...(props.color ? { color: props.color } : {}), ...(props.bold ? { bold: true } : {}), ...(props.inverse ? { inverse: true } : {}), ...(props.dim ? { dimColor: true } : {}) } : {};
  return (
    <Text wrap="truncate-end" {...style}>
      {props.children === '' ? ' ' : props.children}
    </Text>
  );
}

/** Append printable characters to a text field; true when the key was a text edit. */
function editText(input: string, key: Key, set: (f: (old: string) => string) => void, max = 200): boolean {
  if (key.backspace || key.delete) {
    set((value) => value.slice(0, -1));
    return true;
  }
  if (key.ctrl || key.meta || key.return || key.escape || key.tab || key.upArrow || key.downArrow || key.leftArrow || key.rightArrow || key.pageUp || key.pageDown) return false;
  const printable = input.replace(/[\u0000-\u001f\u007f]/g, '');
  if (!printable) return false;
  set((value) => (value + printable).slice(0, max));
  return true;
}

/**
 * State whose latest value handlers can read at once: keys can arrive faster than React renders
 * (a paste, tmux send-keys), and a handler closing over the rendered value would drop some.
 */
function useSync<T>(initial: T): [T, (next: T | ((old: T) => T)) => void, { readonly current: T }] {
  const [value, setValue] = useState(initial);
  const ref = useRef(value);
  const set = useCallback((next: T | ((old: T) => T)) => {
    ref.current = typeof next === 'function' ? (next as (old: T) => T)(ref.current) : next;
    setValue(ref.current);
  }, []);
  return [value, set, ref];
}

/** Keys go to the screen that is current now, not to one still mounted but already left. */
function useScreenInput(props: ScreenProps, handler: (input: string, key: Key) => void): void {
  const mine = useRef(props.screenRef.current);
  useInput((input, key) => {
    // A chunk of pasted or fast-sent text can hold Enter or Tab: deliver those as keys, in order.
    const parts = input.length > 1 && !key.ctrl && !key.meta ? input.split(/([\r\n\t])/).filter(Boolean) : [input];
    for (const part of parts) {
      if (props.screenRef.current !== mine.current) return;
      if (parts.length === 1) handler(input, key);
      else if (part === '\t') handler('', { ...key, tab: true });
      else if (part === '\r' || part === '\n') handler('', { ...key, return: true });
      else handler(part, key);
    }
  });
}

export function App(props: AppProps): ReactNode {
  const { source } = props;
  const colour = props.colour ?? false;
  const { exit } = useApp();
  const { stdout } = useStdout();
  const rows = props.rows ?? (stdout.rows || 24);
  const columns = props.columns ?? (stdout.columns || 80);
  const body = Math.max(6, rows - CHROME);

  const [screen, setScreen, screenRef] = useSync<Screen>({ kind: 'list' });
  const [packages, setPackages, packagesRef] = useSync<PackageSummary[] | null>(null);
  const [listError, setListError] = useState<string | null>(null);
  // The list keeps its filter and cursor while other screens are open.
  const [listView, setListView, listViewRef] = useSync<ListView>({ filter: '', cursor: 0, top: 0 });
  const [log, setLog] = useState<LogEntry[]>(() => (props.initialLog ?? []).map((text) => ({ at: new Date(), text, error: text.startsWith('error:') })));
  const addLog = useCallback((text: string, error = false) => setLog((l) => [...l.slice(-199), { at: new Date(), text, error }]), []);

  const reload = useCallback(async () => {
    try {
      const list = await source.listPackages();
      setPackages(list);
      setListError(null);
    } catch (err) {
      setListError(errorText(err));
      addLog(`error: cannot list packages: ${errorText(err)}`, true);
    }
  }, [source, addLog]);
  useEffect(() => void reload(), [reload]);

  const quit = useCallback(() => {
    exit();
    props.onQuit?.();
  }, [exit, props]);

  const common = { source, colour, body, columns, addLog, setScreen, quit, reload, screenRef, packagesRef };
  let content: ReactNode;
  let title: string;
  switch (screen.kind) {
    case 'list':
      title = 'packages';
      content = <ListScreen {...common} packages={packages} error={listError} view={listView} setView={setListView} viewRef={listViewRef} />;
      break;
    case 'package':
      title = `packages > ${screen.name}`;
      content = <PackageScreen key={screen.name} {...common} name={screen.name} />;
      break;
    case 'publish':
      title = 'publish';
      content = <PublishScreen {...common} from={screen.from} cwd={props.cwd} readFile={props.readFile ?? ((p) => readFile(p))} />;
      break;
    case 'retire':
      title = `retire ${screen.name} ${screen.version}`;
      content = <RetireScreen {...common} name={screen.name} version={screen.version} />;
      break;
    case 'help':
      title = 'help';
      content = <HelpScreen {...common} from={screen.from} />;
      break;
  }
  const info = source.info;
  const status = `${info.repository} | ${info.readOnly ? `read-only: ${info.readOnly}` : 'read-write'} | ${info.location} | key ${info.fingerprint}`;
  const shown = log.slice(-LOG_LINES);
  return (
    <Box flexDirection="column" width={columns}>
      <Line colour={colour} bold>{`hexrepo tui: ${title}`.padEnd(Math.max(0, columns - 18)) + '? help  q quit'}</Line>
      <Box flexDirection="column" height={body}>
        {content}
      </Box>
      <Line colour={colour} dim>{`-- log ${'-'.repeat(Math.max(0, columns - 8))}`}</Line>
      {Array.from({ length: LOG_LINES }, (_, i) => {
        const e = shown[i];
        return (
          <Line key={i} colour={colour} {...(e?.error ? { color: 'red' } : {})}>
            {e ? `${e.at.toTimeString().slice(0, 8)} ${e.text}` : ''}
          </Line>
        );
      })}
      <Line colour={colour} inverse>{fit(status, columns)}</Line>
    </Box>
  );
}

interface ScreenProps {
  source: DataSource;
  colour: boolean;
  body: number;
  columns: number;
  addLog: (text: string, error?: boolean) => void;
  setScreen: (s: Screen) => void;
  quit: () => void;
  reload: () => Promise<void>;
  screenRef: { readonly current: Screen };
  packagesRef: { readonly current: PackageSummary[] | null };
}

/** The packages whose name contains the filter (one cached result: filtering runs once per keypress). */
const filterCache = new WeakMap<PackageSummary[], { filter: string; result: PackageSummary[] }>();
function filtered(packages: PackageSummary[] | null, filter: string): PackageSummary[] {
  if (!packages) return [];
  if (!filter) return packages;
  const hit = filterCache.get(packages);
  if (hit?.filter === filter) return hit.result;
  const result = packages.filter((p) => p.name.includes(filter));
  filterCache.set(packages, { filter, result });
  return result;
}

interface ListView {
  filter: string;
  cursor: number;
  top: number;
}

function ListScreen(props: ScreenProps & { packages: PackageSummary[] | null; error: string | null; view: ListView; setView: (f: (old: ListView) => ListView) => void; viewRef: { readonly current: ListView } }): ReactNode {
  const { packages, colour, columns, view, setView, viewRef } = props;
  const height = props.body - 2;
  const { filter } = view;
  const shown = filtered(packages, filter);
  const cur = clamp(view.cursor, 0, Math.max(0, shown.length - 1));
  const first = clamp(view.top, Math.max(0, cur - height + 1), cur);

  const move = (delta: number | 'home' | 'end'): void =>
    setView((v) => {
      const n = filtered(props.packagesRef.current, v.filter).length;
      const from = clamp(v.cursor, 0, Math.max(0, n - 1));
      const next = clamp(delta === 'home' ? 0 : delta === 'end' ? n - 1 : from + delta, 0, Math.max(0, n - 1));
      return { ...v, cursor: next, top: clamp(v.top, Math.max(0, next - height + 1), next) };
    });
  const setFilter = (f: (old: string) => string): void => setView((v) => ({ filter: f(v.filter), cursor: 0, top: 0 }));
  useScreenInput(props, (input, key) => {
    if (key.upArrow) return move(-1);
    if (key.downArrow) return move(1);
    if (key.pageUp) return move(-height);
    if (key.pageDown) return move(height);
    if (key.home) return move('home');
    if (key.end) return move('end');
    if (key.return) {
      const v = viewRef.current;
      const list = filtered(props.packagesRef.current, v.filter);
      const p = list[clamp(v.cursor, 0, Math.max(0, list.length - 1))];
      if (p) props.setScreen({ kind: 'package', name: p.name });
      return;
    }
    if (key.escape) return setFilter(() => '');
    if (key.backspace || key.delete) return setFilter((f) => f.slice(0, -1));
    if (key.ctrl || key.meta) return;
    if (input === '?') return props.setScreen({ kind: 'help', from: { kind: 'list' } });
    if (input === 'q' && viewRef.current.filter === '') return props.quit();
    if (input === 'P') return props.setScreen({ kind: 'publish', from: { kind: 'list' } });
    if (input === 'R') {
      props.addLog('reloading the package list');
      void props.reload();
      return;
    }
    if (/^[a-z0-9_]+$/.test(input)) setFilter((f) => f + input);
  });

  const nameWidth = Math.max(16, columns - 44);
  const lines: ReactNode[] = [];
  const count = packages ? `${shown.length} of ${packages.length}` : 'loading…';
  lines.push(
    <Line key="search" colour={colour}>
      {`Search: ${filter}_  (${count})   type to filter, Enter open, P publish`}
    </Line>,
  );
  lines.push(
    <Line key="head" colour={colour} dim>
      {`  ${'NAME'.padEnd(nameWidth)} ${'LATEST'.padEnd(16)} ${'RELEASES'.padStart(8)}  STATUS`}
    </Line>,
  );
  if (props.error) {
    lines.push(
      <Line key="err" colour={colour} color="red">
        {`error: ${props.error} (R to retry)`}
      </Line>,
    );
  } else if (packages && shown.length === 0) {
    lines.push(
      <Line key="none" colour={colour}>
        {packages.length === 0 ? '  no packages yet: press P to publish a tarball' : `  no package matches "${filter}" (Esc clears)`}
      </Line>,
    );
  }
  for (let i = first; i < Math.min(shown.length, first + height); i++) {
    const p = shown[i]!;
    const status = p.latestRetired ? '[retired]' : p.retired > 0 ? `[${p.retired} retired]` : '';
    const selected = i === cur;
    lines.push(
      <Line key={p.name} colour={colour} inverse={selected} {...(p.latestRetired ? { color: 'yellow' } : {})}>
        {`${selected ? '>' : ' '} ${fit(p.name, nameWidth)} ${fit(p.latest ?? '-', 16)} ${String(p.releases).padStart(8)}  ${status}`}
      </Line>,
    );
  }
  return <>{lines}</>;
}

function PackageScreen(props: ScreenProps & { name: string }): ReactNode {
  const { source, name, colour, columns } = props;
  const [releases, setReleases, releasesRef] = useSync<Release[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [cursor, setCursor, cursorRef] = useSync(0);
  const [scroll, setScroll] = useSync(0);
  const [meta, setMeta] = useState<Map<string, ReleaseMetadata | string>>(new Map());
  const [confirmUnretire, setConfirmUnretire, confirmRef] = useSync(false);
  const [notice, setNotice] = useState<{ text: string; error: boolean } | null>(null);
  const [generation, setGeneration] = useState(0);

  useEffect(() => {
    let live = true;
    source.releases(name).then(
      (rs) => live && setReleases([...rs].reverse()),
      (err: unknown) => live && setError(errorText(err)),
    );
    return () => void (live = false);
  }, [source, name, generation, setReleases]);

  const release = releases?.[clamp(cursor, 0, Math.max(0, (releases?.length ?? 1) - 1))];
  const version = release?.version;
  const loadingMeta = useRef(new Set<string>());
  useEffect(() => {
    if (!version || meta.has(version) || loadingMeta.current.has(version)) return;
    loadingMeta.current.add(version);
    source.metadata(name, version).then(
      (m) => setMeta((old) => new Map(old).set(version, m)),
      (err: unknown) => setMeta((old) => new Map(old).set(version, errorText(err))),
    );
  }, [source, name, version, meta]);

  useScreenInput(props, (input, key) => {
    const rs = releasesRef.current;
    const current = rs?.[clamp(cursorRef.current, 0, Math.max(0, rs.length - 1))];
    if (confirmRef.current) {
      setConfirmUnretire(false);
      if (input !== 'y' || !current) return;
      const version = current.version;
      source.unretire(name, version).then(
        () => {
          props.addLog(`unretired ${name} ${version}`);
          setNotice({ text: `unretired ${name} ${version}`, error: false });
          setGeneration((g) => g + 1);
          void props.reload();
        },
        (err: unknown) => {
          props.addLog(`error: unretire ${name} ${version}: ${errorText(err)}`, true);
          setNotice({ text: `error: ${errorText(err)}`, error: true });
        },
      );
      return;
    }
    const n = rs?.length ?? 0;
    if (key.upArrow) return (setCursor((c) => clamp(c - 1, 0, Math.max(0, n - 1))), setScroll(0), setNotice(null));
    if (key.downArrow) return (setCursor((c) => clamp(c + 1, 0, Math.max(0, n - 1))), setScroll(0), setNotice(null));
    if (key.pageDown) return setScroll((s) => s + 5);
    if (key.pageUp) return setScroll((s) => Math.max(0, s - 5));
    if (key.escape) return props.setScreen({ kind: 'list' });
    if (input === 'q') return props.quit();
    if (input === '?') return props.setScreen({ kind: 'help', from: { kind: 'package', name } });
    if (input === 'p' || input === 'P') return props.setScreen({ kind: 'publish', from: { kind: 'package', name } });
    if (input === 'r' && current) {
      if (source.info.readOnly) return setNotice({ text: `error: read-only: ${source.info.readOnly}`, error: true });
      return props.setScreen({ kind: 'retire', name, version: current.version });
    }
    if (input === 'u' && current) {
      if (source.info.readOnly) return setNotice({ text: `error: read-only: ${source.info.readOnly}`, error: true });
      if (!current.retired) return setNotice({ text: `${name} ${current.version} is not retired`, error: false });
      setConfirmUnretire(true);
    }
  });

  if (error) {
    return (
      <>
        <Line colour={colour} color="red">{`error: ${error}`}</Line>
        <Line colour={colour}>Esc: back to the list</Line>
      </>
    );
  }
  if (!releases) return <Line colour={colour}>{`loading ${name}…`}</Line>;

  const versionRows = Math.min(releases.length, Math.max(3, Math.floor(props.body / 3)));
  const cur = clamp(cursor, 0, releases.length - 1);
  const first = clamp(cur - versionRows + 1, 0, Math.max(0, releases.length - versionRows));
  const out: ReactNode[] = [
    <Line key="title" colour={colour} bold>
      {`${name}: ${releases.length} release${releases.length === 1 ? '' : 's'} (newest first)   ↑↓ version, r retire, u unretire, Esc back`}
    </Line>,
  ];
  for (let i = first; i < first + versionRows; i++) {
    const r = releases[i]!;
    const mark = r.retired ? `[retired: ${r.retired.reason}]` : '';
    out.push(
      <Line key={`v${r.version}`} colour={colour} inverse={i === cur} {...(r.retired ? { color: 'yellow' } : {})}>
        {`${i === cur ? '>' : ' '} ${fit(r.version, 20)} ${date(r.publishedAt)}  ${r.dependencies.length} deps  ${mark}`}
      </Line>,
    );
  }
  const details: { text: string; color?: string }[] = [];
  if (confirmUnretire && release) details.push({ text: `Unretire ${name} ${release.version}? (y/n)`, color: 'yellow' });
  if (notice) details.push({ text: notice.text, ...(notice.error ? { color: 'red' } : {}) });
  if (release) {
    details.push({ text: `version ${release.version}   published ${date(release.publishedAt)}` });
    details.push(release.retired ? { text: `retired: [${release.retired.reason}]${release.retired.message ? ` "${release.retired.message}"` : ''}`, color: 'yellow' } : { text: 'retired: no' });
    details.push({ text: `outer checksum: ${release.checksum || '(not in the registry)'}` });
    details.push({ text: `inner checksum: ${release.innerChecksum}` });
    const m = meta.get(release.version);
    if (m === undefined) details.push({ text: 'metadata: loading…' });
    else if (typeof m === 'string') details.push({ text: `error: metadata: ${m}`, color: 'red' });
    else {
      details.push({ text: `description: ${m.description ?? '-'}` });
      details.push({ text: `licenses: ${m.licenses.join(', ') || '-'}` });
      details.push({ text: `build tools: ${m.buildTools.join(', ') || '-'}` });
      if (m.links.length === 0) details.push({ text: 'links: -' });
      for (const [label, url] of m.links) details.push({ text: `link: ${label}: ${url}` });
      if (m.note) details.push({ text: `(${m.note})` });
    }
    details.push({ text: `dependencies: ${release.dependencies.length === 0 ? 'none' : release.dependencies.length}` });
    for (const d of release.dependencies) {
      details.push({ text: `  ${d.package} ${d.requirement}${d.optional ? ' [optional]' : ''}${d.repository ? ` (repository ${d.repository})` : ''}${d.app !== d.package ? ` (app ${d.app})` : ''}` });
    }
  }
  const room = props.body - out.length - 1;
  const from = clamp(props.body > 0 ? scroll : 0, 0, Math.max(0, details.length - room));
  out.push(<Line key="sep" colour={colour} dim>{`${'-'.repeat(Math.max(0, columns - 1))}`}</Line>);
  const visible = details.slice(from, from + room);
  if (details.length > room && from + room < details.length) visible[visible.length - 1] = { text: `… ${details.length - from - room + 1} more lines (PgDn)` };
  visible.forEach((d, i) =>
    out.push(
      <Line key={`d${i}`} colour={colour} {...(d.color ? { color: d.color } : {})}>
        {d.text}
      </Line>,
    ),
  );
  return <>{out}</>;
}

type Check = { bytes: Uint8Array; name: string; version: string; size: number; deps: string[]; path: string };

function PublishScreen(props: ScreenProps & { from: Screen; cwd: string; readFile: (path: string) => Promise<Uint8Array> }): ReactNode {
  const { source, colour } = props;
  const [path, setPath, pathRef] = useSync('');
  const [candidates, setCandidates] = useState<string[]>([]);
  const [step, setStep, stepRef] = useSync<'path' | 'checking' | 'confirm' | 'publishing' | 'done'>('path');
  const [error, setError] = useState<string | null>(null);
  const [check, setCheck, checkRef] = useSync<Check | null>(null);
  const [done, setDone] = useState<string | null>(null);

  const validate = async (path: string): Promise<void> => {
    const full = resolve(props.cwd, path);
    setStep('checking');
    setError(null);
    try {
      const bytes = await props.readFile(full).catch((err: NodeJS.ErrnoException) => {
        throw new Error(`cannot read ${path}: ${err.code ?? err.message}`);
      });
      const parsed = parseTarball(bytes);
      const deps = parsed.metadata.requirements.map((d) => `${d.package} ${d.requirement}${d.optional ? ' [optional]' : ''}${d.repository ? ` (repository ${d.repository})` : ''}`);
      setCheck({ bytes, name: parsed.facts.name, version: parsed.facts.version, size: bytes.byteLength, deps, path });
      setStep('confirm');
    } catch (err) {
      setError(`${path}: ${errorText(err)}`);
      props.addLog(`error: ${path} is not a valid tarball: ${errorText(err)}`, true);
      setStep('path');
    }
  };
  const publish = async (c: Check): Promise<void> => {
    setStep('publishing');
    try {
      const r = await source.publish(c.bytes);
      const text = `published ${r.name} ${r.version} (${r.checksum.slice(0, 12)}…) to ${source.info.location}`;
      props.addLog(text);
      setDone(text);
      setStep('done');
      await props.reload();
    } catch (err) {
      setError(`publish ${c.name} ${c.version}: ${errorText(err)}`);
      props.addLog(`error: publish ${c.name} ${c.version}: ${errorText(err)}`, true);
      setStep('path');
    }
  };

  useScreenInput(props, (input, key) => {
    const step = stepRef.current;
    const check = checkRef.current;
    const path = pathRef.current;
    if (step === 'checking' || step === 'publishing') return;
    if (step === 'done') {
      if (key.escape || key.return) props.setScreen({ kind: 'list' });
      else if (input === 'q') props.quit();
      return;
    }
    if (step === 'confirm') {
      if (input === 'y' && check) void publish(check);
      else if (input === 'n' || key.escape) {
        setStep('path');
        props.addLog(`publish of ${check?.name} ${check?.version} cancelled`);
      }
      return;
    }
    if (key.escape) return props.setScreen(props.from);
    if (key.tab) {
      void completePath(path, props.cwd).then((c) => {
        if (pathRef.current !== path) return;
        setPath(c.value);
        setCandidates(c.candidates);
      });
      return;
    }
    if (key.return) {
      if (!path) return setError('type the path of a .tar file (Tab completes)');
      void validate(path);
      return;
    }
    if (editText(input, key, setPath, 4096)) {
      setCandidates([]);
      setError(null);
    }
  });

  const out: ReactNode[] = [];
  if (source.info.readOnly) out.push(<Line key="ro" colour={colour} color="yellow">{`note: read-only (${source.info.readOnly}): publishing will fail`}</Line>);
  if (step === 'path' || step === 'checking') {
    out.push(<Line key="p1" colour={colour}>{`Tarball to publish (relative to ${props.cwd}); Tab completes, Enter validates, Esc back:`}</Line>);
    out.push(<Line key="p2" colour={colour} bold>{`> ${path}_`}</Line>);
    if (step === 'checking') out.push(<Line key="chk" colour={colour}>validating…</Line>);
    if (error) out.push(<Line key="err" colour={colour} color="red">{`error: ${error}`}</Line>);
    if (candidates.length) out.push(<Line key="cand" colour={colour} dim>{`matches: ${candidates.join('  ')}`}</Line>);
  } else if (check && (step === 'confirm' || step === 'publishing')) {
    out.push(<Line key="c0" colour={colour} bold>{`${check.path} is a valid tarball:`}</Line>);
    out.push(<Line key="c1" colour={colour}>{`  name:     ${check.name}`}</Line>);
    out.push(<Line key="c2" colour={colour}>{`  version:  ${check.version}`}</Line>);
    out.push(<Line key="c3" colour={colour}>{`  size:     ${size(check.size)}`}</Line>);
    out.push(<Line key="c4" colour={colour}>{`  deps:     ${check.deps.length === 0 ? 'none' : check.deps.length}`}</Line>);
    const room = props.body - 7;
    check.deps.slice(0, room).forEach((d, i) => out.push(<Line key={`dep${i}`} colour={colour}>{`    ${d}`}</Line>));
    out.push(
      <Line key="ask" colour={colour} color="yellow">
        {step === 'publishing' ? 'publishing…' : `Publish ${check.name} ${check.version} to ${source.info.location}? (y/n)`}
      </Line>,
    );
  } else if (step === 'done') {
    out.push(<Line key="ok" colour={colour} color="green">{done ?? ''}</Line>);
    out.push(<Line key="back" colour={colour}>Enter or Esc: back to the list</Line>);
  }
  return <>{out}</>;
}

function RetireScreen(props: ScreenProps & { name: string; version: string }): ReactNode {
  const { source, name, version, colour } = props;
  const [reason, setReason, reasonRef] = useSync(0);
  const [message, setMessage, messageRef] = useSync('');
  const [busy, setBusy, busyRef] = useSync(false);
  const [error, setError] = useState<string | null>(null);
  useScreenInput(props, (input, key) => {
    if (busyRef.current) return;
    const message = messageRef.current;
    if (key.escape) return props.setScreen({ kind: 'package', name });
    if (key.upArrow) return setReason((r) => (r + REASONS.length - 1) % REASONS.length);
    if (key.downArrow) return setReason((r) => (r + 1) % REASONS.length);
    if (key.return) {
      const r = REASONS[reasonRef.current]!;
      setBusy(true);
      source.retire(name, version, { reason: r, ...(message ? { message } : {}) }).then(
        () => {
          props.addLog(`retired ${name} ${version} [${r}]${message ? ` "${message}"` : ''}`);
          void props.reload();
          props.setScreen({ kind: 'package', name });
        },
        (err: unknown) => {
          setBusy(false);
          setError(errorText(err));
          props.addLog(`error: retire ${name} ${version}: ${errorText(err)}`, true);
        },
      );
      return;
    }
    editText(input, key, setMessage, 140);
  });
  return (
    <>
      <Line colour={colour} bold>{`Retire ${name} ${version}: ↑↓ reason, type a message, Enter retires, Esc cancels`}</Line>
      {REASONS.map((r, i) => (
        <Line key={r} colour={colour} inverse={i === reason}>{`${i === reason ? '>' : ' '} (${i === reason ? 'x' : ' '}) ${r}`}</Line>
      ))}
      <Line colour={colour}>{`Message (${message.length}/140): ${message}_`}</Line>
      {busy ? <Line colour={colour}>retiring…</Line> : null}
      {error ? <Line colour={colour} color="red">{`error: ${error}`}</Line> : null}
    </>
  );
}

export const KEY_HELP: [string, string][] = [
  ['package list', ''],
  ['  a-z 0-9 _', 'type to filter (Backspace deletes, Esc clears)'],
  ['  ↑ ↓ PgUp PgDn Home End', 'move the cursor'],
  ['  Enter', 'open the package'],
  ['  P', 'publish a tarball'],
  ['  R', 'reload the list'],
  ['package view', ''],
  ['  ↑ ↓', 'choose a version (newest first)'],
  ['  PgUp PgDn', 'scroll the details'],
  ['  r / u', 'retire / unretire the version'],
  ['  p', 'publish a tarball'],
  ['everywhere', ''],
  ['  Esc', 'back (clears the filter on the list)'],
  ['  ?', 'this help'],
  ['  q', 'quit (on the list: when the filter is empty); Ctrl+C always quits'],
];

function HelpScreen(props: ScreenProps & { from: Screen }): ReactNode {
  useScreenInput(props, (input, key) => {
    if (input === 'q') return props.quit();
    if (key.escape || input === '?' || key.return) props.setScreen(props.from);
  });
  return (
    <>
      {KEY_HELP.slice(0, props.body - 1).map(([k, v]) => (
        <Line key={k} colour={props.colour} {...(v ? {} : { bold: true })}>{v ? `${k.padEnd(26)} ${v}` : k}</Line>
      ))}
      <Line colour={props.colour} dim>Esc or ?: back</Line>
    </>
  );
}
