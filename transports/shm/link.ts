import { ProtocolError } from '../protocol/index.js';
import { batching, deferFlush, type Flushable } from '../batch.js';
import { FrameReader } from '../reader.js';
import { readFailed, type DirectPort, type Link, type LinkHandler } from '../link.js';
import {
  CLOSED_ABORT, CLOSED_CLEAN, CLOSED_EXITED, H_BROKER_BEAT, H_BROKER_CLOSED, H_CAPACITY, H_CLIENT_BEAT, H_CLIENT_CLOSED,
  H_CLIENT_PARKED, H_CLIENT_SEQ, HUB_PARKED, HUB_SEQ, LINE, OPEN, downCapacity, ringOffset,
} from './layout.js';
import type { Pollable, Poller } from './poller.js';
import { RingReader, RingWriter } from './ring.js';
import { Signal } from './wait.js';

/** Most bytes taken out of the ring per poll: bounds the copy and the time one link holds the loop. */
const MAX_CHUNK = 256 * 1024;
/** An overflow buffer grown past this is dropped once empty rather than kept. */
const KEEP_OVERFLOW_MAX = 1024 * 1024;
/** A graceful close waits this long for the peer to take what is queued. */
const CLOSE_GRACE_MS = 2000;
const EMPTY = Buffer.alloc(0);

const enum Target {
  RING,
  SCRATCH,
  OVERFLOW,
}

export interface ShmLinkConfig {
  conn: SharedArrayBuffer;
  hub: SharedArrayBuffer;
  side: 'client' | 'broker';
  remote: string;
  maxFrame: number;
  /** How often this side bumps its heartbeat and checks the peer's, ms. */
  heartbeatMs: number;
  /** The peer is declared gone after this long without a heartbeat, ms (Infinity: never; liveness is watched elsewhere). */
  heartbeatTimeoutMs: number;
  /**
   * The doorbells this side parks on and rings, when they are not the connection's
   * own (a direct channel between two clients rings the clients' doorbells).
   */
  signals?: { own: Signal; peer: Signal };
  /** Does an open link keep its thread's event loop alive? (default true) */
  keepsAlive?: boolean;
}

/** Links of this thread that are open, so the thread's exit can tell their peers. */
const live = new Set<ShmLink>();
let exitHooked = false;

/**
 * One end of a shm connection: writes frames into its outbound ring, reads frames
 * from its inbound ring. The same class serves the client (in a worker, usually) and
 * the broker.
 *
 * Writing: reserve(n) hands out the ring's own memory when the frame fits before the
 * end of the ring (encoders write in place, no copy), a scratch buffer when it would
 * wrap (copied in in two parts at commit), and the overflow queue when the ring is
 * full. The write index is published once per batch: at the end of the poll pass
 * (runBatched) or, for writes made outside one, in a microtask. A full ring never
 * blocks the writer and never overwrites unread bytes: what does not fit waits in the
 * overflow queue, counted in pendingBytes exactly like a socket's unsent bytes, and
 * moves into the ring as the reader frees space (it wakes this side when it does).
 *
 * Reading: the poll loop copies what is published out of the ring into a fresh
 * buffer (frames are the handler's to keep), frees the space at once, and hands the
 * bytes to the same FrameReader as TCP.
 *
 * Threading: the thread that created it; its peer is another thread.
 */
export class ShmLink implements Link, Flushable, Pollable {
  readonly transport = 'shm' as const;
  readonly remote: string;
  closed = false;
  batched = false;
  /** performance.now() since which queued bytes have waited without the reader taking any; 0 when none wait. */
  writeBlockedSince = 0;
  readonly keepsAlive: boolean;
  readonly tickMs: number;
  /** Direct channels to other clients (client side only; set by the dialer). */
  direct: DirectPort | undefined = undefined;
  /** Called once when the link has ended (the hub forgets it). */
  onEnd: ((link: ShmLink) => void) | null = null;

  readonly header: Int32Array;
  /** Link.shared: the connection's shared memory (its header), which direct channels are announced in. */
  get shared(): SharedArrayBuffer {
    return this.header.buffer as SharedArrayBuffer;
  }
  /** This side's doorbell (what its poll loop parks on) and the peer's. */
  readonly ownSignal: Signal;
  private readonly peerSignal: Signal;
  private readonly out: RingWriter;
  private readonly in: RingReader;
  private readonly reader: FrameReader;
  private readonly ownClosed: number;
  private readonly peerClosed: number;
  private readonly ownBeat: number;
  private readonly peerBeat: number;
  private readonly heartbeatTimeoutMs: number;
  private peerBeatSeen = -1;
  private peerBeatAt = performance.now();

