import type { Clock } from '../../runtime/clock.js';
import { ProtocolError } from '../protocol/index.js';
import { batching, deferFlush } from '../batch.js';
import { BufferedLink, EMPTY } from '../buffered.js';
import type { DirectPort } from '../link.js';
import {
  CLOSED_ABORT,
  CLOSED_CLEAN,
  CLOSED_EXITED,
  H_BROKER_BEAT,
  H_BROKER_CLOSED,
  H_CAPACITY,
  H_CLIENT_BEAT,
  H_CLIENT_CLOSED,
  H_CLIENT_PARKED,
  H_CLIENT_SEQ,
  HUB_PARKED,
  HUB_SEQ,
  LINE,
  OPEN,
  downCapacity,
  ringOffset,
} from './layout.js';
import type { Pollable, Poller } from './poller.js';
import { RingReader, RingWriter } from './ring.js';
import { Signal } from './wait.js';
import { ConnectionError } from '../../runtime/errors.js';
import { microtask } from '../../runtime/microtask.js';

/** Most bytes taken out of the ring per poll: bounds the copy and the time one link holds the loop. */
const MAX_CHUNK = 256 * 1024;

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
  /** Heartbeat times and the close timer (default: the real clock). */
  clock?: Clock;
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
 * full: the write buffer of BufferedLink (buffered.ts), fill[from, used). The write
 * index is published once per batch: at the end of the poll pass (runBatched) or,
 * for writes made outside one, in a microtask. A full ring never
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
export class ShmLink extends BufferedLink implements Pollable {
  readonly transport = 'shm' as const;
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
  private readonly ownClosed: number;
  private readonly peerClosed: number;
  private readonly ownBeat: number;
  private readonly peerBeat: number;
  private readonly heartbeatTimeoutMs: number;
  private peerBeatSeen = -1;
  private peerBeatAt: number;

  private poller: Poller | null = null;
  private target = Target.RING;
  private scratch: Buffer = EMPTY;
  private wantingSpace = false;
  private publishQueued = false;
  /** Inside reader.push(): a pause() then halts it at the current frame. */
  private pushing = false;
  /** Bytes read out of the ring but not handed out yet: the rest of a chunk a pause() stopped. */
  private leftover: Buffer | null = null;

  constructor(c: ShmLinkConfig) {
    super(c.remote, c.maxFrame, c.clock);
    this.peerBeatAt = this.clock.now();
    this.tickMs = c.heartbeatMs;
    this.heartbeatTimeoutMs = c.heartbeatTimeoutMs;
    this.header = new Int32Array(c.conn, 0, LINE);
    const cap = this.header[H_CAPACITY]!;
    const down = downCapacity(this.header);
    const client = c.side === 'client';
    // The client writes UP and reads DOWN; the broker the other way round.
    this.out = new RingWriter(c.conn, ringOffset(cap, !client), client ? cap : down);
    this.in = new RingReader(c.conn, ringOffset(cap, client), client ? down : cap);
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
    return this.used - this.from;
  }

  protected override started(): void {
    this.poller?.kick();
  }

  // --- writing ---------------------------------------------------------------------

  override reserve(n: number): Buffer {
    if (this.used === this.from && this.out.free(n) >= n) {
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
    return super.reserve(n);
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
        if (this.used === this.from) {
          // writeBlockedSince: since when queued bytes have waited without the reader taking any.
          this.writeBlockedSince = this.clock.now();
          this.wantingSpace = true;
          this.out.wantSpace(true);
        }
        this.used += n;
    }
    if (this.poller !== null) this.poller.writes++;
    if (!this.publishQueued) {
      this.publishQueued = true;
      if (batching()) deferFlush(this);
      else microtask(this.flushTask);
    }
  }

  private readonly flushTask = (): void => this.flush();

  /** Publishes what was written (and moves queued bytes in as space allows). */
  flush(): void {
    this.publishQueued = false;
    if (this.closed) return;
    if (this.used !== this.from) this.pump();
    else if (this.out.dirty) {
      this.out.publish();
      this.peerSignal.notify();
    }
  }

  /** Moves queued bytes into the ring as far as it has room; returns how many. */
  private pump(): number {
    const queued = this.used - this.from;
    const free = this.out.free(queued);
    if (free === 0) {
      if (this.out.dirty) {
        this.out.publish();
        this.peerSignal.notify();
      }
      return 0;
    }
    const n = Math.min(free, queued);
    this.out.write(this.fill, this.from, n);
    this.from += n;
    this.out.publish();
    this.peerSignal.notify();
    if (this.from === this.used) this.drained();
    // The reader made progress: like a socket write completing, restart the clock a
    // write deadline is measured on.
    else this.writeBlockedSince = this.clock.now();
    return n;
  }

  private drained(): void {
    this.emptied();
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
    if (this.used !== this.from) work += this.pump();
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
    if (this.used !== this.from && this.out.freshFree() > 0) return true;
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
      this.readFailed(err);
    } finally {
      this.pushing = false;
    }
  }

  /** The peer has closed (everything it published has been read): end this side too. */
  private peerGone(how: number): void {
    const who = this.ownBeat === H_CLIENT_BEAT ? 'broker' : 'client';
    if (how === CLOSED_CLEAN) this.end(null, CLOSED_CLEAN);
    else if (how === CLOSED_EXITED) this.end(new ConnectionError(`shm connection lost: the ${who} thread exited`), CLOSED_ABORT);
    else this.end(new ConnectionError(`shm connection reset by the ${who}`), CLOSED_ABORT);
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
      this.destroy(new ConnectionError(`shm connection lost: the ${who} thread stopped (no heartbeat for ${Math.round(now - this.peerBeatAt)} ms)`));
    }
  }

  /** Stops reading; called from a handler, right after the frame being handled (the rest waits for resume()). */
  override pause(): void {
    this.paused = true;
    if (this.pushing) this.reader.halt();
  }

  override resume(): void {
    if (!this.paused) return;
    this.paused = false;
    this.poller?.kick();
  }

  // --- closing ---------------------------------------------------------------------

  close(): void {
    if (this.closed || this.closing) return;
    this.closing = true;
    if (this.used === this.from) {
      this.finishClose();
      return;
    }
    this.pump();
    if (!this.closed) this.closeWithin(() => this.destroy(new ConnectionError('shm close timed out: the peer did not take what was queued')));
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
    live.delete(this);
    this.poller?.remove(this);
    this.dropQueued();
    this.scratch = EMPTY;
    this.onEnd?.(this);
    this.finishSoon();
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
