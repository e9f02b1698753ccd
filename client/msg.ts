import { FLAG_NO_RESPONDERS, FLAG_REPLAY, FLAG_SNAPSHOT, FLAG_TS, type MsgView } from '../transports/protocol/index.js';
import { readU64 } from '../runtime/clock.js';
import { ConnectionError, OptionsError } from '../runtime/errors.js';
import { decodePayload, unpackr } from './codec.js';

/** What Msg needs from its connection to answer a request. */
export interface Responder {
  publish(subject: string, data?: unknown, options?: { headers?: Record<string, string> }): void;
  /** The connection can no longer send (closed, draining): told here instead of thrown at the responder. */
  respondFailed?(err: ConnectionError): void;
}

/**
 * A received message. Built once per frame and shared by every local subscription it
 * matches; payload views and decoding are lazy so a subscriber that only reads
 * `subject` pays for nothing else. The bytes are not copied: `data` views the
 * receive buffer, which nothing reuses.
 */
/** What a buffered Msg costs beside its bytes: the object, its fields, the frame header. */
export const MSG_BOOKKEEPING = 128;

export class Msg {
  readonly subject: string;
  /** Reply subject, or '' when the publisher expects no reply. */
  readonly reply: string;
  /** 0 raw, 1 utf8, 2 msgpack: how `value` is decoded. */
  readonly kind: number;
  readonly flags: number;
  private readonly buf: Buffer;
  private readonly payloadOff: number;
  private readonly payloadLen: number;
  private readonly headersOff: number;
  private readonly headersLen: number;
  private readonly tsOff: number;
  private readonly seqOff: number;
  private decoded: unknown = NOT_DECODED;

  constructor(
    v: MsgView,
    subject: string,
    private readonly bus: Responder,
  ) {
    this.subject = subject;
    this.reply = v.reply();
    this.kind = v.kind;
    this.flags = v.flags;
    this.buf = v.buf;
    this.payloadOff = v.payloadOff;
    this.payloadLen = v.payloadLen;
    this.headersOff = v.headersOff;
    this.headersLen = v.headersLen;
    this.tsOff = v.tsOff;
    this.seqOff = v.seqOff;
  }

  /** True for a cached value from the broker's last-value cache (a snapshot subscription's image). */
  get snapshot(): boolean {
    return (this.flags & FLAG_SNAPSHOT) !== 0;
  }

  /** True for a journal record replayed to a replay-then-live subscription. */
  get replayed(): boolean {
    return (this.flags & FLAG_REPLAY) !== 0;
  }

  /**
   * The message's sequence, when the broker sent one: for a subject in the last-value
   * cache its per-subject sequence (1, 2, 3, ... for each message on that subject), on a
   * connection that has a snapshot or replay subscription; for a replayed record the
   * journal's sequence. Undefined otherwise (docs/CACHE.md).
   */
  get seq(): number | undefined {
    return this.seqOff < 0 ? undefined : readU64(this.buf, this.seqOff);
  }

  /**
   * Bytes this message keeps alive while it waits in an iterator's buffer: payload,
   * headers, subject and reply, and MSG_BOOKKEEPING for the object and its frame header.
   */
  get size(): number {
    return this.payloadLen + this.headersLen + this.subject.length + this.reply.length + MSG_BOOKKEEPING;
  }

  /** The payload bytes as sent. */
  get data(): Uint8Array {
    return this.buf.subarray(this.payloadOff, this.payloadOff + this.payloadLen);
  }

  /** The payload decoded by its kind: Uint8Array, string, or the msgpack value. */
  get value(): unknown {
    if (this.decoded === NOT_DECODED) this.decoded = decodePayload(this.kind, this.buf.subarray(this.payloadOff, this.payloadOff + this.payloadLen));
    return this.decoded;
  }

  /** The payload as UTF-8 text, whatever its kind. */
  string(): string {
    return this.buf.toString('utf8', this.payloadOff, this.payloadOff + this.payloadLen);
  }

  get headers(): Record<string, string> | undefined {
    if (this.headersLen === 0) return undefined;
    return unpackr.unpack(this.buf.subarray(this.headersOff, this.headersOff + this.headersLen)) as Record<string, string>;
  }

  /** Publisher's send time (monotonic ns), when the publisher stamps timestamps. */
  get sentAt(): bigint | undefined {
    return this.flags & FLAG_TS ? this.buf.readBigUInt64LE(this.tsOff) : undefined;
  }

  /** When the broker received it (monotonic ns), when timestamps are on. */
  get brokerAt(): bigint | undefined {
    return this.flags & FLAG_TS ? this.buf.readBigUInt64LE(this.tsOff + 8) : undefined;
  }

  /** True for the broker's "no responders" answer to a request. */
  get noResponders(): boolean {
    return (this.flags & FLAG_NO_RESPONDERS) !== 0;
  }

  /**
   * Answers a request: publishes to this message's reply subject. Returns false when the
   * connection is closed or draining by now (a late answer, from a timer say): that is
   * reported as an 'error' event of the connection, never thrown, since the caller of a
   * late respond() is rarely placed to catch it. A message without a reply subject, or an
   * answer the connection refuses (too large, bad headers), throws as publish() does.
   */
  respond(data?: unknown, options?: { headers?: Record<string, string> }): boolean {
    if (this.reply === '') throw new OptionsError(`message on "${this.subject}" has no reply subject to respond to`);
    try {
      this.bus.publish(this.reply, data, options);
      return true;
    } catch (err) {
      if (!(err instanceof ConnectionError)) throw err;
      this.bus.respondFailed?.(err);
      return false;
    }
  }
}

const NOT_DECODED = Symbol('not decoded');
