/**
 * What happens to a slow consumer.
 *
 * A session writes straight into its link while the link keeps up. Once the bytes
 * queued in the link pass the high-water mark (the consumer is not reading fast
 * enough, or its delivery rate limit is spent), further messages are held here, in the
 * session's hold ring (broker/holdring.ts: frames copied into off-heap slabs, typed
 * metadata, nothing per message on the V8 heap), where the subscription's policy acts
 * at the bound (maxPending bytes, maxPendingMsgs messages):
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
 * The bound counts what the broker really holds: the bytes queued in the link, and the
 * ring's cost (its bytes in use and SLOT_BYTES of bookkeeping per held message). So
 * the memory a consumer that is behind pins is maxPending, plus slab and page
 * granularity (at most two of each, see holdring.ts) and the slack of the link's write
 * buffers over the bytes queued in them (under 3 x highWaterBytes); docs/FLOW.md.
 *
 * Every drop and conflation is counted on the subscription and reported to the
 * client in a LOSS frame, sent ahead of the next messages once the link drains.
 *
 * Threading: broker thread only. Nothing here is on the path of a consumer that
 * keeps up but the test at the top of deliver().
 */
import { LOSS_SIZE, Policy, writeLoss } from '../transports/protocol/index.js';
import { realClock, type Clock, type Timer } from '../runtime/clock.js';
import { HoldRing, PAGE_SLOTS, SLOT_BYTES, slabBytesFor, spanOf } from './holdring.js';
import { KEEP_BUFFER_MAX, WRITE_BUFFER } from '../transports/buffered.js';
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

