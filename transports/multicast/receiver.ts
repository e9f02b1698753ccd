/**
 * The receiving half: one RecvStream per (channel, source session). It puts the
 * source's datagrams back in sequence order, hands each MSG frame out exactly once
 * and in order, reassembles fragments, and repairs gaps:
 *
 *  - A gap (a seq above the next expected one, or a heartbeat announcing datagrams
 *    not seen) arms one NAK timer per stream after a random back-off in
 *    [0, nakBackoffMs]. Repairs are multicast by the source, so a receiver whose
 *    gap is filled by the repair another receiver asked for never sends its own
 *    NAK: that is the suppression. When the timer fires, the stream NAKs every
 *    missing range (unicast to the source's address) and waits nakRetryMs, doubling
 *    per round, with jitter.
 *  - After nakMaxRetries rounds with the head of the gap still missing, or at once
 *    when the source says the datagrams are UNAVAILABLE (out of its ring) or it
 *    is gone, the gap is declared lost: counted in datagrams and messages (from
 *    the message sequence numbers) and reported to the handler, and delivery goes
 *    on after it.
 *  - Duplicates (seq already delivered or held) are dropped and counted.
 *
 * Flow control: a source that sets FLOW in its datagrams wants STATUS reports. The
 * stream sends one (through its host) as soon as it hears such a source, then whenever
 * it has delivered `statusEvery` datagrams since the last one (a check per datagram,
 * not per message), and the endpoint sends one per stream every statusIntervalMs. A
 * SLOW from the source (this receiver was dropped from its window) is told once per drop.
 *
 * A stream starts at the first datagram or heartbeat it hears: a late joiner gets
 * what is sent from then on, not the history (a fragment tail heard first is skipped).
 *
 * Threading: the endpoint's thread only.
 */
import type { Clock, Timer } from '../../runtime/clock.js';
import { FRAME_PREFIX, Op, checkFrame } from '../protocol/index.js';
import { DType, F_FLOW, F_FRAGMENT, FRAG_HEADER, HEADER, NAK_SIZE, seqAdd, seqDiff, writeHeader, writeIpv4 } from './wire.js';
import type { ChannelAddr } from './source.js';

export interface ReceiverOptions {
  nakBackoffMs: number;
  nakRetryMs: number;
  nakMaxRetries: number;
  /** Out-of-order datagrams held per stream while a gap is repaired. */
  maxReorder: number;
  /** Largest message (MSG frame) reassembled from fragments. */
  maxMessageBytes: number;
}

/** What a stream needs from its endpoint. */
export interface StreamHost {
  readonly ro: ReceiverOptions;
  /** Gap ages and NAK timers run on it (the endpoint's clock). */
  readonly clock: Clock;
  deliverFrame(stream: RecvStream, buf: Buffer, off: number, len: number): void;
  lost(stream: RecvStream, datagrams: number, messages: number, reason: string): void;
  /** A gap was closed by repairs, `ms` after it was first seen. */
  repaired(stream: RecvStream, ms: number): void;
  sendNak(buf: Buffer, address: string, port: number): void;
  /** Sends this stream's STATUS (its consumed position `next`) to the source; LEAVE when leaving. */
  sendStatus(stream: RecvStream, leave: boolean): void;
  /** The source dropped this receiver from its window (a new drop, told once). */
  slow(stream: RecvStream, position: number): void;
  readonly counters: ReceiveCounters;
}

export interface ReceiveCounters {
  datagramsIn: number;
  duplicates: number;
  outOfOrder: number;
  naksSent: number;
  gapsRepaired: number;
  lostDatagrams: number;
  lostMessages: number;
  badDatagrams: number;
  /** STATUS messages sent; times a source dropped this receiver as slow. */
  statusSent: number;
  slowDrops: number;
}

const MAX_NAK_RANGES = 32;
const MAX_WALK = 65_536;

export class RecvStream {
  started = false;
  /** Next seq to deliver. */
  next = 0;
  /** Highest seq known to exist (seen, or announced by a heartbeat). */
  highest = 0;
  /** Message sequence of the next message expected. */
  expectMsg = 0;
  /** Message sequence that follows `highest`, when a heartbeat told it. */
  private tailMsg = 0;
  private tailKnown = false;
  private readonly pending = new Map<number, Buffer>();
  private frag: Buffer | null = null;
  private fragFill = 0;
  private fragMsg = 0;
  private nakTimer: Timer | null = null;
  private nakRound = 0;
  private nakHead = -1;
  /** A gap was seen and not yet repaired or declared lost: counts gapsRepaired. */
  private inGap = false;
  private gapAt = 0;
  lastHeard = 0;
  /** The source's announced maximum heartbeat interval. */
  announcedMs = 0;
  gone = false;
  /** The source is flow-controlled (FLOW seen): it gets STATUS reports. */
  flow = false;
  /** Position last reported in a STATUS, and when; datagrams delivered before the next report (the host sets it). */
  reported = 0;
  reportedAt = 0;
  statusEvery = 1;
  /** Drops the source told of so far (SLOW carries the count). */
  slowTold = 0;

