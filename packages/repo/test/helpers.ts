import { cp, mkdtemp, readdir, readFile, rm, utimes } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';

export const FIXTURES = new URL('../../../test-fixtures/', import.meta.url).pathname;
export const GOLDEN_PUBLIC = join(FIXTURES, 'golden-acme/public');
export const GOLDEN_KEY = join(FIXTURES, 'golden-acme/test-only-rsa.pem');

const dirs: string[] = [];
afterAll(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

export async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'hexrepo-repo-'));
  dirs.push(d);
  return d;
}

/** A public folder holding the fixture tarballs with the golden build's mtimes. */
export async function fixturePublic(only?: string[]): Promise<string> {
  const dir = await tempDir();
  const pub = join(dir, 'public');
  const files = (await readdir(join(FIXTURES, 'tarballs'))).filter((f) => f.endsWith('.tar') && (!only || only.includes(f)));
  for (const f of files) {
    await cp(join(FIXTURES, 'tarballs', f), join(pub, 'tarballs', f));
    await setMtime(join(pub, 'tarballs', f), f === 'foo-0.2.0.tar' ? '2026-02-01T00:00:00Z' : '2026-01-01T00:00:00Z');
  }
  return pub;
}

export async function setMtime(path: string, iso: string): Promise<void> {
  const t = new Date(iso);
  await utimes(path, t, t);
}

/** Every file under a folder (relative path → bytes), for "byte-identical afterwards" checks. */
export async function snapshot(dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const walk = async (rel: string): Promise<void> => {
    for (const e of await readdir(join(dir, rel), { withFileTypes: true })) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) await walk(r);
      else out.set(r, (await readFile(join(dir, r))).toString('base64'));
    }
  };
  await walk('');
  return out;
}
