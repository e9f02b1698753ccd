/**
 * The frame writer: encodes one PUB or MSG frame straight into whatever write buffer
 * it is given (a link, the reconnect backlog, a direct channel, a multicast datagram
 * slot). Shared by Bus and MulticastBus, so a frame is laid out in one place.
 *
 * A publish fills the writer's one `FrameSpec` (reused: nothing is allocated per
 * message), then calls `encode(target)` once per destination; a direct publish to
 * several peers encodes the same spec into each channel. Call order per publish:
 * subject() and payload() (in the order whose error should win), then size(), then
 * encode() one or more times, then done().
 *
 * The control frames a client writes (SUB, UNSUB, PING, PONG) are the functions at
 * the end.
 *
 * Threading: the client's thread; one writer per client.
 */
import { validateSubject } from '../topics/index.js';
import {
  FLAG_TS,
  MSG_HEADER,
  Op,
  PING_SIZE,
  SUB_FROM_SEQ,
  SUB_FROM_TIME,
  TS_BLOCK,
  UNSUB_SIZE,
  msgSize,
  subSize,
  writeBare,
  writeMsgHeader,
  writeSub,
  writeUnsub,
} from '../transports/protocol/index.js';
import { writeU64 } from '../runtime/clock.js';
import { EncodedPayload, encodeHeaders, encodePayload } from './codec.js';
import { publishReply } from './checks.js';
import { MaxPayloadError } from './errors.js';
import type { Subscription } from './subscription.js';
import type { PublishOptions } from './types.js';

/** The write side of a link, of the reconnect backlog, of a channel or a datagram slot. */
export interface WriteTarget {
  reserve(n: number): Buffer;
  readonly writeOffset: number;
  commit(n: number): void;
}

/** One frame to write: filled per publish, read by encode(). */
export class FrameSpec {
  op: Op.PUB | Op.MSG = Op.PUB;
  /** PUB: the direct interest seq (0 without direct delivery); MSG: 0. */
  sid = 0;
  flags = 0;
  ts = false;
  /** Sample weight of a stamped message (0: every message is stamped). */
  weight = 0;
  sentAt = 0;
  brokerAt = 0;
  total = 0;
  subject = '';
  /** UTF-8 length of the subject, negated when it is not pure ASCII. */
  sMeta = 0;
  sLen = 0;
  reply = '';
  rLen = 0;
  headers: Buffer | null = null;
  hLen = 0;
  readonly p = new EncodedPayload();
}

export class FrameWriter {
  readonly spec = new FrameSpec();
  /** Publish subjects already validated, with their UTF-8 length (negated when not ASCII). */
  private readonly validated = new Map<string, number>();

  /**
   * publish()'s options into the spec's reply and headers, checked (headers over
   * `maxHeaders` bytes throw MaxPayloadError, `what` naming the limit).
   */
  options(options: PublishOptions | undefined, maxHeaders: number, what?: string): void {
    const s = this.spec;
    s.reply = '';
    s.headers = null;
    if (options === undefined) return;
    s.reply = publishReply(options);
    if (options.headers !== undefined) s.headers = encodeHeaders(options.headers, maxHeaders, what);
  }

  /** Validates the subject (throws SubjectError) into the spec. */
  subject(subject: string): void {
    const s = this.spec;
    const meta = this.subjectMeta(subject);
    s.subject = subject;
    s.sMeta = meta;
    s.sLen = meta < 0 ? -meta : meta;
  }

  /** Encodes the payload into the spec; over `max` bytes throws MaxPayloadError (`what` names the limit). */
  payload(data: unknown, max: number, what?: string): void {
    const p = encodePayload(data, this.spec.p);
    if (p.length > max) {
      p.text = '';
      throw new MaxPayloadError(p.length, max, what);
    }
  }

  /** Sets reply, headers and flags, and returns the frame's total size. */
  size(reply: string, headers: Buffer | null, flags: number, ts: boolean): number {
    const s = this.spec;
    s.reply = reply;
    s.rLen = reply === '' ? 0 : Buffer.byteLength(reply, 'utf8');
    s.headers = headers;
    s.hLen = headers === null ? 0 : headers.length;
    s.flags = flags;
    s.ts = ts;
    return (s.total = msgSize(s.sLen, s.rLen, s.hLen, s.p.length, ts));
  }

