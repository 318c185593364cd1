/** An in-memory DataSource for UI tests: packages, releases, metadata, and failures on demand. */
import { HexrepoError } from '@hexrepo/core';
import { parseTarball } from '@hexrepo/tarball';
import { byName, summarize, type DataSource, type PackageSummary, type Release, type ReleaseMetadata, type Retirement, type SourceInfo } from '../src/source.js';

const hex = (seed: string): string => Buffer.from(seed.padEnd(32, '.')).toString('hex').slice(0, 64);

export function release(version: string, extra: Partial<Release> = {}): Release {
  return { version, checksum: hex(`outer-${version}`), innerChecksum: hex(`inner-${version}`), publishedAt: 1_700_000_000, dependencies: [], ...extra };
}

export class FakeSource implements DataSource {
  info: SourceInfo = { kind: 'local', repository: 'fake', fingerprint: 'SHA256:fakefingerprint', location: '/memory/public' };
  readonly packages = new Map<string, Release[]>();
  readonly published: { name: string; version: string }[] = [];
  readonly calls: string[] = [];
  /** Make the next publish fail with this error. */
  failPublish: Error | null = null;
  metadataDelayMs = 0;

  constructor(packages: Record<string, Release[]> = {}) {
    for (const [name, rs] of Object.entries(packages)) this.packages.set(name, rs);
  }

  async listPackages(): Promise<PackageSummary[]> {
    return [...this.packages]
      .map(([name, rs]) =>
        summarize(
          name,
          rs.map((r) => r.version),
          new Set(rs.filter((r) => r.retired).map((r) => r.version)),
          new Set(rs.filter((r) => r.advisories).map((r) => r.version)),
        ),
      )
      .sort(byName);
  }

  async releases(name: string): Promise<Release[]> {
    const rs = this.packages.get(name);
    if (!rs) throw new HexrepoError('NOT_FOUND', `no package ${name}`);
    return rs.map((r) => ({ ...r }));
  }

  async metadata(name: string, version: string): Promise<ReleaseMetadata> {
    if (this.metadataDelayMs) await new Promise((r) => setTimeout(r, this.metadataDelayMs));
    return { description: `The ${name} package, version ${version}`, licenses: ['Apache-2.0'], links: [['GitHub', `https://example.com/${name}`]], buildTools: ['mix'] };
  }

  async publish(bytes: Uint8Array) {
    this.calls.push('publish');
    if (this.failPublish) {
      const err = this.failPublish;
      this.failPublish = null;
      throw err;
    }
    const parsed = parseTarball(bytes);
    const { name, version } = parsed.facts;
    const rs = this.packages.get(name) ?? [];
    if (rs.some((r) => r.version === version)) throw new HexrepoError('ALREADY_EXISTS', `${name} ${version} is already published`);
    this.packages.set(name, [...rs, release(version)]);
    this.published.push({ name, version });
    return { created: true, name, version, checksum: 'ab'.repeat(32) };
  }

  async retire(name: string, version: string, retirement: Retirement): Promise<void> {
    this.calls.push(`retire ${name} ${version} ${retirement.reason} ${retirement.message ?? ''}`.trim());
    const r = this.packages.get(name)?.find((x) => x.version === version);
    if (!r) throw new HexrepoError('NOT_FOUND', `no ${name} ${version}`);
    r.retired = retirement;
  }

  async unretire(name: string, version: string): Promise<void> {
    this.calls.push(`unretire ${name} ${version}`);
    const r = this.packages.get(name)?.find((x) => x.version === version);
    if (!r) throw new HexrepoError('NOT_FOUND', `no ${name} ${version}`);
    delete r.retired;
  }

  async close(): Promise<void> {}
}

/** `count` packages with generated names, 1–4 releases each, some retired. */
export function generated(count: number): FakeSource {
  const words = ['phoenix', 'ecto', 'plug', 'jason', 'tesla', 'oban', 'broadway', 'nimble', 'telemetry', 'finch', 'mint', 'castore', 'decimal', 'gettext', 'swoosh'];
  const pkgs: Record<string, Release[]> = {};
  for (let i = 0; i < count; i++) {
    const name = `${words[i % words.length]}_${words[(i * 7) % words.length]}_${i}`;
    const n = 1 + (i % 4);
    pkgs[name] = Array.from({ length: n }, (_, j) => release(`${j}.${i % 10}.0`, i % 13 === 0 && j === n - 1 ? { retired: { reason: 'deprecated' } } : {}));
  }
  return new FakeSource(pkgs);
}
