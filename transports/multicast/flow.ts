/**
 * Source-side flow control of one channel: how far ahead of its receivers a source
 * may transmit, from the STATUS messages they send back (in the manner of Aeron's
 * status messages and its min/max multicast flow control).
 *
 * Each receiver reports, at least every statusIntervalMs and whenever it has consumed a
 * quarter of its window, its consumed position (the next datagram seq it will deliver)
 * and its window (bytes its socket can hold). The source keeps, per receiver, that
 * position and the window in datagrams (capped by the ring's share, `maxWindow`), and
 * may transmit datagram seq while `seqDiff(seq, limit) < 0`, where
 *
 *   min: limit = min over live receivers of (position + window)   (the slowest paces)
 *   max: limit = max over live receivers of (position + window)   (the fastest paces)
 *
 * With no live receiver the window is open (`bounded` false): nobody is there to pace
 * the source, and a receiver that joins is paced from its first status on.
 *
 * Slow receivers. A receiver whose window is full (it is `window` or more datagrams
 * behind the source's tail) is marked with the tail at that moment. If it has not
 * consumed up to that mark within slowReceiverMs, it is dropped from the window: the
 * source stops waiting for it, counts it, and tells it (SLOW, unicast) now and on each
 * later status while it stays behind. A healthy receiver that happens to be the slowest
 * clears its mark within a round trip; a frozen one never does. A dropped receiver
 * rejoins the window once its position is within half a window of the tail again.
 * A receiver silent for receiverTimeoutMs is forgotten (it died or left without its
 * LEAVE status); a LEAVE removes it at once.
 *
 * Time: the tick that expires marks and silent receivers runs on the Clock given, while
 * receivers are tracked (a FakeClock drives it in the tests).
 *
 * Threading: the endpoint's thread only.
 */
import type { Clock, Timer } from '../../runtime/clock.js';
import { seqAdd, seqDiff } from './wire.js';

/** 'min': the slowest live receiver paces the source; 'max': the fastest; 'none': no flow control. */
export type FlowMode = 'min' | 'max' | 'none';
export const FLOW_MODES: readonly FlowMode[] = ['min', 'max', 'none'];

export interface FlowOptions {
  mode: 'min' | 'max';
  /** Largest window in datagrams: the ring's share for datagrams sent and not yet consumed. */
  maxWindow: number;
  /** Datagram bytes, to turn a receiver's window in bytes into datagrams. */
  budget: number;
  /** A receiver whose full window is not consumed within this long is dropped (slow). */
  slowReceiverMs: number;
  /** A receiver not heard from for this long is forgotten. */
  receiverTimeoutMs: number;
  /** Receivers tracked at most; status from more is counted and ignored (those are not protected). */
  maxReceivers: number;
}

/** One receiver as the source tracks it. */
export interface FlowReceiver {
  /** The receiver's id (its endpoint's session id). */
  readonly id: number;
  address: string;
  port: number;
  /** Next datagram seq it will deliver. */
  pos: number;
  /** Its window, in datagrams. */
  window: number;
  heardAt: number;
  /** Marked: its window was full when the tail was `mark`, at `markAt`. */
  marked: boolean;
  mark: number;
  markAt: number;
  /** Dropped from the window for being too slow. */
  slow: boolean;
  /** Times it was dropped (the SLOW message carries it, so the receiver tells each drop once). */
  drops: number;
  toldAt: number;
}

export interface FlowHost {
  /** The seq of the next datagram to transmit (the tail of what was sent). */
  readonly tail: number;
  /** The limit moved forward: transmit what is held. */
  release(): void;
  /** Tell a receiver that it was dropped from the window. */
  tellSlow(r: FlowReceiver): void;
  /** A receiver was dropped (counted by the host, for events). */
  dropped(r: FlowReceiver): void;
}

export interface FlowStats {
  /** Receivers tracked now, and how many of them are dropped as slow. */
  receivers: number;
  slowNow: number;
  /** Receivers dropped from the window for being slow (each time). */
  slowDrops: number;
  /** Receivers forgotten after silence. */
  receiverTimeouts: number;
  /** Receivers that said they left. */
  receiverLeaves: number;
  /** Status messages taken, and those ignored because maxReceivers were tracked. */
  statusIn: number;
  untracked: number;
}

export class FlowWindow {
  /** Transmission of seq is allowed while `!bounded || seqDiff(seq, limit) < 0`. */
  limit = 0;
  bounded = false;
  readonly stats = { slowDrops: 0, receiverTimeouts: 0, receiverLeaves: 0, statusIn: 0, untracked: 0 };
  private readonly rs = new Map<number, FlowReceiver>();
  private tick: Timer | null = null;
  private closed = false;

  constructor(
    readonly o: FlowOptions,
    private readonly host: FlowHost,
    private readonly clock: Clock,
  ) {}

