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
import type { Msg } from './msg.js';
import type { Subscription } from './subscription.js';

export type InboxPolicy = 'drop-oldest' | 'drop-newest' | 'conflate' | 'disconnect';
export const INBOX_POLICIES: readonly InboxPolicy[] = ['drop-oldest', 'drop-newest', 'conflate', 'disconnect'];

/**
 * A token bucket in messages: at most `perSec` a second after a burst of `burst`.
 * The receiver-side counterpart of the broker's deliverRate.
 */
export class MsgRate {
  private tokens: number;
  private at = performance.now();
  constructor(
    readonly perSec: number,
    readonly burst: number,
  ) {
    this.tokens = burst;
  }

  admit(now: number): boolean {
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.at) / 1000) * this.perSec);
    this.at = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  /** Milliseconds until one more message is admitted. */
  waitMs(now: number): number {
    const have = Math.min(this.burst, this.tokens + ((now - this.at) / 1000) * this.perSec);
    return have >= 1 ? 0 : ((1 - have) / this.perSec) * 1000;
  }
}

class Slot {
  constructor(public msg: Msg) {}
}

export class Inbox {
  private ring: (Slot | undefined)[] = [];
  private head = 0;
  count = 0;
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
    this.latest = policy === 'conflate' ? new Map() : null;
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
    if (this.count >= this.max) {
      switch (this.policy) {
        case 'disconnect':
          return false;
        case 'drop-newest':
          this.sub.dropped++;
          this.unreportedDropped++;
          return true;
        default:
          this.shift();
          this.sub.dropped++;
          this.unreportedDropped++;
      }
    }
    if (this.count === this.ring.length) this.grow();
    const slot = new Slot(msg);
    this.ring[(this.head + this.count) % this.ring.length] = slot;
    this.count++;
    this.latest?.set(msg.subject, slot);
    return true;
  }

  shift(): Msg | undefined {
    if (this.count === 0) return undefined;
    const slot = this.ring[this.head]!;
    this.ring[this.head] = undefined;
    this.head = (this.head + 1) % this.ring.length;
    this.count--;
    if (this.latest !== null && this.latest.get(slot.msg.subject) === slot) this.latest.delete(slot.msg.subject);
    return slot.msg;
  }

  clear(): void {
    this.ring = [];
    this.head = 0;
    this.count = 0;
    this.latest?.clear();
  }

  private grow(): void {
    const n = Math.min(Math.max(16, this.ring.length * 2), Math.max(16, this.max));
    const next: (Slot | undefined)[] = new Array(n);
    for (let i = 0; i < this.count; i++) next[i] = this.ring[(this.head + i) % this.ring.length];
    this.ring = next;
    this.head = 0;
  }
}
