/** Retire one release: a reason and an optional message. */
import { useState, type ReactNode } from 'react';
import { RETIREMENT_REASONS, type RetirementReasonName } from '@hexrepo/core';
import { editText, errorText, Line, useScreenInput, useSync, type ScreenProps } from './ui.js';

const REASONS = Object.keys(RETIREMENT_REASONS) as RetirementReasonName[];

export function RetireScreen(props: ScreenProps & { name: string; version: string }): ReactNode {
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
