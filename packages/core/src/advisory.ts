/**
 * Security advisories as the registry carries them (`Package.advisories`, HEX_SPEC.md §2.4) and the
 * rules hexrepo applies before storing one.
 */
import { HexrepoError } from './errors.js';

/** Advisory severities, with the protobuf values of `AdvisorySeverity`. */
export const ADVISORY_SEVERITIES = { none: 0, low: 1, medium: 2, high: 3, critical: 4 } as const;
export type AdvisorySeverityName = keyof typeof ADVISORY_SEVERITIES;

/** True for one of the five severity names (own property: not `toString` and friends). */
export function isAdvisorySeverity(value: unknown): value is AdvisorySeverityName {
  return typeof value === 'string' && Object.hasOwn(ADVISORY_SEVERITIES, value);
}

/** One advisory, as `SecurityAdvisory` holds it. */
export interface Advisory {
  /** e.g. `GHSA-xxxx-xxxx-xxxx` or a repository-local id. */
  id: string;
  summary: string;
  /** Where a person reads it (required on the wire). */
  htmlUrl: string;
  /** Where a program reads it (required on the wire); defaults to `htmlUrl`. */
  apiUrl: string;
  severity?: AdvisorySeverityName;
  cvssScore?: number;
  aliases: string[];
}

const ID_RE = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;

function invalid(message: string, details: Record<string, unknown>): HexrepoError {
  return new HexrepoError('ADVISORY_INVALID', message, details);
}

function httpUrl(value: unknown, field: string): string {
  if (typeof value !== 'string' || value === '') throw invalid(`the advisory's ${field} is missing`, { field, hint: `give an http(s) URL for ${field}` });
  let u: URL;
  try {
    u = new URL(value);
  } catch {
    throw invalid(`the advisory's ${field} ${JSON.stringify(value)} is not a URL`, { field, hint: 'give an absolute http(s) URL' });
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') throw invalid(`the advisory's ${field} ${JSON.stringify(value)} is not an http(s) URL`, { field });
  return value;
}

/**
 * The severity for a CVSS base score, by the CVSS v3 qualitative scale (0 none, 0.1–3.9 low,
 * 4.0–6.9 medium, 7.0–8.9 high, 9.0–10.0 critical).
 */
export function severityOfCvss(score: number): AdvisorySeverityName {
  if (score === 0) return 'none';
  if (score < 4) return 'low';
  if (score < 7) return 'medium';
  if (score < 9) return 'high';
  return 'critical';
}

/**
 * Check an advisory and return it normalised (api URL defaulted, aliases de-duplicated). Throws
 * ADVISORY_INVALID with `field` and a hint. A severity is required unless a CVSS score gives one.
 */
export function validateAdvisory(input: { id?: unknown; summary?: unknown; htmlUrl?: unknown; apiUrl?: unknown; severity?: unknown; cvssScore?: unknown; aliases?: unknown }): Advisory {
  const { id, summary } = input;
  if (typeof id !== 'string' || !ID_RE.test(id)) {
    throw invalid(`the advisory id ${JSON.stringify(id) ?? 'nothing'} is not usable`, { field: 'id', hint: 'use letters, digits, ".", "_", ":" and "-" (1 to 128 characters), e.g. GHSA-abcd-1234-wxyz or ACME-2026-001' });
  }
  if (typeof summary !== 'string' || summary.trim() === '' || summary.length > 1000) {
    throw invalid(`the advisory summary must be 1 to 1000 characters`, { field: 'summary', hint: 'say in one line what is wrong, e.g. "Denial of service in the multipart parser"' });
  }
  let cvssScore: number | undefined;
  if (input.cvssScore !== undefined && input.cvssScore !== null) {
    const n = typeof input.cvssScore === 'string' ? Number(input.cvssScore) : input.cvssScore;
    if (typeof n !== 'number' || !Number.isFinite(n) || n < 0 || n > 10) throw invalid(`the CVSS score ${JSON.stringify(input.cvssScore)} is not a number from 0 to 10`, { field: 'cvssScore' });
    cvssScore = Math.round(n * 10) / 10;
  }
  let severity: AdvisorySeverityName | undefined;
  if (input.severity !== undefined && input.severity !== null) {
    const s = typeof input.severity === 'string' ? input.severity.toLowerCase() : input.severity;
    if (!isAdvisorySeverity(s)) throw invalid(`the severity ${JSON.stringify(input.severity)} is not one of ${Object.keys(ADVISORY_SEVERITIES).join(', ')}`, { field: 'severity', hint: 'use low, medium, high or critical' });
    severity = s;
  } else if (cvssScore !== undefined) severity = severityOfCvss(cvssScore);
  if (severity === undefined) throw invalid('the advisory has no severity', { field: 'severity', hint: 'give --severity low|medium|high|critical, or a --cvss score' });
  const htmlUrl = httpUrl(input.htmlUrl, 'htmlUrl');
  const apiUrl = input.apiUrl === undefined || input.apiUrl === null || input.apiUrl === '' ? htmlUrl : httpUrl(input.apiUrl, 'apiUrl');
  const aliases: string[] = [];
  if (input.aliases !== undefined && input.aliases !== null) {
    if (!Array.isArray(input.aliases)) throw invalid('the aliases must be a list', { field: 'aliases' });
    for (const a of input.aliases as unknown[]) {
      if (typeof a !== 'string' || !ID_RE.test(a)) throw invalid(`the alias ${JSON.stringify(a)} is not a usable advisory id`, { field: 'aliases' });
      if (a !== id && !aliases.includes(a)) aliases.push(a);
    }
  }
  return { id, summary: summary.trim(), htmlUrl, apiUrl, severity, ...(cvssScore !== undefined ? { cvssScore } : {}), aliases };
}
