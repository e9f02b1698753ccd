/**
 * hopbus/broker: the embeddable broker.
 *
 *   import { startBroker } from 'hopbus/broker'
 *   const b = await startBroker({ host: '127.0.0.1', port: 0 })
 *   b.url // tcp://127.0.0.1:<port>
 *   await b.close()
 */
export { Broker, startBroker, VERSION, type StartedBroker, type BrokerCounters } from './broker.js';
export { DEFAULTS, ConfigError, resolveOptions, type BrokerOptions } from './config.js';
export { HopbusError, type HopbusErrorCode } from '../runtime/errors.js';
export { ProtocolError } from '../transports/protocol/index.js';
export { UrlError } from '../transports/url.js';
export { MulticastConfigError } from '../transports/multicast/endpoint.js';
export type { ShmEndpoint, ShmEndpointOptions } from '../transports/shm/hub.js';
export type { InprocEndpoint } from '../transports/inproc.js';
