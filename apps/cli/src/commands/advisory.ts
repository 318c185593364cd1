import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { ADVISORY_SEVERITIES, HexrepoError, mapOsv, validateAdvisory } from '@hexrepo/core';
import type { AdvisoryView } from '@hexrepo/repo';
import { type Command, str, usage } from '../command.js';
import { REMOTE_OPTIONS, remoteHelp } from '../remote-target.js';
import { openStateTarget } from '../state-target.js';

const list = (values: Record<string, unknown>, key: string): string[] => {
  const v = values[key];
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : typeof v === 'string' ? [v] : [];
};

function describe(v: AdvisoryView): string {
  const a = v.advisory;
  const score = a.cvssScore !== undefined ? ` (CVSS ${a.cvssScore})` : '';
  const aliases = a.aliases.length > 0 ? `\n    aliases: ${a.aliases.join(', ')}` : '';
  return `${v.package} ${a.id} ${a.severity ?? 'unrated'}${score}: ${a.summary}\n    versions: ${v.versions.join(', ')}\n    ${a.htmlUrl}${aliases}`;
}

/** The Hex package names an OSV document (or list) names, to ask the repository which it has. */
function hexPackagesOf(doc: unknown): string[] {
  const names = new Set<string>();
  for (const d of Array.isArray(doc) ? doc : [doc]) {
    const affected = (d as { affected?: unknown } | null)?.affected;
    for (const a of Array.isArray(affected) ? affected : []) {
      const pkg = (a as { package?: { ecosystem?: unknown; name?: unknown } } | null)?.package;
      if (pkg?.ecosystem === 'Hex' && typeof pkg.name === 'string' && /^[a-z][a-z0-9_]*$/.test(pkg.name)) names.add(pkg.name);
    }
  }
  return [...names];
}

