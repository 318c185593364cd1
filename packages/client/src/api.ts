/**
 * The client of the publish API (`/api` of `hexrepo serve`, as Mix and rebar3_hex call it):
 * publish, retire, unretire, revert, the package and release metadata, advisories and policies.
 */
import { HexrepoError, isRetirementReason, validateAdvisory, type Advisory, type PolicyDefinition, type Retirement } from '@hexrepo/core';
import { refused, repositoryRoot, send, type ServerOptions } from './http.js';

export interface PublishOutcome {
  /** False when an existing release was replaced. */
  created: boolean;
  name: string;
  version: string;
  /** Lowercase hex SHA-256 of the tarball as stored. */
  checksum: string;
}

/** `GET /api/packages/NAME`, the fields hexrepo reads. */
export interface ApiPackage {
  name?: string;
  latest_version?: string;
  meta?: { description?: string | null; licenses?: string[]; links?: Record<string, string> };
}

/** One entry of `GET /api/packages/NAME/owners`. */
export interface ApiOwner {
  username: string;
  level: 'full' | 'maintainer';
  inserted_at?: string;
}

/** `GET /api/packages/NAME/releases/VERSION`, the fields hexrepo reads. */
export interface ApiRelease {
  version?: string;
  checksum?: string;
  meta?: { build_tools?: string[] };
}

export class ApiClient {
  /** The API base URL (`…/api`), as shown in messages. */
  readonly api: string;

  constructor(private readonly opts: ServerOptions) {
    this.api = `${repositoryRoot(opts.url)}/api`;
  }