  constructor(
    private readonly host: StreamHost,
    readonly channel: number,
    readonly addr: ChannelAddr,
    readonly session: number,
    /** Unicast address of the source, where NAKs go. */
    public address: string,
    public port: number,
  ) {}

  /** 'address:port/session' in hex, for events and logs. */
  get sourceId(): string {
    return `${this.address}:${this.port}/${this.session.toString(16).padStart(8, '0')}`;
  }

  onData(d: Buffer): void {
    const seq = d.readUInt32LE(8);
    if (!this.started) {
      this.started = true;
      this.next = seq;
      this.highest = seq;
      this.expectMsg = d.readUInt32LE(12);
    }
    if (!this.flow && (d[16]! & F_FLOW) !== 0) this.startFlow();
    const diff = seqDiff(seq, this.next);
    if (diff < 0) {
      this.host.counters.duplicates++;
      return;
    }
    if (diff > 0) {
      if (this.pending.has(seq)) {
        this.host.counters.duplicates++;
        return;
      }
      this.host.counters.outOfOrder++;
      if (this.pending.size >= this.host.ro.maxReorder) {
        // Give up on the head of the gap to make room; then this datagram may be next, or late.
        this.loseHead('reorder buffer full');
        this.onData(d);
        return;
      }
      this.pending.set(seq, d);
      if (seqDiff(seq, this.highest) > 0) this.highest = seq;
      this.openGap();
      this.scheduleNak();
      return;
    }
    this.deliver(d);
    this.next = seqAdd(seq, 1);
    if (seqDiff(seq, this.highest) > 0) this.highest = seq;
    if (this.pending.size > 0) this.drain();
    this.afterProgress();
  }

  onHeartbeat(d: Buffer): void {
    const last = d.readUInt32LE(8);
    const nextMsg = d.readUInt32LE(12);
    const oldest = d.readUInt32LE(HEADER);
    this.announcedMs = d.readUInt32LE(HEADER + 4);
    if (!this.started) {
      this.started = true;
      this.next = seqAdd(last, 1);
      this.highest = last;
      this.expectMsg = nextMsg;
      if ((d[16]! & F_FLOW) !== 0) this.startFlow();
      return;
    }
    if (!this.flow && (d[16]! & F_FLOW) !== 0) this.startFlow();
    if (seqDiff(last, this.highest) >= 0) {
      this.highest = last;
      this.tailMsg = nextMsg;
      this.tailKnown = true;
    }
    if (seqDiff(this.highest, this.next) < 0) return; // nothing missing
    this.openGap();
    if (seqDiff(oldest, this.next) > 0) this.loseMissingBefore(oldest, "no longer in the source's retransmission buffer");
    if (seqDiff(this.highest, this.next) >= 0) this.scheduleNak();
  }

  /** The source cannot resend [first, first + count). */
  onUnavailable(first: number, count: number): void {
    if (!this.started) return;
    const end = seqAdd(first, count);
    if (seqDiff(first, this.next) <= 0 && seqDiff(end, this.next) > 0) this.loseMissingBefore(end, "no longer in the source's retransmission buffer");
  }

  /** The first FLOW datagram: report at once, so the source paces to this receiver from now on. */
  private startFlow(): void {
    this.flow = true;
    this.host.sendStatus(this, false);
  }

  /** SLOW from the source: this receiver was dropped from its window (`drops` times so far). */
  onSlow(drops: number, position: number): void {
    if (seqDiff(drops, this.slowTold) <= 0) return; // told already
    this.slowTold = drops;
    this.host.slow(this, position);
  }

  /** The source is gone (BYE or silence): whatever is missing will never come. */
  close(reason: string): void {
    if (this.gone) return;
    this.gone = true;
    if (this.started && seqDiff(this.highest, this.next) >= 0) this.loseTo(seqAdd(this.highest, 1), reason);
    if (this.frag !== null) {
      this.frag = null;
      this.host.lost(this, 0, 1, reason);
    }
    this.clearNak();
    this.pending.clear();
  }

  // --- in-order delivery ---------------------------------------------------------------------

  private drain(): void {
    for (;;) {
      const d = this.pending.get(this.next);
      if (d === undefined) return;
      this.pending.delete(this.next);
      this.deliver(d);
      this.next = seqAdd(this.next, 1);
    }
  }

