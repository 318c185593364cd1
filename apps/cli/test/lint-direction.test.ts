import { execFile } from 'node:child_process';
import { rm, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

// The dependency direction is a lint rule (eslint.config.js): write real files with imports against it into the
// workspace, run the real eslint on them, and expect the rule that guards each direction to refuse them.
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const ESLINT = join(ROOT, 'node_modules/eslint/bin/eslint.js');

interface Probe {
  /** Folder (relative to the root) the probe file is written into. */
  dir: string;
  ext: 'ts' | 'mjs';
  code: string;
  /** The rules expected to report, in order; [] for an import the direction allows. */
  rules: string[];
  /** Text the message must contain, so the right part of the config refused it. */
  says?: RegExp;
}

const probes: Record<string, Probe> = {
  'a package importing a higher layer': { dir: 'packages/core/src', ext: 'ts', code: "import '@hexrepo/repo';\n", rules: ['no-restricted-imports'], says: /packages\/core may only import nothing/ },
  'a package re-exporting a package of its own layer': { dir: 'packages/registry/src', ext: 'ts', code: "export { MemoryStore } from '@hexrepo/storage';\n", rules: ['no-restricted-imports'] },
  'a package importing an app by name': { dir: 'packages/http/src', ext: 'ts', code: "import 'hexrepo';\n", rules: ['no-restricted-imports'] },
  "a package importing an app's file": { dir: 'packages/storage/src', ext: 'ts', code: "import '../../../apps/cli/src/main.js';\n", rules: ['no-restricted-imports'] },
  'a package reading process.env': { dir: 'packages/repo/src', ext: 'ts', code: 'export const port = process.env.PORT;\n', rules: ['no-restricted-globals'], says: /Only apps read process\.env/ },
  'a package importing node:process': { dir: 'packages/repo/src', ext: 'ts', code: "export { env } from 'node:process';\n", rules: ['no-restricted-imports'], says: /Only apps read process\.env/ },
  'an app importing another app': { dir: 'apps/tui/src', ext: 'ts', code: "import '@hexrepo/dev';\n", rules: ['no-restricted-imports'] },
  'an app loading another app lazily': { dir: 'apps/dev/src', ext: 'ts', code: "export const load = () => import('@hexrepo/tui');\n", rules: ['no-restricted-syntax'] },
  "an app importing a package's file": { dir: 'apps/dev/src', ext: 'ts', code: "import '../../../packages/repo/src/service.js';\n", rules: ['no-restricted-imports'] },
  'a script importing TypeScript sources': { dir: 'scripts', ext: 'mjs', code: "import '../packages/core/src/index.ts';\n", rules: ['no-restricted-imports'], says: /built code/ },
  'a benchmark importing an app source': { dir: 'bench', ext: 'mjs', code: "import '../apps/cli/src/main.js';\n", rules: ['no-restricted-imports'] },
  // The directions that are allowed, so the refusals above are not the config refusing everything.
  'a package importing a lower layer': { dir: 'packages/http/src', ext: 'ts', code: "export { RepoService } from '@hexrepo/repo';\nexport { HexrepoError } from '@hexrepo/core';\n", rules: [] },
  'the CLI loading the TUI through its entry point (the declared exception)': { dir: 'apps/cli/src', ext: 'ts', code: "export const load = () => import('@hexrepo/tui');\n", rules: [] },
  'a script loading a built entry point': { dir: 'scripts', ext: 'mjs', code: "import { join } from 'node:path';\nexport const lib = await import(join('..', 'packages/core/dist/index.js'));\n", rules: [] },
};

interface LintResult {
  filePath: string;
  messages: { ruleId: string | null; message: string }[];
}

const files = new Map<string, string>();
let results: LintResult[] = [];

beforeAll(async () => {
  let i = 0;
  for (const [name, p] of Object.entries(probes)) {
    const file = join(ROOT, p.dir, `lint-direction-probe-${process.pid}-${i++}.${p.ext}`);
    files.set(name, file);
    await writeFile(file, p.code);
  }
  try {
    // eslint exits 1 when it reports errors, which is the point here: read its JSON report either way.
    const run = await promisify(execFile)(process.execPath, [ESLINT, '--format', 'json', ...files.values()], { cwd: ROOT, maxBuffer: 16 << 20 }).catch((err: { stdout?: string; code?: number; stderr?: string }) => {
      if (err.code !== 1 || err.stdout === undefined) throw new Error(`eslint failed (exit ${err.code}): ${err.stderr}`);
      return { stdout: err.stdout };
    });
    results = JSON.parse(run.stdout) as LintResult[];
  } finally {
    await Promise.all([...files.values()].map((f) => rm(f, { force: true })));
  }
}, 180_000);

afterAll(async () => {
  await Promise.all([...files.values()].map((f) => rm(f, { force: true })));
});

describe('lint enforces the dependency direction', () => {
  for (const [name, p] of Object.entries(probes)) {
    it(`${p.rules.length > 0 ? 'refuses' : 'allows'} ${name}`, () => {
      const file = files.get(name) ?? '';
      const result = results.find((r) => r.filePath === file);
      expect(result, `eslint did not lint ${relative(ROOT, file)}`).toBeDefined();
      expect(result?.messages.map((m) => m.ruleId)).toEqual(p.rules);
      if (p.says) expect(result?.messages[0]?.message).toMatch(p.says);
    });
  }
});
