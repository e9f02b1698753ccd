/**
 * The sending half of one channel: packs MSG frames into datagrams, numbers them,
 * keeps them for retransmission, answers NAKs and sends heartbeats while idle.
 *
 * Memory layout: one ring of `slots` fixed-size slots of `budget` bytes each.
 * Datagram seq s lives in slot s % slots, written in place by the encoders (the
 * open datagram is the slot of `nextSeq`), sent from there, and kept there until
 * the ring comes round again: the retransmission buffer costs no copy and no
 * allocation per datagram. `seqs[slot]`/`lens[slot]` say which datagram a slot
 * holds; the open slot is never retransmitted (its old content is being
 * overwritten), so at most `slots - 1` datagrams are retained.
 *
 *   slot:  | hdr 20 B | MSG frame | MSG frame | ... |   (up to budget bytes)
 *
 * A frame larger than one datagram is encoded into a scratch buffer and cut into
 * FRAGMENT datagrams of consecutive seqs, each carrying (total length, offset).
 *
 * Flow control (flow.ts), when the channel has it: datagrams are numbered and kept as
 * always, but transmitted only while the window of the receivers allows; the others wait
 * in the ring, in order, between `sentTo` and `nextSeq` (held), and leave when a STATUS
 * opens the window. The ring is sized so that what is held, the open datagram and a
 * full window never overwrite a datagram a live receiver (min) may still ask for:
 *
 *   slots - 1  >=  maxWindow + maxHeld + 1 (open)
 *
 *   seq:  ... | consumed by the slowest | sent, in the window | held | open |
 *                                       ^pos                  ^sentTo      ^nextSeq
 *
 * A publish that would need more than maxHeld held datagrams is refused before anything
 * is written (room()): the caller is told, nothing is dropped.
 *
 * Time: heartbeats and repair hold-offs read the Clock the sender is given (the
 * endpoint's), so a test drives them with a FakeClock.
 *
 * Threading: the endpoint's thread only.
 */
import { realClock, type Clock, type Timer } from '../../runtime/clock.js';
import { FlowWindow, type FlowHost, type FlowOptions, type FlowReceiver } from './flow.js';
import { DType, F_BYE, F_FLOW, F_FRAGMENT, F_RETRANSMIT, FRAG_HEADER, HEADER, HEARTBEAT_SIZE, UNAVAILABLE_SIZE, seqAdd, seqDiff, writeHeader } from './wire.js';

export interface ChannelAddr {
  group: string;
  port: number;
  /** 'group:port' */
  key: string;
}

/** What a sender needs from its endpoint. */
export interface SenderHost {
  readonly session: number;
  /** Puts a datagram on the channel's group. */
  transmit(buf: Buffer, off: number, len: number, addr: ChannelAddr): void;
  /** A frame was committed to this sender: the endpoint decides when the open datagram leaves. */
  committed(s: ChannelSender): void;
  /** Test hook: true drops this datagram instead of sending it (it is still kept for repair). */
  readonly testDrop: ((seq: number, channel: number, retransmit: boolean) => boolean) | null;
  /** Held datagrams left (flush() waiters look at sentTo). */
  released?(s: ChannelSender): void;
  /** Flow control dropped a receiver as slow: tell it (SLOW) and count it. */
  tellSlow?(s: ChannelSender, r: FlowReceiver): void;
  receiverDropped?(s: ChannelSender, r: FlowReceiver): void;
}

/**
 * A token bucket of repair bytes: per channel (SenderOptions.repairBytesPerSec) and per
 * receiver (the endpoint keeps one per NAKing address), one second's worth as burst.
 */
export class RepairBudget {
  tokens: number;
  at = 0;
  constructor(readonly rate: number) {
    this.tokens = rate;
  }

  /** Tops up to `now`; false (and nothing taken) when `bytes` are not there. */
  take(bytes: number, now: number): boolean {
    if (this.rate <= 0) return true;
    this.tokens = Math.min(this.rate, this.tokens + ((now - this.at) / 1000) * this.rate);
    this.at = now;
    if (this.tokens < bytes) return false;
    this.tokens -= bytes;
    return true;
  }
}

