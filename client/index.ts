/**
 * hopbus: the client SDK, and the one module that decides what `hopbus` exports
 * (with client/public.ts, the list it shares with the browser entry). Everything
 * else in client/ is internal.
 *
 *   import { connect } from 'hopbus'
 *   const bus = await connect('tcp://127.0.0.1:7400', { name: 'pricer' })
 *   bus.subscribe('md.*.bid', (msg) => console.log(msg.subject, msg.value))
 *   bus.publish('md.EURUSD.bid', { px: 1.0712 })
 *
 * client/ imports topics/, transports/, runtime/ and metrics/, never broker/.
 */
// ws:// addresses, with the `ws` package (the browser build registers its own WebSocket instead).
import '../transports/ws/node.js';
// Shared-memory rings between worker threads (connect(broker.endpoint('shm'))).
import '../transports/shm/dial.js';
import { connectBroker } from './bus.js';
import type { ConnectOptions } from './options.js';
import type { Connection } from './types.js';
import type { ServerAddress } from '../transports/dial.js';
import { connectMulticast, type MulticastConnectOptions } from './multicast.js';

/**
 * Connects to a broker (or the first reachable of a list) and completes the handshake.
 * Addresses: tcp://host:port (the default scheme; port 7400 if omitted), unix:///path,
 * ws://host:port/path, or an endpoint object from broker.endpoint('shm' | 'inproc')
 * (docs/SHM.md). A udp://group:port?iface=ADDR address gives a brokerless multicast
 * client (docs/MULTICAST.md). Whatever the address, the result is a Connection; for
 * what only one kind has, connectBroker() returns a Bus and connectMulticast() a
 * MulticastBus.
 */
export async function connect(servers: ServerAddress | ServerAddress[], options?: ConnectOptions | MulticastConnectOptions): Promise<Connection> {
  if (typeof servers === 'string' && servers.startsWith('udp://')) return connectMulticast(servers, options as MulticastConnectOptions);
  return connectBroker(servers, options as ConnectOptions);
}

export * from './public.js';
export { connectBroker } from './bus.js';
export {
  connectMulticast,
  type MulticastBus,
  type MulticastConnectOptions,
  type MulticastLossEvent,
  type MulticastSourceEvent,
  type MulticastSlowEvent,
  type MulticastBusStats,
} from './multicast.js';
export { MulticastConfigError } from '../transports/multicast/endpoint.js';
export type { InboxPolicy } from './inbox.js';
export { SpinWait, HybridWait, ParkWait, type WaitStrategy, type WaitKind, type WaitOptions } from '../transports/shm/wait.js';
export { replay, type ReplayOptions, type ReplaySummary } from './replay.js';
