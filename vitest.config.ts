import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';


// Tests import the workspace packages from source, so `vitest` needs no build first.
export default defineConfig({
  resolve: {
    alias: [
      { find: /^@hexrepo\/(core|tarball|registry|storage|repo|http)$/, replacement: fileURLToPath(new URL('./packages/$1/src/index.ts', import.meta.url)) },
      { find: /^@hexrepo\/dev$/, replacement: fileURLToPath(new URL('./apps/dev/src/index.ts', import.meta.url)) },
    ],
  },
  test: {
    include: ['packages/*/test/**/*.test.ts', 'apps/*/test/**/*.test.ts', 'e2e/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: 'forks',
  },
});

