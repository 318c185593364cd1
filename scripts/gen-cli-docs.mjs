#!/usr/bin/env node
// Writes docs/cli.md from the commands' own --help text, so the reference never drifts from the
// code. `--check` exits 1 when docs/cli.md is out of date (a test runs it).
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const { loadCommands, EXIT_STATUS_HELP } = await import(`${root}apps/cli/dist/main.js`);
const COMMANDS = await loadCommands();
const { helpText } = await import(`${root}apps/cli/dist/command.js`);
const text = [
  '# hexrepo command reference',
  '',
  'Generated from `hexrepo <command> --help` by `node scripts/gen-cli-docs.mjs`; do not edit by hand.',
  '',
  '## Exit status',
  '',
  '```text',
  EXIT_STATUS_HELP.trimEnd(),
  '```',
  '',
  ...COMMANDS.flatMap((c) => [`## hexrepo ${c.name}`, '', '```text', helpText(c).trimEnd(), '```', '']),
].join('\n');
const target = `${root}docs/cli.md`;
if (process.argv.includes('--check')) {
  let current = '';
  try {
    current = readFileSync(target, 'utf8');
  } catch {
    // A missing docs/cli.md is out of date like any other difference.
  }
  if (current !== text) {
    console.error('docs/cli.md is out of date: run "node scripts/gen-cli-docs.mjs"');
    process.exit(1);
  }
} else {
  writeFileSync(target, text);
  console.error(`wrote ${target}`);
}
