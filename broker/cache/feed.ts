/**
 * broker/cache/feed.ts: the images of one connection's snapshot subscriptions, sent
 * at the pace the connection reads them.
 *
 * The order rule (no gap, no duplicate per subject) rests on three steps, all on the
 * broker's thread:
 *  1. When the SUB arrives, the subscription is added to the router: every message routed
 *     from then on reaches the connection.
 *  2. IMAGE BEGIN is written into the link only when nothing is held for the connection
 *     (its Outbound queue is empty), and the image (the cached subjects the subscription
 *     matches) is listed in the same synchronous step. So every message the link carries
 *     after BEGIN was routed after the listing, and every one before it is reflected in
 *     the cache as listed (the router updates the cache before it fans a message out). The
 *     client hands the subscription no broadcast message (sid 0) before BEGIN: whatever it
 *     would have missed is in a cached value it is sent next, even for a subject first
 *     published between the SUB and BEGIN (a second image on the same connection waits
 *     for the first to end).
 *  3. Each subject's value is read from the cache when it is written (the newest), and a
 *     live message delivered for a subject whose value has not been written yet takes
 *     the subject off the image: the subscription gets it live instead, and never its
 *     older cached value after it.
 * So per subject a subscription sees its cached value (`msg.snapshot`, sequence n) and
 * then live messages n+1, n+2, ..., or, for a subject updated while the image was on its
 * way, live messages from that update on. IMAGE END carries the count of cached values sent.
 *
 * Pacing: at most `highWater` bytes of image per turn of the event loop, and only while
 * the link holds at most `highWater` bytes and nothing is held; then the feed waits for
 * the link to drain (Session.onDrain) and goes on in a later turn (setImmediate: a yield
 * to I/O, so that other connections' reads and writes come between two chunks even when
 * a loopback socket drains at once). A large image so never makes its connection a slow
 * consumer, never holds up other connections for long, and never sits in memory as
 * frames: only the list of its subjects does. A delivery rate limit (deliverRate)
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
  /** The image's subjects, listed when BEGIN is written (step 2). */
  subjects: string[] = [];
  /** Next index into `subjects`. */
  next = 0;
  /** Cached values written so far. */
  sent = 0;
  /** Subjects of the image not yet written nor superseded by a live message. */
  remaining = new Set<string>();
  constructor(readonly sub: Subscription) {}
}

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
      if (j.begun && subs.includes(j.sub)) j.remaining.delete(subject);
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
    let budget = this.highWater;
    while (this.jobs.length > 0) {
      if (!this.owner.open || link.closed || out.hold.length > 0 || this.timer !== null || this.immediate !== null) return;
      const j = this.jobs[0]!;
      if (!j.begun) {
        // Step 2: the listing and BEGIN in one synchronous step, nothing held.
        j.subjects = this.cache.image(j.sub.pattern);
        j.remaining = new Set(j.subjects);
        this.control(ImageKind.BEGIN, j.sub.sid, j.subjects.length);
        j.begun = true;
      }
      const subjects = j.subjects;
      const now = this.cache.now();
      while (j.next < subjects.length) {
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
        const subject = subjects[j.next]!;
        if (!j.remaining.has(subject)) {
          j.next++;
          continue;
        }
        const e = this.cache.get(subject);
        if (e === undefined) {
          // Evicted, expired or deleted since the image was listed.
          j.remaining.delete(subject);
          j.next++;
          continue;
        }
        if (limiter !== null && !limiter.admit(e.len, now)) {
          this.wait(Math.max(1, limiter.nextAdmitMs(e.len, now)));
          return;
        }
        j.remaining.delete(subject);
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
      this.jobs.shift();
      this.cache.imagesPending--;
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
