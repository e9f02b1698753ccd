import type { TransportName } from './link.js';
import { HopbusError } from '../runtime/errors.js';

/** A parsed transport address. */
export interface Endpoint {
  transport: TransportName;
  url: string;
  host?: string;
  port?: number;
  path?: string;
  /** Query parameters (e.g. udp://239.1.2.3:7500?iface=127.0.0.1). */
  params: Record<string, string>;
  /** Credentials in the address's user part (tcp://user:pass@host), decoded; never in `url`. */
  user?: string;
  pass?: string;
  /** For endpoints handed out as objects (shm, inproc): the object itself. */
  descriptor?: { transport: TransportName; [key: string]: unknown };
}

export const DEFAULT_PORT = 7400;

/** A server address that cannot be parsed or dialed. */
export class UrlError extends HopbusError {
  declare readonly code: 'BAD_URL';
  constructor(message: string) {
    super('BAD_URL', message);
  }
}

/**
 * Parses `tcp://host:port`, `tls://host:port`, `host:port`, `unix:///abs/path`,
 * `ws://host:port/path`, `wss://host:port/path`, `udp://group:port`. A missing scheme
 * means tcp; a missing tcp or tls port means 7400. wss:// is the ws transport over TLS
 * (its `url` keeps the scheme, which the WebSocket dialers follow).
 */
export function parseUrl(input: string): Endpoint {
  if (typeof input !== 'string' || input.length === 0) throw new UrlError(`server address must be a non-empty string, got ${JSON.stringify(input)}`);
  const raw = input.includes('://') ? input : `tcp://${input}`;
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new UrlError(`cannot parse server address "${input}": expected tcp://host:port or unix:///path`);
  }
  const params: Record<string, string> = {};
  u.searchParams.forEach((v, k) => (params[k] = v));
  const scheme = u.protocol.slice(0, -1);
  const creds = u.username !== '' ? { user: decodeURIComponent(u.username), pass: decodeURIComponent(u.password) } : {};
  switch (scheme) {
    case 'tcp':
    case 'tls': {
      const host = u.hostname.replace(/^\[(.*)\]$/, '$1');
      if (!host) throw new UrlError(`address "${input}" has no host`);
      const port = u.port === '' ? DEFAULT_PORT : Number(u.port);
      return { transport: scheme, url: `${scheme}://${u.host || host}${u.port === '' ? ':' + port : ''}`, host, port, params, ...creds };
    }
    case 'unix': {
      const path = decodeURIComponent(u.pathname);
      if (u.host !== '' || !path.startsWith('/')) {
        throw new UrlError(`unix address "${input}" must be unix:///absolute/path (three slashes)`);
      }
      return { transport: 'unix', url: `unix://${path}`, path, params };
    }
    case 'ws':
    case 'wss':
    case 'udp': {
      const host = u.hostname.replace(/^\[(.*)\]$/, '$1');
      if (!host || u.port === '') throw new UrlError(`address "${input}" needs a host and a port`);
      // The user part stays out of `url`, which logs and errors show.
      return {
        transport: scheme === 'wss' ? 'ws' : scheme,
        url: u.username !== '' ? input.replace(/\/\/[^@/]*@/, '//') : input,
        host,
        port: Number(u.port),
        path: u.pathname,
        params,
        ...creds,
      };
    }
    default:
      throw new UrlError(`unsupported transport "${scheme}" in "${input}": use tcp://, tls://, unix://, ws://, wss:// or udp://`);
  }
}
