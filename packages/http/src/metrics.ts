/** Prometheus metrics in the text exposition format: requests by route and status, latency histogram. */

const BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

function labels(obj: Record<string, string>): string {
  return Object.entries(obj)
    .map(([k, v]) => `${k}="${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`)
    .join(',');
}

/** One route's latency histogram; `buckets[i]` counts observations in (BUCKETS[i-1], BUCKETS[i]] only (cumulated when rendered). */
interface Histogram {
  buckets: number[];
  sum: number;
  count: number;
}

/** One request counter with its rendered labels. */
interface Series {
  labels: string;
  count: number;
}

export class Metrics {
  /** Every series in the order first seen (the exposition's order); found by route, status and method. */
  readonly #series: Series[] = [];
  readonly #byRoute = new Map<string, { latency: Histogram; byStatus: Map<number, Map<string, Series>> }>();
  readonly #started = Date.now();
  readonly #sources: (() => string[])[] = [];

  /** Render more metric families (e.g. a mirror's counters) after the HTTP ones. */
  addSource(lines: () => string[]): void {
    this.#sources.push(lines);
  }

  /** Count one request: its labels are rendered once per route, status and method, and its latency goes to one bucket. */
  observe(method: string, route: string, status: number, seconds: number): void {
    let r = this.#byRoute.get(route);
    if (!r) {
      r = { latency: { buckets: BUCKETS.map(() => 0), sum: 0, count: 0 }, byStatus: new Map() };
      this.#byRoute.set(route, r);
    }
    let byMethod = r.byStatus.get(status);
    if (!byMethod) {
      byMethod = new Map();
      r.byStatus.set(status, byMethod);
    }
    let series = byMethod.get(method);
    if (!series) {
      series = { labels: labels({ method, route, status: String(status) }), count: 0 };
      byMethod.set(method, series);
      this.#series.push(series);
    }
    series.count++;
    const h = r.latency;
    let i = 0;
    while (i < BUCKETS.length && seconds > BUCKETS[i]!) i++;
    if (i < BUCKETS.length) h.buckets[i]!++;
    h.sum += seconds;
    h.count++;
  }

  render(): string {
    const out: string[] = [
      '# HELP hexrepo_http_requests_total HTTP requests by method, route and status.',
      '# TYPE hexrepo_http_requests_total counter',
      ...this.#series.map((x) => `hexrepo_http_requests_total{${x.labels}} ${x.count}`),
      '# HELP hexrepo_http_request_duration_seconds HTTP request latency by route.',
      '# TYPE hexrepo_http_request_duration_seconds histogram',
    ];
    for (const [route, { latency: h }] of this.#byRoute) {
      const k = labels({ route });
      let cumulative = 0;
      BUCKETS.forEach((b, i) => out.push(`hexrepo_http_request_duration_seconds_bucket{${k},le="${b}"} ${(cumulative += h.buckets[i]!)}`));
      out.push(`hexrepo_http_request_duration_seconds_bucket{${k},le="+Inf"} ${h.count}`);
      out.push(`hexrepo_http_request_duration_seconds_sum{${k}} ${h.sum}`);
      out.push(`hexrepo_http_request_duration_seconds_count{${k}} ${h.count}`);
    }
    for (const source of this.#sources) out.push(...source());
    out.push('# HELP hexrepo_process_uptime_seconds Seconds since the server started.', '# TYPE hexrepo_process_uptime_seconds gauge', `hexrepo_process_uptime_seconds ${(Date.now() - this.#started) / 1000}`);
    return `${out.join('\n')}\n`;
  }
}
