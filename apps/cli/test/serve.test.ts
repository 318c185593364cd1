/** `hexrepo serve` settings and `hexrepo token`, as users drive them. */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hexrepo } from '../../../e2e/support/cli.js';
import { startServe, type ServeProcess } from '../../../e2e/support/serve.js';
import { resolveServeConfig } from '../src/serve-config.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hexrepo-serve-cfg-'));
  await mkdir(join(dir, 'public'));
  await writeFile(join(dir, 'hexrepo.json'), JSON.stringify({ name: 'acme' }));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const resolveWith = (values: Record<string, unknown>, env: Record<string, string> = {}) => resolveServeConfig({ values, env, cwd: dir, positional: undefined });
const failure = async (p: Promise<unknown>): Promise<{ code: string; message: string }> => {
  try {
    await p;
  } catch (err) {
    return err as { code: string; message: string };
  }
  throw new Error('expected a failure');
};

describe('serve settings', () => {
  it('defaults from hexrepo.json', async () => {
    const c = await resolveWith({});
    expect(c).toMatchObject({ host: '127.0.0.1', port: 4000, publicDir: join(dir, 'public'), name: 'acme', access: 'auto', users: [], logLevel: 'info', tokensFile: join(dir, '.hexrepo/tokens.json') });
  });

  it("the guide's environment: PORT, PUBLIC_DIR, AUTH_USERNAME, AUTH_PASSWORD", async () => {
    const c = await resolveWith({}, { PORT: '8080', PUBLIC_DIR: 'public', AUTH_USERNAME: 'alice', AUTH_PASSWORD: 'wonderland' });
    expect(c).toMatchObject({ port: 8080, publicDir: join(dir, 'public'), users: [{ username: 'alice', password: 'wonderland' }] });
    expect(c.sources).toMatchObject({ port: 'PORT', publicDir: 'PUBLIC_DIR' });
  });

  it('flags beat environment, environment beats the config file (paths relative to the file)', async () => {
    await mkdir(join(dir, 'etc'), { recursive: true });
    await writeFile(join(dir, 'etc/serve.json'), JSON.stringify({ port: 7000, host: '0.0.0.0', logLevel: 'warn', publicDir: '../public', access: 'public', users: [{ username: 'bob', password: 'builder123' }] }));
    const fromFile = await resolveWith({ config: 'etc/serve.json' });
    expect(fromFile).toMatchObject({ port: 7000, host: '0.0.0.0', logLevel: 'warn', publicDir: join(dir, 'public'), access: 'public', users: [{ username: 'bob' }] });
    const fromEnv = await resolveWith({ config: 'etc/serve.json' }, { PORT: '7001', HEXREPO_LOG_LEVEL: 'debug' });
    expect(fromEnv).toMatchObject({ port: 7001, logLevel: 'debug', host: '0.0.0.0' });
    const fromFlag = await resolveWith({ config: 'etc/serve.json', port: '7002' }, { PORT: '7001' });
    expect(fromFlag.port).toBe(7002);
    expect((await resolveWith({}, { HEXREPO_CONFIG: 'etc/serve.json' })).port).toBe(7000);
  });

  it('one clear message naming the setting and its source', async () => {
    expect(await failure(resolveWith({ port: 'http' }))).toMatchObject({ code: 'CONFIG_INVALID', message: expect.stringMatching(/^port \(from --port\) must be a port number/) });
    expect(await failure(resolveWith({}, { PORT: '70000' }))).toMatchObject({ message: expect.stringMatching(/^port \(from PORT\)/) });
    expect(await failure(resolveWith({}, { AUTH_USERNAME: 'alice' }))).toMatchObject({ message: expect.stringMatching(/^AUTH_PASSWORD .* must be set together with AUTH_USERNAME/) });
    expect(await failure(resolveWith({ access: 'secret' }))).toMatchObject({ message: expect.stringMatching(/^access \(from --access\) must be "private"/) });
    expect(await failure(resolveWith({}, { HEXREPO_LOG_LEVEL: 'loud' }))).toMatchObject({ message: expect.stringMatching(/^logLevel \(from HEXREPO_LOG_LEVEL\)/) });
    expect(await failure(resolveWith({ tokens: 'public/tokens.json' }))).toMatchObject({ message: expect.stringMatching(/inside the public folder/) });
    await writeFile(join(dir, 'bad.json'), JSON.stringify({ prot: 1 }));
    expect(await failure(resolveWith({ config: 'bad.json' }))).toMatchObject({ message: expect.stringMatching(/^prot .* is not a known setting/) });
    await writeFile(join(dir, 'weak.json'), JSON.stringify({ users: [{ username: 'a', password: 'short' }] }));
    expect(await failure(resolveWith({ config: 'weak.json' }))).toMatchObject({ message: expect.stringMatching(/users\[0\]/) });
    expect(await failure(resolveWith({ 'public-dir': 'nowhere' }))).toMatchObject({ code: 'NOT_FOUND', message: expect.stringMatching(/from --public-dir/) });
  });

  it('trustProxy: off by default; --trust-proxy, HEXREPO_TRUST_PROXY or the config file turn it on', async () => {
    expect((await resolveWith({})).trustProxy).toBe(false);
    expect(await resolveWith({ 'trust-proxy': true })).toMatchObject({ trustProxy: true, sources: { trustProxy: '--trust-proxy' } });
    expect(await resolveWith({}, { HEXREPO_TRUST_PROXY: 'true' })).toMatchObject({ trustProxy: true, sources: { trustProxy: 'HEXREPO_TRUST_PROXY' } });
    expect((await resolveWith({}, { HEXREPO_TRUST_PROXY: '0' })).trustProxy).toBe(false);
    await writeFile(join(dir, 'proxy.json'), JSON.stringify({ trustProxy: true }));
    expect((await resolveWith({ config: 'proxy.json' })).trustProxy).toBe(true);
    expect(await failure(resolveWith({}, { HEXREPO_TRUST_PROXY: 'yes please' }))).toMatchObject({ code: 'CONFIG_INVALID', message: expect.stringMatching(/^trustProxy \(from HEXREPO_TRUST_PROXY\) must be true or false/) });
  });

  it('hexrepo serve --trust-proxy sends browsers to the forwarded origin (OAuth verification_uri)', async () => {
    const verificationUri = async (args: string[]): Promise<string> => {
      const server = await startServe(args, { cwd: dir });
      try {
        const res = await fetch(`${server.url}/api/oauth/device_authorization`, {
          method: 'POST',
          headers: { 'x-forwarded-proto': 'https', 'x-forwarded-host': 'repo.example.com', 'content-type': 'application/json' },
          body: JSON.stringify({ client_id: 'hexrepo-test' }),
        });
        return ((await res.json()) as { verification_uri: string }).verification_uri;
      } finally {
        await server.stop();
      }
    };
    expect(await verificationUri(['--trust-proxy'])).toBe('https://repo.example.com/oauth/device');
    expect(await verificationUri([])).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/oauth\/device$/);
  });

  it('hexrepo serve exits 1 with the message on invalid config', async () => {
    const res = await hexrepo(['serve', '--port', 'http'], { cwd: dir });
    expect(res.status).toBe(1);
    expect(res.stderr).toMatch(/^error\[CONFIG_INVALID\]: port \(from --port\)/);
  });
});