/** The least a drain moves of held messages before it leaves a turn to others (Outbound.drained()). */
const STRETCH_MIN_BYTES = 256 * 1024;

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
 * The most memory the outbound side of one TCP or Unix connection may pin, whatever its
 * consumer does (docs/FLOW.md): maxPending (what the bounds count: the link's queued
 * bytes, the ring's bytes and slot bookkeeping), plus granularity: a partial slab and a
 * partial slot page at each end of the ring, and the write buffers' capacity beyond the
 * bytes queued in them (the buffer being filled and the one in flight each hold at most
 * highWaterBytes and a frame, and grow by doubling; a spare of up to KEEP_BUFFER_MAX is
 * kept). The block policy may hold twice maxPending.
 */
export function outboundMemoryBound(maxPending: number, highWaterBytes: number, maxFrame: number): number {
  const slab = slabBytesFor(maxPending);
  return maxPending + 2 * slab + 2 * PAGE_SLOTS * SLOT_BYTES + 4 * (highWaterBytes + maxFrame) + 2 * WRITE_BUFFER + KEEP_BUFFER_MAX;
}

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
 * The outbound side of one session: the fast path into the link, and the hold ring
 * where the slow-consumer policies act. See the top of this file.
 */
export class Outbound {
  /** The held messages (their count is `hold.length`, their frame bytes `hold.bytes`). Replaced only by lower(), before anything is held. */
  hold: HoldRing<readonly LossCounters[]>;
  /** Bytes in the link before messages are held; at most maxBytes. Set by the constructor, lowered once by lower(). */
  highWater: number;
  /** The slow-consumer bound in bytes (link + held). Set by the constructor, lowered once by lower(). */
  maxBytes: number;
  readonly stats: OutboundStats = { droppedOldest: 0, droppedNewest: 0, conflated: 0, pendingPeak: 0, heldPeak: 0, memoryPeak: 0 };
  /** Subscriptions with losses not reported to the client yet. */
  private readonly lossy = new Set<LossCounters>();
  /** Publishers paused because this consumer (block policy) is behind. */
  private blocked: Set<OutboundPublisher> | null = null;
  private pumpTimer: Timer | null = null;
  /** A pump due in a later turn of the event loop (drained()). */
  private pumpSoon: ReturnType<typeof setImmediate> | null = null;
  /** Held bytes moved from drains since the last pump in a later turn (drained()). */
  private stretch = 0;
  /** How many held bytes drains may move before one turn is left to the other connections. */
  private stretchBytes = STRETCH_MIN_BYTES;
  /** Ring bytes held since the last pump in a later turn: what arrives while the consumer is behind. */
  private heldSince = 0;
  private readonly pumpTask = (): void => {
    this.pumpSoon = null;
    // The next stretch moves at least twice what came in during this one, so a consumer
    // that reads as fast as its publishers send keeps up, and a backlog is caught up at
    // that pace rather than in one burst the other connections wait behind.
    this.stretchBytes = Math.max(STRETCH_MIN_BYTES, 2 * this.heldSince);
    this.heldSince = 0;
    this.stretch = 0;
    this.pump();
  };

  constructor(
    private readonly owner: OutboundOwner,
    highWater: number,
    maxBytes: number,
    readonly maxMsgs: number,
    /** Delivery rate limit of this connection (holds what is over it), or null. */
    readonly limiter: Limiter | null,
    /** Time for the delivery-rate limit and its pump timer. */
    private readonly clock: Clock = realClock,
  ) {
    this.highWater = highWater;
    this.maxBytes = maxBytes;
    this.hold = new HoldRing(slabBytesFor(maxBytes));
  }

  /**
   * A lower bound for this connection (its user's `limits.maxPending`, broker/auth/): the
   * lower of it and the broker's, with the high-water mark following it down to half of
   * it as the broker's own default does, so that it stays under the bound. Called once,
   * when the connection is admitted, before anything is queued for it.
   */
  lower(maxBytes: number): void {
    if (!(maxBytes < this.maxBytes)) return;
    this.maxBytes = maxBytes;
    this.highWater = Math.min(this.highWater, Math.max(1, Math.floor(maxBytes / 2)));
    if (this.hold.length === 0 && this.hold.blocksTaken === 0) this.hold = new HoldRing(slabBytesFor(maxBytes));
  }

  /** Bytes queued towards the peer: in the link and held here (frames only; the bounds also count the ring's bookkeeping). */
  get pendingBytes(): number {
    return this.owner.link.pendingBytes + this.hold.bytes;
  }

  /**
   * Memory held for the peer now: the link's write buffers (their capacity, which grows
   * by doubling, not just the bytes queued in them) and the hold ring's slabs, pages and
   * tables. What the process really spends on this consumer's backlog.
   */
  get memoryBytes(): number {
    const link = this.owner.link;
    return (link.bufferBytes ?? link.pendingBytes) + this.hold.memoryBytes;
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

  /** The consumer is behind (or over its delivery rate): the message is held, replaced or dropped, as its policy says. */
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
    const hold = this.hold;
    // Ring bytes the held copy takes (a conflatable one is rounded up, see holdring.ts).
    const need = spanOf(len, policy === Policy.CONFLATE);
    switch (policy) {
      case Policy.DISCONNECT:
        if (this.over(need)) {
          this.owner.slowConsumer(`more than ${this.maxBytes} bytes${this.maxMsgs ? ` or ${this.maxMsgs} messages` : ''} pending`);
          return 0;
        }
        break;
      case Policy.BLOCK:
        if (from !== null) this.block(from);
        if (this.owner.link.pendingBytes + hold.cost + need + SLOT_BYTES > 2 * this.maxBytes) {
          this.owner.slowConsumer(`more than ${2 * this.maxBytes} bytes pending with publishers blocked`);
          return 0;
        }
        break;
      case Policy.DROP_NEWEST:
        if (this.over(need)) {
          this.dropNewest(subs);
          return 0;
        }
        break;
      case Policy.CONFLATE: {
        const slot = hold.conflatable(subject);
        if (slot >= 0) {
          this.lose(hold.subsOf(slot), 0, 1);
          this.stats.conflated++;
          this.owner.countDrops(0, 0, 1);
          // In place, keeping the queue position; a larger frame gives up the held one's
          // slot and goes to the tail.
          if (hold.overwrite(slot, buf, off, len, sid, subs)) return len;
          hold.kill(slot);
        }
        this.makeRoom(need);
        break;
      }
      default: // DROP_OLDEST
        this.makeRoom(need);
    }
    if (policy !== Policy.DISCONNECT && policy !== Policy.BLOCK && this.over(need)) {
      // Even an empty hold cannot take it (the link alone is over the bound).
      this.dropNewest(subs);
      return 0;
    }
    hold.push(buf, off, len, sid, policy, subs, policy === Policy.CONFLATE ? subject : null);
    this.heldSince += need;
    if (hold.length > this.stats.heldPeak) this.stats.heldPeak = hold.length;
    this.notePeak();
    if (this.limiter !== null) this.schedulePump();
    return len;
  }

  private dropNewest(subs: readonly LossCounters[]): void {
    this.lose(subs, 1, 0);
    this.stats.droppedNewest++;
    this.owner.countDrops(0, 1, 0);
  }

  /** Drops the oldest held messages until a slot of `span` more ring bytes fits. */
  private makeRoom(span: number): void {
    let n = 0;
    while (this.hold.length > 0 && this.over(span)) {
      this.lose(this.hold.shift(), 1, 0);
      n++;
    }
    if (n > 0) {
      this.stats.droppedOldest += n;
      this.owner.countDrops(n, 0, 0);
    }
  }

  /** Would one more held slot of `span` ring bytes pass a bound? */
  private over(span: number): boolean {
    return this.owner.link.pendingBytes + this.hold.cost + span + SLOT_BYTES > this.maxBytes || (this.maxMsgs > 0 && this.hold.length + 1 > this.maxMsgs);
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
    const hold = this.hold;
    while (hold.length > 0 && link.pendingBytes <= this.highWater) {
      // Copied and taken off the ring before the commit: a commit may deliver at once
      // (inproc), and what the peer does in return may hold more here.
      if (this.limiter === null) {
        // As many as fit under the high-water mark, in one copy per run and one commit.
        const n = hold.measure(this.highWater - link.pendingBytes);
        const bytes = hold.measuredBytes;
        hold.copyFrames(link.reserve(bytes), link.writeOffset, n);
        for (let i = 0; i < n; i++) hold.shift();
        link.commit(bytes);
      } else {
        const len = hold.lengthOf(hold.first);
        if (!this.limiter.admit(len, this.clock.now())) {
          this.schedulePump();
          break;
        }
        hold.copyFirst(link.reserve(len), link.writeOffset);
        hold.shift();
        link.commit(len);
      }
    }
    if (hold.length === 0 && this.blocked !== null && link.pendingBytes <= this.highWater / 2) {
      for (const p of this.blocked) p.unblock(this);
      this.blocked = null;
    }
  }

  /**
   * The link has drained (the session's onDrain): held messages move on at once, up to
   * `stretchBytes`; past that the next pump waits for a later turn of the event loop. A
   * write the kernel takes at once reports its end in a nextTick, so pumping from every
   * drain would move the whole hold ring (tens of MiB, a consumer catching up after a
   * stall) in one stretch with no other connection read or written meanwhile. A fixed
   * small stretch would move less than one publisher's socket can bring in a turn (libuv
   * reads up to 32 x 64 KiB), and a consumer that keeps up would fall behind for good.
   * So a stretch is twice what was held during the last one, and at least 256 KiB.
   */
  drained(): void {
    const hold = this.hold;
    if (hold.length === 0) this.pump();
    else if (this.pumpSoon !== null) return;
    else if (this.stretch < this.stretchBytes) {
      const before = hold.bytes;
      this.pump();
      if (hold.bytes < before) this.stretch += before - hold.bytes;
    } else this.pumpSoon = setImmediate(this.pumpTask);
  }

  private schedulePump(): void {
    if (this.pumpTimer !== null || this.limiter === null) return;
    const next = this.hold.length > 0 ? this.hold.lengthOf(this.hold.first) : 1;
    const wait = Math.max(1, this.limiter.nextAdmitMs(next, this.clock.now()));
    this.pumpTimer = this.clock.timeout(() => {
      this.pumpTimer = null;
      this.pump();
    }, wait);
  }

  /** The session is gone: release what it held and the publishers it paused. */
  close(): void {
    this.clock.clear(this.pumpTimer);
    this.pumpTimer = null;
    if (this.pumpSoon !== null) clearImmediate(this.pumpSoon);
    this.pumpSoon = null;
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
