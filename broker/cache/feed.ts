/**
 * broker/cache/feed.ts: the images of one connection's snapshot subscriptions, sent
 * at the pace the connection reads them.
 *
 * The order rule (no gap, no duplicate per subject) rests on three steps, all on the
 * broker's thread:
 *  1. When the SUB arrives, the subscription is added to the router: every message routed
 *     from then on reaches the connection.
 *  2. IMAGE BEGIN is written into the link only when nothing is held for the connection
 *     (its Outbound queue is empty), and the image is fixed in the same synchronous step:
 *     for each store, its slot count and its version (broker/cache/store.ts). Nothing is
 *     listed or copied, so BEGIN costs the same for 10 cached subjects as for 100,000.
 *     Every message the link carries after BEGIN was routed after that point, and every
 *     one before it is reflected in the cache as it was then (the router updates the
 *     cache before it fans a message out). The client hands the subscription no
 *     broadcast message (sid 0) before BEGIN: whatever it would have missed is in a
 *     cached value it is sent next, even for a subject first published between the SUB
 *     and BEGIN (a second image on the same connection waits for the first to end).
 *  3. The image walks those slots, a turn at a time. An entry born after BEGIN (a subject
 *     first cached later, or an evicted entry handed to a new subject) is skipped: its
 *     messages reach the subscription live. A removed entry has left its slot. Each
 *     value is read when it is written (the newest), and a live message delivered for a
 *     subject whose value has not been written yet takes the subject off the image: the
 *     subscription gets it live instead, and never its older cached value after it.
 * So per subject a subscription sees its cached value (`msg.snapshot`, sequence n) and
 * then live messages n+1, n+2, ..., or, for a subject updated while the image was on its
 * way, live messages from that update on. IMAGE BEGIN carries the slots the image walks
 * (an upper bound of its values), IMAGE END the count of cached values sent.
 *
 * Pacing: at most IMAGE_TURN_BYTES (64 KiB, or `highWater` if lower) of image per turn of
 * the event loop, and only while the link holds at most `highWater` bytes and nothing is
 * held; then the feed waits for the link to drain (Session.onDrain) and goes on in a
 * later turn (setImmediate: a yield to I/O, so that other connections' reads and writes
 * come between two chunks even when a loopback socket drains at once). A large image so
 * never makes its connection a slow consumer, never holds up other connections for more
 * than a fraction of a millisecond, and never sits in memory as frames, nor as a list:
 * a cursor into the slots and the set of subjects taken live meanwhile. A delivery rate limit (deliverRate)
 * applies to image frames too.
 *
 * Threading: the broker's thread. Must not import sessions or the broker.
 */
import { FLAG_SNAPSHOT, IMAGE_SIZE, ImageKind, writeImage } from '../../transports/protocol/index.js';
import type { Clock, Timer } from '../../runtime/clock.js';
import type { Link } from '../../transports/link.js';
import type { Outbound } from '../policy.js';
import type { Subscription } from '../subscription.js';
import type { LastValueCache } from './cache.js';
import type { CacheStore } from './store.js';
import { SubjectTree } from '../../topics/index.js';

/** What a feed needs of its session. */
export interface FeedOwner {
  readonly link: Link;
  readonly out: Outbound;
  readonly open: boolean;
  readonly stats: { msgsOut: number; bytesOut: number };
}

/** One subscription's image on its way. */
class ImageJob {
  /** Written BEGIN: from here on, live messages take subjects off the image. */
  begun = false;
  /** The stores the image walks: all for a wildcard pattern, the one that may keep a literal subject. */
  stores: readonly CacheStore[] = [];
  /** Per store, at BEGIN: its slot count and its version (step 2). */
  readonly slots: number[] = [];
  readonly versions: number[] = [];
  /** Where the walk is: store index, and slot within it. */
  store = 0;
  next = 0;
  /** Cached values written so far. */
  sent = 0;
  /** Subjects delivered live since BEGIN: their cached value is not written (step 3). */
  readonly live = new Set<string>();
  /** The pattern has a wildcard (else the image is the one subject's value, if cached). */
  readonly wild: boolean;
  constructor(readonly sub: Subscription) {
    this.wild = sub.pattern.includes('*') || sub.pattern.includes('>');
  }

  get done(): boolean {
    return this.store >= this.stores.length;
  }
}

/** What a subject skipped (not matched, taken live, gone) counts against a turn's byte budget. */
const SKIP_COST = 16;
/** Image bytes written per turn of the event loop at most (or the high-water mark, if lower): small enough that other connections wait little between two chunks. */
export const IMAGE_TURN_BYTES = 64 * 1024;

export class ImageFeed {
  private readonly jobs: ImageJob[] = [];
  private timer: Timer | null = null;
  private immediate: ReturnType<typeof setImmediate> | null = null;
  /** Times an image stopped for the link to drain or for the next turn, and the most bytes seen in the link meanwhile: pacing, for tests and monitoring. */
  pauses = 0;
  peakPending = 0;
  private readonly resume = (): void => {
    this.immediate = null;
    this.pump();
  };

  constructor(
    private readonly owner: FeedOwner,
    private readonly cache: LastValueCache,
    private readonly highWater: number,
    private readonly clock: Clock,
  ) {}

  /** Images begun or waiting. */
  get active(): boolean {
    return this.jobs.length > 0;
  }

