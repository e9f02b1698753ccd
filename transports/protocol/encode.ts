/**
 * Encoders of every frame (layouts: constants.ts). Each writes into a caller-provided
 * buffer at an offset and returns the number of bytes written, so a link can encode
 * straight into its write buffer; `xxxSize` gives the exact size first. The two that
 * allocate (ERR, CONNECT/INFO) are off the message path.
 */
import {
  CHALLENGE_HEADER,
  DIRECT_HEADER,
  type DirectKind,
  IMAGE_SIZE,
  type ImageKind,
  FLAG_FATAL,
  FRAME_PREFIX,
  LOSS_SIZE,
  MSG_HEADER,
  OK_SIZE,
  Op,
  PROOF_SIZE,
  PROTOCOL_VERSION,
  SIGNATURE_BYTES,
  SUB_FROM_SEQ,
  SUB_FROM_TIME,
  TS_BLOCK,
  UNSUB_SIZE,
} from './constants.js';

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
  buf: Buffer,
  off: number,
  total: number,
  op: number,
  flags: number,
  kind: number,
  sid: number,
  subjectBytes: number,
  replyBytes: number,
  headerBytes: number,
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
 * `flags`: SUB_SNAPSHOT, SUB_FROM_SEQ or SUB_FROM_TIME; with either FROM flag, `start`
 * (a journal sequence or a time in µs since the epoch) follows the queue name (subSize + 8 bytes).
 */
export function writeSub(buf: Buffer, off: number, sid: number, pattern: string, queue: string | undefined, policy = 0, flags = 0, start = 0): number {
  const p = Buffer.byteLength(pattern);
  const q = queue ? Buffer.byteLength(queue) : 0;
  const from = (flags & (SUB_FROM_SEQ | SUB_FROM_TIME)) !== 0;
  const total = subSize(p, q) + (from ? 8 : 0);
  buf.writeUInt32LE(total, off);
  buf[off + 4] = Op.SUB;
  buf[off + 5] = flags;
  buf[off + 6] = policy;
  buf[off + 7] = 0;
  buf.writeUInt32LE(sid, off + 8);
  buf.writeUInt16LE(p, off + 12);
  buf.writeUInt16LE(q, off + 14);
  buf.write(pattern, off + 16, p, 'utf8');
  if (q) buf.write(queue!, off + 16 + p, q, 'utf8');
  if (from) buf.writeBigUInt64LE(BigInt(start), off + 16 + p + q);
  return total;
}

/** IMAGE: the start (count = subjects) or end (count = messages delivered) of subscription `sid`'s image or replay. */
export function writeImage(buf: Buffer, off: number, kind: ImageKind, sid: number, count: number): number {
  buf.writeUInt32LE(IMAGE_SIZE, off);
  buf[off + 4] = Op.IMAGE;
  buf[off + 5] = kind;
  buf.writeUInt16LE(0, off + 6);
  buf.writeUInt32LE(sid, off + 8);
  buf.writeUInt32LE(Math.min(count, 0xffffffff), off + 12);
  return IMAGE_SIZE;
}

export function writeUnsub(buf: Buffer, off: number, sid: number, max: number): number {
  buf.writeUInt32LE(UNSUB_SIZE, off);
  buf[off + 4] = Op.UNSUB;
  buf[off + 5] = 0;
  buf.writeUInt16LE(0, off + 6);
  buf.writeUInt32LE(sid, off + 8);
  buf.writeUInt32LE(max, off + 12);
  return UNSUB_SIZE;
}

export function writeBare(buf: Buffer, off: number, op: number): number {
  buf.writeUInt32LE(FRAME_PREFIX, off);
  buf[off + 4] = op;
  buf[off + 5] = 0;
  return FRAME_PREFIX;
}

export function writeOk(buf: Buffer, off: number, ref: number): number {
  buf.writeUInt32LE(OK_SIZE, off);
  buf[off + 4] = Op.OK;
  buf[off + 5] = 0;
  buf.writeUInt16LE(0, off + 6);
  buf.writeUInt32LE(ref, off + 8);
  return OK_SIZE;
}

/** LOSS: what a slow-consumer policy dropped or conflated for one subscription; counts saturate at u32. */
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

/** CONNECT and INFO are rare (once per connection), so they are allocated, not written in place. */
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

/** CHALLENGE: the nonce an nkey client must sign (once per connection, so allocated). */
export function encodeChallenge(nonce: Uint8Array): Buffer {
  const total = CHALLENGE_HEADER + nonce.length;
  const buf = Buffer.allocUnsafe(total);
  buf.writeUInt32LE(total, 0);
  buf[4] = Op.CHALLENGE;
  buf[5] = 0;
  buf.writeUInt16LE(0, 6);
  buf.set(nonce, CHALLENGE_HEADER);
  return buf;
}

/** PROOF: the client's Ed25519 signature of a CHALLENGE's nonce; throws unless it is 64 bytes. */
export function encodeProof(signature: Uint8Array): Buffer {
  if (signature.length !== SIGNATURE_BYTES) throw new RangeError(`an Ed25519 signature is ${SIGNATURE_BYTES} bytes, got ${signature.length}`);
  const buf = Buffer.allocUnsafe(PROOF_SIZE);
  buf.writeUInt32LE(PROOF_SIZE, 0);
  buf[4] = Op.PROOF;
  buf[5] = 0;
  buf.writeUInt16LE(0, 6);
  buf.set(signature, 8);
  return buf;
}
