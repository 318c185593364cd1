/** The dev server's event stream: every rebuild, problem and request, kept briefly for new listeners. */

export interface RebuildEvent {
  type: 'rebuild';
  at: string;
  /** The build at start (the whole folder), not a reaction to a change. */
  initial?: boolean;
  /** The files whose change triggered this rebuild. */
  changed: string[];
  added: { file: string; name: string; version: string }[];
  removed: { file: string; name: string; version: string }[];
  problems: { file: string; code: string; message: string }[];
  ms: number;
  packages: number;
  releases: number;
}

export interface RequestEvent {
  type: 'request';
  at: string;
  method: string;
  path: string;
  status: number;
  ms: number;
  client: 'mix' | 'rebar3' | 'curl' | 'other';
}

export interface InfoEvent {
  type: 'info' | 'error';
  at: string;
  message: string;
}

export type DevEvent = RebuildEvent | RequestEvent | InfoEvent;

export class EventHub {
  readonly #listeners = new Set<(e: DevEvent) => void>();
  readonly #recent: DevEvent[] = [];

  constructor(private readonly keep = 200) {}

  emit(event: DevEvent): void {
    this.#recent.push(event);
    if (this.#recent.length > this.keep) this.#recent.shift();
    for (const l of this.#listeners) l(event);
  }

  /** The last events, oldest first. */
  recent(): DevEvent[] {
    return [...this.#recent];
  }

  subscribe(listener: (e: DevEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }
}
