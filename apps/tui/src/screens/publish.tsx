/** Publish: a path with Tab completion, validated and shown, published after y. */
import { resolve } from 'node:path';
import { useState, type ReactNode } from 'react';
import { parseTarball } from '@hexrepo/tarball';
import { completePath } from '../complete.js';
import { editText, errorText, Line, size, useScreenInput, useSync, type Screen, type ScreenProps } from './ui.js';

type Check = { bytes: Uint8Array; name: string; version: string; size: number; deps: string[]; path: string };

export function PublishScreen(props: ScreenProps & { from: Screen; cwd: string; readFile: (path: string) => Promise<Uint8Array> }): ReactNode {
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
    if (step === 'checking')
      out.push(
        <Line key="chk" colour={colour}>
          validating…
        </Line>,
      );
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
    out.push(
      <Line key="ok" colour={colour} color="green">
        {done ?? ''}
      </Line>,
    );
    out.push(
      <Line key="back" colour={colour}>
        Enter or Esc: back to the list
      </Line>,
    );
  }
  return <>{out}</>;
}
