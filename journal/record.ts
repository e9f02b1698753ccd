/**
 * journal/record.ts: one journal record, the unit of the journal's segment files
 * (journal/segment.ts). This is the one place its layout is drawn; docs/JOURNAL.md
 * describes the same bytes. All integers are little-endian; u64s are written and read
 * as two u32 halves (runtime/clock.ts writeU64/readU64), so no BigInt is made per record.
 *
 *   0         4         8                   16                  24        28    30    32   33   34   36
 *   +---------+---------+-------------------+-------------------+---------+-----+-----+----+----+----+----------------------------------+
 *   | length  | crc32   | seq (u64)         | time (u64 ns)     | hdr len | S   | R   |kind|flag| 0  | subject | reply | headers | payload|
 *   +---------+---------+-------------------+-------------------+---------+-----+-----+----+----+----+----------------------------------+
 *
 *    0  u32  length L: the whole record, these 4 bytes included (RECORD_HEADER + S + R + H + P)
 *    4  u32  CRC-32 (IEEE, journal/crc32.ts) of bytes [8, L): everything after the checksum
 *    8  u64  seq: the journal's global sequence, 1 for the first record ever, +1 per message
 *            recorded; a gap means messages the journal counted as lost (journal/writer.ts)
 *   16  u64  time: the broker's receive time, monotonic ns (CLOCK_MONOTONIC, the clock of
 *            docs/PROTOCOL.md FLAG_TS); the segment header pairs it with the wall clock
 *   24  u32  headers length H (0 = no headers)
 *   28  u16  subject length S (1..1024)
 *   30  u16  reply length R (0 = no reply subject)
 *   32  u8   payload kind (transports/protocol PayloadKind: 0 raw, 1 utf8, 2 msgpack)
 *   33  u8   flags: the message's PUB flags as published, FLAG_TS cleared (FLAG_REQUEST kept)
 *   34  u16  reserved, 0
 *   36       subject (S bytes UTF-8), reply (R), headers (H bytes, the frame's msgpack map), payload (P = L - 36 - S - R - H)
 *
 * Subject, reply, headers and payload are the message's bytes exactly as they arrived in
 * its frame: recording copies them once into the writer's batch and never re-encodes them.
 * A reader decodes a record into a reused RecordView: offsets into the buffer it read,
 * nothing copied or allocated unless the caller asks (subject() is interned, payload()
 * makes a view).
 *
 * Imports: runtime/ and transports/protocol constants only.
 */
import { readU64, writeU64 } from '../runtime/clock.js';
import { FLAG_TS } from '../transports/protocol/index.js';
import { SubjectCache } from '../transports/intern.js';
import { crc32 } from './crc32.js';

/** Bytes before the subject. */
export const RECORD_HEADER = 36;
/** No record is longer than this (a length field beyond it is corruption, not a record to allocate for). */
export const MAX_RECORD_BYTES = 64 * 1024 * 1024;

/**
 * Where a message's parts lie, all in one buffer: the shape of transports/protocol
 * MsgView, so the broker records a frame it has parsed without copying it first.
 */
export interface RecordSource {
  readonly buf: Buffer;
  readonly kind: number;
  readonly flags: number;
  readonly subjectOff: number;
  readonly subjectLen: number;
  readonly replyOff: number;
  readonly replyLen: number;
  readonly headersOff: number;
  readonly headersLen: number;
  readonly payloadOff: number;
  readonly payloadLen: number;
}

/** The bytes a record of this message takes. */
export function recordSize(src: RecordSource): number {
  return RECORD_HEADER + src.subjectLen + src.replyLen + src.headersLen + src.payloadLen;
}

function writeU32(b: Buffer, off: number, v: number): void {
  b[off] = v;
  b[off + 1] = v >>> 8;
  b[off + 2] = v >>> 16;
  b[off + 3] = v >>> 24;
}

function readU32(b: Uint8Array, off: number): number {
  return (b[off]! | (b[off + 1]! << 8) | (b[off + 2]! << 16) | (b[off + 3]! << 24)) >>> 0;
}