  private poller: Poller | null = null;
  private handler: LinkHandler | null = null;
  private target = Target.RING;
  private wOff = 0;
  private scratch: Buffer = EMPTY;
  /** Bytes committed while the ring was full, in order: ovf[ovfStart, ovfEnd). */
  private ovf: Buffer = EMPTY;
  private ovfStart = 0;
  private ovfEnd = 0;
  private wantingSpace = false;
  private publishQueued = false;
  private paused = false;
  /** Inside reader.push(): a pause() then halts it at the current frame. */
  private pushing = false;
  /** Bytes read out of the ring but not handed out yet: the rest of a chunk a pause() stopped. */
  private leftover: Buffer | null = null;
  private failed = false;
  private closing = false;
  private closeTimer: NodeJS.Timeout | null = null;
  private ended = false;
  private closeErr: Error | null = null;

  constructor(c: ShmLinkConfig) {
    this.remote = c.remote;
    this.tickMs = c.heartbeatMs;
    this.heartbeatTimeoutMs = c.heartbeatTimeoutMs;
    this.header = new Int32Array(c.conn, 0, LINE);
    const cap = this.header[H_CAPACITY]!;
    const down = downCapacity(this.header);
    const client = c.side === 'client';
    // The client writes UP and reads DOWN; the broker the other way round.
    this.out = new RingWriter(c.conn, ringOffset(cap, !client), client ? cap : down);
    this.in = new RingReader(c.conn, ringOffset(cap, client), client ? down : cap);
    this.reader = new FrameReader(c.maxFrame);
    const clientSignal = new Signal(this.header, H_CLIENT_SEQ, H_CLIENT_PARKED);
    const hubSignal = new Signal(new Int32Array(c.hub), HUB_SEQ, HUB_PARKED);
    this.ownSignal = c.signals?.own ?? (client ? clientSignal : hubSignal);
    this.peerSignal = c.signals?.peer ?? (client ? hubSignal : clientSignal);
    this.keepsAlive = c.keepsAlive ?? true;
    this.ownClosed = client ? H_CLIENT_CLOSED : H_BROKER_CLOSED;
    this.peerClosed = client ? H_BROKER_CLOSED : H_CLIENT_CLOSED;
    this.ownBeat = client ? H_CLIENT_BEAT : H_BROKER_BEAT;
    this.peerBeat = client ? H_BROKER_BEAT : H_CLIENT_BEAT;
    live.add(this);
    if (!exitHooked) {
      exitHooked = true;
      process.on('exit', onThreadExit);
    }
  }

  /** The poll loop serving this link, once attached. */
  get loop(): Poller | null {
    return this.poller;
  }

  /** Joins a poll loop (once). */
  attach(poller: Poller): void {
    this.poller = poller;
    poller.add(this);
  }

  get pendingBytes(): number {
    return this.ovfEnd - this.ovfStart;
  }

  get writeOffset(): number {
    return this.wOff;
  }

  setMaxFrame(n: number): void {
    this.reader.maxFrame = n;
  }

  start(handler: LinkHandler): void {
    this.handler = handler;
    if (this.ended) {
      this.handler = null;
      handler.onClose(this.closeErr);
      return;
    }
    this.poller?.kick();
  }

  // --- writing ---------------------------------------------------------------------

  reserve(n: number): Buffer {
    if (this.ovfEnd === this.ovfStart && this.out.free(n) >= n) {
      const out = this.out;
      if (out.contiguous(n)) {
        this.target = Target.RING;
        this.wOff = out.offset;
        return out.data;
      }
      if (this.scratch.length < n) this.scratch = Buffer.allocUnsafe(Math.max(n, 4096));
      this.target = Target.SCRATCH;
      this.wOff = 0;
      return this.scratch;
    }
    this.target = Target.OVERFLOW;
    const need = this.ovfEnd + n;
    if (need > this.ovf.length) {
      const used = this.ovfEnd - this.ovfStart;
      if (used + n <= this.ovf.length >>> 1) {
        this.ovf.copy(this.ovf, 0, this.ovfStart, this.ovfEnd);
      } else {
        const grown = Buffer.allocUnsafe(Math.max(64 * 1024, (used + n) * 2));
        this.ovf.copy(grown, 0, this.ovfStart, this.ovfEnd);
        this.ovf = grown;
      }
      this.ovfStart = 0;
      this.ovfEnd = used;
    }
    this.wOff = this.ovfEnd;
    return this.ovf;
  }

