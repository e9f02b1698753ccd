/**
 * The hopbus wire format: one binary frame layout shared by every transport.
 * docs/PROTOCOL.md describes it byte by byte; keep the two in step.
 *
 * Every frame starts with the same 6-byte prefix:
 *
 *   0      4     5      6
 *   +------+-----+------+---------------------------
 *   | len  | op  | flags| op-specific body ...
 *   +------+-----+------+---------------------------
 *   len: u32 little-endian, the whole frame including these 4 bytes.
 *
 * PUB (client -> broker) and MSG (broker -> client) share one layout, so the broker
 * turns a PUB into a MSG by patching the op byte (and the broker timestamp), never
 * re-encoding it: the same bytes fan out to every subscriber.
 *
 *   6  u8   payload kind (0 raw, 1 utf8, 2 msgpack)
 *   7  u8   stamp weight (with FLAG_TS: messages this stamped one stands for; 0 = 1), else 0
 *   8  u32  sid: in MSG, 0 = for every matching non-queue subscription of the
 *           connection; otherwise the one queue subscription it was chosen for
 *  12  u16  subject length S
 *  14  u16  reply length R (0 = no reply subject)
 *  16  u32  headers length H (0 = no headers)
 *  20  [flags & TS] u64 publisher send time, u64 broker receive time
 *      (monotonic ns, CLOCK_MONOTONIC: comparable between processes of one host)
 *  ..  subject (S bytes UTF-8), reply (R), headers (H bytes, msgpack map), payload
 */

export const PROTOCOL_VERSION = 1;

/** Size of the fixed part of a PUB/MSG frame (before the optional timestamps). */
export const MSG_HEADER = 20;
/** Size of the timestamp block present when FLAG_TS is set. */
export const TS_BLOCK = 16;
/** Smallest possible frame: len + op + flags. */
export const FRAME_PREFIX = 6;

export const enum Op {
  CONNECT = 0x01,
  INFO = 0x02,
  PUB = 0x10,
  MSG = 0x11,
  SUB = 0x20,
  UNSUB = 0x21,
  PING = 0x30,
  PONG = 0x31,
  OK = 0x40,
  ERR = 0x41,
  LOSS = 0x42,
  DIRECT = 0x50,
}

export const OP_NAMES: Record<number, string> = {
  0x01: 'CONNECT', 0x02: 'INFO', 0x10: 'PUB', 0x11: 'MSG', 0x20: 'SUB', 0x21: 'UNSUB',
  0x30: 'PING', 0x31: 'PONG', 0x40: 'OK', 0x41: 'ERR', 0x42: 'LOSS',
  0x50: 'DIRECT',
};

/** PUB/MSG flag: a 16-byte timestamp block follows the fixed header. */
export const FLAG_TS = 0x01;
/** PUB flag: this is a request; tell the publisher at once if nobody subscribes. */
export const FLAG_REQUEST = 0x02;
/** MSG flag: status message "no responders" for a request (empty payload). */
export const FLAG_NO_RESPONDERS = 0x04;
/** ERR flag: the sender closes the connection after this frame. */
export const FLAG_FATAL = 0x01;

export const enum PayloadKind {
  RAW = 0,
  UTF8 = 1,
  MSGPACK = 2,
}

/** Error codes carried by ERR frames; clients branch on them. */
export const ErrCode = {
  PROTOCOL: 1, // malformed or truncated frame, bad field
  UNKNOWN_OP: 2,
  FRAME_TOO_LARGE: 3,
  MAX_PAYLOAD: 4,
  BAD_SUBJECT: 5,
  MAX_SUBSCRIPTIONS: 6,
  SLOW_CONSUMER: 7,
  VERSION: 8, // protocol version not supported
  NOT_CONNECTED: 9, // frame before CONNECT
  STALE_CONNECTION: 10, // missed too many PONGs
  BAD_SID: 11,
  SHUTDOWN: 12,
  AUTH: 13,
  RATE_LIMITED: 14, // messages refused: over a publish rate limit
  BAD_OPTION: 15, // unknown or invalid CONNECT/SUB option
} as const;

