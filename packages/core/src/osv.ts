/**
 * OSV documents (https://ossf.github.io/osv-schema/, what GitHub's advisory database and hex.pm's
 * own feed publish) mapped to hexrepo advisories: one per affected Hex package of this
 * repository, with the affected versions as one Elixir requirement. What cannot be mapped is
 * refused with the reason, never guessed.
 */
import { severityOfCvss, validateAdvisory, type Advisory } from './advisory.js';
import { HexrepoError } from './errors.js';
import { parseVersion } from './semver.js';

/** One advisory to attach: the package, the advisory and the requirement its versions match. */
export interface OsvImport {
  package: string;
  advisory: Advisory;
  /** An Elixir requirement (`>= 1.0.0 and < 1.2.3 or == 2.0.0`). */
  affected: string;
}

const GHSA_SEVERITY: Record<string, Advisory['severity']> = { low: 'low', moderate: 'medium', medium: 'medium', high: 'high', critical: 'critical' };

function refuse(id: string, message: string, hint?: string): HexrepoError {
  return new HexrepoError('ADVISORY_INVALID', `OSV ${id}: ${message}`, { osv: id, ...(hint ? { hint } : {}) });
}

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

function rangeRequirement(id: string, pkg: string, range: Json): string[] {
  if (range.type !== 'SEMVER' && range.type !== 'ECOSYSTEM') {
    throw refuse(id, `${pkg}: a ${String(range.type)} range names commits, not versions`, 'list the affected versions in "versions" or use a SEMVER/ECOSYSTEM range');
  }
  const events = Array.isArray(range.events) ? (range.events as unknown[]) : [];
  const out: string[] = [];
  let introduced: string | null = null;
  const version = (v: unknown, what: string): string => {
    if (typeof v !== 'string' || !parseVersion(v)) throw refuse(id, `${pkg}: the ${what} version ${JSON.stringify(v)} is not SemVer`);
    return v;
  };
  for (const e of events) {
    if (!isObject(e)) continue;
    if ('introduced' in e) introduced = e.introduced === '0' ? '0' : version(e.introduced, 'introduced');
    else if ('fixed' in e || 'last_affected' in e) {
      if (introduced === null) throw refuse(id, `${pkg}: a range ends before it starts (no "introduced" event)`);
      const upper = 'fixed' in e ? `< ${version(e.fixed, 'fixed')}` : `<= ${version(e.last_affected, 'last_affected')}`;
      out.push(introduced === '0' ? upper : `>= ${introduced} and ${upper}`);
      introduced = null;
    } else if ('limit' in e) continue;
  }
  if (introduced !== null) out.push(introduced === '0' ? '>= 0.0.0-0' : `>= ${introduced}`);
  return out;
}

function severityOf(id: string, doc: Json): { severity?: Advisory['severity']; cvssScore?: number } {
  const db = isObject(doc.database_specific) ? doc.database_specific : {};
  const named = typeof db.severity === 'string' ? GHSA_SEVERITY[db.severity.toLowerCase()] : undefined;
  // A plain numeric CVSS score (some databases); a CVSS vector alone is not scored here.
  let cvssScore: number | undefined;
  for (const s of Array.isArray(doc.severity) ? (doc.severity as unknown[]) : []) {
    if (isObject(s) && typeof s.score === 'string' && /^\d+(\.\d+)?$/.test(s.score)) cvssScore = Number(s.score);
  }
  if (isObject(db.cvss) && typeof db.cvss.score === 'number') cvssScore = db.cvss.score;
  if (named) return { severity: named, ...(cvssScore !== undefined ? { cvssScore } : {}) };
  if (cvssScore !== undefined) return { severity: severityOfCvss(cvssScore), cvssScore };
  throw refuse(id, 'has no severity hexrepo can read (database_specific.severity, or a numeric CVSS score)', 'add "database_specific": {"severity": "HIGH"} to the document, or add the advisory with "hexrepo advisory add … --severity"');
}

/** The `html_url`: the advisory's own page if referenced, else its web page, else osv.dev's. */
function htmlUrlOf(id: string, doc: Json): string {
  const refs = (Array.isArray(doc.references) ? (doc.references as unknown[]) : []).filter(isObject);
  const pick = refs.find((r) => r.type === 'ADVISORY') ?? refs.find((r) => r.type === 'WEB') ?? refs[0];
  return typeof pick?.url === 'string' ? pick.url : `https://osv.dev/vulnerability/${id}`;
}

/**
 * Map one OSV document or a list of them. Only `affected` entries of ecosystem "Hex" whose package
 * is in `packages` are taken; a document with none of them is refused (it concerns nothing here).
 */
export function mapOsv(input: unknown, packages: ReadonlySet<string>): OsvImport[] {
  const docs = Array.isArray(input) ? input : [input];
  const out: OsvImport[] = [];
  for (const [i, doc] of docs.entries()) {
    if (!isObject(doc) || typeof doc.id !== 'string') throw new HexrepoError('ADVISORY_INVALID', `OSV document ${i + 1} has no "id"`, { hint: 'give an OSV JSON object (or a list of them) as GitHub or osv.dev publish them' });
    const id = doc.id;
    if (typeof doc.withdrawn === 'string') throw refuse(id, `was withdrawn on ${doc.withdrawn}`, 'leave it out');
    const summary = typeof doc.summary === 'string' && doc.summary.trim() !== '' ? doc.summary : typeof doc.details === 'string' ? doc.details.split('\n')[0]!.slice(0, 200) : '';
    if (summary.trim() === '') throw refuse(id, 'has neither "summary" nor "details"');
    const { severity, cvssScore } = severityOf(id, doc);
    const advisory = validateAdvisory({ id, summary, htmlUrl: htmlUrlOf(id, doc), severity, cvssScore, aliases: Array.isArray(doc.aliases) ? doc.aliases : [] });
    const affected = (Array.isArray(doc.affected) ? (doc.affected as unknown[]) : []).filter(isObject);
    const hex = affected.filter((a) => isObject(a.package) && a.package.ecosystem === 'Hex');
    if (hex.length === 0) throw refuse(id, `affects no Hex package (ecosystems: ${[...new Set(affected.map((a) => (isObject(a.package) ? String(a.package.ecosystem) : '?')))].join(', ') || 'none'})`);
    const here = hex.filter((a) => packages.has(String((a.package as Json).name)));
    if (here.length === 0) throw refuse(id, `affects ${hex.map((a) => String((a.package as Json).name)).join(', ')}, which this repository does not have`);
    const byPackage = new Map<string, string[]>();
    for (const a of here) {
      const pkg = String((a.package as Json).name);
      const alternatives = byPackage.get(pkg) ?? [];
      for (const v of Array.isArray(a.versions) ? (a.versions as unknown[]) : []) {
        if (typeof v !== 'string' || !parseVersion(v)) throw refuse(id, `${pkg}: the affected version ${JSON.stringify(v)} is not SemVer`);
        alternatives.push(`== ${v}`);
      }
      for (const r of Array.isArray(a.ranges) ? (a.ranges as unknown[]) : []) if (isObject(r)) alternatives.push(...rangeRequirement(id, pkg, r));
      byPackage.set(pkg, alternatives);
    }
    for (const [pkg, alternatives] of byPackage) {
      if (alternatives.length === 0) throw refuse(id, `${pkg}: lists neither "versions" nor "ranges"`);
      out.push({ package: pkg, advisory, affected: alternatives.join(' or ') });
    }
  }
  return out;
}
