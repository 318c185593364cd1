// @ts-check
import tseslint from 'typescript-eslint';

const layers = {
  core: [],
  tarball: ['core'],
  registry: ['core'],
  storage: ['core'],
  'storage-s3': ['core', 'storage'],
  'storage-gcs': ['core', 'storage'],
  repo: ['core', 'tarball', 'registry', 'storage'],
  http: ['core', 'storage', 'repo', 'tarball'],
  client: ['core', 'registry'],
};
const all = Object.keys(layers);

export default tseslint.config(
  { ignores: ['**/dist/**', '**/node_modules/**', 'packages/registry/src/generated/**', '**/*.js', '**/*.mjs'] },
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/ban-ts-comment': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  // Dependencies point one way: apps -> repo -> registry/tarball/storage -> core.
  ...Object.entries(layers).map(([pkg, allowed]) => ({
    files: [`packages/${pkg}/src/**/*.ts`],
    rules: {
      'no-restricted-imports': ['error', {
        patterns: [
          {
            group: [...all.filter((p) => p !== pkg && !allowed.includes(p)).map((p) => `@hexrepo/${p}`), 'hexrepo', '**/apps/**'],
            message: `packages/${pkg} may only import ${allowed.map((p) => '@hexrepo/' + p).join(', ') || 'nothing from the workspace'}, and never apps.`,
          },
        ],
      }],
      'no-restricted-globals': ['error', { name: 'process', message: 'Only apps read process.env; pass config down explicitly.' }],
    },
  })),
);