describe('hexrepo token', () => {
  it('create prints the secret once; list shows records without it; revoke removes it', async () => {
    const created = await hexrepo(['token', 'create', '--label', 'ci', '--scope', 'read', '--scope', 'write', '--package', 'acme_*', '--json'], { cwd: dir });
    expect(created.status, created.stderr).toBe(0);
    const info = JSON.parse(created.stdout) as { token: string; id: string };
    expect(info).toMatchObject({ grants: [{ repository: 'acme', scopes: ['read', 'write'], packages: ['acme_*'] }] });
    const list = await hexrepo(['token', 'list', '--json'], { cwd: dir });
    expect(JSON.parse(list.stdout)).toEqual([expect.objectContaining({ id: info.id, label: 'ci' })]);
    expect(list.stdout).not.toContain(info.token);
    const human = await hexrepo(['token', 'list'], { cwd: dir });
    expect(human.stdout).toMatch(new RegExp(`^${info.id}\\s+acme:read,write\\[acme_\\*\\]`));
    expect((await hexrepo(['token', 'revoke', info.id], { cwd: dir })).status).toBe(0);
    expect((await hexrepo(['token', 'revoke', info.id], { cwd: dir })).status).toBe(1);
  });

  it('usage errors exit 2', async () => {
    expect((await hexrepo(['token'], { cwd: dir })).status).toBe(2);
    expect((await hexrepo(['token', 'create', '--scope', 'read'], { cwd: dir })).stderr).toContain('--label');
    expect((await hexrepo(['token', 'create', '--label', 'x', '--scope', 'root'], { cwd: dir })).stderr).toContain('unknown scope');
    expect((await hexrepo(['token', 'revoke'], { cwd: dir })).status).toBe(2);
  });
});

describe('one request does not stop hexrepo serve', () => {
  let repo: string;
  let server: ServeProcess;
  let token: string;
  beforeAll(async () => {
    expect((await hexrepo(['init', 'crash', '--name', 'acme'], { cwd: dir })).status).toBe(0);
    repo = join(dir, 'crash');
    token = (JSON.parse((await hexrepo(['token', 'create', '--label', 'ci', '--scope', 'read', '--scope', 'write', '--json'], { cwd: repo })).stdout) as { token: string }).token;
    server = await startServe([], { cwd: repo });
  }, 30_000);
  afterAll(async () => {
    await server?.stop();
  });

  it('a chunked retire body over 64 KiB gets 413, and the process keeps serving without a safety net', async () => {
    const url = new URL(server.url);
    const answer = await new Promise<string>((resolve) => {
      const socket = connect(Number(url.port), url.hostname);
      const got: Buffer[] = [];
      socket.on('data', (d: Buffer) => got.push(d));
      socket.on('error', () => socket.destroy());
      socket.on('close', () => resolve(Buffer.concat(got).toString('latin1')));
      socket.write(`POST /api/packages/foo/releases/1.0.0/retire HTTP/1.1\r\nHost: x\r\nAuthorization: ${token}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n`);
      const piece = Buffer.alloc(10_000, 0x20);
      for (let i = 0; i < 7; i++) socket.write(Buffer.concat([Buffer.from(`${piece.length.toString(16)}\r\n`), piece, Buffer.from('\r\n')]));
      socket.write('0\r\n\r\n');
    });
    expect(answer).toMatch(/^HTTP\/1\.1 413 /);
    const names = await fetch(`${server.url}/names`, { headers: { authorization: token } });
    expect(names.status).toBe(200);
    expect(server.child.exitCode).toBeNull();
    expect(server.logs.filter((l) => l.msg === 'request' && l.status === 413)).toHaveLength(1);
    expect(server.logs.some((l) => typeof l.msg === 'string' && l.msg.startsWith('uncaught'))).toBe(false);
  });
});
