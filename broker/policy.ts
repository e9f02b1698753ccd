/**
 * What happens to a slow consumer.
 *
 * A session writes straight into its link while the link keeps up. Once the bytes
 * queued in the link pass the high-water mark (the consumer is not reading fast
 * enough, or its delivery rate limit is spent), further messages are held here, one
 * entry per message, where the subscription's policy can act on them:
 *
 *   disconnect   held until the total passes maxPending, then the session is closed
 *                with a SLOW_CONSUMER error (the default);
 *   drop-newest  at the bound, the arriving message is dropped;
 *   drop-oldest  at the bound, the oldest held messages are dropped to make room;
 *   conflate     a held message is replaced by a newer one on the same subject, so
 *                the consumer gets the latest value of each subject (market data);
 *                at the bound it behaves as drop-oldest;
 *   block        held, and the publisher is paused (its socket is not read) until the
 *                consumer drains: lossless, but one slow consumer slows the publisher
 *                and so every other subscriber of that publisher.
 *
 * Every drop and conflation is counted on the subscription and reported to the
 * client in a LOSS frame, sent ahead of the next messages once the link drains.
 *
 * Threading: broker thread only. Nothing here is on the path of a consumer that
 * keeps up.
 */
import { LOSS_SIZE, Policy, writeLoss } from '../transports/protocol/index.js';
import { realClock, type Clock, type Timer } from '../runtime/clock.js';
import { Ring } from '../runtime/ring.js';
import { copyBytes } from '../transports/intern.js';
import type { Link } from '../transports/link.js';
import type { Limiter } from './ratelimit.js';

/**
 * Which policy a connection's copy of a message follows when several of its
 * subscriptions match it with different policies: the lowest rank wins, so the order
 * is block, disconnect, drop-oldest, drop-newest, conflate (the least lossy wins).
 * Indexed by Policy; DEFAULT never reaches it (the broker resolves it first).
 */
export const POLICY_RANK = [9, 1, 2, 3, 4, 0];

/**
 * The loss counters of one subscription (broker/route.ts Subscription), which Outbound
 * adds to and reports in LOSS frames. Narrow so that this file does not import route.ts.
 */
export interface LossCounters {
  readonly sid: number;
  readonly policy: Policy;
  dropped: number;
  conflated: number;
  unreportedDropped: number;
  unreportedConflated: number;
}

/**
 * One held message: a private copy of its MSG frame, and who it is for. Mutable so
 * that drop-oldest and conflate can reuse an evicted entry and its buffer for the
 * arriving message: a consumer that stays stuck then costs no allocation per message,
 * and so no garbage-collection pauses for everyone else.
 */
export class Held {
  constructor(
    public frame: Buffer,
    public subject: string,
    /** The subscriptions of this session the message was for (for loss accounting). */
    public subs: readonly LossCounters[],
    public policy: Policy,
  ) {}
}

/**
 * The held messages of one session, oldest first, with their byte total and, for
 * conflate, the newest held message per subject. A Ring unbounded in entries: the
 * bounds, in bytes and messages, are Outbound's policy. It extends Ring (rather than
 * holding one) so that `length`, which Outbound.deliver reads for every message of a
 * consumer that keeps up, is a field of this object.
 */
export class HoldQueue extends Ring<Held> {
  bytes = 0;
  /** Newest held conflatable message per subject. */
  private readonly latest = new Map<string, Held>();

  constructor() {
    super(Infinity, 64);
  }

  override push(h: Held): boolean {
    super.push(h);
    this.bytes += h.frame.length;
    if (h.policy === Policy.CONFLATE) this.latest.set(h.subject, h);
    return true;
  }

  /** Puts a message back at the head (it could not be sent yet). */
  override unshift(h: Held): boolean {
    super.unshift(h);
    this.bytes += h.frame.length;
    if (h.policy === Policy.CONFLATE && !this.latest.has(h.subject)) this.latest.set(h.subject, h);
    return true;
  }

  override shift(): Held | undefined {
    const h = super.shift();
    if (h === undefined) return undefined;
    this.bytes -= h.frame.length;
    if (this.latest.get(h.subject) === h) this.latest.delete(h.subject);
    return h;
  }

  /** The held conflatable message for a subject, if any. */
  conflatable(subject: string): Held | undefined {
    return this.latest.get(subject);
  }

