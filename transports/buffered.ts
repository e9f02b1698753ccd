/**
 * transports/buffered.ts: what every Link class shares, written once. A transport
 * extends BufferedLink and keeps only what is its own: how committed bytes leave
 * (a socket write, a uWS send, a ring publish, a microtask hand-off), how inbound
 * bytes arrive, and how the underlying channel closes.
 *
 * The write buffer. Encoders write frames in place: reserve(n) makes room for n bytes
 * in `fill` at `writeOffset`, commit(n) queues them. Committed bytes not handed over
 * yet are fill[from, used). A transport that is done with them either rewinds the
 * buffer (emptied()) or, if the receiver keeps views into what it was handed (inproc),
 * moves `from` on and never rewrites them: `rewrites` says which. When the buffer is
 * full it is compacted (if the queued bytes fit in its first half and may be moved)
 * or replaced by one at least twice the size, so a batch that keeps growing (a fan-out
 * of a whole inbound chunk) is not copied over again for every frame added to it.
 * Steady state allocates nothing.
 *
 * Reading. Chunks arrive in order; each one goes to the link's FrameReader inside a
 * batch window (runBatched, see batch.ts), so what handlers write in response leaves
 * once per chunk. While the link is paused, not started, or older chunks still wait,
 * a chunk is held, and held chunks are read in order on resume(). A reader that threw
 * stops the link reading for good: a byte stream cannot be resynchronised.
 *
 * Closing. `closed` means "writes are dropped from now on"; `finished` means the
 * handler has been told (onClose, exactly once, also for a handler that starts after
 * the end). A graceful close is bounded by CLOSE_GRACE_MS on the link's Clock.
 *
 * Shapes: the fields below are declared in one order for every subclass, so a caller
 * that meets several link classes reads them at the same offsets. No method allocates
 * per call; the closures (readChunk, finishTask) are made once per link.
 *
 * Threading: a link is used only from the thread that created it.
 */
import { realClock, type Clock, type Timer } from '../runtime/clock.js';
import { runBatched, type Flushable } from './batch.js';
import { ProtocolError } from './protocol/index.js';
import { FrameReader } from './reader.js';
import type { Link, LinkHandler, TransportName } from './link.js';

/** Initial size of a write buffer; it grows on demand. */
export const WRITE_BUFFER = 64 * 1024;
/** A write buffer grown past this is dropped once empty rather than kept for reuse. */
export const KEEP_BUFFER_MAX = 1024 * 1024;
/** A graceful close waits this long for the peer to take what is queued; then the link is destroyed. */
export const CLOSE_GRACE_MS = 2000;
export const EMPTY = Buffer.alloc(0);

export abstract class BufferedLink implements Link, Flushable {
  abstract readonly transport: TransportName;
  readonly remote: string;
  closed = false;
  /** Set while in batch.ts's pending list. */
  batched = false;
  writeBlockedSince = 0;

  // --- writing: fill[from, used) is committed and not handed over yet ----------------
  protected fill: Buffer = EMPTY;
  protected from = 0;
  protected used = 0;
  protected wOff = 0;

  // --- reading ------------------------------------------------------------------------
  protected readonly reader: FrameReader;
  protected handler: LinkHandler | null = null;
  protected paused = false;
  /** The reader threw: nothing more is read. */
  protected failed = false;
  /** Chunks waiting to be read, in order, and their bytes. */
  protected readonly held: Buffer[] = [];
  protected heldBytes = 0;

  // --- closing ------------------------------------------------------------------------
  /** close() was called: send what is queued, then end. */
  protected closing = false;
  protected closeErr: Error | null = null;
  /** onClose has been delivered (or is being delivered). */
  protected finished = false;
  protected readonly clock: Clock;
  private graceTimer: Timer | null = null;

  /**
   * `rewrites`: may bytes already handed over be written over (false when the receiver
   * keeps views into them, as inproc's peer does)?
   */
  constructor(
    remote: string,
    maxFrame: number,
    clock: Clock = realClock,
    private readonly rewrites = true,
  ) {
    this.remote = remote;
    this.reader = new FrameReader(maxFrame);
    this.clock = clock;
  }

  /** Bytes queued or in flight towards the peer: the slow-consumer measure. */
  abstract readonly pendingBytes: number;

  get writeOffset(): number {
    return this.wOff;
  }

  /** Raises or lowers the largest frame this link accepts (after the handshake). */
  setMaxFrame(n: number): void {
    this.reader.maxFrame = n;
  }

  /** Write buffer capacity held now (subclasses add their other buffers). */
  get bufferBytes(): number {
    return this.fill.length;
  }

  /** Inbound bytes held now: the partial frame's buffer and chunks held while paused. */
  get inboundBytes(): number {
    return this.reader.allocated + this.heldBytes;
  }

  /** Which inbound frame is being assembled across chunks (FrameReader.partial), 0 when none. */
  get partialFrame(): number {
    return this.reader.partial;
  }

  start(handler: LinkHandler): void {
    this.handler = handler;
    if (this.finished) {
      this.handler = null;
      handler.onClose(this.closeErr);
      return;
    }
    this.started();
  }

  /** The handler is set: begin delivering (by default, what arrived before). */
  protected started(): void {
    this.readHeld();
  }

