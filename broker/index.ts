/**
 * hopbus/broker: the embeddable broker. This file alone decides what the entry point
 * exports: the factory, its options and config types, the endpoint types, the errors.
 * Implementation classes stay internal (tests that need them import their module).
 *
 *   import { startBroker } from 'hopbus/broker'
 *   const b = await startBroker({ host: '127.0.0.1', port: 0 })
 *   b.url // tcp://127.0.0.1:<port>
 *   await b.close()
 *
 * broker/ files, one job each (a message's way: a link -> session.ts -> router.ts ->
 * each receiving session.ts -> policy.ts Outbound -> its link). Imports run down this
 * list and never back up (no cycle, type-only imports included):
 *   index.ts       what hopbus/broker exports (this file)
 *   broker.ts      lifecycle: makes and wires the parts, listeners, accept, endpoint(), close
 *   http.ts        the HTTP/WebSocket port (monitoring endpoints, dashboard, /bus)
 *   prometheus.ts  /metrics in the Prometheus text format
 *   endpoints.ts   the JSON of /varz /connz /subsz /latency /healthz
 *   dashboard.ts   the dashboard page
 *   monitor.ts     monitoring and the latency service: rates, bursts, histograms, $SYS reports
 *   session.ts     one connection speaking the hopbus protocol: frames in, dispatch, steady state
 *   nats/          the NATS client protocol: parser, encoders, header mapping, its session and listener
 *   replaylive.ts  replay-then-live subscriptions: the journal read up to live, then the merge
 *   host.ts        SessionHost: what a session is given instead of the Broker
 *   handshake.ts   the CONNECT steps (parse, validate, [auth], direct grant) and the INFO answer
 *   liveness.ts    keepalive PINGs, stale connections, write deadlines, handshake timeout (on a Clock)
 *   direct.ts      the broker's half of direct delivery between shm clients
 *   router.ts      the routing hot path: subject tree, fanout, queue groups, no-responders (no I/O)
 *   route.ts       a Route: the fanout lists of one subject, cached by the tree
 *   cache/         the last-value cache: stores (store.ts), patterns and last answers (cache.ts), paced images (feed.ts)
 *   subscription.ts  a Subscription; the Subscriber/Publisher seam every codec's session implements
 *   gate.ts        the publisher gate: rate limits, block-policy pauses, paused time (on a Clock)
 *   policy.ts      what happens to a slow consumer (Outbound, the hold queue)
 *   config.ts      options, defaults, validation
 *   ratelimit.ts   rate limits (Limiter, over runtime/ token buckets)
 *   bridge.ts      the multicast bridge
 *   counters.ts    the broker-wide counters
 *   report.ts      clients' latency reports: decoding, the summary kept per session
 */
export { startBroker, VERSION, type Broker, type StartedBroker, type BrokerCounters } from './broker.js';
export { DEFAULTS, ConfigError, resolveOptions, type BrokerOptions, type ResolvedOptions } from './config.js';
export type { RateLimit } from './ratelimit.js';
export type { MulticastBridgeOptions } from './bridge.js';
// Errors (every one a HopbusError with a string code).
export { HopbusError, ConnectionError, OptionsError, ListenError, type HopbusErrorCode } from '../runtime/errors.js';
export { ProtocolError } from '../transports/protocol/index.js';
export { UrlError } from '../transports/url.js';
export { MulticastConfigError } from '../transports/multicast/endpoint.js';
export type { ShmEndpoint, ShmEndpointOptions } from '../transports/shm/hub.js';
export type { InprocEndpoint } from '../transports/inproc.js';