/**
 * Slow-consumer policies, as carried in byte 6 of SUB. 0 = the broker's default.
 * When several subscriptions of one connection match a message, the connection's
 * copy follows the first of them in this order: block, disconnect, drop-oldest,
 * drop-newest, conflate (the least lossy wins).
 */
export const enum Policy {
  DEFAULT = 0,
  DISCONNECT = 1,
  DROP_OLDEST = 2,
  DROP_NEWEST = 3,
  CONFLATE = 4,
  BLOCK = 5,
}
export const POLICY_NAMES = ['default', 'disconnect', 'drop-oldest', 'drop-newest', 'conflate', 'block'] as const;
export type PolicyName = (typeof POLICY_NAMES)[number];
/** Lower = wins when several policies apply to one connection's copy of a message. */
export const POLICY_RANK = [9, 1, 2, 3, 4, 0];
export type ErrCodeName = keyof typeof ErrCode;
export const ERR_NAMES: Record<number, ErrCodeName> = Object.fromEntries(
  Object.entries(ErrCode).map(([k, v]) => [v, k as ErrCodeName]),
) as Record<number, ErrCodeName>;

/** Raised by the decoder for bytes that are not a valid frame. The connection cannot recover. */
export class ProtocolError extends Error {
  readonly code: number;
  constructor(code: number, message: string) {
    super(message);
    this.name = 'ProtocolError';
    this.code = code;
  }
}

// ---------------------------------------------------------------------------
// Encoders. Each writes into a caller-provided buffer at an offset and returns the
// number of bytes written, so a link can encode straight into its write buffer.
// `xxxSize` gives the exact size first.
// ---------------------------------------------------------------------------

/** Largest PUB/MSG frame for the given limits: payload, headers, subject and reply at their maxima, fixed fields. */
export function maxFrameFor(limits: { maxPayload: number; maxHeaders: number }): number {
  return limits.maxPayload + limits.maxHeaders + 2 * 65_535 + MSG_HEADER + TS_BLOCK + 64;
}

/** Exact byte size of a PUB/MSG frame. Lengths are UTF-8 byte lengths. */
export function msgSize(subjectBytes: number, replyBytes: number, headerBytes: number, payloadBytes: number, ts: boolean): number {
  return MSG_HEADER + (ts ? TS_BLOCK : 0) + subjectBytes + replyBytes + headerBytes + payloadBytes;
}

/**
 * Writes the fixed header of a PUB/MSG frame; the caller then writes subject, reply,
 * headers and payload at the returned offset. Returns the offset of the subject.
 */
export function writeMsgHeader(
  buf: Buffer, off: number, total: number, op: number, flags: number, kind: number, sid: number,
  subjectBytes: number, replyBytes: number, headerBytes: number,
): number {
  // Byte stores: the per-message path, where Buffer#writeUInt*LE's checks cost more than the writes.
  buf[off] = total;
  buf[off + 1] = total >>> 8;
  buf[off + 2] = total >>> 16;
  buf[off + 3] = total >>> 24;
  buf[off + 4] = op;
  buf[off + 5] = flags;
  buf[off + 6] = kind;
  buf[off + 7] = 0;
  buf[off + 8] = sid;
  buf[off + 9] = sid >>> 8;
  buf[off + 10] = sid >>> 16;
  buf[off + 11] = sid >>> 24;
  buf[off + 12] = subjectBytes;
  buf[off + 13] = subjectBytes >>> 8;
  buf[off + 14] = replyBytes;
  buf[off + 15] = replyBytes >>> 8;
  buf[off + 16] = headerBytes;
  buf[off + 17] = headerBytes >>> 8;
  buf[off + 18] = headerBytes >>> 16;
  buf[off + 19] = headerBytes >>> 24;
  return off + MSG_HEADER;
}

export function subSize(patternBytes: number, queueBytes: number): number {
  return FRAME_PREFIX + 2 + 4 + 2 + 2 + patternBytes + queueBytes;
}

/**
 * SUB: 6 u8 policy (Policy) | 7 u8 reserved | 8 u32 sid | 12 u16 pattern length P | 14 u16 queue length Q | 16 pattern | queue
 */