export const advisory: Command = {
  name: 'advisory',
  summary: 'Add, list, remove and import security advisories of your packages.',
  usage: 'hexrepo advisory add|list|remove|import … [DIR|PUBLIC] [options]',
  help: `
  hexrepo advisory add NAME [DIR|PUBLIC] --versions REQ|VSN… --id ID --summary TEXT --html-url URL
                       --severity low|medium|high|critical [--cvss N] [--api-url URL] [--alias ID…]
  hexrepo advisory list [NAME] [DIR|PUBLIC]
  hexrepo advisory remove NAME ID [DIR|PUBLIC]
  hexrepo advisory import FILE [DIR|PUBLIC]

An advisory is signed into packages/NAME (Package.advisories, and each affected release's
advisory_indexes) and versions (with_advisories), where "mix hex.audit" and "mix deps.get" (Hex
2.5) warn about it and a dependency policy with a minimum severity blocks it. It is kept in
_hexrepo/releases/NAME.json with the retirements, so "hexrepo build" never drops it.

--versions takes exact versions (1.2.3) or Elixir requirements ("< 1.4.2", "~> 1.3",
">= 1.0.0 and < 1.4.2"), matched against the releases published now; a release published later
is not affected until the advisory is added again. Adding an ID that exists replaces it.

import reads an OSV JSON file (one object or a list, as GitHub's advisory database and osv.dev
publish them): each "affected" entry of ecosystem "Hex" naming a package of this repository,
with its "versions" and SEMVER/ECOSYSTEM "ranges"; the severity from database_specific.severity
(GHSA's LOW/MODERATE/HIGH/CRITICAL) or a numeric CVSS score; the URL from "references"
(ADVISORY, then WEB; else osv.dev's page); the "aliases". Anything it cannot map (a GIT range,
no severity, a package not in this repository, a withdrawn advisory) is refused with the reason,
and nothing is imported.

With one argument, list takes it as DIR|PUBLIC when such a folder exists, else as NAME. With --url
(a running "hexrepo serve"), list needs NAME: the API lists advisories per package. The
advisory's own page is --html-url (the wire field html_url); --url is the server, as in every
other command.

Options:
  --versions REQ|VSN   affected versions; repeatable
  --id ID              the advisory id (GHSA-…, CVE-…, or your own such as ACME-2026-001)
  --summary TEXT       one line: what is wrong
  --severity LEVEL     low, medium, high or critical (default: from --cvss)
  --cvss N             CVSS base score, 0 to 10
  --html-url URL       where a person reads it (html_url)
  --api-url URL        where a program reads it (api_url; default: --html-url)
  --alias ID           another id of the same advisory (CVE-…); repeatable
${remoteHelp('write')}`,
  options: {
    versions: { type: 'string', multiple: true },
    id: { type: 'string' },
    summary: { type: 'string' },
    severity: { type: 'string' },
    cvss: { type: 'string' },
    'html-url': { type: 'string' },
    'api-url': { type: 'string' },
    alias: { type: 'string', multiple: true },
    ...REMOTE_OPTIONS,
  },
  async run({ values, positionals }, io) {
    const [action, ...rest] = positionals;
    const json = values.json === true;
    if (action === 'add') {
      const [name, dir, ...extra] = rest;
      if (!name || extra.length > 0) throw usage('advisory', 'add takes NAME [DIR|PUBLIC]');
      const versions = list(values, 'versions');
      if (versions.length === 0) throw usage('advisory', 'add needs --versions (exact versions or requirements such as "< 1.4.2")');
      for (const flag of ['id', 'summary', 'html-url']) if (!str(values, flag)) throw usage('advisory', `add needs --${flag}`);
      const severity = str(values, 'severity');
      if (severity !== undefined && !Object.hasOwn(ADVISORY_SEVERITIES, severity)) throw usage('advisory', `--severity must be low, medium, high or critical, got ${JSON.stringify(severity)}`);
      if (severity === undefined && str(values, 'cvss') === undefined) throw usage('advisory', 'add needs --severity (or a --cvss score to derive it from)');
      // Checked before anything is opened or sent; the service checks it again.
      const input = validateAdvisory({ id: str(values, 'id'), summary: str(values, 'summary'), htmlUrl: str(values, 'html-url'), apiUrl: str(values, 'api-url'), severity, cvssScore: str(values, 'cvss'), aliases: list(values, 'alias') });
      const local = await openStateTarget('advisory', values, dir, io);
      try {
        const view = await local.addAdvisory(name, input, versions);
        io.out(json ? `${JSON.stringify({ ok: true, ...view }, null, 2)}\n` : `added ${view.advisory.id} to ${name} ${view.versions.join(', ')} in ${local.describe}\n`);
      } finally {
        await local.close();
      }
      return 0;
    }
    if (action === 'list') {
      if (rest.length > 2) throw usage('advisory', 'list takes [NAME] [DIR|PUBLIC]');
      let [name, dir] = rest;
      if (rest.length === 1 && existsSync(resolve(io.cwd, rest[0]!))) [name, dir] = [undefined, rest[0]];
      const local = await openStateTarget('advisory', values, dir, io);
      try {
        const views = await local.advisories(name);
        if (json) io.out(`${JSON.stringify(views, null, 2)}\n`);
        else io.out(views.length === 0 ? `no advisories${name ? ` for ${name}` : ''} in ${local.describe}\n` : `${views.map(describe).join('\n')}\n`);
      } finally {
        await local.close();
      }
      return 0;
    }
    if (action === 'remove') {
      const [name, id, dir, ...extra] = rest;
      if (!name || !id || extra.length > 0) throw usage('advisory', 'remove takes NAME ID [DIR|PUBLIC]');
      const local = await openStateTarget('advisory', values, dir, io);
      try {
        await local.removeAdvisory(name, id);
      } finally {
        await local.close();
      }
      io.out(json ? `${JSON.stringify({ ok: true, removed: id, package: name }, null, 2)}\n` : `removed ${id} from ${name} in ${local.describe}\n`);
      return 0;
    }
    if (action === 'import') {
      const [file, dir, ...extra] = rest;
      if (!file || extra.length > 0) throw usage('advisory', 'import takes FILE [DIR|PUBLIC]');
      let doc: unknown;
      try {
        doc = JSON.parse(await readFile(resolve(io.cwd, file), 'utf8'));
      } catch (err) {
        throw new HexrepoError('USAGE', `hexrepo advisory import: ${file} is not a readable JSON file: ${(err as Error).message}`, { hint: 'give an OSV JSON file (one advisory object, or a list of them)' });
      }
      const local = await openStateTarget('advisory', values, dir, io);
      try {
        // Everything is mapped before anything is written: one unmappable entry imports nothing.
        const mapped = mapOsv(doc, await local.existing(hexPackagesOf(doc)));
        const done: { package: string; id: string; versions: string[] }[] = [];
        for (const m of mapped) done.push({ package: m.package, id: m.advisory.id, versions: (await local.addAdvisory(m.package, m.advisory, [m.affected])).versions });
        if (json) io.out(`${JSON.stringify({ ok: true, imported: done }, null, 2)}\n`);
        else for (const d of done) io.out(`imported ${d.id} for ${d.package} ${d.versions.join(', ')}\n`);
      } finally {
        await local.close();
      }
      return 0;
    }
    throw usage('advisory', `expected add, list, remove or import, got ${action === undefined ? 'nothing' : JSON.stringify(action)}`);
  },
};
