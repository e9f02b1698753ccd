/**
 * Receiver-side slow-consumer handling for transports with no broker in the path
 * (multicast): a bounded queue per subscription, and the policy that acts at its
 * bound. Over TCP the broker does this (broker/policy.ts); over multicast nobody
 * can hold messages back for a receiver, so the receiver does it itself.
 *
 * Messages go straight to the callback while the bus keeps up. When callbacks
 * have used more than `budgetMs` of one event-loop turn, the bus is "behind": new
 * messages queue per subscription and a drain pass runs them on later turns, up to
 * `budgetMs` each, so the sockets are read in between (the kernel's receive buffer
 * does not overflow into NAK storms because one callback is slow) and the policy
 * decides what a full queue gives up:
 *
 *   drop-oldest (default)  the oldest queued message makes room: a receiver that is
 *                          behind sees the newest data (market data);
 *   drop-newest            the arriving message is dropped;
 *   conflate               a queued message is replaced by a newer one on the same
 *                          subject at any time; at the bound, as drop-oldest;
 *   disconnect             the subscription is closed with SlowConsumerError.
 *
 * ('block' cannot exist here: a receiver cannot pause a multicast source.)
 *
 * A delivery rate limit (`deliverRate`, messages per second per subscription) holds
 * messages over the rate in the same queue, where the same policy acts: a consumer
 * limited to 1,000 quotes a second with 'conflate' gets the latest of each subject
 * at that pace.
 * Every drop and conflation is counted on the Subscription and reported as one
 * 'loss' event (LossEvent) before the next message of that subscription is delivered.
 *
 * Threading: the bus's thread only.
 */
import { TokenBucket } from '../runtime/bucket.js';
import { Ring } from '../runtime/ring.js';
import type { Msg } from './msg.js';
import type { Subscription } from './subscription.js';

export type InboxPolicy = 'drop-oldest' | 'drop-newest' | 'conflate' | 'disconnect';
export const INBOX_POLICIES: readonly InboxPolicy[] = ['drop-oldest', 'drop-newest', 'conflate', 'disconnect'];

/**
 * A delivery rate in messages: at most `perSec` a second after a burst of `burst`
 * (a TokenBucket counted in messages). The receiver-side counterpart of the broker's
 * deliverRate. Time (ms) comes from the caller.
 */
export class MsgRate {
  private readonly bucket: TokenBucket;
  constructor(
    readonly perSec: number,
    readonly burst: number,
    now: number,
  ) {
    this.bucket = new TokenBucket(perSec, burst, now);
  }

  /** Takes one message's token; false (taking nothing) when the rate is spent. */
  admit(now: number): boolean {
    return this.bucket.tryTake(1, now);
  }

  /** Milliseconds until one more message is admitted. */
  waitMs(now: number): number {
    return this.bucket.timeUntil(1, now);
  }
}

/** A queued message; a box so that conflate can swap the message while the box keeps its queue position. */
class Slot {
  constructor(public msg: Msg) {}
}

/**
 * One subscription's queue (a Ring of slots bounded by `max`) and the policy that acts
 * at the bound. See the top of this file.
 */
export class Inbox {
  private readonly ring: Ring<Slot>;
  /** Newest queued slot per subject (conflate only). */
  private readonly latest: Map<string, Slot> | null;
  unreportedDropped = 0;
  unreportedConflated = 0;

  constructor(
    readonly sub: Subscription,
    readonly policy: InboxPolicy,
    readonly max: number,
    /** Channels this subscription listens on. */
    readonly channels: readonly number[],
    /** Delivery rate limit of this subscription, or null. */
    readonly rate: MsgRate | null = null,
  ) {
    this.ring = new Ring(Math.max(1, max));
    this.latest = policy === 'conflate' ? new Map() : null;
  }

  /** Messages queued. */
  get count(): number {
    return this.ring.length;
  }

  /** Queues a message; returns false when the disconnect policy's bound is passed. */
  push(msg: Msg): boolean {
    if (this.latest !== null) {
      const prev = this.latest.get(msg.subject);
      if (prev !== undefined) {
        prev.msg = msg;
        this.sub.conflated++;
        this.unreportedConflated++;
        return true;
      }
    }
    let slot: Slot | undefined;
    if (this.ring.length >= this.max) {
      switch (this.policy) {
        case 'disconnect':
          return false;
        case 'drop-newest':
          this.sub.dropped++;
          this.unreportedDropped++;
          return true;
        default:
          // drop-oldest (and conflate at its bound): the evicted slot carries the arriving message.
          slot = this.evict();
          this.sub.dropped++;
          this.unreportedDropped++;
      }
    }
    if (slot === undefined) slot = new Slot(msg);
    else slot.msg = msg;
    this.ring.push(slot);
    this.latest?.set(msg.subject, slot);
    return true;
  }

  shift(): Msg | undefined {
    return this.evict()?.msg;
  }

  clear(): void {
    this.ring.clear();
    this.latest?.clear();
  }

  /** Removes the oldest slot (and its subject's conflation entry). */
  private evict(): Slot | undefined {
    const slot = this.ring.shift();
    if (slot !== undefined && this.latest !== null && this.latest.get(slot.msg.subject) === slot) this.latest.delete(slot.msg.subject);
    return slot;
  }
}