export function writeSub(buf: Buffer, off: number, sid: number, pattern: string, queue: string | undefined, policy = 0): number {
  const p = Buffer.byteLength(pattern);
  const q = queue ? Buffer.byteLength(queue) : 0;
  const total = subSize(p, q);
  buf.writeUInt32LE(total, off);
  buf[off + 4] = Op.SUB;
  buf[off + 5] = 0;
  buf[off + 6] = policy;
  buf[off + 7] = 0;
  buf.writeUInt32LE(sid, off + 8);
  buf.writeUInt16LE(p, off + 12);
  buf.writeUInt16LE(q, off + 14);
  buf.write(pattern, off + 16, p, 'utf8');
  if (q) buf.write(queue!, off + 16 + p, q, 'utf8');
  return total;
}

/** UNSUB: 6 u16 reserved | 8 u32 sid | 12 u32 max (0 = now; N = after N more messages). 16 bytes. */
export const UNSUB_SIZE = 16;
export function writeUnsub(buf: Buffer, off: number, sid: number, max: number): number {
  buf.writeUInt32LE(UNSUB_SIZE, off);
  buf[off + 4] = Op.UNSUB;
  buf[off + 5] = 0;
  buf.writeUInt16LE(0, off + 6);
  buf.writeUInt32LE(sid, off + 8);
  buf.writeUInt32LE(max, off + 12);
  return UNSUB_SIZE;
}

/** PING / PONG: the 6-byte prefix only. */
export const PING_SIZE = FRAME_PREFIX;
export function writeBare(buf: Buffer, off: number, op: number): number {
  buf.writeUInt32LE(FRAME_PREFIX, off);
  buf[off + 4] = op;
  buf[off + 5] = 0;
  return FRAME_PREFIX;
}

/** OK: 6 u16 reserved | 8 u32 ref (the sid it acknowledges, or 0). 12 bytes. */
export const OK_SIZE = 12;
export function writeOk(buf: Buffer, off: number, ref: number): number {
  buf.writeUInt32LE(OK_SIZE, off);
  buf[off + 4] = Op.OK;
  buf[off + 5] = 0;
  buf.writeUInt16LE(0, off + 6);
  buf.writeUInt32LE(ref, off + 8);
  return OK_SIZE;
}

/**
 * LOSS (broker -> client): messages a slow-consumer policy dropped or conflated for
 * one subscription since the last LOSS. 6 u8 policy | 7 u8 reserved | 8 u32 sid |
 * 12 u32 dropped | 16 u32 conflated. 20 bytes.
 */
export const LOSS_SIZE = 20;
export function writeLoss(buf: Buffer, off: number, sid: number, policy: number, dropped: number, conflated: number): number {
  buf.writeUInt32LE(LOSS_SIZE, off);
  buf[off + 4] = Op.LOSS;
  buf[off + 5] = 0;
  buf[off + 6] = policy;
  buf[off + 7] = 0;
  buf.writeUInt32LE(sid, off + 8);
  buf.writeUInt32LE(Math.min(dropped, 0xffffffff), off + 12);
  buf.writeUInt32LE(Math.min(conflated, 0xffffffff), off + 16);
  return LOSS_SIZE;
}

/**
 * DIRECT (shm only): the control plane of direct shared-memory delivery between
 * worker threads (docs/SHM.md, "Direct delivery"). 5 u8 kind (DirectKind) | 6 u16
 * pattern length P | 8 u32 a | 12 u32 b | 16 u32 c | 20 pattern (P bytes, UTF-8).
 * What a, b and c mean depends on the kind.
 */
export const DIRECT_HEADER = 20;
export const enum DirectKind {
  // broker -> client
  /** A subscription the client must send to the broker: a = interest seq, pattern. */
  REMOTE_ADD = 1,
  REMOTE_DEL = 2,
  /** A subscription of direct peer b that the client serves itself: a = interest seq, b = peer id, pattern. */
  PEER_ADD = 3,
  PEER_DEL = 4,
  /** Channel a to peer b is ready (its memory comes over the broadcast channel): c = the peer's pending limit in bytes. */
  OPEN = 5,
  /** Peer b serves this client directly from now on, through channel a: read it. */
  MARK = 6,
  /** Channel a (peer b) is finished: the peer is gone. */
  CLOSE = 7,
  /** No channel to peer b: keep sending its messages through the broker. */
  REFUSED = 8,
  // client -> broker
  /** Please open a channel to peer b. */
  WANT = 16,
  /** From this frame on, this client writes peer b's messages into channel a itself. */
  ACK = 17,
  /** The client has applied every interest change up to seq a. */
  IACK = 18,
  /** Channel a to peer b is over its pending limit: c bytes wait. */
  SLOW = 19,
}

