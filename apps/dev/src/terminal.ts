/** One terminal line per event: coloured on a TTY (unless NO_COLOR), plain otherwise. */
import type { DevEvent } from './events.js';

const CODES = { dim: 2, red: 31, green: 32, yellow: 33, blue: 34, magenta: 35, cyan: 36 } as const;
type Colour = keyof typeof CODES;

export function formatEvent(e: DevEvent, colour: boolean): string {
  const c = (name: Colour, text: string): string => (colour ? `\x1b[${CODES[name]}m${text}\x1b[0m` : text);
  const time = c('dim', e.at.slice(11, 19));
  switch (e.type) {
    case 'rebuild': {
      const what = [...e.added.map((a) => c('green', `+${a.name} ${a.version}`)), ...e.removed.map((r) => c('yellow', `-${r.name} ${r.version}`)), ...e.problems.map((p) => c('red', `✗ ${p.file}: [${p.code}] ${p.message}`))];
      const label = e.initial ? 'initial build' : 'rebuild';
      return `${time} ${c('cyan', label)} ${what.join(' ') || (e.initial ? 'registry up to date' : 'no change')} ${c('dim', `(${e.ms.toFixed(0)} ms; ${e.packages} packages, ${e.releases} releases)`)}`;
    }
    case 'request': {
      const status = e.status >= 500 ? c('red', String(e.status)) : e.status >= 400 ? c('yellow', String(e.status)) : c('green', String(e.status));
      return `${time} ${c('blue', e.method.padEnd(4))} ${e.path} ${status} ${c('dim', `${e.ms.toFixed(1)} ms`)} ${c('magenta', e.client)}`;
    }
    case 'error':
      return `${time} ${c('red', 'error')} ${e.message}`;
    default:
      return `${time} ${e.message}`;
  }
}
