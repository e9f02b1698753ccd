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
import { Policy } from '../transports/frame.js';
import type { Subscription } from './route.js';

/** One held message: a private copy of its MSG frame, and who it is for. */
export class Held {
  constructor(
    public frame: Buffer,
    readonly subject: string,
    /** The subscriptions of this session the message was for (for loss accounting). */
    readonly subs: readonly Subscription[],
    readonly policy: Policy,
  ) {}
}

/** A FIFO of held messages with byte and message bounds and a per-subject index. */
export class HoldQueue {
  private ring: (Held | undefined)[] = new Array(64);
  private head = 0;
  length = 0;
  bytes = 0;
  /** Newest held conflatable message per subject. */
  private readonly latest = new Map<string, Held>();

  push(h: Held): void {
    if (this.length === this.ring.length) this.grow();
    this.ring[(this.head + this.length) % this.ring.length] = h;
    this.length++;
    this.bytes += h.frame.length;
    if (h.policy === Policy.CONFLATE) this.latest.set(h.subject, h);
  }

  shift(): Held | undefined {
    if (this.length === 0) return undefined;
    const h = this.ring[this.head]!;
    this.ring[this.head] = undefined;
    this.head = (this.head + 1) % this.ring.length;
    this.length--;
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

  private grow(): void {
    const next: (Held | undefined)[] = new Array(this.ring.length * 2);
    for (let i = 0; i < this.length; i++) next[i] = this.ring[(this.head + i) % this.ring.length];
    this.ring = next;
    this.head = 0;
  }

  clear(): void {
    this.ring = new Array(64);
    this.head = 0;
    this.length = 0;
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
