/**
 * The web UI's built styles and script (vite, packages/http/web → dist/ui-assets), served at
 * /-/assets/NAME with an ETag of their content. Read once; a missing build answers 404 with the fix.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export interface Asset {
  body: Buffer;
  etag: string;
  type: string;
}

const TYPES: Record<string, string> = { 'app.css': 'text/css; charset=utf-8', 'app.js': 'text/javascript; charset=utf-8' };
const cache = new Map<string, Asset | null>();

/** The built asset `name` (app.css, app.js), or null when it is not built. */
export function asset(name: string): Asset | null {
  if (!(name in TYPES)) return null;
  if (cache.has(name)) return cache.get(name)!;
  // Next to the compiled module (dist/web/ → dist/ui-assets/), or from the sources (src/web/ → dist/ui-assets/).
  let found: Asset | null = null;
  for (const rel of ['../ui-assets/', '../../dist/ui-assets/']) {
    try {
      const body = readFileSync(fileURLToPath(new URL(rel + name, import.meta.url)));
      found = { body, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"`, type: TYPES[name]! };
      break;
    } catch {
      // not at this location
    }
  }
  if (found) cache.set(name, found);
  return found;
}
