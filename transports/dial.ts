import type { Link, TransportName } from './link.js';
import { dialStream } from './stream.js';
import { dialTls } from './tls.js';
import type { ClientTlsOptions } from './tls-options.js';
import { UrlError, parseUrl, type Endpoint } from './url.js';

/**
 * Where a client connects: a URL string (tcp://, unix://, ...) or a structured-cloneable
 * descriptor that a broker hands out for transports without an address of their own
 * (shared memory between worker threads, in-process), e.g. the result of
 * broker.endpoint('shm'). Descriptors carry their transport name in `transport`.
 */
export type EndpointDescriptor = { transport: TransportName; url?: string; [key: string]: unknown };
export type ServerAddress = string | EndpointDescriptor;

export interface DialOptions {
  maxFrame: number;
  timeoutMs: number;
  /** Transport-specific options passed through from connect() (e.g. shm wait strategy). */
  transportOptions?: Record<string, unknown>;
}

export type Dialer = (ep: Endpoint, options: DialOptions) => Promise<Link>;

const dialers = new Map<TransportName, Dialer>();

/** Makes a transport available to clients. Transport modules call this when loaded. */
export function registerDialer(transport: TransportName, dialer: Dialer): void {
  dialers.set(transport, dialer);
}

registerDialer('tcp', (ep, o) =>
  // A client given TLS settings means TLS: a tcp:// address would silently send in plain text.
  o.transportOptions?.tls
    ? Promise.reject(new UrlError(`${ep.url} is plain TCP, but TLS options were given: dial tls://${ep.url.slice('tcp://'.length)}`))
    : dialStream(ep, o.maxFrame, o.timeoutMs),
);
registerDialer('tls', (ep, o) => dialTls(ep, o.maxFrame, o.timeoutMs, (o.transportOptions?.tls ?? undefined) as ClientTlsOptions | undefined));
registerDialer('unix', (ep, o) => dialStream(ep, o.maxFrame, o.timeoutMs));

/** Normalises a server address; throws UrlError for what cannot be dialed. */
export function toEndpoint(addr: ServerAddress): Endpoint {
  if (typeof addr === 'string') return parseUrl(addr);
  if (addr === null || typeof addr !== 'object' || typeof addr.transport !== 'string') {
    throw new UrlError(`server address must be a URL string or an endpoint object from broker.endpoint(), got ${JSON.stringify(addr)}`);
  }
  return { transport: addr.transport, url: addr.url ?? `${addr.transport}://`, params: {}, descriptor: addr };
}

export function canDial(ep: Endpoint): boolean {
  return dialers.has(ep.transport);
}

/** False for endpoints that serve one connection (shm): a client does not reconnect to them. */
export function canRedial(ep: Endpoint): boolean {
  return ep.descriptor?.reusable !== false;
}

export function dial(ep: Endpoint, options: DialOptions): Promise<Link> {
  const d = dialers.get(ep.transport);
  if (d === undefined) return Promise.reject(new UrlError(`no transport "${ep.transport}" is available to dial ${ep.url}`));
  return d(ep, options);
}
