import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

// Tests import the workspace packages from source, so `vitest` needs no build first.
export default defineConfig({
  resolve: {
    alias: [
      { find: /^@hexrepo\/(core|tarball|registry|storage|storage-s3|storage-gcs|repo|http|client|mirror)$/, replacement: fileURLToPath(new URL('./packages/$1/src/index.ts', import.meta.url)) },
      { find: /^@hexrepo\/storage\/driver-kit$/, replacement: fileURLToPath(new URL('./packages/storage/src/driver-kit.ts', import.meta.url)) },
      { find: /^@hexrepo\/storage\/testing$/, replacement: fileURLToPath(new URL('./packages/storage/src/testing/contract.ts', import.meta.url)) },
      { find: /^@hexrepo\/dev$/, replacement: fileURLToPath(new URL('./apps/dev/src/index.ts', import.meta.url)) },
      { find: /^@hexrepo\/tui$/, replacement: fileURLToPath(new URL('./apps/tui/src/index.ts', import.meta.url)) },
    ],
  },
  // apps/tui is React (Ink): compile its .tsx with the automatic JSX runtime, as tsconfig's "react-jsx".
  esbuild: { jsx: 'automatic' },
  test: {
    include: ['packages/*/test/**/*.test.ts', 'apps/*/test/**/*.test.ts', 'apps/*/test/**/*.test.tsx', 'e2e/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: 'forks',
  },
});
