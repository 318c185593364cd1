/** Prometheus metrics in the text exposition format: requests by route and status, latency histogram. */

const BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

function labels(obj: Record<string, string>): string {
  return Object.entries(obj)
    .map(([k, v]) => `${k}="${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`)
    .join(',');
}

export class Metrics {
  readonly #requests = new Map<string, number>();
  readonly #latency = new Map<string, { buckets: number[]; sum: number; count: number }>();
  readonly #started = Date.now();

  readonly #labelMemo = new Map<string, string>();
  readonly #sources: (() => string[])[] = [];

  /** Render more metric families (e.g. a mirror's counters) after the HTTP ones. */
  addSource(lines: () => string[]): void {
    this.#sources.push(lines);
  }

  observe(method: string, route: string, status: number, seconds: number): void {
    const memoKey = `${method} ${route} ${status}`;
    let key = this.#labelMemo.get(memoKey);
    if (key === undefined) {
      key = labels({ method, route, status: String(status) });
      if (this.#labelMemo.size < 1000) this.#labelMemo.set(memoKey, key);
    }
    this.#requests.set(key, (this.#requests.get(key) ?? 0) + 1);
    const lk = `route="${route}"`;
    let h = this.#latency.get(lk);
    if (!h) {
      h = { buckets: BUCKETS.map(() => 0), sum: 0, count: 0 };
      this.#latency.set(lk, h);
    }
    for (let i = 0; i < BUCKETS.length; i++) if (seconds <= BUCKETS[i]!) h.buckets[i]!++;
    h.sum += seconds;
    h.count++;
  }

  render(): string {
    const out: string[] = [
      '# HELP hexrepo_http_requests_total HTTP requests by method, route and status.',
      '# TYPE hexrepo_http_requests_total counter',
      ...[...this.#requests].map(([k, v]) => `hexrepo_http_requests_total{${k}} ${v}`),
      '# HELP hexrepo_http_request_duration_seconds HTTP request latency by route.',
      '# TYPE hexrepo_http_request_duration_seconds histogram',
    ];
    for (const [k, h] of this.#latency) {
      BUCKETS.forEach((b, i) => out.push(`hexrepo_http_request_duration_seconds_bucket{${k},le="${b}"} ${h.buckets[i]}`));
      out.push(`hexrepo_http_request_duration_seconds_bucket{${k},le="+Inf"} ${h.count}`);
      out.push(`hexrepo_http_request_duration_seconds_sum{${k}} ${h.sum}`);
      out.push(`hexrepo_http_request_duration_seconds_count{${k}} ${h.count}`);
    }
    for (const source of this.#sources) out.push(...source());
    out.push('# HELP hexrepo_process_uptime_seconds Seconds since the server started.', '# TYPE hexrepo_process_uptime_seconds gauge', `hexrepo_process_uptime_seconds ${(Date.now() - this.#started) / 1000}`);
    return `${out.join('\n')}\n`;
  }
}