  /** Step 1 (see the top of this file): call right after the subscription went into the router. */
  add(sub: Subscription): void {
    this.jobs.push(new ImageJob(sub));
    this.cache.snapshots++;
    this.cache.imagesPending++;
    this.pump();
  }

  /** A live message for `subject` was queued for the subscriptions `subs`: step 3. */
  live(subject: string, subs: readonly Subscription[]): void {
    const jobs = this.jobs;
    for (let i = 0; i < jobs.length; i++) {
      const j = jobs[i]!;
      if (j.begun && !j.done && subs.includes(j.sub)) j.live.add(subject);
    }
  }

  /** The subscription is gone: its image, if still on its way, is dropped (no END). */
  remove(sub: Subscription): void {
    const i = this.jobs.findIndex((j) => j.sub === sub);
    if (i < 0) return;
    this.jobs.splice(i, 1);
    this.cache.imagesPending--;
  }

  /** The link has drained: go on in the next turn of the event loop. */
  drained(): void {
    if (this.immediate === null && this.timer === null && this.jobs.length > 0) this.immediate = setImmediate(this.resume);
  }

  /** Writes what the link has room for, up to `highWater` bytes: on adding, and a turn after the link has drained. */
  pump(): void {
    const { link, out } = this.owner;
    const limiter = out.limiter;
    let budget = Math.min(this.highWater, IMAGE_TURN_BYTES);
    while (this.jobs.length > 0) {
      if (!this.owner.open || link.closed || out.hold.length > 0 || this.timer !== null || this.immediate !== null) return;
      const j = this.jobs[0]!;
      if (!j.begun) {
        // Step 2: BEGIN, and the image fixed in the same synchronous step, nothing held:
        // the slots each store has now and its version. Nothing is listed or copied.
        this.begin(j);
        this.control(
          ImageKind.BEGIN,
          j.sub.sid,
          j.slots.reduce((a, n) => a + n, 0),
        );
        j.begun = true;
      }
      const pattern = j.sub.pattern;
      const wild = j.wild;
      const now = this.cache.now();
      while (!j.done) {
        const pending = link.pendingBytes;
        if (pending > this.peakPending) this.peakPending = pending;
        if (pending > this.highWater) {
          // Onwards when the link has drained (Session.onDrain).
          this.pauses++;
          return;
        }
        if (budget <= 0) {
          this.pauses++;
          this.immediate = setImmediate(this.resume);
          return;
        }
        if (j.next >= j.slots[j.store]!) {
          j.store++;
          j.next = 0;
          continue;
        }
        const store = j.stores[j.store]!;
        const e = wild ? store.slotAt(j.next) : store.get(pattern, now);
        // Free, or a subject cached after BEGIN (its messages reach the subscription live).
        if (e === null || e === undefined || e.born > j.versions[j.store]!) {
          j.next++;
          budget -= SKIP_COST;
          continue;
        }
        const subject = e.subject;
        const ttl = store.ttlMs;
        if ((ttl > 0 && now - e.updatedAt >= ttl) || (wild && !SubjectTree.matches(pattern, subject)) || j.live.has(subject)) {
          j.next++;
          budget -= SKIP_COST;
          continue;
        }
        if (limiter !== null && !limiter.admit(e.len, now)) {
          this.wait(Math.max(1, limiter.nextAdmitMs(e.len, now)));
          return;
        }
        j.next++;
        const n = e.len;
        const buf = link.reserve(n);
        const at = link.writeOffset;
        e.frame.copy(buf, at, 0, n);
        buf[at + 5] = buf[at + 5]! | FLAG_SNAPSHOT;
        buf.writeUInt32LE(j.sub.sid, at + 8);
        link.commit(n);
        budget -= n;
        j.sent++;
        this.cache.hits++;
        const st = this.owner.stats;
        st.msgsOut++;
        st.bytesOut += n;
      }
      this.control(ImageKind.END, j.sub.sid, j.sent);
      j.live.clear();
      this.jobs.shift();
      this.cache.imagesPending--;
    }
  }

  /** Fixes what the image of `j` walks: the slots of each store it may find subjects in, as they are now. */
  private begin(j: ImageJob): void {
    if (j.wild) j.stores = this.cache.stores;
    else {
      const s = this.cache.storeFor(j.sub.pattern);
      j.stores = s === null ? [] : [s];
    }
    for (const s of j.stores) {
      // A literal subject's image is at most its one value: one step of the walk.
      j.slots.push(j.wild ? s.slotCount : 1);
      j.versions.push(s.version);
    }
  }

  private wait(ms: number): void {
    this.timer = this.clock.timeout(() => {
      this.timer = null;
      this.pump();
    }, ms);
  }

  private control(kind: ImageKind, sid: number, count: number): void {
    const link = this.owner.link;
    const buf = link.reserve(IMAGE_SIZE);
    writeImage(buf, link.writeOffset, kind, sid, count);
    link.commit(IMAGE_SIZE);
  }

  /** The session is closing. */
  close(): void {
    this.clock.clear(this.timer);
    this.timer = null;
    if (this.immediate !== null) clearImmediate(this.immediate);
    this.immediate = null;
    this.cache.imagesPending -= this.jobs.length;
    this.jobs.length = 0;
  }
}
