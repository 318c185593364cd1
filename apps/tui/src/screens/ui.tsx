/**
 * What every screen of the terminal UI shares: the screen type and props, one-line text, input
 * routed to the current screen, state readable by fast key handlers, and small formatters.
 */
import { Text, useInput, type Key } from 'ink';
import { useCallback, useRef, useState, type ReactNode } from 'react';
import { formatError } from '@hexrepo/core';
import type { DataSource, PackageSummary } from '../source.js';

/** The screen shown, with what it shows; publish and help return to `from`. */
export type Screen = { kind: 'list' } | { kind: 'package'; name: string } | { kind: 'publish'; from: Screen } | { kind: 'retire'; name: string; version: string } | { kind: 'help'; from: Screen };

/** What the app gives every screen. */
export interface ScreenProps {
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

/** An error as one line, without the "error[CODE]:" prefix (the UI adds its own). */
export function errorText(err: unknown): string {
  return formatError(err)
    .split('\n')[0]!
    .replace(/^error(\s*\[[A-Z_]+\])?:\s*/i, '');
}

export function clamp(n: number, lo: number, hi: number): number {
  return Math.max(lo, Math.min(hi, n));
}

/** Cut to `width` with an ellipsis, or pad to it. */
export function fit(text: string, width: number): string {
  return text.length > width ? `${text.slice(0, Math.max(0, width - 1))}…` : text.padEnd(width);
}

/** Seconds since the epoch as "YYYY-MM-DD HH:MM" (UTC), or "-". */
export function date(seconds: number | undefined): string {
  return seconds === undefined ? '-' : new Date(seconds * 1000).toISOString().slice(0, 16).replace('T', ' ');
}

/** A byte count in B, KiB or MiB. */
export function size(bytes: number): string {
  return bytes < 1024 ? `${bytes} B` : bytes < 1024 * 1024 ? `${(bytes / 1024).toFixed(1)} KiB` : `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

/** One line of text, cut to the width; styles only with colour on. */
export function Line(props: { children: ReactNode; colour: boolean; color?: string; bold?: boolean; inverse?: boolean; dim?: boolean }): ReactNode {
  const style = props.colour ? { ...(props.color ? { color: props.color } : {}), ...(props.bold ? { bold: true } : {}), ...(props.inverse ? { inverse: true } : {}), ...(props.dim ? { dimColor: true } : {}) } : {};
  return (
    <Text wrap="truncate-end" {...style}>
      {props.children === '' ? ' ' : props.children}
    </Text>
  );
}

/** Append printable characters to a text field; true when the key was a text edit. */
export function editText(input: string, key: Key, set: (f: (old: string) => string) => void, max = 200): boolean {
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
export function useSync<T>(initial: T): [T, (next: T | ((old: T) => T)) => void, { readonly current: T }] {
  const [value, setValue] = useState(initial);
  const ref = useRef(value);
  const set = useCallback((next: T | ((old: T) => T)) => {
    ref.current = typeof next === 'function' ? (next as (old: T) => T)(ref.current) : next;
    setValue(ref.current);
  }, []);
  return [value, set, ref];
}

/** Keys go to the screen that is current now, not to one still mounted but already left. */
export function useScreenInput(props: ScreenProps, handler: (input: string, key: Key) => void): void {
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
