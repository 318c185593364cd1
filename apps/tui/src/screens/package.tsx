/** One package: its releases (newest first) and the chosen release's details, retire and unretire. */
import { useEffect, useRef, useState, type ReactNode } from 'react';
import type { Release, ReleaseMetadata } from '../source.js';
import { clamp, date, errorText, fit, Line, useScreenInput, useSync, type ScreenProps } from './ui.js';

/** Least to most severe; a severity this build does not know ranks first (shown as is). */
const SEVERITY_ORDER = ['unrated', 'none', 'low', 'medium', 'high', 'critical'];

export function PackageScreen(props: ScreenProps & { name: string }): ReactNode {
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
    const worst = r.advisories?.map((a) => a.severity ?? 'unrated').sort((a, b) => SEVERITY_ORDER.indexOf(b) - SEVERITY_ORDER.indexOf(a))[0];
    const mark = [r.retired ? `[retired: ${r.retired.reason}]` : '', worst ? `[advisory: ${worst}]` : ''].filter(Boolean).join(' ');
    out.push(
      <Line key={`v${r.version}`} colour={colour} inverse={i === cur} {...(r.advisories ? { color: 'red' } : r.retired ? { color: 'yellow' } : {})}>
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
    for (const a of release.advisories ?? []) {
      details.push({ text: `advisory: [${a.severity ?? 'unrated'}] ${a.id}${a.cvssScore !== undefined ? ` CVSS ${a.cvssScore}` : ''}: ${a.summary}`, color: 'red' });
      details.push({ text: `  ${a.htmlUrl}${a.aliases.length > 0 ? ` (${a.aliases.join(', ')})` : ''}` });
    }
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
