/** The last lines of the session log, under the current screen; errors in red. */
import type { ReactNode } from 'react';
import { Line } from './screens/ui.js';

export interface LogEntry {
  at: Date;
  text: string;
  error: boolean;
}

export const LOG_LINES = 3;

export function LogPane(props: { log: readonly LogEntry[]; colour: boolean; columns: number }): ReactNode {
  const { colour, columns } = props;
  const shown = props.log.slice(-LOG_LINES);
  return (
    <>
      <Line colour={colour} dim>{`-- log ${'-'.repeat(Math.max(0, columns - 8))}`}</Line>
      {Array.from({ length: LOG_LINES }, (_, i) => {
        const e = shown[i];
        return (
          <Line key={i} colour={colour} {...(e?.error ? { color: 'red' } : {})}>
            {e ? `${e.at.toTimeString().slice(0, 8)} ${e.text}` : ''}
          </Line>
        );
      })}
    </>
  );
}
