/** The key help. */
import type { ReactNode } from 'react';
import { Line, useScreenInput, type Screen, type ScreenProps } from './ui.js';

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

export function HelpScreen(props: ScreenProps & { from: Screen }): ReactNode {
  useScreenInput(props, (input, key) => {
    if (input === 'q') return props.quit();
    if (key.escape || input === '?' || key.return) props.setScreen(props.from);
  });
  return (
    <>
      {KEY_HELP.slice(0, props.body - 1).map(([k, v]) => (
        <Line key={k} colour={props.colour} {...(v ? {} : { bold: true })}>
          {v ? `${k.padEnd(26)} ${v}` : k}
        </Line>
      ))}
      <Line colour={props.colour} dim>
        Esc or ?: back
      </Line>
    </>
  );
}