function copy(src: Buffer, srcOff: number, dst: Buffer, dstOff: number, len: number): void {
  // A plain loop beats Buffer#copy's call overhead for the short parts (subjects, small payloads).
  if (len <= 64) {
    for (let i = 0; i < len; i++) dst[dstOff + i] = src[srcOff + i]!;
  } else {
    src.copy(dst, dstOff, srcOff, srcOff + len);
  }
}

/**
 * Writes the record of `src` at dst[off]; returns its length. The caller has checked
 * that dst holds recordSize(src) bytes from off. seq and timeNs are integers below 2^53.
 */
export function encodeRecord(dst: Buffer, off: number, seq: number, timeNs: number, src: RecordSource): number {
  const s = src.subjectLen;
  const r = src.replyLen;
  const h = src.headersLen;
  const p = src.payloadLen;
  const len = RECORD_HEADER + s + r + h + p;
  writeU32(dst, off, len);
  writeU64(dst, off + 8, seq);
  writeU64(dst, off + 16, timeNs);
  writeU32(dst, off + 24, h);
  dst[off + 28] = s;
  dst[off + 29] = s >>> 8;
  dst[off + 30] = r;
  dst[off + 31] = r >>> 8;
  dst[off + 32] = src.kind;
  dst[off + 33] = src.flags & ~FLAG_TS;
  dst[off + 34] = 0;
  dst[off + 35] = 0;
  let q = off + RECORD_HEADER;
  const b = src.buf;
  copy(b, src.subjectOff, dst, q, s);
  q += s;
  if (r > 0) copy(b, src.replyOff, dst, q, r);
  q += r;
  if (h > 0) copy(b, src.headersOff, dst, q, h);
  q += h;
  if (p > 0) copy(b, src.payloadOff, dst, q, p);
  writeU32(dst, off + 4, crc32(dst, off + 8, off + len));
  return len;
}

/** What checkRecord found at an offset. */
export const enum Check {
  /** A whole record whose checksum verifies. */
  OK = 0,
  /** Fewer bytes than the record needs are available: read more (or, at the end of a file, a torn tail). */
  SHORT = 1,
  /** Not a record: an impossible length or field. */
  BAD_LENGTH = 2,
  /** The length is plausible but the checksum does not match. */
  BAD_CRC = 3,
}

/**
 * Whether buf[off, off+avail) starts with a whole, verified record. Does not allocate.
 * (The length of a checked record is readU32 of its first 4 bytes: recordLength().)
 */
export function checkRecord(buf: Buffer, off: number, avail: number): Check {
  if (avail < 4) return Check.SHORT;
  const len = readU32(buf, off);
  if (len < RECORD_HEADER || len > MAX_RECORD_BYTES) return Check.BAD_LENGTH;
  if (avail < RECORD_HEADER) return Check.SHORT;
  const parts = RECORD_HEADER + readU32(buf, off + 24) + (buf[off + 28]! | (buf[off + 29]! << 8)) + (buf[off + 30]! | (buf[off + 31]! << 8));
  if (parts > len || buf[off + 28]! + buf[off + 29]! === 0) return Check.BAD_LENGTH;
  if (avail < len) return Check.SHORT;
  return crc32(buf, off + 8, off + len) === readU32(buf, off + 4) ? Check.OK : Check.BAD_CRC;
}

/** The length field of the record at buf[off] (not checked). */
export function recordLength(buf: Uint8Array, off: number): number {
  return readU32(buf, off);
}

/** The seq field of the record at buf[off] (not checked). */
export function recordSeq(buf: Uint8Array, off: number): number {
  return readU64(buf, off + 8);
}

/** The time field of the record at buf[off] (not checked). */
export function recordTime(buf: Uint8Array, off: number): number {
  return readU64(buf, off + 16);
}

/**
 * A decoded record: offsets into the buffer it was read into, the same fields as
 * transports/protocol MsgView (so a replayer can build a PUB from it) plus the journal's
 * own. One instance is reused for every record a read loop yields: never keep it past
 * the step that got it (copy what you need: payload() is a view into the read buffer,
 * which the next read overwrites).
 */