  commit(n: number): void {
    if (this.closed) return; // the link is gone: drop, do not accumulate
    switch (this.target) {
      case Target.RING:
        this.out.advance(n);
        break;
      case Target.SCRATCH:
        this.out.write(this.scratch, 0, n);
        break;
      default:
        if (this.ovfEnd === this.ovfStart) {
          this.writeBlockedSince = performance.now();
          this.wantingSpace = true;
          this.out.wantSpace(true);
        }
        this.ovfEnd += n;
    }
    if (this.poller !== null) this.poller.writes++;
    if (!this.publishQueued) {
      this.publishQueued = true;
      if (batching()) deferFlush(this);
      else queueMicrotask(this.flushTask);
    }
  }

  send(bytes: Uint8Array, off: number, len: number): void {
    const buf = this.reserve(len);
    buf.set(off === 0 && len === bytes.length ? bytes : bytes.subarray(off, off + len), this.wOff);
    this.commit(len);
  }

  private readonly flushTask = (): void => this.flush();

  /** Publishes what was written (and moves queued bytes in as space allows). */
  flush(): void {
    this.publishQueued = false;
    if (this.closed) return;
    if (this.ovfEnd !== this.ovfStart) this.pump();
    else if (this.out.dirty) {
      this.out.publish();
      this.peerSignal.notify();
    }
  }

  /** Moves queued bytes into the ring as far as it has room; returns how many. */
  private pump(): number {
    const queued = this.ovfEnd - this.ovfStart;
    const free = this.out.free(queued);
    if (free === 0) {
      if (this.out.dirty) {
        this.out.publish();
        this.peerSignal.notify();
      }
      return 0;
    }
    const n = Math.min(free, queued);
    this.out.write(this.ovf, this.ovfStart, n);
    this.ovfStart += n;
    this.out.publish();
    this.peerSignal.notify();
    if (this.ovfStart === this.ovfEnd) this.drained();
    // The reader made progress: like a socket write completing, restart the clock a
    // write deadline is measured on.
    else this.writeBlockedSince = performance.now();
    return n;
  }

  private drained(): void {
    this.ovfStart = this.ovfEnd = 0;
    if (this.ovf.length > KEEP_OVERFLOW_MAX) this.ovf = EMPTY;
    this.writeBlockedSince = 0;
    if (this.wantingSpace) {
      this.wantingSpace = false;
      this.out.wantSpace(false);
    }
    if (this.closing) this.finishClose();
    else this.handler?.onDrain?.();
  }

  // --- reading (the poll loop) --------------------------------------------------------

  poll(): number {
    if (this.closed) return 0;
    let work = 0;
    if (this.ovfEnd !== this.ovfStart) work += this.pump();
    if (this.handler !== null && !this.paused && !this.failed) {
      if (this.leftover !== null) {
        const rest = this.leftover;
        this.leftover = null;
        this.hand(rest);
        return work + 1;
      }
      const avail = this.in.available();
      if (avail !== 0) return work + this.read(avail);
    }
    const peer = Atomics.load(this.header, this.peerClosed);
    if (peer !== OPEN && (this.handler === null || !this.paused || this.failed)) this.peerGone(peer);
    return work;
  }

  ready(): boolean {
    if (this.closed) return false;
    const reading = this.handler !== null && !this.paused && !this.failed;
    if (reading && (this.leftover !== null || this.in.available() !== 0)) return true;
    if (this.ovfEnd !== this.ovfStart && this.out.freshFree() > 0) return true;
    return Atomics.load(this.header, this.peerClosed) !== OPEN && (this.handler === null || !this.paused || this.failed);
  }

