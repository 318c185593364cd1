/** The policy flags as typed: repository names with a colon (hexpm:ORG), requirements with spaces, edits. */
import { validatePolicy } from '@hexrepo/core';
import { clientSetup, formatClientSetup } from '@hexrepo/repo';
import { describe, expect, it } from 'vitest';
import { applyPolicyFlags, parseRef, parseRule } from '../src/policy-flags.js';

const none = { rule: [], allow: [], deny: [], remove: [], dropRepo: [] };

describe('policy flags', () => {
  it('split REPO from the package at the last colon, so hexpm:ORG works', () => {
    expect(parseRef('allow', 'hexpm:acme:plug@>= 1.0.0 and < 2.0.0')).toEqual(['hexpm:acme', 'plug', '>= 1.0.0 and < 2.0.0']);
    expect(parseRef('deny', 'hexpm:jason')).toEqual(['hexpm', 'jason', undefined]);
    expect(parseRule('hexpm:acme:min-severity=low,cooldown=1mo')).toEqual(['hexpm:acme', { minSeverity: 'low', cooldown: '1mo' }]);
    expect(parseRule('hexpm:')).toEqual(['hexpm', undefined]);
  });

  it('refuse what is not REPO:…, with the form to use', () => {
    expect(() => parseRef('allow', 'plug')).toThrow(/expected REPO: first/);
    expect(() => parseRule('hexpm:severity=high')).toThrow(/unknown key "severity"/);
    expect(() => parseRule('hexpm:cooldown')).toThrow(/"cooldown" is not KEY=VALUE/);
  });

  it('edit: a rule replaces the repository’s rule, --remove and --drop-repo take away, the result validates', () => {
    const base = validatePolicy({ name: 'p-one', repositories: [{ repository: 'hexpm', restriction: { minSeverity: 'high' }, overrides: [{ action: 'deny', package: 'jason' }] }, { repository: 'acme' }] }, 'acme');
    const next = applyPolicyFlags(base, { ...none, rule: ['hexpm:retired=security'], remove: ['hexpm:jason'], dropRepo: ['acme'], allow: ['hexpm:plug@~> 1.14'] });
    expect(validatePolicy(next, 'acme')).toEqual({
      name: 'p-one',
      visibility: 'private',
      repositories: [{ repository: 'hexpm', restriction: { retirementReasons: ['security'] }, overrides: [{ action: 'allow', package: 'plug', requirement: '~> 1.14' }] }],
    });
    expect(() => applyPolicyFlags(base, { ...none, remove: ['hexpm:plug'] })).toThrow(/no override of plug in hexpm/);
    expect(() => applyPolicyFlags(base, { ...none, dropRepo: ['other'] })).toThrow(/has no rules for other/);
  });
});

describe('set-up lines', () => {
  const input = { repository: 'acme', url: 'http://127.0.0.1:4000', publicKeyPath: 'public/public_key', publicKeyPem: '-----BEGIN RSA PUBLIC KEY-----\nx\n-----END RSA PUBLIC KEY-----\n', fingerprint: 'SHA256:x' };
  it('show HEX_POLICY=REPO/NAME for each policy, and nothing about policies when there are none', () => {
    expect(clientSetup({ ...input, policies: ['strict-prod'] }).policies).toEqual(['HEX_POLICY=acme/strict-prod mix deps.get']);
    expect(formatClientSetup({ ...input, policies: ['strict-prod'] })).toContain('  HEX_POLICY=acme/strict-prod mix deps.get');
    expect(formatClientSetup(input)).not.toContain('HEX_POLICY');
  });
});