export function directSize(patternBytes: number): number {
  return DIRECT_HEADER + patternBytes;
}

/** Writes a DIRECT frame; returns its size. */
export function writeDirect(buf: Buffer, off: number, kind: DirectKind, a: number, b: number, c: number, pattern = ''): number {
  const p = pattern === '' ? 0 : Buffer.byteLength(pattern, 'utf8');
  const total = DIRECT_HEADER + p;
  buf.writeUInt32LE(total, off);
  buf[off + 4] = Op.DIRECT;
  buf[off + 5] = kind;
  buf.writeUInt16LE(p, off + 6);
  buf.writeUInt32LE(a >>> 0, off + 8);
  buf.writeUInt32LE(b >>> 0, off + 12);
  buf.writeUInt32LE(Math.min(c, 0xffffffff) >>> 0, off + 16);
  if (p > 0) buf.write(pattern, off + DIRECT_HEADER, p, 'utf8');
  return total;
}

/**
 * ERR: 5 flags (FLAG_FATAL) | 6 u16 code | 8 u32 ref (sid concerned, or 0) | 12 text (UTF-8, rest of frame)
 */
export function encodeErr(code: number, text: string, ref = 0, fatal = false): Buffer {
  const t = Buffer.from(text, 'utf8');
  const total = 12 + t.length;
  const buf = Buffer.allocUnsafe(total);
  buf.writeUInt32LE(total, 0);
  buf[4] = Op.ERR;
  buf[5] = fatal ? FLAG_FATAL : 0;
  buf.writeUInt16LE(code, 6);
  buf.writeUInt32LE(ref, 8);
  t.copy(buf, 12);
  return buf;
}

/**
 * CONNECT and INFO: 6 u16 protocol version | 8 msgpack map (rest of frame).
 * Both are rare (once per connection), so they are allocated, not written in place.
 */
export function encodeHandshake(op: Op.CONNECT | Op.INFO, body: Uint8Array): Buffer {
  const total = 8 + body.length;
  const buf = Buffer.allocUnsafe(total);
  buf.writeUInt32LE(total, 0);
  buf[4] = op;
  buf[5] = 0;
  buf.writeUInt16LE(PROTOCOL_VERSION, 6);
  buf.set(body, 8);
  return buf;
}

// ---------------------------------------------------------------------------
// Validation of one complete frame's internal lengths, shared by every decoder.
// Returns null when the frame is well formed, else the reason.
// ---------------------------------------------------------------------------

