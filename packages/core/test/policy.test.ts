/** Requirements as Elixir parses them, advisories and policies as Hex's policy.proto and client accept them. */
import { describe, expect, it } from 'vitest';
import { cooldownSeconds, matchesRequirement, parseRequirement, validateAdvisory, validatePolicy } from '../src/index.js';

const req = (text: string) => {
  const r = parseRequirement(text);
  if (!r) throw new Error(`not parsed: ${text}`);
  return r;
};

describe('parseRequirement / matchesRequirement', () => {
  it.each([
    ['~> 1.14', '1.14.0', true],
    ['~> 1.14', '1.99.3', true],
    ['~> 1.14', '2.0.0', false],
    ['~> 1.14', '2.0.0-rc.0', false],
    ['~> 1.14.2', '1.14.9', true],
    ['~> 1.14.2', '1.15.0', false],
    ['>= 1.0.0 and < 2.0.0', '1.5.0', true],
    ['>= 1.0.0 and < 2.0.0', '2.0.0', false],
    ['== 1.0.0 or == 3.0.0', '3.0.0', true],
    ['1.2.3', '1.2.3', true],
    ['>=1.2.3', '1.2.4', true],
    ['!= 1.2.3', '1.2.3', false],
  ])('%s matches %s: %s', (r, v, ok) => {
    expect(matchesRequirement(v, req(r))).toBe(ok);
  });

  it.each(['', '>= 1.0', '~> 1', '1.0', 'and 1.0.0', '>= 1.0.0 and', '=> 1.0.0', '~> 1.0.0+build', '>= 1.0.0 && < 2.0.0'])('refuses %j as Elixir does', (text) => {
    expect(parseRequirement(text)).toBeNull();
  });
});

describe('validateAdvisory', () => {
  it('derives the severity from a CVSS score and defaults the api URL', () => {
    expect(validateAdvisory({ id: 'GHSA-x', summary: ' s ', htmlUrl: 'https://e.test/x', cvssScore: 9.8, aliases: ['CVE-1', 'CVE-1', 'GHSA-x'] })).toEqual({
      id: 'GHSA-x',
      summary: 's',
      htmlUrl: 'https://e.test/x',
      apiUrl: 'https://e.test/x',
      severity: 'critical',
      cvssScore: 9.8,
      aliases: ['CVE-1'],
    });
  });

  it.each([
    [{ id: 'x y', summary: 's', htmlUrl: 'https://e.test', severity: 'low' }, 'id'],
    [{ id: 'X', summary: '', htmlUrl: 'https://e.test', severity: 'low' }, 'summary'],
    [{ id: 'X', summary: 's', htmlUrl: 'ftp://e.test', severity: 'low' }, 'htmlUrl'],
    [{ id: 'X', summary: 's', htmlUrl: 'https://e.test', severity: 'severe' }, 'severity'],
    [{ id: 'X', summary: 's', htmlUrl: 'https://e.test' }, 'severity'],
    [{ id: 'X', summary: 's', htmlUrl: 'https://e.test', cvssScore: 11 }, 'cvssScore'],
  ])('refuses %j (field %s)', (input, field) => {
    expect(() => validateAdvisory(input)).toThrow(expect.objectContaining({ code: 'ADVISORY_INVALID', details: expect.objectContaining({ field }) }));
  });
});

describe('validatePolicy', () => {
  const base = { name: 'strict-prod', repositories: [{ repository: 'hexpm', restriction: { minSeverity: 'high', cooldown: '2w' }, overrides: [{ action: 'allow', package: 'plug', requirement: '~> 1.14' }] }] };

  it('accepts a policy and defaults visibility to private', () => {
    expect(validatePolicy(base, 'acme')).toEqual({ ...base, visibility: 'private' });
  });

  it('cooldown grammar is Hex.Cooldown’s', () => {
    expect(cooldownSeconds('7d')).toBe(7 * 86400);
    expect(cooldownSeconds('2w')).toBe(14 * 86400);
    expect(cooldownSeconds('1mo')).toBe(30 * 86400);
    expect(cooldownSeconds('0')).toBe(0);
    for (const bad of ['7', '0d0', '1h', '-1d', '1.5d', '']) expect(cooldownSeconds(bad)).toBeNull();
  });

  it.each([
    [{ ...base, name: 'ab' }, /policy name/],
    [{ ...base, name: 'Strict' }, /policy name/],
    [{ ...base, name: 'strict-' }, /policy name/],
    [{ ...base, visibility: 'internal' }, /visibility/],
    [{ ...base, repositories: [{ repository: 'hexpm', restriction: { minSeverity: 'severe' } }] }, /minimum severity "severe"/],
    [{ ...base, repositories: [{ repository: 'hexpm', restriction: { retirementReasons: ['broken'] } }] }, /retirement reason "broken"/],
    [{ ...base, repositories: [{ repository: 'hexpm', restriction: { cooldown: '7 days' } }] }, /cooldown "7 days"/],
    [{ ...base, repositories: [{ repository: 'hexpm', overrides: [{ action: 'allow', package: 'plug', requirement: '>= 1.0' }] }] }, /not a valid Elixir requirement/],
    [{ ...base, repositories: [{ repository: 'hexpm', overrides: [{ action: 'allow', package: 'Plug' }] }] }, /not a Hex package name/],
    [
      {
        ...base,
        repositories: [
          {
            repository: 'hexpm',
            overrides: [
              { action: 'allow', package: 'plug' },
              { action: 'deny', package: 'plug' },
            ],
          },
        ],
      },
      /both allowed and denied/,
    ],
    [{ ...base, repositories: [{ repository: 'hexpm' }, { repository: 'hexpm' }] }, /two entries/],
    [{ ...base, repositories: [{ repository: 'Hex PM' }] }, /not a repository name/],
    [{ ...base, repositories: [{ repository: 'hexpm', overrides: [{ action: 'advisory', package: 'plug' }] }] }, /needs the advisoryId/],
    [{ ...base, repositories: [{ repository: 'hexpm', overrides: [{ action: 'deny', package: 'plug', comment: 'a\nb' }] }] }, /control/],
    [{ ...base, repositories: [{ repository: 'hexpm', overrides: [{ action: 'deny', package: 'plug', comment: 'x'.repeat(501) }] }] }, /at most 500/],
  ])('refuses %j', (input, message) => {
    expect(() => validatePolicy(input, 'acme')).toThrow(message);
  });

  it('refuses hexpm as the serving repository, as Mix refuses HEX_POLICY=hexpm/NAME', () => {
    expect(() => validatePolicy(base, 'hexpm')).toThrow(expect.objectContaining({ code: 'POLICY_INVALID' }));
  });
});
