import { FRAME_PREFIX, ProtocolError, checkFrame, isKnownOp } from './protocol/index.js';

/** Receives whole frames. The bytes buf[off, off+len) are the receiver's to keep. */
export interface FrameSink {
  onFrame(buf: Buffer, off: number, len: number): void;
}

/**
 * Incremental frame decoder for byte-stream transports (TCP, Unix sockets).
 *
 * Frames wholly inside a chunk are handed out in place (no copy); only a frame split
 * across chunks is assembled, into a buffer allocated for that one frame. That buffer
 * is never reused, so every byte range handed to the sink stays valid and unmodified
 * by the reader afterwards: the client can give subscribers views instead of copies.
 *
 * The length prefix is checked as soon as its 4 bytes are in, so an oversized frame is
 * refused before any of its body is buffered. Any error throws a ProtocolError and the
 * reader must not be used again: the stream cannot be resynchronised.
 */
export class FrameReader {
  /** Partial frame being assembled; null when the next byte starts a frame. */
  private part: Buffer | null = null;
  private partLen = 0;
  /** Up to 3 bytes of a length prefix split across chunks. */
  private head = Buffer.alloc(4);
  private headLen = 0;
  private failed = false;
  /** Set by halt(): push() returns after the frame being handed out. */
  private halted = false;
  /** Partial frames begun so far; `partial` is the one being assembled. */
  private begun = 0;
  /**
   * Which frame is being assembled across chunks: a number that changes with every new
   * partial frame, 0 when none is. A read deadline watches it: the same nonzero value
   * for too long is a frame that never completes.
   */
  partial = 0;

  constructor(public maxFrame: number) {}

  /**
   * Called from a sink's onFrame: push() stops after that frame and returns how many
   * bytes of its chunk it consumed; the caller pushes the rest later. (A paused shm
   * link uses it to stop at an exact frame.)
   */
  halt(): void {
    this.halted = true;
  }

  /** Bytes received but not yet handed out as a frame. */
  get buffered(): number {
    return this.part ? this.partLen : this.headLen;
  }

  /** Bytes allocated for the frame being assembled (its whole length, from its prefix). */
  get allocated(): number {
    return this.part === null ? 0 : this.part.length;
  }

  /** Drops a partial frame and stops reading for good (the link is gone): its bytes are released at once. */
  release(): void {
    this.part = null;
    this.partLen = 0;
    this.headLen = 0;
    this.partial = 0;
    this.failed = true;
  }

  /**
   * Hands out every whole frame of chunk[start, end); returns the offset read up to (end
   * unless halt() was called). A range spares a caller that owns the bytes a subarray.
   */
  push(chunk: Buffer, sink: FrameSink, start = 0, end = chunk.length): number {
    if (this.failed) throw new ProtocolError('PROTOCOL', 'frame reader used after a protocol error');
    let pos = start;
    this.halted = false;
    try {
      // Finish a frame left over from earlier chunks.
      if (this.headLen > 0) {
        while (this.headLen < 4 && pos < end) this.head[this.headLen++] = chunk[pos++]!;
        if (this.headLen < 4) return end;
        const len = this.head.readUInt32LE(0);
        this.checkLength(len);
        this.part = Buffer.allocUnsafe(len);
        this.head.copy(this.part, 0, 0, 4);
        this.partLen = 4;
        this.headLen = 0;
      }
      if (this.part !== null) {
        const part = this.part;
        const take = Math.min(part.length - this.partLen, end - pos);
        chunk.copy(part, this.partLen, pos, pos + take);
        this.partLen += take;
        pos += take;
        if (this.partLen < part.length) return end;
        this.part = null;
        this.partLen = 0;
        this.partial = 0;
        this.emit(part, 0, part.length, sink);
        if (this.halted) return this.stop(pos);
      }
      // Whole frames in place.
      while (end - pos >= 4) {
        const len = (chunk[pos]! | (chunk[pos + 1]! << 8) | (chunk[pos + 2]! << 16) | (chunk[pos + 3]! << 24)) >>> 0;
        this.checkLength(len);
        if (end - pos < len) break;
        this.emit(chunk, pos, len, sink);
        pos += len;
        if (this.halted) return this.stop(pos);
      }
      if (pos < end) {
        this.partial = ++this.begun;
        if (end - pos < 4) {
          chunk.copy(this.head, 0, pos, end);
          this.headLen = end - pos;
        } else {
          const len = chunk.readUInt32LE(pos);
          const part = Buffer.allocUnsafe(len);
          chunk.copy(part, 0, pos, end);
          this.part = part;
          this.partLen = end - pos;
        }
      }
    } catch (err) {
      this.failed = true;
      throw err;
    }
    return end;
  }

  private stop(pos: number): number {
    this.halted = false;
    return pos;
  }

  private checkLength(len: number): void {
    if (len < FRAME_PREFIX) throw new ProtocolError('PROTOCOL', `frame length ${len} is shorter than the ${FRAME_PREFIX}-byte frame prefix`);
    if (len > this.maxFrame) {
      const e = new ProtocolError('FRAME_TOO_LARGE', `frame of ${len} bytes exceeds the limit of ${this.maxFrame} bytes`);
      e.prefix = len;
      throw e;
    }
  }

  private emit(buf: Buffer, off: number, len: number, sink: FrameSink): void {
    const op = buf[off + 4]!;
    if (!isKnownOp(op)) throw new ProtocolError('UNKNOWN_OP', `unknown op 0x${op.toString(16).padStart(2, '0')}`);
    const bad = checkFrame(buf, off, len);
    if (bad !== null) throw new ProtocolError('PROTOCOL', bad);
    sink.onFrame(buf, off, len);
  }
}