  private afterProgress(): void {
    if (this.flow && seqDiff(this.next, this.reported) >= this.statusEvery) this.host.sendStatus(this, false);
    if (seqDiff(this.highest, this.next) >= 0) {
      this.scheduleNak();
    } else {
      if (this.inGap) {
        this.inGap = false;
        this.host.counters.gapsRepaired++;
        this.host.repaired(this, this.host.clock.now() - this.gapAt);
      }
      this.clearNak();
    }
  }

  private deliver(d: Buffer): void {
    const msgSeq = d.readUInt32LE(12);
    if (d[16]! & F_FRAGMENT) {
      this.fragmentIn(d, msgSeq);
      return;
    }
    if (this.frag !== null) {
      // A new message began while one was being reassembled: its tail was lost.
      this.frag = null;
      this.host.lost(this, 0, 1, 'fragment missing');
    }
    const count = d.readUInt16LE(18);
    const end = d.length;
    let p = HEADER;
    for (let i = 0; i < count; i++) {
      if (end - p < FRAME_PREFIX) break;
      const len = d.readUInt32LE(p);
      if (len < FRAME_PREFIX || p + len > end || d[p + 4] !== Op.MSG || checkFrame(d, p, len) !== null) {
        this.host.counters.badDatagrams++;
        break;
      }
      this.host.deliverFrame(this, d, p, len);
      p += len;
    }
    this.expectMsg = seqAdd(msgSeq, count);
  }

  private fragmentIn(d: Buffer, msgSeq: number): void {
    if (d.length < FRAG_HEADER) {
      this.host.counters.badDatagrams++;
      return;
    }
    const total = d.readUInt32LE(HEADER);
    const offset = d.readUInt32LE(HEADER + 4);
    const n = d.length - FRAG_HEADER;
    if (offset === 0) {
      if (this.frag !== null) this.host.lost(this, 0, 1, 'fragment missing');
      this.frag = null;
      if (total > this.host.ro.maxMessageBytes) {
        this.host.lost(this, 0, 1, `message of ${total} bytes is over the reassembly limit of ${this.host.ro.maxMessageBytes}`);
        this.expectMsg = seqAdd(msgSeq, 1);
        return;
      }
      this.frag = Buffer.allocUnsafe(total);
      this.fragFill = 0;
      this.fragMsg = msgSeq;
    } else if (this.frag === null || msgSeq !== this.fragMsg || offset !== this.fragFill) {
      // The tail of a message whose head was before we joined, or already counted lost.
      return;
    }
    const frag = this.frag;
    if (this.fragFill + n > frag.length) {
      this.frag = null;
      this.host.counters.badDatagrams++;
      this.host.lost(this, 0, 1, 'fragment overruns its message');
      return;
    }
    d.copy(frag, this.fragFill, FRAG_HEADER);
    this.fragFill += n;
    if (this.fragFill < frag.length) return;
    this.frag = null;
    this.expectMsg = seqAdd(msgSeq, 1);
    if (frag.length < FRAME_PREFIX || frag.readUInt32LE(0) !== frag.length || frag[4] !== Op.MSG || checkFrame(frag, 0, frag.length) !== null) {
      this.host.counters.badDatagrams++;
      return;
    }
    this.host.deliverFrame(this, frag, 0, frag.length);
  }

  // --- loss ----------------------------------------------------------------------------------

  /** Gives up on everything before `to`, counts it, and delivers what is held after it. */
  private loseTo(to: number, reason: string): void {
    const datagrams = seqDiff(to, this.next);
    if (datagrams <= 0) return;
    // Message sequence at `to`: from the held datagram, or from the heartbeat for the tail.
    let msgAt: number;
    let partialTail = false;
    const held = this.pending.get(to);
    if (held !== undefined) {
      msgAt = held.readUInt32LE(12);
      // A fragment tail: its message is lost too.
      if (held[16]! & F_FRAGMENT && held.length >= FRAG_HEADER && held.readUInt32LE(HEADER + 4) !== 0) partialTail = true;
    } else if (this.tailKnown && seqDiff(to, seqAdd(this.highest, 1)) === 0) {
      msgAt = this.tailMsg;
    } else {
      msgAt = this.expectMsg; // unknown: count the datagrams only
    }
    let messages = Math.max(0, seqDiff(msgAt, this.expectMsg));
    if (this.frag !== null) {
      // The message being reassembled (expectMsg) is already in the difference.
      this.frag = null;
    }
    if (partialTail) messages++;
    // Held datagrams before `to` (none when `to` is the first held one): walk whichever is shorter.
    if (this.pending.size > 0) {
      if (datagrams <= this.pending.size) {
        for (let s = this.next; seqDiff(to, s) > 0; s = seqAdd(s, 1)) this.pending.delete(s);
      } else {
        for (const s of [...this.pending.keys()]) if (seqDiff(to, s) > 0) this.pending.delete(s);
      }
    }
    this.next = to;
    this.expectMsg = partialTail ? seqAdd(msgAt, 1) : msgAt;
    if (seqDiff(this.highest, seqAdd(to, -1)) < 0) this.highest = seqAdd(to, -1);
    this.inGap = false;
    this.nakRound = 0;
    this.nakHead = -1;
    this.host.lost(this, datagrams, messages, reason);
    if (this.gone) return;
    if (this.pending.size > 0) this.drain();
    if (this.flow) this.host.sendStatus(this, false);
    if (seqDiff(this.highest, this.next) >= 0) {
      this.openGap();
      this.scheduleNak();
    } else {
      this.clearNak();
    }
  }