export interface SenderOptions {
  /** UDP payload bytes per datagram, header included. */
  budget: number;
  /** Datagrams kept for retransmission (ring slots). */
  slots: number;
  heartbeatMinMs: number;
  heartbeatMaxMs: number;
  /** A datagram retransmitted less than this ago is not retransmitted again (NAKs from many receivers). */
  repairHoldoffMs: number;
  /**
   * Bytes per second this channel spends on repairs at most (0 = no limit), with
   * one second's worth as burst: a receiver that keeps losing cannot turn the
   * source into a retransmission storm for everyone. NAKed datagrams over the
   * budget are not resent now; the receiver asks again (and in the end reports the loss).
   */
  repairBytesPerSec: number;
  /** Flow control of this channel (null or absent: none, datagrams leave at once). */
  flow?: FlowOptions | null;
  /** Datagrams that may wait for the window at most (with flow control). */
  maxHeld?: number;
}

export interface SenderStats {
  datagrams: number;
  msgs: number;
  bytes: number;
  fragments: number;
  heartbeats: number;
  naksReceived: number;
  retransmits: number;
  /** NAKed datagrams not resent because they had just been resent (suppression at the source). */
  repairsSuppressed: number;
  /** NAKed datagrams not resent because the repair budget (repairBytesPerSec) was spent. */
  repairsThrottled: number;
  /** NAKed datagrams not resent because the NAKing receiver's own repair budget was spent. */
  repairsThrottledReceiver: number;
  /** Times a datagram had to wait because the window was full (one per closing of the window). */
  windowFull: number;
  /** Receivers dropped from the window as slow; receivers forgotten after silence; receivers that left. */
  slowReceivers: number;
  receiverTimeouts: number;
  receiverLeaves: number;
  /** STATUS messages taken. */
  statusIn: number;
  /** NAKed datagrams no longer in the ring (answered with UNAVAILABLE). */
  unavailable: number;
  /** Datagrams the test hook dropped. */
  testDropped: number;
}

/** A SenderStats with every count at zero (a sender's start, an endpoint's sum). */
export function emptySenderStats(): SenderStats {
  return {
    datagrams: 0,
    msgs: 0,
    bytes: 0,
    fragments: 0,
    heartbeats: 0,
    naksReceived: 0,
    retransmits: 0,
    repairsSuppressed: 0,
    repairsThrottled: 0,
    repairsThrottledReceiver: 0,
    windowFull: 0,
    slowReceivers: 0,
    receiverTimeouts: 0,
    receiverLeaves: 0,
    statusIn: 0,
    unavailable: 0,
    testDropped: 0,
  };
}

export class ChannelSender implements FlowHost {
  readonly stats: SenderStats = emptySenderStats();
  /** Seq of the open (or next) datagram; datagrams are numbered from 1. */
  nextSeq = 1;
  /** Seq of the next datagram to transmit: [sentTo, nextSeq) are held for the window. */
  sentTo = 1;
  /** Closed datagrams held for the window, and their bytes. */
  held = 0;
  heldBytes = 0;
  /** Flow control, or null. */
  readonly flow: FlowWindow | null;
  private readonly maxHeld: number;
  /** FLOW when the channel is flow-controlled: in every DATA and HEARTBEAT flags byte. */
  private readonly fflag: number;
  /** Sequence of the next message. */
  nextMsgSeq = 1;
  /** True while the endpoint has this sender on its list of datagrams to flush. */
  dirty = false;
  private readonly ring: Buffer;
  private readonly seqs: Uint32Array;
  private readonly lens: Int32Array;
  private readonly repairedAt: Float64Array;
  private readonly slots: number;
  private readonly budget: number;
  /** Bytes written in the open datagram, header included; 0 = none open. */
  private used = 0;
  private frames = 0;
  private firstMsgSeq = 0;
  private base = 0;
  /** Encoding target of an oversized frame, before it is fragmented. */
  private scratch: Buffer | null = null;
  private inScratch = false;
  private lastSendAt = 0;
  private hbDelay: number;
  private hbTimer: Timer | null = null;
  private closed = false;
  private readonly repairBudget: RepairBudget;
  /** Whether the hello heartbeats went out (before the first datagram). */
  private announced = false;

