/** The Prometheus exposition of the request counters and latency histograms, line by line. */
import { describe, expect, it } from 'vitest';
import { Metrics } from '../src/index.js';

describe('Metrics', () => {
  it('counts per method, route and status in first-seen order; cumulative buckets per route', () => {
    const m = new Metrics();
    m.observe('GET', '/packages/:name', 200, 0.0004);
    m.observe('GET', '/packages/:name', 200, 0.003);
    m.observe('GET', '/packages/:name', 401, 0.02);
    m.observe('HEAD', '/tarballs/:file', 200, 7);
    m.observe('GET', '/packages/:name', 200, 0.001);
    const text = m.render();
    const lines = text.split('\n').filter((l) => l.startsWith('hexrepo_http_'));
    expect(lines.filter((l) => l.startsWith('hexrepo_http_requests_total'))).toEqual([
      'hexrepo_http_requests_total{method="GET",route="/packages/:name",status="200"} 3',
      'hexrepo_http_requests_total{method="GET",route="/packages/:name",status="401"} 1',
      'hexrepo_http_requests_total{method="HEAD",route="/tarballs/:file",status="200"} 1',
    ]);
    const buckets = (route: string): string[] => lines.filter((l) => l.startsWith(`hexrepo_http_request_duration_seconds_bucket{route="${route}"`)).map((l) => l.slice(l.indexOf('le=')));
    expect(buckets('/packages/:name')).toEqual([
      'le="0.001"} 2',
      'le="0.0025"} 2',
      'le="0.005"} 3',
      'le="0.01"} 3',
      'le="0.025"} 4',
      'le="0.05"} 4',
      'le="0.1"} 4',
      'le="0.25"} 4',
      'le="0.5"} 4',
      'le="1"} 4',
      'le="2.5"} 4',
      'le="5"} 4',
      'le="+Inf"} 4',
    ]);
    expect(buckets('/tarballs/:file').at(-2)).toBe('le="5"} 0');
    expect(buckets('/tarballs/:file').at(-1)).toBe('le="+Inf"} 1');
    expect(lines).toContain('hexrepo_http_request_duration_seconds_count{route="/tarballs/:file"} 1');
    expect(lines).toContain('hexrepo_http_request_duration_seconds_sum{route="/tarballs/:file"} 7');
    expect(text).toMatch(/^# TYPE hexrepo_http_requests_total counter$/m);
    expect(text).toMatch(/^hexrepo_process_uptime_seconds [\d.]+$/m);
  });
});