  private openGap(): void {
    if (this.inGap) return;
    this.inGap = true;
    this.gapAt = this.host.clock.now();
  }

  /**
   * The source cannot resend anything before `limit`: declares lost every missing
   * datagram below it, keeping (and delivering) the ones held.
   */
  private loseMissingBefore(limit: number, reason: string): void {
    for (let guard = 0; guard < MAX_WALK && !this.gone && seqDiff(limit, this.next) > 0 && seqDiff(this.highest, this.next) >= 0; guard++) {
      const held = this.firstHeld();
      const to = held !== -1 && seqDiff(held, limit) < 0 ? held : limit;
      this.loseTo(to, reason);
    }
  }

  /** The lowest seq held after `next`, or -1. */
  private firstHeld(): number {
    let first = -1;
    let best = Infinity;
    for (const s of this.pending.keys()) {
      const d = seqDiff(s, this.next);
      if (d > 0 && d < best) {
        best = d;
        first = s;
      }
    }
    return first;
  }

  /** Declares the head of the gap lost, up to the first datagram held after it. */
  private loseHead(reason: string): void {
    const first = this.firstHeld();
    this.loseTo(first === -1 ? seqAdd(this.highest, 1) : first, reason);
  }

  // --- NAKs ----------------------------------------------------------------------------------

  private scheduleNak(): void {
    if (this.nakTimer !== null || this.gone) return;
    this.nakTimer = this.host.clock.timeout(this.onNakTimer, Math.random() * this.host.ro.nakBackoffMs).unref();
  }

  private clearNak(): void {
    this.host.clock.clear(this.nakTimer);
    this.nakTimer = null;
    this.nakRound = 0;
    this.nakHead = -1;
  }

  private readonly onNakTimer = (): void => {
    this.nakTimer = null;
    if (this.gone || seqDiff(this.highest, this.next) < 0) {
      this.nakRound = 0;
      return;
    }
    if (this.nakHead === this.next) this.nakRound++;
    else {
      this.nakHead = this.next;
      this.nakRound = 1;
    }
    const ro = this.host.ro;
    if (this.nakRound > ro.nakMaxRetries) {
      this.loseHead(`not repaired after ${ro.nakMaxRetries} NAKs`);
      return;
    }
    this.sendNaks();
    const wait = Math.min(ro.nakRetryMs * 2 ** (this.nakRound - 1), 1000) * (1 + Math.random() * 0.25);
    this.nakTimer = this.host.clock.timeout(this.onNakTimer, wait).unref();
  };

  /**
   * One NAK datagram for every missing range between next and highest (at most
   * MAX_NAK_RANGES): the first range in the header, as every source reads it, the others
   * after the body (a source that predates them repairs the first and is asked again).
   */
  private sendNaks(): void {
    const b = Buffer.allocUnsafe(NAK_SIZE + (MAX_NAK_RANGES - 1) * 8); // one per round, not per message
    let ranges = 0;
    let from = -1;
    let count = 0;
    const end = seqAdd(this.highest, 1);
    let s = this.next;
    const add = (): void => {
      if (ranges === 0) writeHeader(b, 0, DType.NAK, this.session, from, count, 0, 0);
      else {
        b.writeUInt32LE(from >>> 0, NAK_SIZE + (ranges - 1) * 8);
        b.writeUInt32LE(count, NAK_SIZE + (ranges - 1) * 8 + 4);
      }
      ranges++;
      from = -1;
      count = 0;
    };
    for (let walked = 0; seqDiff(end, s) > 0 && walked < MAX_WALK && ranges < MAX_NAK_RANGES; walked++, s = seqAdd(s, 1)) {
      if (!this.pending.has(s)) {
        if (from === -1) from = s;
        count++;
      } else if (from !== -1) add();
    }
    if (from !== -1 && ranges < MAX_NAK_RANGES) add();
    if (ranges === 0) return;
    writeIpv4(b, HEADER, this.addr.group);
    b.writeUInt16LE(this.addr.port, HEADER + 4);
    b.writeUInt16LE(ranges - 1, HEADER + 6);
    this.host.counters.naksSent++;
    this.host.sendNak(b.subarray(0, NAK_SIZE + (ranges - 1) * 8), this.address, this.port);
  }
}