  constructor(
    readonly index: number,
    readonly addr: ChannelAddr,
    private readonly host: SenderHost,
    private readonly o: SenderOptions,
    private readonly clock: Clock = realClock,
  ) {
    this.slots = o.slots;
    this.budget = o.budget;
    this.ring = Buffer.allocUnsafe(o.slots * o.budget);
    this.seqs = new Uint32Array(o.slots);
    this.lens = new Int32Array(o.slots);
    this.repairedAt = new Float64Array(o.slots);
    this.hbDelay = o.heartbeatMinMs;
    this.repairBudget = new RepairBudget(o.repairBytesPerSec);
    this.flow = o.flow == null ? null : new FlowWindow(o.flow, this, clock);
    this.fflag = this.flow === null ? 0 : F_FLOW;
    this.maxHeld = o.maxHeld ?? 0;
  }

  /** FlowHost: where transmission stands. */
  get tail(): number {
    return this.sentTo;
  }

  /**
   * Whether a frame of n bytes can be taken now without more than maxHeld datagrams
   * waiting for the window. Only asked while datagrams are held (held > 0).
   */
  room(n: number): boolean {
    const open = this.used > 0 ? 1 : 0;
    let need: number;
    if (n > this.budget - HEADER) need = Math.ceil(n / (this.budget - FRAG_HEADER)) + open;
    else need = this.used === 0 || this.used + n > this.budget ? 1 : 0;
    return this.held + open + need <= this.maxHeld;
  }

  /** The window allows datagram seq to leave. */
  private mayLeave(seq: number): boolean {
    const f = this.flow;
    return f === null || !f.bounded || seqDiff(seq, f.limit) < 0;
  }

  /** Transmits what the window now allows (FlowHost). */
  release(): void {
    if (this.held === 0) return;
    while (this.held > 0 && (this.closed || this.mayLeave(this.sentTo))) {
      const seq = this.sentTo;
      const slot = seq % this.slots;
      const len = this.lens[slot]!;
      this.held--;
      this.heldBytes -= len;
      this.sentTo = seqAdd(seq, 1);
      this.put(slot * this.budget, len, seq, false);
    }
    if (this.held > 0) this.flow?.blocked();
    this.host.released?.(this);
  }

  /** FlowHost */
  tellSlow(r: FlowReceiver): void {
    this.host.tellSlow?.(this, r);
  }

  /** FlowHost */
  dropped(r: FlowReceiver): void {
    this.stats.slowReceivers++;
    this.host.receiverDropped?.(this, r);
  }

  /** A closed datagram at seq (slot offset off, len bytes) leaves now, or waits for the window. */
  private out(off: number, len: number, seq: number): void {
    if (this.held === 0 && this.mayLeave(seq)) {
      this.sentTo = seqAdd(seq, 1);
      this.put(off, len, seq, false);
      return;
    }
    if (this.held === 0) this.stats.windowFull++;
    this.held++;
    this.heldBytes += len;
    if (this.held === 1) this.flow?.blocked();
  }

  /** Largest frame that fits in one datagram. */
  get maxUnfragmented(): number {
    return this.budget - HEADER;
  }

  // --- the Link-like write side: reserve / writeOffset / commit ----------------------------

  /** Makes room for a frame of n bytes; write it at `writeOffset` of the buffer returned. */
  reserve(n: number): Buffer {
    if (n > this.budget - HEADER) {
      if (this.scratch === null || this.scratch.length < n) this.scratch = Buffer.allocUnsafe(Math.max(n, 64 * 1024));
      this.inScratch = true;
      return this.scratch;
    }
    this.inScratch = false;
    if (this.used > 0 && this.used + n > this.budget) this.flush();
    if (this.used === 0) {
      this.base = (this.nextSeq % this.slots) * this.budget;
      this.used = HEADER;
      this.frames = 0;
      this.firstMsgSeq = this.nextMsgSeq;
    }
    return this.ring;
  }

  get writeOffset(): number {
    return this.inScratch ? 0 : this.base + this.used;
  }

  commit(n: number): void {
    this.stats.msgs++;
    this.stats.bytes += n;
    if (this.inScratch) {
      this.inScratch = false;
      this.fragment(this.scratch!, n);
      return;
    }
    this.used += n;
    this.frames++;
    this.nextMsgSeq = seqAdd(this.nextMsgSeq, 1);
    this.host.committed(this);
  }