  get receivers(): IterableIterator<FlowReceiver> {
    return this.rs.values();
  }

  receiver(id: number): FlowReceiver | undefined {
    return this.rs.get(id);
  }

  snapshot(): FlowStats {
    let slowNow = 0;
    for (const r of this.rs.values()) if (r.slow) slowNow++;
    return { receivers: this.rs.size, slowNow, ...this.stats };
  }

  /** A STATUS from receiver `id`: it has consumed up to `pos` and can hold `windowBytes`. */
  onStatus(id: number, address: string, port: number, pos: number, windowBytes: number, leave: boolean): void {
    if (this.closed) return;
    this.stats.statusIn++;
    const now = this.clock.now();
    let r = this.rs.get(id);
    if (leave) {
      if (r !== undefined) {
        this.rs.delete(id);
        this.stats.receiverLeaves++;
        this.update();
      }
      return;
    }
    const tail = this.host.tail;
    // Never further ahead than what was sent (a confused or hostile report cannot open the window).
    if (seqDiff(pos, tail) > 0) pos = tail;
    const window = Math.max(1, Math.min(this.o.maxWindow, Math.floor(windowBytes / this.o.budget)));
    if (r === undefined) {
      if (this.rs.size >= this.o.maxReceivers) {
        this.stats.untracked++;
        return;
      }
      r = { id, address, port, pos, window, heardAt: now, marked: false, mark: 0, markAt: 0, slow: false, drops: 0, toldAt: 0 };
      this.rs.set(id, r);
      if (this.tick === null) this.tick = this.clock.interval(this.onTick, this.tickMs()).unref();
    } else {
      // Positions only move forward (a reordered older status is ignored).
      if (seqDiff(pos, r.pos) > 0) r.pos = pos;
      r.address = address;
      r.port = port;
      r.window = window;
      r.heardAt = now;
    }
    if (r.slow) {
      if (seqDiff(tail, r.pos) <= r.window / 2) {
        r.slow = false; // caught up: paced again
      } else if (now - r.toldAt >= this.tellEveryMs()) {
        r.toldAt = now;
        this.host.tellSlow(r);
      }
    }
    this.update();
  }

  /** The source holds a datagram it may not send yet: mark whoever fills the window. */
  blocked(): void {
    this.update();
  }

  /** Recomputes marks and the limit; releases held datagrams when the limit moved forward. */
  update(): void {
    const tail = this.host.tail;
    const now = this.clock.now();
    let room = this.o.mode === 'min' ? Infinity : -Infinity;
    let live = 0;
    for (const r of this.rs.values()) {
      if (r.slow) continue;
      const behind = seqDiff(tail, r.pos);
      if (r.marked && seqDiff(r.pos, r.mark) >= 0) r.marked = false;
      if (!r.marked && behind >= r.window) {
        r.marked = true;
        r.mark = tail;
        r.markAt = now;
      }
      const rr = r.window - behind;
      live++;
      if (this.o.mode === 'min' ? rr < room : rr > room) room = rr;
    }
    const wasBounded = this.bounded;
    const old = this.limit;
    if (live === 0) {
      this.bounded = false;
    } else {
      this.bounded = true;
      this.limit = seqAdd(tail, Math.max(0, room));
    }
    if ((wasBounded && !this.bounded) || (this.bounded && (!wasBounded || seqDiff(this.limit, old) > 0))) this.host.release();
  }

  private tickMs(): number {
    return Math.max(1, Math.min(this.o.slowReceiverMs, this.o.receiverTimeoutMs) / 4);
  }

  private tellEveryMs(): number {
    return Math.max(1, this.o.slowReceiverMs / 4);
  }

  private readonly onTick = (): void => {
    const now = this.clock.now();
    let changed = false;
    for (const r of this.rs.values()) {
      if (now - r.heardAt >= this.o.receiverTimeoutMs) {
        this.rs.delete(r.id);
        this.stats.receiverTimeouts++;
        changed = true;
        continue;
      }
      if (!r.slow && r.marked && seqDiff(r.pos, r.mark) < 0 && now - r.markAt >= this.o.slowReceiverMs) {
        r.slow = true;
        r.marked = false;
        r.drops++;
        r.toldAt = now;
        this.stats.slowDrops++;
        changed = true;
        this.host.dropped(r);
        this.host.tellSlow(r);
      }
    }
    if (this.rs.size === 0) {
      this.clock.clear(this.tick);
      this.tick = null;
    }
    // Marks are (re)taken against the current tail, even when nothing changed: a receiver
    // that went silent while the source had nothing to send is marked once the source has.
    if (changed || this.bounded) this.update();
  };

  close(): void {
    this.closed = true;
    this.clock.clear(this.tick);
    this.tick = null;
    this.rs.clear();
    this.bounded = false;
  }
}
