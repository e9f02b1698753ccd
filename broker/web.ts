/**
 * broker/web.ts: who may use the broker's HTTP port from a browser. A page on any web
 * site can make a trader's browser open a WebSocket to localhost, or read the
 * monitoring endpoints, unless the broker checks where the request comes from:
 *
 *  - Host: a request whose Host header is not one of the broker's own names is refused
 *    (DNS rebinding turns evil.example into 127.0.0.1; its requests still say
 *    "Host: evil.example"). The broker's own names: its `host` option, localhost,
 *    127.0.0.1, [::1], and `allowedHosts`. A broker listening on every interface
 *    (0.0.0.0, ::) with no `allowedHosts` cannot know its names and accepts any Host.
 *  - Origin: a WebSocket upgrade or a cross-origin request from a page is allowed only
 *    from the broker's own origin (a page it served: the dashboard) or one listed in
 *    `allowedOrigins`. A request with no Origin (a program, not a page) is not a
 *    browser's and is allowed; credentials, where configured, still apply to it.
 *  - CORS: no wildcard. `Access-Control-Allow-Origin` is sent back only to an origin in
 *    `allowedOrigins`.
 */

const WILDCARD_HOSTS = new Set(['0.0.0.0', '::', '']);
const LOCAL_NAMES = ['localhost', '127.0.0.1', '[::1]', '::1'];

export interface WebPolicyOptions {
  host: string;
  allowedHosts?: readonly string[];
  allowedOrigins?: readonly string[];
}

/** The hostname of a Host header or an origin's host ("name:port", "[v6]:port"), lower case. */
function hostname(hostPort: string): string {
  const h = hostPort.trim().toLowerCase();
  if (h.startsWith('[')) return h.slice(0, h.indexOf(']') + 1);
  const colon = h.lastIndexOf(':');
  return colon > 0 && h.indexOf(':') === colon ? h.slice(0, colon) : h;
}

export class WebPolicy {
  private readonly names: Set<string> | null;
  private readonly origins: Set<string>;
  private readonly anyOrigin: boolean;

  constructor(o: WebPolicyOptions) {
    const extra = (o.allowedHosts ?? []).map((h) => h.toLowerCase());
    const any = extra.includes('*') || (WILDCARD_HOSTS.has(o.host) && extra.length === 0);
    this.names = any ? null : new Set([...LOCAL_NAMES, o.host.toLowerCase(), o.host.includes(':') ? `[${o.host.toLowerCase()}]` : '', ...extra]);
    this.origins = new Set((o.allowedOrigins ?? []).map((x) => x.toLowerCase().replace(/\/+$/, '')));
    this.anyOrigin = this.origins.has('*');
  }

  /** Null when the Host header names this broker (or is absent); else why not. */
  hostProblem(host: string): string | null {
    if (host === '' || this.names === null) return null;
    return this.names.has(hostname(host)) ? null : `Host "${host}" is not this broker's name (broker option allowedHosts lists more)`;
  }

  /** Whether `origin` was listed in allowedOrigins (a cross-site page that may use the broker). */
  listed(origin: string): boolean {
    return this.anyOrigin || this.origins.has(origin.toLowerCase().replace(/\/+$/, ''));
  }

  /** Null when a request with this Origin (and Host) may go on; else why not. */
  originProblem(origin: string, host: string): string | null {
    if (origin === '' || this.listed(origin)) return null;
    let u: URL;
    try {
      u = new URL(origin);
    } catch {
      return `Origin "${origin}" is not a URL`;
    }
    // The broker's own pages: same scheme-less host and port as the request's Host.
    if (host !== '' && u.host.toLowerCase() === host.trim().toLowerCase() && this.hostProblem(host) === null) return null;
    return `Origin "${origin}" may not use this broker (broker option allowedOrigins lists the pages that may)`;
  }
}
