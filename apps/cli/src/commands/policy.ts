import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { assertPolicyName, HexrepoError, type PolicyDefinition } from '@hexrepo/core';
import { policySetupLine } from '@hexrepo/repo';
import { type Command, str, usage } from '../command.js';
import { REMOTE_OPTIONS, remoteHelp } from '../remote-target.js';
import { openStateTarget } from '../state-target.js';
import { applyPolicyFlags, type PolicyFlags } from '../policy-flags.js';

const list = (values: Record<string, unknown>, key: string): string[] => {
  const v = values[key];
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
};

/** The policy as text: one block per repository, then the line that turns it on in Mix. */
export function formatPolicy(p: PolicyDefinition, repository: string): string {
  const lines = [`${p.name} (${p.visibility})${p.description ? `: ${p.description}` : ''}`];
  if (p.repositories.length === 0) lines.push('  no rules: every release is allowed');
  for (const r of p.repositories) {
    const x = r.restriction;
    const rules = x
      ? [
          x.minSeverity ? `advisories of severity ${x.minSeverity} or above` : '',
          x.retirementReasons ? `retired as ${x.retirementReasons.join(' or ')}` : '',
          x.cooldown && x.cooldown !== '0' ? `published less than ${x.cooldown} ago` : '',
        ].filter(Boolean)
      : [];
    lines.push(`  ${r.repository}: ${rules.length > 0 ? `block releases with ${rules.join('; ')}` : 'no restriction'}`);
    for (const o of r.overrides)
      lines.push(`    ${o.action} ${o.package}${o.requirement ? ` ${o.requirement}` : ''}${o.advisoryId ? ` ${o.advisoryId}` : ''}${o.retirementReason ? ` ${o.retirementReason}` : ''}${o.comment ? ` (${o.comment})` : ''}`);
  }
  lines.push(`  use it (Hex 2.5): ${policySetupLine(repository, p.name)}`);
  return `${lines.join('\n')}\n`;
}

