/**
 * Errors the SDK raises. Each has a stable `code` to branch on, and a message that
 * says what happened and what to do.
 */
export { SubjectError } from '../topics/index.js';
import { ERR_NAMES } from '../transports/protocol/index.js';

export class HopbusError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** A payload larger than the server's max payload; nothing was sent. */
export class MaxPayloadError extends HopbusError {
  constructor(readonly size: number, readonly limit: number, what = "the server's maximum payload") {
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
  constructor(what: string, readonly timeoutMs: number) {
    super('TIMEOUT', `${what} timed out after ${timeoutMs} ms`);
  }
}

/** A consumer that could not keep up: messages were dropped or the connection closed. */
export class SlowConsumerError extends HopbusError {
  constructor(message: string) {
    super('SLOW_CONSUMER', message);
  }
}

/** The connection is closed, draining, or could not be established. */
export class ConnectionError extends HopbusError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('CONNECTION', message, options);
  }
}

/** Outbound bytes over a bound: while disconnected (reconnect buffer) or while the socket is busy. */
export class PendingLimitError extends HopbusError {
  constructor(message: string) {
    super('PENDING_LIMIT', message);
  }
}

/** Bad options passed to connect() or a call. */
export class OptionsError extends HopbusError {
  constructor(message: string) {
    super('BAD_OPTIONS', message);
  }
}

/** An ERR frame from the server. `serverCode` is its name (e.g. MAX_SUBSCRIPTIONS). */
export class ServerError extends HopbusError {
  readonly serverCode: string;
  constructor(code: number, text: string, readonly fatal: boolean, readonly sid: number) {
    const name = ERR_NAMES[code] ?? `E${code}`;
    super(name === 'SLOW_CONSUMER' ? 'SLOW_CONSUMER' : 'SERVER', `server error ${name}: ${text}`);
    this.serverCode = name;
  }
}