  /** Replaces a held message's frame in place (conflation keeps its queue position). */
  replace(h: Held, frame: Buffer): void {
    this.bytes += frame.length - h.frame.length;
    h.frame = frame;
  }

  override clear(): void {
    super.clear();
    this.bytes = 0;
    this.latest.clear();
  }
}

/** Maps policy names (config, client options) to wire values and back. */
export function parsePolicy(name: string): Policy | null {
  switch (name) {
    case 'disconnect':
      return Policy.DISCONNECT;
    case 'drop-oldest':
      return Policy.DROP_OLDEST;
    case 'drop-newest':
      return Policy.DROP_NEWEST;
    case 'conflate':
      return Policy.CONFLATE;
    case 'block':
      return Policy.BLOCK;
    default:
      return null;
  }
}

/**
 * What one held message costs beside its frame: the Held object, its Buffer object and
 * the ring's slot (measured on Node 20: 160 to 250 bytes, more for frames of 4 KiB and
 * up, which get a backing store of their own).
 */
export const HELD_OVERHEAD = 192;

/** Counters of one connection's outbound side, readable through Broker.metrics(). */
export interface OutboundStats {
  /** Messages dropped by drop-oldest / drop-newest (and conflate at its bound). */
  droppedOldest: number;
  droppedNewest: number;
  /** Messages replaced by a newer one on the same subject. */
  conflated: number;
  /** Highest pending bytes (link + held) seen. */
  pendingPeak: number;
  /** Highest number of held messages seen. */
  heldPeak: number;
  /** Highest memory seen held for this connection's outbound side (Outbound.memoryBytes). */
  memoryPeak: number;
}

/** What Outbound needs from its session and broker. */
export interface OutboundOwner {
  readonly link: Link;
  /** Called when the disconnect policy's bound is passed. */
  slowConsumer(reason: string): void;
  countDrops(oldest: number, newest: number, conflated: number): void;
}

export interface OutboundPublisher {
  unblock(by: object): void;
  block(by: object): void;
}

/**
 * The outbound side of one session: the fast path into the link, and the held
 * queue where the slow-consumer policies act. See the top of this file.
 */
export class Outbound {
  readonly hold = new HoldQueue();
  readonly stats: OutboundStats = { droppedOldest: 0, droppedNewest: 0, conflated: 0, pendingPeak: 0, heldPeak: 0, memoryPeak: 0 };
  /** Subscriptions with losses not reported to the client yet. */
  private readonly lossy = new Set<LossCounters>();
  /** Publishers paused because this consumer (block policy) is behind. */
  private blocked: Set<OutboundPublisher> | null = null;
  private pumpTimer: Timer | null = null;

  constructor(
    private readonly owner: OutboundOwner,
    readonly highWater: number,
    readonly maxBytes: number,
    readonly maxMsgs: number,
    /** Delivery rate limit of this connection (holds what is over it), or null. */
    readonly limiter: Limiter | null,
    /** Time for the delivery-rate limit and its pump timer. */
    private readonly clock: Clock = realClock,
  ) {}

  /** Bytes queued towards the peer: in the link and held here. The bounds (maxPending) are in these. */
  get pendingBytes(): number {
    return this.owner.link.pendingBytes + this.hold.bytes;
  }

  /**
   * Memory held for the peer now: the link's write buffers (their capacity, which grows
   * by doubling, not just the bytes queued in them) and every held frame with its
   * bookkeeping. What the process really spends on this consumer's backlog.
   */
  get memoryBytes(): number {
    const link = this.owner.link;
    return (link.bufferBytes ?? link.pendingBytes) + this.hold.bytes + this.hold.length * HELD_OVERHEAD;
  }

  /**
   * Queues one MSG frame. `sid` patches the subscription-id field in this copy only
   * (queue deliveries). Returns the bytes queued (0 if the policy dropped it).
   */
  deliver(
    buf: Buffer,
    off: number,
    len: number,
    sid: number,
    subject: string,
    subs: readonly LossCounters[],
    policy: Policy,
    from: OutboundPublisher | null,
  ): number {
    const link = this.owner.link;
    if (this.hold.length === 0 && link.pendingBytes <= this.highWater && (this.limiter === null || this.limiter.admit(len, this.clock.now()))) {
      // The consumer keeps up: straight into the link's write buffer.
      writeFrame(link, buf, off, len, sid);
      const pending = link.pendingBytes;
      if (pending > this.stats.pendingPeak) {
        this.stats.pendingPeak = pending;
        this.noteMemory();
        // One message can carry the link past the whole bound at once.
        if (pending > this.maxBytes && policy === Policy.DISCONNECT) this.owner.slowConsumer(`more than ${this.maxBytes} bytes pending`);
      }
      return len;
    }
    return this.congested(buf, off, len, sid, subject, subs, policy, from);
  }