  /** Copies a whole frame in. */
  send(bytes: Uint8Array, off: number, len: number): void {
    const buf = this.reserve(len);
    const at = this.writeOffset;
    if (len <= 64) for (let i = 0; i < len; i++) buf[at + i] = bytes[off + i]!;
    else buf.set(bytes.subarray(off, off + len), at);
    this.commit(len);
  }

  /** True when a datagram is open with frames in it. */
  get hasOpen(): boolean {
    return this.used > 0;
  }

  /** Sends the open datagram, if any. */
  flush(): void {
    if (this.used === 0) return;
    const slot = this.nextSeq % this.slots;
    const seq = this.nextSeq;
    writeHeader(this.ring, this.base, DType.DATA, this.host.session, seq, this.firstMsgSeq, this.fflag, this.frames);
    this.seqs[slot] = seq;
    this.lens[slot] = this.used;
    this.repairedAt[slot] = 0;
    const len = this.used;
    this.used = 0;
    this.nextSeq = seqAdd(seq, 1);
    this.out(this.base, len, seq);
  }

  private fragment(src: Buffer, total: number): void {
    this.flush();
    const msgSeq = this.nextMsgSeq;
    this.nextMsgSeq = seqAdd(msgSeq, 1);
    const piece = this.budget - FRAG_HEADER;
    for (let at = 0; at < total; at += piece) {
      const n = Math.min(piece, total - at);
      const seq = this.nextSeq;
      const slot = seq % this.slots;
      const base = slot * this.budget;
      writeHeader(this.ring, base, DType.DATA, this.host.session, seq, msgSeq, F_FRAGMENT | this.fflag, 1);
      this.ring.writeUInt32LE(total, base + HEADER);
      this.ring.writeUInt32LE(at, base + HEADER + 4);
      src.copy(this.ring, base + FRAG_HEADER, at, at + n);
      this.seqs[slot] = seq;
      this.lens[slot] = FRAG_HEADER + n;
      this.repairedAt[slot] = 0;
      this.nextSeq = seqAdd(seq, 1);
      this.stats.fragments++;
      this.out(base, FRAG_HEADER + n, seq);
    }
  }

  private put(off: number, len: number, seq: number, retransmit: boolean): void {
    if (!this.announced) {
      // Hello: receivers already listening learn that this source starts at `seq`, so
      // losing its first datagram is a gap they repair, not a late start. Twice,
      // because either may be lost.
      this.announced = true;
      const firstMsg = this.ring.readUInt32LE(off + 12);
      this.heartbeat(0, seqAdd(seq, -1), firstMsg);
      this.heartbeat(0, seqAdd(seq, -1), firstMsg);
    }
    const drop = this.host.testDrop;
    if (drop !== null && drop(seq, this.index, retransmit)) {
      this.stats.testDropped++;
    } else {
      this.host.transmit(this.ring, off, len, this.addr);
    }
    if (!retransmit) {
      this.stats.datagrams++;
      this.noteSend();
    }
  }

  // --- repair --------------------------------------------------------------------------------

  /** The oldest seq still in the ring (equal to nextSeq when none is). */
  get oldestRetained(): number {
    const sent = seqDiff(this.nextSeq, 1);
    return sent < this.slots ? 1 : seqAdd(this.nextSeq, -(this.slots - 1));
  }

  /** Sent and still in the ring (a held datagram was never sent: it is not repaired, it leaves in turn). */
  private retained(seq: number): boolean {
    if (seqDiff(this.sentTo, seq) < 1) return false;
    const d = seqDiff(this.nextSeq, seq);
    if (d < 1 || d > this.slots - 1) return false;
    const slot = seq % this.slots;
    return this.seqs[slot] === seq && this.lens[slot]! > 0;
  }

