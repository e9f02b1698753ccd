/**
 * hopbus: the client SDK.
 *
 *   import { connect } from 'hopbus'
 *   const bus = await connect('tcp://127.0.0.1:7400', { name: 'pricer' })
 *   bus.subscribe('md.*.bid', (msg) => console.log(msg.subject, msg.value))
 *   bus.publish('md.EURUSD.bid', { px: 1.0712 })
 */
import { Bus } from './bus.js';
// ws:// addresses, with the `ws` package (the browser build registers its own WebSocket instead).
import '../transports/ws/node.js';
// Shared-memory rings between worker threads (connect(broker.endpoint('shm'))).
import '../transports/shm/dial.js';
import type { ConnectOptions } from './options.js';
import type { ServerAddress } from '../transports/dial.js';
import { connectMulticast, type MulticastBus, type MulticastConnectOptions } from './multicast.js';

/**
 * Connects to a broker (or the first reachable of a list) and completes the handshake.
 * Addresses: tcp://host:port (the default scheme; port 7400 if omitted), unix:///path,
 * or an endpoint object from broker.endpoint('shm' | 'inproc') (docs/SHM.md).
 * A udp://group:port?iface=ADDR address gives a brokerless multicast client
 * (MulticastBus, docs/MULTICAST.md); when the URL is not a string literal the
 * compiler cannot tell, so call connectMulticast() to get that type.
 */
export function connect(url: `udp://${string}`, options?: MulticastConnectOptions): Promise<MulticastBus>;
export function connect(servers: ServerAddress | ServerAddress[], options?: ConnectOptions): Promise<Bus>;
export async function connect(servers: ServerAddress | ServerAddress[], options?: ConnectOptions | MulticastConnectOptions): Promise<Bus | MulticastBus> {
  if (typeof servers === 'string' && servers.startsWith('udp://')) return connectMulticast(servers, options as MulticastConnectOptions);
  const bus = new Bus(servers, options as ConnectOptions);
  await bus.open();
  return bus;
}

export { Bus, type ServerInfo, type PublishOptions, type RequestOptions, type BusStats, type ClientStats, type LossEvent } from './bus.js';
export type { ClientLatencyStats } from './latency.js';
export type { LatencySummary } from '../metrics/latency.js';
export { Msg } from './msg.js';
export {
  MulticastBus, connectMulticast, type MulticastConnectOptions, type MulticastLossEvent, type MulticastSourceEvent, type MulticastBusStats,
} from './multicast.js';
export type { InboxPolicy } from './inbox.js';
export { Subscription, type MsgHandler, type SubscribeOptions } from './subscription.js';
export { CLIENT_DEFAULTS, type ConnectOptions } from './options.js';
export {
  HopbusError, SubjectError, MaxPayloadError, NoRespondersError, TimeoutError, SlowConsumerError,
  ConnectionError, PendingLimitError, OptionsError, ServerError, ProtocolError, UrlError, ChannelConfigError,
  type HopbusErrorCode, type WireErrorName, type LocalErrorCode,
} from './errors.js';
export { MulticastConfigError } from '../transports/multicast/endpoint.js';
export type { ServerAddress, EndpointDescriptor } from '../transports/dial.js';
export { MAX_SUBJECT_BYTES, MAX_SUBJECT_TOKENS } from '../topics/index.js';
export { SpinWait, HybridWait, ParkWait, type WaitStrategy, type WaitKind, type WaitOptions } from '../transports/shm/wait.js';