  private congested(
    buf: Buffer,
    off: number,
    len: number,
    sid: number,
    subject: string,
    subs: readonly LossCounters[],
    policy: Policy,
    from: OutboundPublisher | null,
  ): number {
    const link = this.owner.link;
    const rateLimited = this.limiter !== null && link.pendingBytes <= this.highWater;
    if (this.hold.length === 0 && !rateLimited && (policy === Policy.DISCONNECT || policy === Policy.BLOCK)) {
      // Lossless policies keep the byte stream in the link; only its size matters.
      writeFrame(link, buf, off, len, sid);
      this.notePeak();
      if (policy === Policy.BLOCK) {
        if (from !== null) this.block(from);
        if (link.pendingBytes > 2 * this.maxBytes) this.owner.slowConsumer(`more than ${2 * this.maxBytes} bytes pending with publishers blocked`);
      } else if (link.pendingBytes > this.maxBytes) {
        this.owner.slowConsumer(`more than ${this.maxBytes} bytes pending`);
      }
      return len;
    }
    let spare: Held | null = null;
    switch (policy) {
      case Policy.DISCONNECT:
        if (this.over(len)) {
          this.owner.slowConsumer(`more than ${this.maxBytes} bytes${this.maxMsgs ? ` or ${this.maxMsgs} messages` : ''} pending`);
          return 0;
        }
        break;
      case Policy.BLOCK:
        if (from !== null) this.block(from);
        if (this.pendingBytes + len > 2 * this.maxBytes) {
          this.owner.slowConsumer(`more than ${2 * this.maxBytes} bytes pending with publishers blocked`);
          return 0;
        }
        break;
      case Policy.DROP_NEWEST:
        if (this.over(len)) {
          this.lose(subs, 1, 0);
          this.stats.droppedNewest++;
          this.owner.countDrops(0, 1, 0);
          return 0;
        }
        break;
      case Policy.CONFLATE: {
        const prev = this.hold.conflatable(subject);
        if (prev !== undefined) {
          if (prev.frame.length === len) fillFrame(prev.frame, buf, off, len, sid);
          else this.hold.replace(prev, copyFrame(buf, off, len, sid));
          this.lose(prev.subs, 0, 1);
          prev.subs = subs;
          this.stats.conflated++;
          this.owner.countDrops(0, 0, 1);
          return len;
        }
        spare = this.makeRoom(len);
        break;
      }
      default: // DROP_OLDEST
        spare = this.makeRoom(len);
    }
    if (policy !== Policy.DISCONNECT && policy !== Policy.BLOCK && this.over(len)) {
      // Even an empty hold cannot take it (the link alone is over the bound).
      this.lose(subs, 1, 0);
      this.stats.droppedNewest++;
      this.owner.countDrops(0, 1, 0);
      return 0;
    }
    let h: Held;
    if (spare !== null && spare.frame.length === len) {
      h = spare;
      fillFrame(h.frame, buf, off, len, sid);
      h.subject = subject;
      h.subs = subs;
      h.policy = policy;
    } else {
      h = new Held(copyFrame(buf, off, len, sid), subject, subs, policy);
    }
    this.hold.push(h);
    if (this.hold.length > this.stats.heldPeak) this.stats.heldPeak = this.hold.length;
    this.notePeak();
    if (this.limiter !== null) this.schedulePump();
    return len;
  }

  /** Drops the oldest held messages until `len` more bytes fit; returns the last one dropped, for reuse. */
  private makeRoom(len: number): Held | null {
    let n = 0;
    let last: Held | null = null;
    while (this.hold.length > 0 && this.over(len)) {
      last = this.hold.shift()!;
      this.lose(last.subs, 1, 0);
      n++;
    }
    if (n > 0) {
      this.stats.droppedOldest += n;
      this.owner.countDrops(n, 0, 0);
    }
    return last;
  }

