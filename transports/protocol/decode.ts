/**
 * Decoding: validation of one complete frame's internal lengths (shared by every
 * decoder: transports/reader.ts, the multicast receiver) and the reusable view of a
 * PUB/MSG frame. Both run once per message: no allocation, byte loads.
 */
import {
  CHALLENGE_HEADER,
  CHALLENGE_MAX_NONCE,
  DIRECT_HEADER,
  FLAG_REPLAY,
  FLAG_SEQ,
  FLAG_SNAPSHOT,
  FLAG_TS,
  FRAME_PREFIX,
  IMAGE_SIZE,
  LOSS_SIZE,
  MSG_HEADER,
  OK_SIZE,
  OP_NAMES,
  Op,
  PayloadKind,
  Policy,
  PROOF_SIZE,
  SEQ_BLOCK,
  SUB_FROM_SEQ,
  SUB_FROM_TIME,
  TS_BLOCK,
  UNSUB_SIZE,
} from './constants.js';

/** Returns null when the frame is well formed, else the reason. */
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
      if (op === Op.PUB && flags & (FLAG_SEQ | FLAG_SNAPSHOT | FLAG_REPLAY)) return 'a PUB carries no sequence, snapshot or replay flag';
      const need = MSG_HEADER + (flags & FLAG_TS ? TS_BLOCK : 0) + (flags & FLAG_SEQ ? SEQ_BLOCK : 0) + s + r + h;
      if (need > len) return `${OP_NAMES[op]} field lengths (${need} bytes) overrun the frame (${len} bytes)`;
      return null;
    }
    case Op.SUB: {
      if (len < 16) return `SUB frame of ${len} bytes is shorter than its 16-byte header`;
      const p = buf.readUInt16LE(off + 12);
      const q = buf.readUInt16LE(off + 14);
      if (p === 0) return 'empty subscription pattern';
      if (buf[off + 6]! > Policy.BLOCK) return `unknown slow-consumer policy ${buf[off + 6]}`;
      const from = buf[off + 5]! & (SUB_FROM_SEQ | SUB_FROM_TIME);
      if (from === (SUB_FROM_SEQ | SUB_FROM_TIME)) return 'SUB asks to start from a sequence and from a time';
      const n = 16 + p + q + (from !== 0 ? 8 : 0);
      if (n !== len) return `SUB field lengths (${n} bytes) do not match the frame (${len} bytes)`;
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
    case Op.IMAGE:
      return len === IMAGE_SIZE ? null : `IMAGE frame must be ${IMAGE_SIZE} bytes, got ${len}`;
    case Op.DIRECT: {
      if (len < DIRECT_HEADER) return `DIRECT frame of ${len} bytes is shorter than its ${DIRECT_HEADER}-byte header`;
      const p = buf.readUInt16LE(off + 6);
      return DIRECT_HEADER + p === len ? null : `DIRECT field lengths (${DIRECT_HEADER + p} bytes) do not match the frame (${len} bytes)`;
    }
    case Op.ERR:
      return len >= 12 ? null : `ERR frame of ${len} bytes is shorter than its 12-byte header`;
    case Op.CHALLENGE: {
      const n = len - CHALLENGE_HEADER;
      return n >= 1 && n <= CHALLENGE_MAX_NONCE ? null : `CHALLENGE nonce must be 1 to ${CHALLENGE_MAX_NONCE} bytes, got ${n}`;
    }
    case Op.PROOF:
      return len === PROOF_SIZE ? null : `PROOF frame must be ${PROOF_SIZE} bytes, got ${len}`;
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
  /** Offset of the sequence block (FLAG_SEQ), or -1 when the frame has none. */
  seqOff = -1;

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
    if (flags & FLAG_SEQ) {
      this.seqOff = p;
      p += SEQ_BLOCK;
    } else {
      this.seqOff = -1;
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