export const policy: Command = {
  name: 'policy',
  summary: 'Create, edit, list, show and delete signed dependency policies (Hex 2.5 HEX_POLICY).',
  usage: 'hexrepo policy create|edit|list|show|delete [NAME] [DIR|PUBLIC] [options]',
  help: `
  hexrepo policy create NAME [DIR|PUBLIC] [--description TEXT] [--visibility private|public]
                        [--rule 'REPO:KEY=VALUE,…'…] [--allow 'REPO:PKG[@REQ]'…] [--deny 'REPO:PKG[@REQ]'…]
  hexrepo policy create NAME [DIR|PUBLIC] --from FILE.json
  hexrepo policy edit   NAME [DIR|PUBLIC] [the create options] [--remove 'REPO:PKG[@REQ]'…] [--drop-repo REPO…]
  hexrepo policy list   [DIR|PUBLIC]
  hexrepo policy show   NAME [DIR|PUBLIC]
  hexrepo policy delete NAME [DIR|PUBLIC]

A policy is signed into policies/NAME of this repository; "hexrepo serve" serves it, and Mix
(Hex 2.5) enforces it on "mix deps.get" for whoever sets HEX_POLICY=REPO/NAME. Per repository
(hexpm, hexpm:ORG, this repository or another one configured in Mix), a rule blocks releases:

  --rule 'hexpm:min-severity=high,retired=security+invalid,cooldown=7d'
      min-severity=none|low|medium|high|critical   an advisory at least this severe
      retired=REASON[+REASON…]                      retired for other, invalid, security, deprecated or renamed
      cooldown=0|Nd|Nw|Nmo                          published less than N days/weeks/30-day months ago
  --rule 'hexpm:' clears the rule of hexpm (edit).

Overrides decide one package (or the versions matching an Elixir requirement) whatever the rule:
  --allow 'hexpm:plug@~> 1.14'   always allowed    --deny 'hexpm:jason'   always blocked
A requirement-bearing override wins over a bare one; Mix ignores a policy for any repository it
has no entry for. --from FILE.json takes the whole policy as JSON: {"name", "description",
"visibility", "repositories": [{"repository", "restriction": {"minSeverity", "retirementReasons",
"cooldown"}, "overrides": [{"action": "allow"|"deny"|"advisory"|"retirement"|"cooldown",
"package", "requirement", "advisoryId", "retirementReason", "comment"}]}]} (see docs/policies.md).

Everything is checked as Mix reads it and refused with the reason: the name (3 to 64 of a-z 0-9 _
- ., starting and ending with a letter or digit), severities, reasons, durations, requirements
(Elixir syntax: Mix would never match a bad one), package and repository names, contradictory or
duplicate entries. A private policy (the default) needs read access to the repository to fetch;
a public one is open to everyone, also in a private repository.

Options:
  --description TEXT       what the policy is for (shown by Mix)
  --visibility VIS         private (default) or public
  --rule REPO:RULES        the rule of one repository; repeatable
  --allow REPO:PKG[@REQ]   always allow; repeatable
  --deny REPO:PKG[@REQ]    always block; repeatable
  --remove REPO:PKG[@REQ]  (edit) drop an override; repeatable
  --drop-repo REPO         (edit) drop every rule and override of a repository; repeatable
  --from FILE.json         the whole policy as JSON (create, or edit to replace it); not
                           with --rule, --allow, --deny, --remove or --drop-repo
${remoteHelp('admin')}`,
  options: {
    description: { type: 'string' },
    visibility: { type: 'string' },
    rule: { type: 'string', multiple: true },
    allow: { type: 'string', multiple: true },
    deny: { type: 'string', multiple: true },
    remove: { type: 'string', multiple: true },
    'drop-repo': { type: 'string', multiple: true },
    from: { type: 'string' },
    ...REMOTE_OPTIONS,
  },
  async run({ values, positionals }, io) {
    const [action, ...rest] = positionals;
    const json = values.json === true;
    if (action === 'list') {
      if (rest.length > 1) throw usage('policy', 'list takes [DIR|PUBLIC]');
      const local = await openStateTarget('policy', values, rest[0], io);
      try {
        const policies = await local.listPolicies();
        if (json) io.out(`${JSON.stringify(policies, null, 2)}\n`);
        else io.out(policies.length === 0 ? `no policies in ${local.describe}\n` : policies.map((p) => formatPolicy(p, local.repository)).join(''));
      } finally {
        await local.close();
      }
      return 0;
    }
    if (action !== 'create' && action !== 'edit' && action !== 'show' && action !== 'delete') {
      throw usage('policy', `expected create, edit, list, show or delete, got ${action === undefined ? 'nothing' : JSON.stringify(action)}`);
    }
    const [name, dir, ...extra] = rest;
    if (!name || extra.length > 0) throw usage('policy', `${action} takes NAME [DIR|PUBLIC]`);
    assertPolicyName(name);
    const flags: PolicyFlags = { rule: list(values, 'rule'), allow: list(values, 'allow'), deny: list(values, 'deny'), remove: list(values, 'remove'), dropRepo: list(values, 'drop-repo') };
    const description = str(values, 'description');
    const visibility = str(values, 'visibility');
    if (description !== undefined) flags.description = description;
    if (visibility !== undefined) flags.visibility = visibility;
    const from = str(values, 'from');
    const changes = from !== undefined || description !== undefined || visibility !== undefined || Object.values(flags).some((v) => Array.isArray(v) && v.length > 0);
    if ((action === 'show' || action === 'delete') && changes) throw usage('policy', `${action} takes no policy options`);
    if (action === 'edit' && !changes) throw usage('policy', 'edit needs something to change (see --help)');
    if (action === 'create' && (flags.remove.length > 0 || flags.dropRepo.length > 0)) throw usage('policy', '--remove and --drop-repo are for edit');
    let fromJson: Record<string, unknown> | undefined;
    if (from !== undefined && [flags.rule, flags.allow, flags.deny, flags.remove, flags.dropRepo].some((l) => l.length > 0)) {
      throw usage('policy', '--from takes the whole policy; put the rules in the file instead of --rule/--allow/--deny/--remove/--drop-repo');
    }
    if (from !== undefined) {
      try {
        fromJson = JSON.parse(await readFile(resolve(io.cwd, from), 'utf8')) as Record<string, unknown>;
      } catch (err) {
        throw new HexrepoError('USAGE', `hexrepo policy: ${from} is not a readable JSON file: ${(err as Error).message}`, { hint: 'see docs/policies.md for the format' });
      }
      if (typeof fromJson !== 'object' || fromJson === null || Array.isArray(fromJson)) throw new HexrepoError('POLICY_INVALID', `${from}: a policy must be a JSON object`, { where: 'policy' });
      if (fromJson.name !== undefined && fromJson.name !== name)
        throw new HexrepoError('POLICY_INVALID', `${from} names the policy ${JSON.stringify(fromJson.name)}, not ${name}`, { where: 'name', hint: 'leave "name" out of the file or make it match' });
    }
    const local = await openStateTarget('policy', values, dir, io);
    try {
      if (action === 'delete') {
        await local.deletePolicy(name);
        io.out(json ? `${JSON.stringify({ ok: true, deleted: name }, null, 2)}\n` : `deleted policy ${name} from ${local.describe}\n`);
        return 0;
      }
      const existing = await local.getPolicy(name);
      if (action === 'show') {
        if (!existing) throw new HexrepoError('NOT_FOUND', `no policy ${name} in ${local.repository}`, { hint: 'list them with "hexrepo policy list"' });
        io.out(json ? `${JSON.stringify(existing, null, 2)}\n` : formatPolicy(existing, local.repository));
        return 0;
      }
      if (action === 'edit' && !existing) throw new HexrepoError('NOT_FOUND', `no policy ${name} in ${local.repository}`, { hint: `create it with "hexrepo policy create ${name}"` });
      // --from replaces the whole policy (description and visibility flags still apply on top).
      const input = fromJson
        ? { ...fromJson, name, ...(description !== undefined ? { description } : {}), ...(visibility !== undefined ? { visibility } : {}) }
        : applyPolicyFlags(action === 'edit' && existing ? existing : { name, repositories: [] }, flags);
      const stored = await local.putPolicy(input, action);
      io.out(json ? `${JSON.stringify(stored, null, 2)}\n` : `${action === 'create' ? 'created' : 'updated'} policy ${name} in ${local.describe}, signed into policies/${name}\n${formatPolicy(stored, local.repository)}`);
      return 0;
    } finally {
      await local.close();
    }
  },
};
