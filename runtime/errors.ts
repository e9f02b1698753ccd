/**
 * runtime/errors.ts: the one error model of hopbus. Every error hopbus throws is a
 * HopbusError with a string `code` to branch on, from one vocabulary shared by every
 * layer: the codes the broker sends in ERR frames (WireErrorName, given numbers on the
 * wire by transports/protocol ErrCode) and the codes only a process raises itself
 * (LocalErrorCode). A refusal has the same code wherever it happens: a payload over the
 * limit is MAX_PAYLOAD whether the client or the broker refuses it.
 *
 * The classes live with the layer that raises them (topics/ SubjectError, transports/
 * ProtocolError and UrlError, broker/ ConfigError, client/ the rest), or here when more
 * than one layer raises them (ConnectionError, OptionsError, ListenError); all extend
 * this one.
 * Imports nothing: runtime/ is below every other folder.
 */

/** The codes an ERR frame carries (docs/PROTOCOL.md, "Errors"), by name. */
export type WireErrorName =
  | 'PROTOCOL' // malformed or truncated frame, bad field
  | 'UNKNOWN_OP'
  | 'FRAME_TOO_LARGE'
  | 'MAX_PAYLOAD'
  | 'BAD_SUBJECT'
  | 'MAX_SUBSCRIPTIONS'
  | 'SLOW_CONSUMER'
  | 'VERSION' // protocol version not supported
  | 'NOT_CONNECTED' // frame before CONNECT
  | 'STALE_CONNECTION' // missed too many PONGs
  | 'BAD_SID'
  | 'SHUTDOWN'
  | 'AUTH'
  | 'RATE_LIMITED' // messages refused: over a publish rate limit
  | 'BAD_OPTION'; // unknown or invalid CONNECT/SUB option

/** The codes no frame carries: raised by the process that notices. */
export type LocalErrorCode =
  | 'NO_RESPONDERS' // a request to a subject nobody subscribes to
  | 'TIMEOUT'
  | 'CONNECTION' // closed, draining, lost, or could not be established
  | 'PENDING_LIMIT' // outbound bytes over a bound
  | 'BAD_OPTIONS' // options of connect() or a call
  | 'LISTEN' // a listener could not start: address in use, path taken by something else
  | 'BAD_URL' // a server address that cannot be parsed
  | 'BAD_CONFIG' // broker options
  | 'BAD_CHANNELS' // a subject-to-channel map
  | 'BAD_MULTICAST' // a multicast address or option
  | 'BAD_REPORT' // a client's latency report that is not one the broker can read
  | 'JOURNAL'; // a journal directory or file that cannot be read or written

/**
 * Every code. An ERR frame with a number this release does not know is reported as
 * `E<number>`, so a newer broker's code still reaches the user.
 */
export type HopbusErrorCode = WireErrorName | LocalErrorCode | `E${number}`;

export class HopbusError extends Error {
  readonly code: HopbusErrorCode;
  constructor(code: HopbusErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/**
 * The connection is closed, draining, lost, or could not be established. Raised by the
 * client, and by links for what breaks under them (a reset, a peer thread gone, a
 * connect timeout), so that the user meets one class whichever transport failed.
 */
export class ConnectionError extends HopbusError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('CONNECTION', message, options);
  }
}

/**
 * Bad options passed to connect() or a call: a value out of range or of the wrong kind.
 * Raised by the client and by what it hands options to (a link's wait strategy, a ring
 * size, a bounded queue), so that one class covers every option a user passes.
 */
export class OptionsError extends HopbusError {
  constructor(message: string) {
    super('BAD_OPTIONS', message);
  }
}

/**
 * A listener could not start: its address is in use, or its path is taken by something
 * that is not a socket. Raised by the stream transport (tcp://, unix://) and by the
 * broker's HTTP listener; nothing was left listening.
 */
export class ListenError extends HopbusError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('LISTEN', message, options);
  }
}
