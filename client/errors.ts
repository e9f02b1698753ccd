/**
 * Errors the SDK raises. Each has a stable `code` to branch on (runtime/errors.ts:
 * one vocabulary for every layer and for what the broker reports), and a message
 * that says what happened and what to do. This module gathers every error class a
 * user can meet (but MulticastConfigError, which client/index.ts adds: its module
 * needs node:dgram, and this one is in the browser bundle too).
 */
import { ERR_NAMES } from '../transports/protocol/index.js';
import { ConnectionError, HopbusError } from '../runtime/errors.js';

export { HopbusError, ConnectionError, OptionsError, type HopbusErrorCode, type WireErrorName, type LocalErrorCode } from '../runtime/errors.js';
export { SubjectError } from '../topics/index.js';
export { ChannelConfigError } from '../topics/channels.js';
export { ProtocolError } from '../transports/protocol/index.js';
export { UrlError } from '../transports/url.js';

/** A payload larger than the server's max payload; nothing was sent. */
export class MaxPayloadError extends HopbusError {
  constructor(
    readonly size: number,
    readonly limit: number,
    what = "the server's maximum payload",
  ) {
    super('MAX_PAYLOAD', `payload of ${size} bytes exceeds ${what} of ${limit} bytes; nothing was sent`);
  }
}

/** A request to a subject nobody subscribes to. */
export class NoRespondersError extends HopbusError {
  constructor(readonly subject: string) {
    super('NO_RESPONDERS', `no responders: nobody subscribes to "${subject}"`);
  }
}

export class TimeoutError extends HopbusError {
  constructor(
    what: string,
    readonly timeoutMs: number,
  ) {
    super('TIMEOUT', `${what} timed out after ${timeoutMs} ms`);
  }
}

/** A consumer that could not keep up: messages were dropped or the connection closed. */
export class SlowConsumerError extends HopbusError {
  /** Messages lost, when it is known (the broker closed the previous connection: what it had queued and the client did not get). */
  readonly lost: number | undefined;
  constructor(message: string, lost?: number) {
    super('SLOW_CONSUMER', message);
    this.lost = lost;
  }
}

/** Outbound bytes over a bound: while disconnected (reconnect buffer) or while the socket is busy. */
export class PendingLimitError extends HopbusError {
  constructor(message: string) {
    super('PENDING_LIMIT', message);
  }
}

/**
 * Messages published before a flush() or drain() may not have reached the broker: the
 * connection was lost with them in flight (written to the socket, not yet confirmed), or
 * the reconnect buffer could not hold what the lost connection had not written yet, or
 * the reconnect never came. `lost` is how many at most; the code is CONNECTION.
 */
export class MessagesLostError extends ConnectionError {
  constructor(
    readonly lost: number,
    why: string,
  ) {
    super(`up to ${lost} published message${lost === 1 ? '' : 's'} may be lost: ${why}`);
  }
}

/**
 * An ERR frame from the server. `code` is the name of the code it carried (e.g.
 * MAX_SUBSCRIPTIONS, MAX_PAYLOAD: the same code as when the client refuses the same
 * thing itself), `E<number>` for a code this release does not know; `serverCode` is
 * the same name (kept for code written against earlier releases).
 */
export class ServerError extends HopbusError {
  readonly serverCode: string;
  constructor(
    code: number,
    text: string,
    readonly fatal: boolean,
    readonly sid: number,
  ) {
    const name = ERR_NAMES[code] ?? (`E${code}` as const);
    super(name, `server error ${name}: ${text}`);
    this.serverCode = name;
  }
}
