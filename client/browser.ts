/**
 * hopbus/browser: the client SDK for browsers, the module that decides what that
 * entry exports. The same API as client/index.ts (the shared list is
 * client/public.ts), with ws:// dialed by the browser's own WebSocket instead of the
 * `ws` package, and without the TCP, Unix, shm and multicast transports
 * (scripts/browser.mjs stubs them out of the bundle). Bundled into
 * dist/browser/hopbus.js, which exposes it as the global `hopbus`.
 *
 * Timestamps from a browser are not on the host's CLOCK_MONOTONIC (runtime/clock.ts):
 * leave `timestamps` off in browser publishers.
 */
import '../transports/ws/browser.js';
import { connectBroker } from './bus.js';
import type { ConnectOptions } from './options.js';
import type { Connection } from './types.js';
import type { ServerAddress } from '../transports/dial.js';

/** Connects to a broker's WebSocket endpoint, e.g. connect('ws://host:8222/bus'). */
export function connect(servers: ServerAddress | ServerAddress[], options?: ConnectOptions): Promise<Connection> {
  return connectBroker(servers, options);
}

export * from './public.js';
export { connectBroker } from './bus.js';
