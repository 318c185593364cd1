/**
 * The host's credentials on a host of several repositories, through the built CLI: two repositories
 * made with `hexrepo repo add`, served by one `hexrepo serve` with two worker processes (a server
 * that publishes runs one by default: asked for explicitly).
 * A token created with `hexrepo token create --repo alpha` while the server runs lands in the host's
 * state store (DIR/.hexrepo/state/); every worker re-reads it within 5 s, accepts it on alpha and
 * refuses it on beta (403); once revoked, every worker refuses it (401) within 5 s. Requests go on
 * fresh connections, so the primary hands them to every worker in turn; loops are bounded by a count.
 */
import { request } from 'node:http';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hexrepo } from '../../../e2e/support/cli.js';
import { reloadedWithin5s, reloads } from '../../../e2e/support/credentials.js';
import { startServe, type ServeProcess } from '../../../e2e/support/serve.js';

/** One GET on a connection of its own: the status. */
function fresh(url: string, path: string, authorization: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(`${url}${path}`, { headers: { authorization, accept: 'application/json' }, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end();
  });
}

/** The processes of a server that answer requests: its workers, or the single process (no id). */
function servingProcesses(server: ServeProcess): Set<unknown> {
  const ids = new Set(server.logs.filter((l) => l.msg === 'listening').map((l) => l.worker));
  if (ids.size > 1) ids.delete(0);
  return ids;
}

/**
 * GET `path` on fresh connections until every serving process has answered it (at most 100
 * requests): the statuses given, and which processes answered, from the request log.
 */
async function askEveryWorker(server: ServeProcess, path: string, authorization: string): Promise<{ statuses: Set<number>; answeredBy: Set<unknown> }> {
  const from = server.logs.length;
  const statuses = new Set<number>();
  const answeredBy = (): Set<unknown> =>
    new Set(
      server.logs
        .slice(from)
        .filter((l) => l.msg === 'request' && l.path === path)
        .map((l) => l.worker),
    );
  const all = servingProcesses(server);
  for (let i = 0; i < 100 && [...all].some((w) => !answeredBy().has(w)); i++) {
    statuses.add(await fresh(server.url, path, authorization));
    // The access log line is written when the response ends; give it a turn to arrive.
    await new Promise((r) => setTimeout(r, 10));
  }
  return { statuses, answeredBy: answeredBy() };
}

describe('a host of two repositories: tokens granted one repository, created and revoked while serving', () => {
  let dir: string;
  let server: ServeProcess;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'hexrepo-host-credentials-'));
    for (const args of [['alpha', '--root'], ['beta']]) {
      const added = await hexrepo(['repo', 'add', ...args], { cwd: dir });
      expect(added.status, added.stderr).toBe(0);
      // It says how to give clients a token for that repository.
      expect(added.stdout).toContain(`hexrepo token create --label ${args[0]}-ci --repo ${args[0]} --scope read`);
    }
    server = await startServe(['--workers', '2'], { cwd: dir });
    // Each worker logs that it listens once it does; the address line may come first.
    for (let i = 0; i < 200 && servingProcesses(server).size < 2; i++) await new Promise((r) => setTimeout(r, 25));
  }, 60_000);

  afterAll(async () => {
    if (server) expect(await server.stop()).toBe(0);
    await rm(dir, { recursive: true, force: true });
  });

  it('is accepted on alpha and refused on beta by every worker within 5 s of its creation, and refused by every worker within 5 s of its revocation', async () => {
    const workers = servingProcesses(server);
    expect(workers.size).toBe(2);
    expect(await fresh(server.url, '/repos/alpha/names', '')).toBe(401);

    let before = [reloads(server)];
    const created = await hexrepo(['token', 'create', '--label', 'alpha-ci', '--repo', 'alpha', '--scope', 'read', '--json'], { cwd: dir });
    expect(created.status, created.stderr).toBe(0);
    const token = JSON.parse(created.stdout) as { token: string; id: string; grants: unknown; credentials: string };
    expect(token.grants).toEqual([{ repository: 'alpha', scopes: ['read'], packages: [] }]);
    // The host's state store: beside hexrepo.json, never inside a served folder.
    expect(token.credentials).toBe(`file://${join(dir, '.hexrepo/state')}/_hexrepo/host/credentials.json`);
    expect(await readFile(join(dir, '.hexrepo/state/_hexrepo/host/credentials.json'), 'utf8')).not.toContain(token.token);
    expect(await reloadedWithin5s([server], before)).toEqual([true]);

    for (const path of ['/repos/alpha/names', '/names', '/api/repos/alpha/packages/none']) {
      const alpha = await askEveryWorker(server, path, token.token);
      expect(alpha.answeredBy).toEqual(workers);
      // The API answers 404 for a package that does not exist: the token got past the grant check.
      expect([...alpha.statuses]).toEqual([path.startsWith('/api/') ? 404 : 200]);
    }
    for (const path of ['/repos/beta/names', '/api/repos/beta/packages/none']) {
      const beta = await askEveryWorker(server, path, token.token);
      expect(beta.answeredBy).toEqual(workers);
      expect([...beta.statuses]).toEqual([403]);
    }

    before = [reloads(server)];
    const revoked = await hexrepo(['token', 'revoke', token.id], { cwd: dir });
    expect(revoked.status, revoked.stderr).toBe(0);
    expect(await reloadedWithin5s([server], before)).toEqual([true]);
    const after = await askEveryWorker(server, '/repos/alpha/names', token.token);
    expect(after.answeredBy).toEqual(workers);
    expect([...after.statuses]).toEqual([401]);
  }, 60_000);

  it('hexrepo token create on a host needs --repo, and names one of its repositories', async () => {
    const none = await hexrepo(['token', 'create', '--label', 'x', '--scope', 'read'], { cwd: dir });
    expect(none.status).toBe(2);
    expect(none.stderr).toContain('pass --repo NAME (repeatable; "*" for every repository of the host: alpha, beta)');
    const typo = await hexrepo(['token', 'create', '--label', 'x', '--repo', 'alhpa', '--scope', 'read'], { cwd: dir });
    expect(typo.status).toBe(2);
    expect(typo.stderr).toContain('--repo alhpa: the host has no repository alhpa (it has alpha, beta');
  });
});