  async #call(method: string, path: string, body?: Uint8Array | object): Promise<{ status: number; json: unknown }> {
    const url = `${this.api}${path}`;
    const contentType = body instanceof Uint8Array ? 'application/octet-stream' : body ? 'application/json' : undefined;
    const res = await send(this.opts, this.api, url, {
      method,
      headers: { accept: 'application/json', ...(contentType ? { 'content-type': contentType } : {}) },
      ...(body instanceof Uint8Array ? { body } : body ? { body: JSON.stringify(body) } : {}),
    });
    if (!res.ok) throw await refused(method, url, res);
    const text = await res.text();
    return { status: res.status, json: text ? (JSON.parse(text) as unknown) : null };
  }

  /** Publish a tarball; with `replace`, overwrite an existing release of the same version. */
  async publish(bytes: Uint8Array, opts: { replace?: boolean } = {}): Promise<PublishOutcome> {
    const { status, json } = await this.#call('POST', `/publish?replace=${opts.replace === true}`, bytes);
    const r = json as { version: string; checksum: string; url: string };
    const name = /\/packages\/([^/]+)\/releases\//.exec(r.url)?.[1] ?? '?';
    return { created: status === 201, name, version: r.version, checksum: r.checksum };
  }

  /** Retire a release; an unknown reason is refused here, before anything is sent. */
  async retire(name: string, version: string, retirement: { reason: string; message?: string | undefined }): Promise<void> {
    if (!isRetirementReason(retirement.reason)) {
      throw new HexrepoError('USAGE', `unknown retirement reason "${retirement.reason}"`, { hint: 'use one of other, invalid, security, deprecated, renamed' });
    }
    const body: Retirement = { reason: retirement.reason, ...(retirement.message ? { message: retirement.message } : {}) };
    await this.#call('POST', `/packages/${name}/releases/${version}/retire`, body);
  }

  async unretire(name: string, version: string): Promise<void> {
    await this.#call('DELETE', `/packages/${name}/releases/${version}/retire`);
  }

  /** Remove a release (`mix hex.publish --revert`). */
  async revert(name: string, version: string): Promise<void> {
    await this.#call('DELETE', `/packages/${name}/releases/${version}`);
  }

  /** Retire every release of a package not retired yet (`POST /packages/NAME/retire`); with no retirement, unretire them all. */
  async retireAll(name: string, retirement: { reason: string; message?: string | undefined } | undefined): Promise<void> {
    if (!retirement) {
      await this.#call('DELETE', `/packages/${name}/retire`);
      return;
    }
    if (!isRetirementReason(retirement.reason)) throw new HexrepoError('USAGE', `unknown retirement reason "${retirement.reason}"`, { hint: 'use one of other, invalid, security, deprecated, renamed' });
    await this.#call('POST', `/packages/${name}/retire`, { reason: retirement.reason, ...(retirement.message ? { message: retirement.message } : {}) });
  }

  /** The owners of a package (`GET /packages/NAME/owners`). */
  async owners(name: string): Promise<ApiOwner[]> {
    return (await this.#call('GET', `/packages/${name}/owners`)).json as ApiOwner[];
  }

  /** Make a host user an owner (`PUT /packages/NAME/owners/USER`); `transfer` leaves them the only one. */
  async addOwner(name: string, username: string, opts: { level: 'full' | 'maintainer'; transfer?: boolean }): Promise<void> {
    await this.#call('PUT', `/packages/${name}/owners/${encodeURIComponent(username)}`, { level: opts.level, transfer: opts.transfer === true });
  }

  /** Remove an owner (`DELETE /packages/NAME/owners/USER`). */
  async removeOwner(name: string, username: string): Promise<void> {
    await this.#call('DELETE', `/packages/${name}/owners/${encodeURIComponent(username)}`);
  }

  async package(name: string): Promise<ApiPackage> {
    return (await this.#call('GET', `/packages/${name}`)).json as ApiPackage;
  }

  async release(name: string, version: string): Promise<ApiRelease> {
    return (await this.#call('GET', `/packages/${name}/releases/${version}`)).json as ApiRelease;
  }

  /** Attach an advisory to the releases `versions` names (versions or requirements); write scope. */
  async addAdvisory(name: string, advisory: Advisory, versions: readonly string[]): Promise<ApiAdvisory> {
    const body = { id: advisory.id, summary: advisory.summary, html_url: advisory.htmlUrl, api_url: advisory.apiUrl, severity: advisory.severity ?? null, cvss_score: advisory.cvssScore ?? null, aliases: advisory.aliases, versions };
    return advisoryOf((await this.#call('POST', `/packages/${name}/advisories`, body)).json);
  }

  async advisories(name: string): Promise<ApiAdvisory[]> {
    const json = (await this.#call('GET', `/packages/${name}/advisories`)).json;
    return (Array.isArray(json) ? json : []).map(advisoryOf);
  }

  async removeAdvisory(name: string, id: string): Promise<void> {
    await this.#call('DELETE', `/packages/${name}/advisories/${encodeURIComponent(id)}`);
  }

  async policies(): Promise<PolicyDefinition[]> {
    return (await this.#call('GET', '/policies')).json as PolicyDefinition[];
  }

  /** One policy, or null when the server has none of that name. */
  async policy(name: string): Promise<PolicyDefinition | null> {
    try {
      return (await this.#call('GET', `/policies/${name}`)).json as PolicyDefinition;
    } catch (err) {
      if (err instanceof HexrepoError && err.code === 'NOT_FOUND') return null;
      throw err;
    }
  }

  /** Create (`create`: refused if it exists) or store a policy; admin scope. The server validates it again. */
  async putPolicy(policy: Record<string, unknown>, mode: 'create' | 'upsert'): Promise<PolicyDefinition> {
    const path = mode === 'create' ? '/policies' : `/policies/${String(policy.name)}`;
    return (await this.#call('POST', path, policy)).json as PolicyDefinition;
  }

  async deletePolicy(name: string): Promise<void> {
    await this.#call('DELETE', `/policies/${name}`);
  }
}

/** An advisory as the API lists it, with the versions it is attached to. */
export interface ApiAdvisory {
  advisory: Advisory;
  versions: string[];
}

function advisoryOf(json: unknown): ApiAdvisory {
  const m = (json ?? {}) as Record<string, unknown>;
  const advisory = validateAdvisory({ id: m.id, summary: m.summary, htmlUrl: m.html_url, apiUrl: m.api_url, severity: m.severity, cvssScore: m.cvss_score, aliases: m.aliases });
  return { advisory, versions: Array.isArray(m.versions) ? m.versions.filter((v): v is string => typeof v === 'string') : [] };
}
