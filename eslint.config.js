// @ts-check
import js from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';

// Dependencies point one way: apps -> http/repo/client -> registry/tarball/storage -> core.
// Each workspace package lists the workspace packages its source may import; everything else is refused.
const layers = {
  core: [],
  tarball: ['core'],
  registry: ['core'],
  storage: ['core'],
  'storage-s3': ['core', 'storage'],
  'storage-gcs': ['core', 'storage'],
  repo: ['core', 'tarball', 'registry', 'storage'],
  client: ['core', 'registry'],
  mirror: ['core', 'registry', 'storage'],
  http: ['core', 'tarball', 'registry', 'storage', 'repo', 'mirror'],
};
const packages = Object.keys(layers);
// The apps' import names: the CLI's package is `hexrepo`, the others are scoped.
const apps = { cli: 'hexrepo', dev: '@hexrepo/dev', tui: '@hexrepo/tui' };
// The one declared exception to "apps never import each other": the CLI is the single binary, and it loads the
// dev server and the TUI lazily through their package entry points (`hexrepo dev`, `hexrepo tui`), never their files.
const appImports = { cli: ['dev', 'tui'], dev: [], tui: [] };

// esquery's regex literals end at the first '/', so a slash is written as \x2F.
const escape = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replaceAll('/', '\\x2F');
const anyOf = (names) => `/^(${names.map(escape).join('|')})$/`;
const envMessage = 'Only apps read process.env: take the setting as an option and let the app pass it down.';
// The process's own identity and liveness checks of others (pid, kill, platform: FsStore's lock owners) are
// not settings; only `env` (and `argv`) are refused from the module, and the `process` global as a whole.
const noProcessModule = [
  { name: 'process', importNames: ['env', 'argv', 'default'], message: envMessage },
  { name: 'node:process', importNames: ['env', 'argv', 'default'], message: envMessage },
];

/**
 * The rules for one part of the workspace: static imports, re-exports and literal dynamic imports of `names`
 * (package names) and of `paths` (globs over relative paths) are refused with `message`.
 */
function restrict(files, { names, paths = [], message, extraPaths = [] }) {
  const patterns = [];
  if (names.length > 0) patterns.push({ group: names, message });
  if (paths.length > 0) patterns.push({ group: paths, message });
  const syntax = names.length > 0 ? [{ selector: `ImportExpression[source.value=${anyOf(names)}]`, message }] : [];
  return {
    files,
    rules: {
      'no-restricted-imports': ['error', { paths: extraPaths, patterns }],
      ...(syntax.length > 0 ? { 'no-restricted-syntax': ['error', ...syntax] } : {}),
    },
  };
}

const appNames = Object.values(apps);
// Relative paths that leave a package for another part of the workspace: a package is used by its name only.
const outside = ['**/apps/**', '**/packages/*/src/**', '**/scripts/**', '**/bench/**'];

export default tseslint.config(
  { ignores: ['**/dist/**', '**/node_modules/**', 'packages/registry/src/generated/**', 'bench/results/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/ban-ts-comment': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      // Terminal input and log sanitising match control characters on purpose.
      'no-control-regex': 'off',
    },
  },
  // scripts/, bench/ and the config files are plain Node ESM: lint them as JS, with Node's globals.
  {
    files: ['**/*.mjs', '**/*.js'],
    languageOptions: { globals: { ...globals.node } },
  },
  // Packages: only lower layers, never an app, never another package's files, never the process environment.
  ...Object.entries(layers).map(([pkg, allowed]) => {
    const names = [...packages.filter((p) => p !== pkg && !allowed.includes(p)).map((p) => `@hexrepo/${p}`), ...appNames, '@hexrepo/test-support'];
    const rule = restrict([`packages/${pkg}/src/**/*.ts`], {
      names,
      paths: outside,
      extraPaths: noProcessModule,
      message: `packages/${pkg} may only import ${allowed.map((p) => '@hexrepo/' + p).join(', ') || 'nothing from the workspace'}, by package name, and never an app.`,
    });
    rule.rules['no-restricted-globals'] = ['error', { name: 'process', message: envMessage }];
    return rule;
  }),
  // Package tests may use test helpers and the packages they test, never an app.
  restrict(['packages/*/test/**/*.ts'], { names: appNames, paths: ['**/apps/*/src/**'], message: 'Package tests never import an app: test the package through its own API.' }),
  // Apps: any package, by name; another app only through the declared exception above.
  ...Object.entries(appImports).map(([app, allowed]) =>
    restrict([`apps/${app}/src/**/*.ts`, `apps/${app}/src/**/*.tsx`, `apps/${app}/web/**/*.ts`], {
      names: Object.entries(apps)
        .filter(([other]) => other !== app && !allowed.includes(other))
        .map(([, name]) => name)
        .concat('@hexrepo/test-support'),
      paths: [...outside, '**/e2e/**', '**/test-support/**'],
      message: app === 'cli' ? 'The CLI loads other apps only through their package entry points (@hexrepo/dev, @hexrepo/tui), and packages by name.' : `apps/${app} never imports another app, nor a package's files: use the package name.`,
    }),
  ),
  // End-to-end tests and test helpers drive the built apps and use packages by name.
  restrict(['e2e/**/*.ts', 'test-support/**/*.ts'], {
    names: [],
    paths: ['**/apps/*/src/**', '**/packages/*/src/**'],
    message: 'e2e tests and test helpers run the built apps (apps/*/dist) and import packages by name, never their sources.',
  }),
  // scripts/ and bench/ run the built code: they load dist/ entry points, never the TypeScript sources.
  restrict(['scripts/**/*.mjs', 'bench/**/*.mjs'], {
    names: [],
    paths: ['**/src/**', '**/*.ts', '**/test-support/**', '**/e2e/**'],
    message: 'scripts/ and bench/ run the built code: import a package or app from its dist/ entry point.',
  }),
);
