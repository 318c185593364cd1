import { cp, mkdtemp } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const FIXTURES = fileURLToPath(new URL('../../../test-fixtures/', import.meta.url));

/** A copy of the golden registry with its tarballs, in a temp folder. */
export async function goldenPublic(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'hexrepo-http-'));
  const pub = join(dir, 'public');
  await cp(join(FIXTURES, 'golden-acme/public'), pub, { recursive: true });
  await cp(join(FIXTURES, 'tarballs'), join(pub, 'tarballs'), { recursive: true, filter: (src) => !src.endsWith('SHA256SUMS') });
  return pub;
}

export interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

/** One request with the path sent exactly as given (no normalisation), like curl --path-as-is. */
export function raw(base: string, path: string, opts: { method?: string; headers?: Record<string, string>; body?: string | Uint8Array } = {}): Promise<RawResponse> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    const req = request({ host: url.hostname, port: url.port, path, method: opts.method ?? 'GET', headers: opts.headers ?? {}, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}