  // --- writing ---------------------------------------------------------------------

  reserve(n: number): Buffer {
    if (this.used + n > this.fill.length) this.grow(n);
    this.wOff = this.used;
    return this.fill;
  }

  /** Queues the n bytes written at writeOffset and sees that they leave (idle: now or in a microtask; busy: behind the write in flight). */
  abstract commit(n: number): void;

  /** Hands what is queued to the transport (batch.ts calls it at the end of a window). */
  abstract flush(): void;

  send(bytes: Uint8Array, off: number, len: number): void {
    const buf = this.reserve(len);
    buf.set(off === 0 && len === bytes.length ? bytes : bytes.subarray(off, off + len), this.wOff);
    this.commit(len);
  }

  /** Drops what is committed and not handed over yet; returns its bytes. */
  discard(): number {
    const n = this.used - this.from;
    this.used = this.from;
    return n;
  }

  /** Off the per-message path: only when the buffer is full. */
  private grow(n: number): void {
    const keep = this.used - this.from;
    if (this.rewrites && keep + n <= this.fill.length >>> 1) {
      this.fill.copy(this.fill, 0, this.from, this.used);
    } else {
      // Doubled until it fits: a batch larger than WRITE_BUFFER would otherwise be copied
      // over again for every frame added to it. Sizes stay powers of two times
      // WRITE_BUFFER, so a buffer that grew to KEEP_BUFFER_MAX is still kept for reuse
      // (a size just over it would be dropped and allocated again on every cycle).
      let size = this.fill.length < WRITE_BUFFER ? WRITE_BUFFER : this.fill.length * 2;
      while (size < keep + n) size *= 2;
      const next = Buffer.allocUnsafe(size);
      this.fill.copy(next, 0, this.from, this.used);
      this.fill = next;
    }
    this.from = 0;
    this.used = keep;
  }

  /** Everything queued has been handed over: rewind the buffer, and drop it if it grew past KEEP_BUFFER_MAX. */
  protected emptied(): void {
    this.from = this.used = 0;
    if (this.fill.length > KEEP_BUFFER_MAX) this.fill = EMPTY;
  }

  // --- reading ---------------------------------------------------------------------

  /** An inbound chunk: read now, or held while paused, not started, or behind older chunks. */
  protected receive(chunk: Buffer): void {
    if (this.failed || this.closed) return;
    if (this.paused || this.handler === null || this.held.length > 0) {
      this.held.push(chunk);
      this.heldBytes += chunk.length;
    } else {
      runBatched(this.readChunk, chunk);
    }
  }

  /** Reads held chunks in order while nothing stops reading. */
  protected readHeld(): void {
    while (this.held.length > 0 && this.handler !== null && !this.paused && !this.failed && !this.closed) {
      const chunk = this.held.shift()!;
      this.heldBytes -= chunk.length;
      runBatched(this.readChunk, chunk);
    }
  }

  /** One closure per link, not per chunk: what runBatched runs for a chunk. */
  protected readonly readChunk = (chunk: Buffer): void => {
    if (this.closed || this.failed || this.handler === null) return;
    try {
      this.reader.push(chunk, this.handler);
    } catch (err) {
      this.readFailed(err);
    }
  };

  /**
   * The reader threw. The stream cannot be resynchronised, so nothing more is read; a
   * ProtocolError goes to the handler, which tells the peer (ERR) and closes; anything
   * else destroys the link.
   */
  protected readFailed(err: unknown): void {
    this.failed = true;
    this.held.length = 0;
    this.heldBytes = 0;
    const h = this.handler;
    if (err instanceof ProtocolError && h?.onProtocolError) h.onProtocolError(err);
    else this.destroy(err as Error);
  }

  /** Stops reading from the peer until resume(). */
  pause(): void {
    this.paused = true;
  }

  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    this.readHeld();
  }

  // --- closing ---------------------------------------------------------------------

  abstract close(): void;
  abstract destroy(err?: Error): void;

  /** Bounds a graceful close: a peer that stopped reading must not hold the link open. */
  protected closeWithin(onTimeout: () => void): void {
    this.graceTimer = this.clock.timeout(onTimeout, CLOSE_GRACE_MS).unref();
  }

  /** Drops what is queued both ways, and the close timer. */
  protected dropQueued(): void {
    this.fill = EMPTY;
    this.from = this.used = 0;
    this.held.length = 0;
    this.heldBytes = 0;
    this.writeBlockedSince = 0;
    this.clock.clear(this.graceTimer);
    this.graceTimer = null;
  }

  /** The link is over for good: drop what is queued and tell the handler, once. */
  protected finish(): void {
    if (this.finished) return;
    this.finished = true;
    this.closed = true;
    const h = this.handler;
    if (h?.onUnsent !== undefined && this.used > this.from) h.onUnsent(this.fill, this.from, this.used - this.from);
    this.dropQueued();
    this.reader.release();
    this.handler = null;
    h?.onClose(this.closeErr);
  }

  /** finish() in a microtask, so onClose never re-enters whoever called close() or destroy(). */
  protected finishSoon(): void {
    queueMicrotask(this.finishTask);
  }

  private readonly finishTask = (): void => this.finish();
}