  /**
   * A receiver asks for `count` datagrams from `first`: resend what the ring holds, on
   * the group, within the channel's repair budget and the NAKing receiver's (`who`).
   */
  onNak(first: number, count: number, now: number, who: RepairBudget | null = null, newDatagram = true): void {
    if (newDatagram) this.stats.naksReceived++;
    const n = Math.min(count, this.slots);
    let unavailFrom = -1;
    let unavailCount = 0;
    for (let i = 0; i < n; i++) {
      const seq = seqAdd(first, i);
      if (seqDiff(seq, this.sentTo) >= 0) break; // never sent
      if (!this.retained(seq)) {
        if (unavailFrom === -1) unavailFrom = seq;
        unavailCount++;
        continue;
      }
      const slot = seq % this.slots;
      if (now - this.repairedAt[slot]! < this.o.repairHoldoffMs) {
        this.stats.repairsSuppressed++;
        continue;
      }
      const len = this.lens[slot]!;
      if (who !== null && !who.take(len, now)) {
        this.stats.repairsThrottledReceiver++;
        continue;
      }
      if (!this.repairBudget.take(len, now)) {
        this.stats.repairsThrottled++;
        continue;
      }
      this.repairedAt[slot] = now;
      const base = slot * this.budget;
      this.ring[base + 16] = this.ring[base + 16]! | F_RETRANSMIT;
      this.stats.retransmits++;
      this.put(base, this.lens[slot]!, seq, true);
    }
    if (unavailCount > 0) {
      this.stats.unavailable += unavailCount;
      const b = Buffer.allocUnsafe(UNAVAILABLE_SIZE);
      writeHeader(b, 0, DType.UNAVAILABLE, this.host.session, unavailFrom, unavailCount, 0, 0);
      this.host.transmit(b, 0, UNAVAILABLE_SIZE, this.addr);
    }
  }

  // --- heartbeats ----------------------------------------------------------------------------

  /**
   * After every datagram the heartbeat delay starts again at heartbeatMinMs; while
   * the channel stays idle it doubles up to heartbeatMaxMs. One timer per channel,
   * re-armed at most once per heartbeatMinMs while busy, not per datagram.
   */
  private noteSend(): void {
    this.lastSendAt = this.clock.now();
    this.hbDelay = this.o.heartbeatMinMs;
    if (this.hbTimer === null && !this.closed) this.arm(this.hbDelay);
  }

  private arm(ms: number): void {
    this.hbTimer = this.clock.timeout(this.onHeartbeatTimer, Math.max(1, ms)).unref();
  }

  private readonly onHeartbeatTimer = (): void => {
    this.hbTimer = null;
    if (this.closed) return;
    const idle = this.clock.now() - this.lastSendAt;
    if (idle + 0.5 < this.hbDelay) {
      this.arm(this.hbDelay - idle);
      return;
    }
    this.hbDelay = Math.min(this.hbDelay * 2, this.o.heartbeatMaxMs);
    this.heartbeat(0);
    this.arm(this.hbDelay);
  };

  /**
   * HEARTBEAT: the last seq sent, the message seq after it, the oldest retained, the next
   * interval. Held datagrams are not announced (receivers would NAK what was never sent).
   */
  heartbeat(flags: number, last = seqAdd(this.sentTo, -1), nextMsg = this.nextMsgAfterSent()): void {
    const b = Buffer.allocUnsafe(HEARTBEAT_SIZE);
    writeHeader(b, 0, DType.HEARTBEAT, this.host.session, last, nextMsg, flags | this.fflag, 0);
    b.writeUInt32LE(this.oldestRetained, HEADER);
    b.writeUInt32LE(flags & F_BYE ? 0 : Math.ceil(this.hbDelay), HEADER + 4);
    this.stats.heartbeats++;
    this.host.transmit(b, 0, HEARTBEAT_SIZE, this.addr);
  }

  /** The message seq of the first datagram held (or the next message when none is). */
  private nextMsgAfterSent(): number {
    if (this.held === 0) return this.used > 0 ? this.firstMsgSeq : this.nextMsgSeq;
    return this.ring.readUInt32LE((this.sentTo % this.slots) * this.budget + 12);
  }

  /**
   * Stops heartbeats and says goodbye, so receivers learn at once that this source is
   * gone. What is still held leaves first, window or not: the source is going away.
   */
  close(): void {
    if (this.closed) return;
    this.flush();
    this.closed = true;
    this.release();
    this.flow?.close();
    this.clock.clear(this.hbTimer);
    this.hbTimer = null;
    this.heartbeat(F_BYE);
  }
}
