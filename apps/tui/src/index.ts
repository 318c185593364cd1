import { createElement } from 'react';
import { render } from 'ink';
import { App, type AppProps } from './app.js';
import type { DataSource } from './source.js';

export { App, KEY_HELP, type AppProps } from './app.js';
export { completePath, type Completion } from './complete.js';
export { openLocalSource, repositoryOfFolder, type LocalOptions } from './local.js';
export { openRemoteSource, type RemoteOptions } from './remote.js';
export { byName, summarize, type DataSource, type PackageSummary, type PublishOutcome, type Release, type ReleaseMetadata, type Retirement, type SourceInfo } from './source.js';

/** Run the terminal UI on the process's terminal until the user quits; closes the source. */
export async function runTui(source: DataSource, opts: { cwd: string; colour: boolean; initialLog?: string[] }): Promise<void> {
  const props: AppProps = { source, cwd: opts.cwd, colour: opts.colour, ...(opts.initialLog ? { initialLog: opts.initialLog } : {}) };
  const instance = render(createElement(App, props), { exitOnCtrlC: true, patchConsole: true });
  try {
    await instance.waitUntilExit();
  } finally {
    await source.close();
  }
}
