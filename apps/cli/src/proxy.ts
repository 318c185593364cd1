/**
 * Proxy settings from the environment (HTTPS_PROXY / HTTP_PROXY / NO_PROXY, upper or lower case),
 * as curl reads them: an agent per target URL that tunnels through the proxy with CONNECT, or
 * undefined for a direct connection. Only the CLI reads the environment; packages get the function.
 */
import { Agent as HttpAgent, request, type ClientRequestArgs, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { connect as tlsConnect } from 'node:tls';
import { HexrepoError } from '@hexrepo/core';

type Env = Readonly<Record<string, string | undefined>>;
type Callback = (err: Error | null, stream: Duplex) => void;
type ConnectOptions = ClientRequestArgs & { servername?: string };

/** Open a CONNECT tunnel through `proxy` to host:port; TLS on top for an https target. */
function tunnel(proxy: URL, options: ConnectOptions, secure: boolean, done: Callback): void {
  // Node's agent takes (err) alone on failure; the typings want a stream either way.
  const cb = (err: Error | null, stream?: Duplex): void => (err ? (done as (e: Error) => void)(err) : done(null, stream!));
  const target = `${options.host ?? options.hostname ?? 'localhost'}:${options.port ?? (secure ? 443 : 80)}`;
  const headers: Record<string, string> = { host: target };
  if (proxy.username) headers['proxy-authorization'] = `Basic ${Buffer.from(`${decodeURIComponent(proxy.username)}:${decodeURIComponent(proxy.password)}`).toString('base64')}`;
  const req = request({ host: proxy.hostname, port: proxy.port || 80, method: 'CONNECT', path: target, headers, agent: false });
  req.once('connect', (res: IncomingMessage, socket: Socket) => {
    if (res.statusCode !== 200) {
      socket.destroy();
      cb(new Error(`the proxy ${proxy.host} refused CONNECT ${target} (${res.statusCode})`));
      return;
    }
    cb(null, secure ? tlsConnect({ socket, servername: options.servername ?? options.host ?? '' }) : socket);
  });
  req.once('error', (e) => cb(new Error(`the proxy ${proxy.host} cannot be reached: ${e.message}`)));
  req.end();
}

class HttpTunnelAgent extends HttpAgent {
  constructor(readonly proxy: URL) {
    super({ keepAlive: true });
  }
  override createConnection(options: ConnectOptions, cb?: Callback): undefined {
    if (cb) tunnel(this.proxy, options, false, cb);
    return undefined;
  }
}

class HttpsTunnelAgent extends HttpsAgent {
  constructor(readonly proxy: URL) {
    super({ keepAlive: true });
  }
  override createConnection(options: ConnectOptions, cb?: Callback): undefined {
    if (cb) tunnel(this.proxy, options, true, cb);
    return undefined;
  }
}

function envOf(env: Env, name: string): string | undefined {
  const v = env[name] ?? env[name.toLowerCase()];
  return v === undefined || v === '' ? undefined : v;
}

/** True when NO_PROXY (comma-separated hosts, `.suffix`, `*`, optional `:port`) covers the URL. */
export function bypassesProxy(url: URL, noProxy: string | undefined): boolean {
  if (!noProxy) return false;
  const host = url.hostname.replace(/^\[|\]$/g, '').toLowerCase();
  const port = url.port || (url.protocol === 'https:' ? '443' : '80');
  return noProxy
    .split(/[,\s]+/)
    .filter(Boolean)
    .some((entry) => {
      if (entry === '*') return true;
      const m = /^(.*?)(?::(\d+))?$/.exec(entry.toLowerCase())!;
      const [, pattern = '', p] = m;
      if (p && p !== port) return false;
      const bare = pattern.replace(/^\*?\./, '');
      return host === bare || host.endsWith(`.${bare}`);
    });
}

/**
 * The agent factory for outgoing requests under the environment's proxy settings: HTTPS_PROXY for
 * https:// targets, HTTP_PROXY for http:// ones (both tunnel with CONNECT), none for NO_PROXY hosts.
 */
export function proxyAgentFor(env: Env): (url: URL) => HttpAgent | undefined {
  const agents = new Map<string, HttpAgent>();
  const parse = (name: string): URL | undefined => {
    const raw = envOf(env, name);
    if (raw === undefined) return undefined;
    try {
      return new URL(/^[a-z]+:\/\//i.test(raw) ? raw : `http://${raw}`);
    } catch {
      throw new HexrepoError('CONFIG_INVALID', `${name}=${JSON.stringify(raw)} is not a proxy URL`, { hint: `set ${name} to http://HOST:PORT (or unset it)` });
    }
  };
  const httpsProxy = parse('HTTPS_PROXY');
  const httpProxy = parse('HTTP_PROXY');
  const noProxy = envOf(env, 'NO_PROXY');
  return (url) => {
    const secure = url.protocol === 'https:';
    const proxy = secure ? httpsProxy : httpProxy;
    if (!proxy || bypassesProxy(url, noProxy)) return undefined;
    const key = `${secure}|${proxy.href}`;
    let agent = agents.get(key);
    if (!agent) {
      agent = secure ? new HttpsTunnelAgent(proxy) : new HttpTunnelAgent(proxy);
      agents.set(key, agent);
    }
    return agent;
  };
}
