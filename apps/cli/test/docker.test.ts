/**
 * No Docker engine runs in CI, so the Dockerfile is checked for consistency with the code: the
 * environment names it sets are the ones `hexrepo serve` reads, the pnpm it installs is the pinned
 * one, it runs as a non-root user, and keys can never be copied into the image.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { SERVE_ENV } from '../src/serve-config.js';

const root = new URL('../../../', import.meta.url);
const dockerfile = readFileSync(new URL('Dockerfile', root), 'utf8');
const dockerignore = readFileSync(new URL('.dockerignore', root), 'utf8');
const pkg = JSON.parse(readFileSync(new URL('package.json', root), 'utf8')) as { packageManager: string };

describe('Dockerfile', () => {
  it('sets only environment variables that hexrepo serve reads', () => {
    const env = [...dockerfile.matchAll(/^\s*(?:ENV\s+)?([A-Z_]+)=/gm)].map((m) => m[1]!).filter((n) => n !== 'NODE_ENV');
    expect(env.sort()).toEqual(['HEXREPO_HOST', 'PORT', 'PUBLIC_DIR']);
    for (const name of env) expect(Object.keys(SERVE_ENV)).toContain(name);
  });

  it('installs the pinned pnpm and deploys the CLI bin', () => {
    expect(dockerfile).toContain(`npm install -g ${pkg.packageManager}`);
    expect(dockerfile).toContain('pnpm install --frozen-lockfile');
    expect(dockerfile).toMatch(/ENTRYPOINT \["node", "\/app\/dist\/bin\.js"\]/);
    expect(dockerfile).toMatch(/CMD \["serve"\]/);
  });

  it('runs as a non-root user with /data as the volume', () => {
    expect(dockerfile).toMatch(/^USER hexrepo$/m);
    expect(dockerfile).toMatch(/^VOLUME \["\/data"\]$/m);
  });

  it('keeps keys, state and build output out of the build context', () => {
    for (const line of ['**/*.pem', '**/*.key', '.hexrepo*', '**/node_modules', '.git']) expect(dockerignore.split('\n')).toContain(line);
  });
});
