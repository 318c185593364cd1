/** The title line at the top and the status bar at the bottom (repository, access, location, key). */
import type { ReactNode } from 'react';
import type { SourceInfo } from './source.js';
import { fit, Line } from './screens/ui.js';

export function TitleBar(props: { title: string; colour: boolean; columns: number }): ReactNode {
  return (
    <Line colour={props.colour} bold>
      {`hexrepo tui: ${props.title}`.padEnd(Math.max(0, props.columns - 18)) + '? help  q quit'}
    </Line>
  );
}

export function StatusBar(props: { info: SourceInfo; colour: boolean; columns: number }): ReactNode {
  const { info } = props;
  const status = `${info.repository} | ${info.readOnly ? `read-only: ${info.readOnly}` : 'read-write'} | ${info.location} | key ${info.fingerprint}`;
  return (
    <Line colour={props.colour} inverse>
      {fit(status, props.columns)}
    </Line>
  );
}
