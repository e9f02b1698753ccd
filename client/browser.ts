/**
 * The client SDK for browsers: the same API as client/index.ts, with ws:// dialed by
 * the browser's own WebSocket instead of the `ws` package, and without the TCP and
 * Unix transports (scripts/browser.mjs stubs them out of the bundle). Bundled into
 * dist/browser/hopbus.js, which exposes it as the global `hopbus`.
 *
 * Timestamps from a browser are not on the host's CLOCK_MONOTONIC (metrics/clock.ts):
 * leave `timestamps` off in browser publishers.
 */
import '../transports/ws/browser.js';
import { Bus } from './bus.js';
import type { ConnectOptions } from './options.js';
import type { ServerAddress } from '../transports/dial.js';

/** Connects to a broker's WebSocket endpoint, e.g. connect('ws://host:8222/bus'). */
export async function connect(servers: ServerAddress | ServerAddress[], options?: ConnectOptions): Promise<Bus> {
  const bus = new Bus(servers, options);
  await bus.open();
  return bus;
}

export { Bus } from './bus.js';
export { Msg } from './msg.js';
export { Subscription } from './subscription.js';
export { CLIENT_DEFAULTS } from './options.js';
export {
  HopbusError, SubjectError, MaxPayloadError, NoRespondersError, TimeoutError, SlowConsumerError,
  ConnectionError, PendingLimitError, OptionsError, ServerError,
} from './errors.js';