export class RecordView implements RecordSource {
  buf: Buffer = Buffer.alloc(0);
  /** Offset of the record in buf, and its length. */
  off = 0;
  len = 0;
  seq = 0;
  /** The broker's receive time, monotonic ns. */
  timeNs = 0;
  kind = 0;
  flags = 0;
  subjectOff = 0;
  subjectLen = 0;
  replyOff = 0;
  replyLen = 0;
  headersOff = 0;
  headersLen = 0;
  payloadOff = 0;
  payloadLen = 0;
  /** The segment file the record is in, and its byte offset there. */
  file = '';
  fileOffset = 0;
  /** Wall-clock ms minus monotonic ms for the record's segment (from its header): see timeMs(). */
  wallOffsetMs = 0;
  private readonly subjects: SubjectCache;

  constructor(subjects: SubjectCache = new SubjectCache(1024)) {
    this.subjects = subjects;
  }

  /** Reads the fields of the checked record at buf[off]. */
  parse(buf: Buffer, off: number): this {
    this.buf = buf;
    this.off = off;
    const len = (this.len = readU32(buf, off));
    this.seq = readU64(buf, off + 8);
    this.timeNs = readU64(buf, off + 16);
    const h = (this.headersLen = readU32(buf, off + 24));
    const s = (this.subjectLen = buf[off + 28]! | (buf[off + 29]! << 8));
    const r = (this.replyLen = buf[off + 30]! | (buf[off + 31]! << 8));
    this.kind = buf[off + 32]!;
    this.flags = buf[off + 33]!;
    const p = off + RECORD_HEADER;
    this.subjectOff = p;
    this.replyOff = p + s;
    this.headersOff = p + s + r;
    this.payloadOff = p + s + r + h;
    this.payloadLen = off + len - this.payloadOff;
    return this;
  }

  /** The subject, interned: a stream that repeats its subjects decodes each once. */
  subject(): string {
    const cached = this.subjects.lookup(this.buf, this.subjectOff, this.subjectLen);
    if (cached !== null) return cached;
    const s = this.buf.toString('utf8', this.subjectOff, this.subjectOff + this.subjectLen);
    this.subjects.store(this.buf, this.subjectOff, this.subjectLen, s);
    return s;
  }

  /** The reply subject, or '' when there is none. */
  reply(): string {
    return this.replyLen === 0 ? '' : this.buf.toString('utf8', this.replyOff, this.replyOff + this.replyLen);
  }

  /** A view of the payload bytes (valid until the next step of the read). */
  payload(): Buffer {
    return this.buf.subarray(this.payloadOff, this.payloadOff + this.payloadLen);
  }

  /** A view of the headers bytes (a msgpack map), or an empty view. */
  headers(): Buffer {
    return this.buf.subarray(this.headersOff, this.headersOff + this.headersLen);
  }

  /** The receive time as wall-clock ms since the Unix epoch (through the segment's anchor; about 0.25 µs resolution). */
  timeMs(): number {
    return this.timeNs / 1e6 + this.wallOffsetMs;
  }
}

/**
 * A RecordSource built from separate values, for callers that do not hold a frame (tools,
 * tests, a recorder outside the broker). Allocates; the broker passes its MsgView instead.
 */
export function recordSource(
  subject: string,
  payload: Uint8Array | string,
  opts: { reply?: string; headers?: Uint8Array; kind?: number; flags?: number } = {},
): RecordSource {
  const s = Buffer.from(subject, 'utf8');
  const r = Buffer.from(opts.reply ?? '', 'utf8');
  const h = opts.headers ?? new Uint8Array(0);
  const p = typeof payload === 'string' ? Buffer.from(payload, 'utf8') : payload;
  const buf = Buffer.concat([s, r, h, p]);
  return {
    buf,
    kind: opts.kind ?? (typeof payload === 'string' ? 1 : 0),
    flags: opts.flags ?? 0,
    subjectOff: 0,
    subjectLen: s.length,
    replyOff: s.length,
    replyLen: r.length,
    headersOff: s.length + r.length,
    headersLen: h.length,
    payloadOff: s.length + r.length + h.length,
    payloadLen: p.length,
  };
}
