/** The package list: type to filter, a window of rows around the cursor. */
import type { ReactNode } from 'react';
import type { PackageSummary } from '../source.js';
import { clamp, fit, Line, useScreenInput, type ScreenProps } from './ui.js';

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

export interface ListView {
  filter: string;
  cursor: number;
  top: number;
}

export function ListScreen(props: ScreenProps & { packages: PackageSummary[] | null; error: string | null; view: ListView; setView: (f: (old: ListView) => ListView) => void; viewRef: { readonly current: ListView } }): ReactNode {
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
    // A word, not only a colour: advisories must show on a monochrome terminal too, and first (the column is narrow).
    const advisories = p.advisories > 0 ? `[${p.advisories} advisory]` : '';
    const status = [advisories, p.latestRetired ? '[retired]' : p.retired > 0 ? `[${p.retired} retired]` : ''].filter(Boolean).join(' ');
    const selected = i === cur;
    lines.push(
      <Line key={p.name} colour={colour} inverse={selected} {...(p.advisories > 0 ? { color: 'red' } : p.latestRetired ? { color: 'yellow' } : {})}>
        {`${selected ? '>' : ' '} ${fit(p.name, nameWidth)} ${fit(p.latest ?? '-', 16)} ${String(p.releases).padStart(8)}  ${status}`}
      </Line>,
    );
  }
  return <>{lines}</>;
}
