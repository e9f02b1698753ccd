/**
 * What every client entry point makes public (client/index.ts for `hopbus`,
 * client/browser.ts for `hopbus/browser`): the types of a connection and its
 * messages, the options and their defaults, and the errors users branch on. The
 * implementation classes are exported as types only: a connection is made by a
 * `connect` function, never with `new`. Each entry point adds its own `connect`.
 */
export type { Connection, ConnectionEvents, ConnectionCounters, ServerInfo, PublishOptions, RequestOptions, LossEvent, GapEvent } from './types.js';
export type { Bus } from './bus.js';
export type { BusStats, ClientStats, StatsFn } from './stats.js';
export type { ClientLatencyStats } from './latency.js';
export type { LatencySummary } from '../metrics/latency.js';
export type { Msg } from './msg.js';
export type { Subscription, MsgHandler, SubscribeOptions } from './subscription.js';
export { CLIENT_DEFAULTS, type ConnectOptions } from './options.js';
export {
  HopbusError,
  SubjectError,
  MaxPayloadError,
  NoRespondersError,
  TimeoutError,
  SlowConsumerError,
  ConnectionError,
  PendingLimitError,
  MessagesLostError,
  OptionsError,
  HandlerError,
  ServerError,
  ProtocolError,
  UrlError,
  ChannelConfigError,
  type HopbusErrorCode,
  type WireErrorName,
  type LocalErrorCode,
} from './errors.js';
export type { ServerAddress, EndpointDescriptor } from '../transports/dial.js';
export { MAX_SUBJECT_BYTES, MAX_SUBJECT_TOKENS } from '../topics/index.js';
