/**
 * The terminal UI: package list (type to filter, windowed), package view (releases, checksums,
 * dependencies, retirement, tarball metadata), publish (path with Tab completion, validate,
 * confirm), retire / unretire, a log pane and a status bar. Readable without colour: the cursor
 * is ">", states are words in brackets. Each screen is a file in screens/; this one composes them.
 */
import { readFile } from 'node:fs/promises';
import { Box, useApp, useStdout } from 'ink';
import { useCallback, useEffect, useState, type ReactNode } from 'react';
import { LOG_LINES, LogPane, type LogEntry } from './log-pane.js';
import { HelpScreen } from './screens/help.js';
import { ListScreen, type ListView } from './screens/list.js';
import { PackageScreen } from './screens/package.js';
import { PublishScreen } from './screens/publish.js';
import { RetireScreen } from './screens/retire.js';
import { errorText, useSync, type Screen } from './screens/ui.js';
import type { DataSource, PackageSummary } from './source.js';
import { StatusBar, TitleBar } from './status-bar.js';

export { KEY_HELP } from './screens/help.js';

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

/** Header, log separator, log lines, status bar, and one spare line so Ink never fills the screen. */
const CHROME = 1 + 1 + LOG_LINES + 1 + 1;

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
  return (
    <Box flexDirection="column" width={columns}>
      <TitleBar title={title} colour={colour} columns={columns} />
      <Box flexDirection="column" height={body}>
        {content}
      </Box>
      <LogPane log={log} colour={colour} columns={columns} />
      <StatusBar info={source.info} colour={colour} columns={columns} />
    </Box>
  );
}