export function checkFrame(buf: Buffer, off: number, len: number): string | null {
  const op = buf[off + 4]!;
  switch (op) {
    case Op.PUB:
    case Op.MSG: {
      if (len < MSG_HEADER) return `${OP_NAMES[op]} frame of ${len} bytes is shorter than its ${MSG_HEADER}-byte header`;
      const flags = buf[off + 5]!;
      const kind = buf[off + 6]!;
      if (kind > PayloadKind.MSGPACK) return `unknown payload kind ${kind}`;
      const s = buf[off + 12]! | (buf[off + 13]! << 8);
      const r = buf[off + 14]! | (buf[off + 15]! << 8);
      const h = (buf[off + 16]! | (buf[off + 17]! << 8) | (buf[off + 18]! << 16) | (buf[off + 19]! << 24)) >>> 0;
      if (s === 0) return 'empty subject';
      const need = MSG_HEADER + (flags & FLAG_TS ? TS_BLOCK : 0) + s + r + h;
      if (need > len) return `${OP_NAMES[op]} field lengths (${need} bytes) overrun the frame (${len} bytes)`;
      return null;
    }
    case Op.SUB: {
      if (len < 16) return `SUB frame of ${len} bytes is shorter than its 16-byte header`;
      const p = buf.readUInt16LE(off + 12);
      const q = buf.readUInt16LE(off + 14);
      if (p === 0) return 'empty subscription pattern';
      if (buf[off + 6]! > Policy.BLOCK) return `unknown slow-consumer policy ${buf[off + 6]}`;
      if (16 + p + q !== len) return `SUB field lengths (${16 + p + q} bytes) do not match the frame (${len} bytes)`;
      return null;
    }
    case Op.UNSUB:
      return len === UNSUB_SIZE ? null : `UNSUB frame must be ${UNSUB_SIZE} bytes, got ${len}`;
    case Op.PING:
    case Op.PONG:
      return len === FRAME_PREFIX ? null : `${OP_NAMES[op]} frame must be ${FRAME_PREFIX} bytes, got ${len}`;
    case Op.OK:
      return len === OK_SIZE ? null : `OK frame must be ${OK_SIZE} bytes, got ${len}`;
    case Op.LOSS:
      return len === LOSS_SIZE ? null : `LOSS frame must be ${LOSS_SIZE} bytes, got ${len}`;
    case Op.DIRECT: {
      if (len < DIRECT_HEADER) return `DIRECT frame of ${len} bytes is shorter than its ${DIRECT_HEADER}-byte header`;
      const p = buf.readUInt16LE(off + 6);
      return DIRECT_HEADER + p === len ? null : `DIRECT field lengths (${DIRECT_HEADER + p} bytes) do not match the frame (${len} bytes)`;
    }
    case Op.ERR:
      return len >= 12 ? null : `ERR frame of ${len} bytes is shorter than its 12-byte header`;
    case Op.CONNECT:
    case Op.INFO:
      return len >= 8 ? null : `${OP_NAMES[op]} frame of ${len} bytes is shorter than its 8-byte header`;
    default:
      return null; // unknown ops are reported by the caller with their own code
  }
}

export function isKnownOp(op: number): boolean {
  return OP_NAMES[op] !== undefined;
}

/**
 * A decoded view of a PUB/MSG frame: offsets into the frame's buffer, no copies.
 * One instance is reused for every frame a decoder sees (never keep it past the callback).
 */
export class MsgView {
  buf: Buffer = Buffer.alloc(0);
  /** Offset of the frame in buf, and its length. */
  off = 0;
  len = 0;
  op = 0;
  flags = 0;
  kind = 0;
  sid = 0;
  subjectOff = 0;
  subjectLen = 0;
  replyOff = 0;
  replyLen = 0;
  headersOff = 0;
  headersLen = 0;
  payloadOff = 0;
  payloadLen = 0;
  /** Offset of the timestamp block, or -1 when the frame has none. */
  tsOff = -1;

  /** Parses the frame at buf[off, off+len); the frame was already checked by checkFrame. */
  parse(buf: Buffer, off: number, len: number): this {
    this.buf = buf;
    this.off = off;
    this.len = len;
    this.op = buf[off + 4]!;
    const flags = (this.flags = buf[off + 5]!);
    this.kind = buf[off + 6]!;
    // Byte loads: the per-message path, where Buffer#readUInt*LE's checks cost more than the reads.
    this.sid = (buf[off + 8]! | (buf[off + 9]! << 8) | (buf[off + 10]! << 16) | (buf[off + 11]! << 24)) >>> 0;
    const s = (this.subjectLen = buf[off + 12]! | (buf[off + 13]! << 8));
    const r = (this.replyLen = buf[off + 14]! | (buf[off + 15]! << 8));
    const h = (this.headersLen = (buf[off + 16]! | (buf[off + 17]! << 8) | (buf[off + 18]! << 16) | (buf[off + 19]! << 24)) >>> 0);
    let p = off + MSG_HEADER;
    if (flags & FLAG_TS) {
      this.tsOff = p;
      p += TS_BLOCK;
    } else {
      this.tsOff = -1;
    }
    this.subjectOff = p;
    this.replyOff = p + s;
    this.headersOff = p + s + r;
    this.payloadOff = p + s + r + h;
    this.payloadLen = off + len - this.payloadOff;
    return this;
  }

  subject(): string {
    return this.buf.toString('utf8', this.subjectOff, this.subjectOff + this.subjectLen);
  }

  reply(): string {
    return this.replyLen === 0 ? '' : this.buf.toString('utf8', this.replyOff, this.replyOff + this.replyLen);
  }
}