  /** Writes the spec's frame into `w`. */
  encode(w: WriteTarget): void {
    const s = this.spec;
    const p = s.p;
    const total = s.total;
    const buf = w.reserve(total);
    let at = writeMsgHeader(buf, w.writeOffset, total, s.op, s.flags | (s.ts ? FLAG_TS : 0), p.kind, s.sid, s.sLen, s.rLen, s.hLen);
    if (s.ts) {
      if (s.weight !== 0) buf[at - MSG_HEADER + 7] = s.weight;
      // Two u32 halves: no BigInt allocated per message. The broker fills in bytes 8..15
      // (a direct MSG has no broker hop: the send time again; multicast: 0).
      writeU64(buf, at, s.sentAt);
      writeU64(buf, at + 8, s.brokerAt); // not buf.fill: its argument validation costs more than the clock read
      at += TS_BLOCK;
    }
    const subject = s.subject;
    const sLen = s.sLen;
    if (s.sMeta > 0) {
      // ASCII: a char loop is several times cheaper than Buffer#write for short strings.
      for (let i = 0; i < sLen; i++) buf[at + i] = subject.charCodeAt(i);
      at += sLen;
    } else {
      at += buf.write(subject, at, sLen, 'utf8');
    }
    if (s.rLen > 0) at += buf.write(s.reply, at, s.rLen, 'utf8');
    if (s.headers !== null) at += s.headers.copy(buf, at);
    if (p.text !== '' && p.kind === 1) buf.write(p.text, at, p.length, 'utf8');
    else if (p.length > 64) buf.set(p.bytes, at);
    else {
      // Small payloads: a byte loop beats TypedArray#set's fixed cost.
      const src = p.bytes;
      for (let i = 0; i < src.length; i++) buf[at + i] = src[i]!;
    }
    w.commit(total);
  }

  /** After the last encode(): drops the reference to the published string and the headers. */
  done(): void {
    this.spec.p.text = '';
    this.spec.headers = null;
  }

  /**
   * Validates a publish subject (throws SubjectError) and returns its UTF-8 length,
   * negated when it is not pure ASCII. Results are remembered: a publisher repeats its
   * subjects, and validating them again on every message would be wasted work.
   */
  subjectMeta(subject: string): number {
    const known = this.validated.get(subject);
    if (known !== undefined) return known;
    validateSubject(subject);
    const bytes = Buffer.byteLength(subject, 'utf8');
    const meta = bytes === subject.length ? bytes : -bytes;
    if (this.validated.size >= 4096) this.validated.clear();
    this.validated.set(subject, meta);
    return meta;
  }
}

/** SUB for `sub` (and its remaining `max` as an UNSUB, which the broker counts down). */
export function writeSubTo(w: WriteTarget, sub: Subscription): void {
  const flags = sub.subFlags;
  const n = subSize(Buffer.byteLength(sub.subject), sub.queue ? Buffer.byteLength(sub.queue) : 0) + (flags & (SUB_FROM_SEQ | SUB_FROM_TIME) ? 8 : 0);
  const buf = w.reserve(n);
  writeSub(buf, w.writeOffset, sub.sid, sub.subject, sub.queue || undefined, sub.policy, flags, sub.start);
  w.commit(n);
  // A snapshot or replay subscription (re)starts: it takes broadcasts only after the broker's IMAGE BEGIN.
  if (flags !== 0) sub.awaitImage();
  if (sub.max > 0) writeUnsubTo(w, sub.sid, sub.max - sub.received);
}

/** UNSUB of `sid` after `max` more messages (0: now). */
export function writeUnsubTo(w: WriteTarget, sid: number, max: number): void {
  const buf = w.reserve(UNSUB_SIZE);
  writeUnsub(buf, w.writeOffset, sid, max);
  w.commit(UNSUB_SIZE);
}

export function writeBareTo(w: WriteTarget, op: Op.PING | Op.PONG): void {
  const buf = w.reserve(PING_SIZE);
  writeBare(buf, w.writeOffset, op);
  w.commit(PING_SIZE);
}