  private read(avail: number): number {
    if (avail < 0 || avail > this.in.capacity) {
      this.destroy(new ProtocolError('PROTOCOL', `shm ring indices are corrupt (${avail} bytes available in a ${this.in.capacity}-byte ring)`));
      return 1;
    }
    const n = avail < MAX_CHUNK ? avail : MAX_CHUNK;
    const chunk = Buffer.allocUnsafe(n);
    this.in.read(chunk, 0, n);
    if (this.in.release(n)) this.peerSignal.notify();
    this.hand(chunk);
    return n;
  }

  /** Hands a chunk's frames to the handler; a pause() from a handler keeps the rest for resume(). */
  private hand(chunk: Buffer): void {
    this.pushing = true;
    try {
      const used = this.reader.push(chunk, this.handler!);
      if (used < chunk.length) this.leftover = chunk.subarray(used);
    } catch (err) {
      // The byte stream cannot be resynchronised: stop reading; the handler says why and closes.
      this.failed = true;
      readFailed(this.handler, err, (e) => this.destroy(e));
    } finally {
      this.pushing = false;
    }
  }

  /** The peer has closed (everything it published has been read): end this side too. */
  private peerGone(how: number): void {
    const who = this.ownBeat === H_CLIENT_BEAT ? 'broker' : 'client';
    if (how === CLOSED_CLEAN) this.end(null, CLOSED_CLEAN);
    else if (how === CLOSED_EXITED) this.end(new Error(`shm connection lost: the ${who} thread exited`), CLOSED_ABORT);
    else this.end(new Error(`shm connection reset by the ${who}`), CLOSED_ABORT);
  }

  /** Heartbeat: show this thread is alive, and check that the peer is. */
  tick(now: number): void {
    if (this.closed) return;
    Atomics.add(this.header, this.ownBeat, 1);
    const beat = Atomics.load(this.header, this.peerBeat);
    if (beat !== this.peerBeatSeen) {
      this.peerBeatSeen = beat;
      this.peerBeatAt = now;
    } else if (now - this.peerBeatAt > this.heartbeatTimeoutMs) {
      const who = this.ownBeat === H_CLIENT_BEAT ? 'broker' : 'client';
      this.destroy(new Error(`shm connection lost: the ${who} thread stopped (no heartbeat for ${Math.round(now - this.peerBeatAt)} ms)`));
    }
  }

  /** Stops reading; called from a handler, right after the frame being handled (the rest waits for resume()). */
  pause(): void {
    this.paused = true;
    if (this.pushing) this.reader.halt();
  }

  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    this.poller?.kick();
  }

  // --- closing ---------------------------------------------------------------------

  close(): void {
    if (this.closed || this.closing) return;
    this.closing = true;
    if (this.ovfEnd === this.ovfStart) {
      this.finishClose();
      return;
    }
    this.pump();
    if (!this.closed) {
      this.closeTimer = setTimeout(() => this.destroy(new Error('shm close timed out: the peer did not take what was queued')), CLOSE_GRACE_MS);
      this.closeTimer.unref();
    }
  }

  private finishClose(): void {
    if (this.out.dirty) this.out.publish();
    this.end(null, CLOSED_CLEAN);
  }

  destroy(err?: Error): void {
    if (this.closed) return;
    this.end(err ?? null, CLOSED_ABORT);
  }

  /** Marks this side closed in shared memory, wakes the peer, and tells the handler (asynchronously, once). */
  private end(err: Error | null, how: number): void {
    if (this.closed) return;
    this.closed = true;
    this.closeErr = err;
    Atomics.compareExchange(this.header, this.ownClosed, OPEN, how);
    this.peerSignal.ring();
    if (this.closeTimer) clearTimeout(this.closeTimer);
    this.closeTimer = null;
    live.delete(this);
    this.poller?.remove(this);
    this.ovf = this.scratch = EMPTY;
    this.ovfStart = this.ovfEnd = 0;
    this.writeBlockedSince = 0;
    this.onEnd?.(this);
    queueMicrotask(() => {
      this.ended = true;
      const h = this.handler;
      this.handler = null;
      h?.onClose(err);
    });
  }

  /** On thread exit: publish what was written, and tell the peer the thread is gone. */
  exitNow(): void {
    if (this.closed) return;
    if (this.out.dirty) this.out.publish();
    Atomics.compareExchange(this.header, this.ownClosed, OPEN, CLOSED_EXITED);
    this.peerSignal.ring();
  }
}

function onThreadExit(): void {
  for (const link of live) link.exitNow();
}