  private over(len: number): boolean {
    return this.pendingBytes + len > this.maxBytes || (this.maxMsgs > 0 && this.hold.length + 1 > this.maxMsgs);
  }

  private notePeak(): void {
    const p = this.pendingBytes;
    if (p > this.stats.pendingPeak) this.stats.pendingPeak = p;
    this.noteMemory();
  }

  /** Off the fast path: only when the consumer is behind or a new pending peak is reached. */
  private noteMemory(): void {
    const m = this.memoryBytes;
    if (m > this.stats.memoryPeak) this.stats.memoryPeak = m;
  }

  private lose(subs: readonly LossCounters[], dropped: number, conflated: number): void {
    for (let i = 0; i < subs.length; i++) {
      const sub = subs[i]!;
      sub.dropped += dropped;
      sub.conflated += conflated;
      sub.unreportedDropped += dropped;
      sub.unreportedConflated += conflated;
      this.lossy.add(sub);
    }
  }

  private block(from: OutboundPublisher): void {
    this.blocked ??= new Set();
    if (!this.blocked.has(from)) {
      this.blocked.add(from);
      from.block(this);
    }
  }

  /**
   * Moves held messages into the link while it has room: called when the link has
   * drained, and by the delivery-rate timer. Loss reports go first, so the client
   * learns of a gap before the messages after it.
   */
  pump(): void {
    const link = this.owner.link;
    if (link.closed) return;
    if (this.lossy.size > 0) {
      for (const sub of this.lossy) {
        if (sub.unreportedDropped === 0 && sub.unreportedConflated === 0) continue;
        const out = link.reserve(LOSS_SIZE);
        writeLoss(out, link.writeOffset, sub.sid, sub.policy, sub.unreportedDropped, sub.unreportedConflated);
        link.commit(LOSS_SIZE);
        sub.unreportedDropped = 0;
        sub.unreportedConflated = 0;
      }
      this.lossy.clear();
    }
    while (this.hold.length > 0 && link.pendingBytes <= this.highWater) {
      const h = this.hold.shift()!;
      if (this.limiter !== null && !this.limiter.admit(h.frame.length, this.clock.now())) {
        this.hold.unshift(h);
        this.schedulePump();
        break;
      }
      link.send(h.frame, 0, h.frame.length);
    }
    if (this.hold.length === 0 && this.blocked !== null && link.pendingBytes <= this.highWater / 2) {
      for (const p of this.blocked) p.unblock(this);
      this.blocked = null;
    }
  }

  private schedulePump(): void {
    if (this.pumpTimer !== null || this.limiter === null) return;
    const wait = Math.max(1, this.limiter.nextAdmitMs(this.hold.length > 0 ? this.hold.peek()!.frame.length : 1, this.clock.now()));
    this.pumpTimer = this.clock.timeout(() => {
      this.pumpTimer = null;
      this.pump();
    }, wait);
  }

  /** The session is gone: release what it held and the publishers it paused. */
  close(): void {
    this.clock.clear(this.pumpTimer);
    this.pumpTimer = null;
    this.hold.clear();
    this.lossy.clear();
    if (this.blocked !== null) for (const p of this.blocked) p.unblock(this);
    this.blocked = null;
  }
}

/** Copies a MSG frame into the link's write buffer, patching the sid of this copy (queue deliveries). */
function writeFrame(link: Link, buf: Buffer, off: number, len: number, sid: number): void {
  const out = link.reserve(len);
  const at = link.writeOffset;
  copyBytes(buf, off, out, at, len);
  if (sid !== 0) out.writeUInt32LE(sid, at + 8);
  link.commit(len);
}

/** Overwrites a held frame of the same length with another message. */
function fillFrame(dst: Buffer, buf: Buffer, off: number, len: number, sid: number): void {
  copyBytes(buf, off, dst, 0, len);
  if (sid !== 0) dst.writeUInt32LE(sid, 8);
}

function copyFrame(buf: Buffer, off: number, len: number, sid: number): Buffer {
  const f = Buffer.allocUnsafe(len);
  copyBytes(buf, off, f, 0, len);
  if (sid !== 0) f.writeUInt32LE(sid, 8);
  return f;
}
