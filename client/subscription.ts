import type { HopbusError } from '../runtime/errors.js';
import { ImageKind, POLICY_NAMES, SUB_FROM_SEQ, SUB_FROM_TIME, SUB_SNAPSHOT } from '../transports/protocol/index.js';
import { Ring } from '../runtime/ring.js';
import { HandlerError, OptionsError, SlowConsumerError } from './errors.js';
import type { Msg } from './msg.js';

export type MsgHandler = (msg: Msg) => void;

/** An iterator subscription's buffer bounds (nats.go's defaults for a subscription's pending limits are alike). */
export const DEFAULT_MAX_PENDING = 65_536;
export const DEFAULT_MAX_PENDING_BYTES = 64 * 1024 * 1024;

export interface SubscribeOptions {
  /** Queue group: each message goes to one member of the group. */
  queue?: string;
  /** Unsubscribe automatically after this many messages. */
  max?: number;
  /** For iterator subscriptions: messages buffered before new ones are dropped (default 65,536). */
  maxPending?: number;
  /** For iterator subscriptions: bytes buffered before new ones are dropped (default 64 MiB; Msg.size per message). */
  maxPendingBytes?: number;
  /**
   * What the broker does when this connection falls behind (default: the broker's,
   * normally 'disconnect'): 'disconnect', 'drop-oldest', 'drop-newest', 'conflate'
   * (newest message per subject) or 'block' (pause publishers; lossless, but a slow
   * consumer then slows everyone who shares its publishers).
   */
  policy?: 'disconnect' | 'drop-oldest' | 'drop-newest' | 'conflate' | 'block';
  /**
   * First the cached value of every matching subject from the broker's last-value cache
   * (each with `msg.snapshot === true`), then live messages: per subject no gap and no
   * duplicate (`msg.seq` counts each subject's messages). `sub.snapshotDone` resolves
   * with the number of cached values once they are all delivered. docs/CACHE.md.
   */
  snapshot?: boolean;
  /**
   * Replay-then-live from the broker's journal: every recorded message matching the pattern
   * from journal sequence `seq` (or from `time`, ms since the epoch, or a Date) on
   * (`msg.replayed === true`, `msg.seq` the journal sequence), then live messages, with
   * no gap and no duplicate between the two. `sub.snapshotDone` resolves with the number
   * replayed. docs/JOURNAL.md.
   */
  from?: { seq: number } | { time: number | Date };
}

/** What a Subscription needs from its connection. */
export interface SubscriptionOwner {
  unsubscribeSid(sub: Subscription, max: number): void;
  reportError(err: HopbusError): void;
  /** Resolves once the server has processed everything sent so far (a connection with a server: flush()). */
  confirm?(): Promise<void>;
}

/**
 * A subscription: delivers to a callback, or, without one, is an async iterable.
 * Used on the connection's thread only.
 */
export class Subscription implements AsyncIterable<Msg> {
  /** Messages delivered so far. */
  received = 0;
  /** Messages lost: dropped by the broker's slow-consumer policy or because the iterator's buffer was full. */
  dropped = 0;
  /** Messages the broker replaced by a newer one on the same subject (conflate policy). */
  conflated = 0;
  /** Auto-unsubscribe after this many messages; 0 = never. */
  max: number;
  readonly queue: string;
  /** Wire value of the slow-consumer policy (0 = the broker's default). */
  readonly policy: number;
  private isClosed = false;
  // Iterator buffer: grown on demand up to maxPending messages and maxPendingBytes bytes;
  // when either is reached, the arriving message is dropped.
  private readonly buf: Ring<Msg>;
  private readonly maxPending: number;
  private readonly maxPendingBytes: number;
  /** Bytes in `buf` (Msg.size each). */
  private bufBytes = 0;
  private waiter: ((r: IteratorResult<Msg>) => void) | null = null;
  private rejectWaiter: ((err: Error) => void) | null = null;
  private failure: Error | null = null;
  /** Why the server refused this subscription (or ended it), if it did. */
  private refusal: Error | null = null;
  private readyPromise: Promise<void> | null = null;
  private overflowing = false;
  private resolveClosed!: () => void;
  /** Resolves when the subscription ends (unsubscribed, drained, auto-expired or connection closed). */
  readonly closed: Promise<void>;
  /** SUB flags: SUB_SNAPSHOT, SUB_FROM_SEQ or SUB_FROM_TIME; 0 for a plain subscription. */
  readonly subFlags: number;
  /** With SUB_FROM_SEQ / SUB_FROM_TIME: where the replay starts (a journal seq, or µs since the epoch). */
  readonly start: number;
  /**
   * True from sending a snapshot or replay SUB until the broker's IMAGE BEGIN: broadcast
   * messages (routed before the broker added the subscription) are not for it yet.
   */
  awaiting = false;
  private imageDone: Promise<number> | null = null;
  private resolveImage: ((n: number) => void) | null = null;
  /** Cached values (or replayed messages) delivered by the current image. */
  private imaged = 0;

  constructor(
    private readonly owner: SubscriptionOwner,
    readonly sid: number,
    readonly subject: string,
    private readonly callback: MsgHandler | null,
    options: SubscribeOptions,
  ) {
    this.queue = options.queue ?? '';
    this.policy = options.policy === undefined ? 0 : POLICY_NAMES.indexOf(options.policy);
    this.max = options.max ?? 0;
    this.maxPending = options.maxPending ?? DEFAULT_MAX_PENDING;
    this.maxPendingBytes = options.maxPendingBytes ?? DEFAULT_MAX_PENDING_BYTES;
    this.buf = new Ring(Math.max(1, this.maxPending));
    this.closed = new Promise((resolve) => (this.resolveClosed = resolve));
    const from = options.from as { seq?: number; time?: number | Date } | undefined;
    this.subFlags = options.snapshot === true ? SUB_SNAPSHOT : from === undefined ? 0 : from.seq !== undefined ? SUB_FROM_SEQ : SUB_FROM_TIME;
    // On the wire a time is in µs since the epoch.
    this.start = from === undefined ? 0 : from.seq !== undefined ? from.seq : Math.round((from.time instanceof Date ? from.time.getTime() : from.time!) * 1000);
  }

  /**
   * A snapshot subscription: resolves with the number of cached values delivered once the
   * image is complete (the broker's end-of-image marker); a replay subscription: with the
   * number of journal records replayed, once it has gone live. Resolves with the count so
   * far if the subscription ends first; resolves with 0 at once for a plain subscription.
   * After a reconnect the broker sends the image again; this promise is the first one's.
   */
  get snapshotDone(): Promise<number> {
    if (this.imageDone === null) {
      if (this.subFlags === 0) this.imageDone = Promise.resolve(0);
      else this.imageDone = new Promise((resolve) => (this.resolveImage = resolve));
    }
    return this.imageDone;
  }

  /** @internal The SUB went out: wait for IMAGE BEGIN before taking broadcasts. */
  awaitImage(): void {
    this.awaiting = true;
    this.imaged = 0;
  }

  /** @internal An IMAGE frame for this subscription. */
  onImage(kind: number, count: number): void {
    if (kind === ImageKind.BEGIN) {
      this.awaiting = false;
      return;
    }
    if (kind === ImageKind.END) {
      this.awaiting = false;
      this.endImage(count);
    }
  }

  /** @internal A message of the image (FLAG_SNAPSHOT or FLAG_REPLAY) was delivered. */
  countImaged(): void {
    this.imaged++;
  }

  private endImage(count: number): void {
    if (this.imageDone === null) this.imageDone = Promise.resolve(count);
    else if (this.resolveImage !== null) this.resolveImage(count);
    this.resolveImage = null;
  }

  get isClosedNow(): boolean {
    return this.isClosed;
  }

  /**
   * Resolves once the server has accepted the subscription; rejects with its error if it
   * refused it (e.g. ServerError MAX_SUBSCRIPTIONS, BAD_SUBJECT for a bad queue name),
   * which the 'error' event reports too. Made on first use: awaiting it costs a flush.
   */
  get ready(): Promise<void> {
    if (this.readyPromise === null) {
      const confirm = this.owner.confirm;
      const done = this.refusal !== null || confirm === undefined ? Promise.resolve() : confirm.call(this.owner);
      this.readyPromise = done.then(() => {
        if (this.refusal !== null) throw this.refusal;
      });
    }
    return this.readyPromise;
  }

  /** Called by the connection for each message. Returns false once it is done (max reached). */
  deliver(msg: Msg): boolean {
    if (this.isClosed) return false;
    this.received++;
    if (this.callback !== null) {
      try {
        this.callback(msg);
      } catch (err) {
        this.owner.reportError(new HandlerError(this.subject, err));
      }
    } else {
      this.push(msg);
    }
    return this.max === 0 || this.received < this.max;
  }

  private push(msg: Msg): void {
    if (this.waiter !== null) {
      const w = this.waiter;
      this.waiter = null;
      w({ value: msg, done: false });
      return;
    }
    const size = msg.size;
    if (this.bufBytes + size <= this.maxPendingBytes && this.buf.push(msg)) {
      this.bufBytes += size;
      return;
    }
    this.dropped++;
    if (!this.overflowing) {
      this.overflowing = true;
      this.owner.reportError(
        new SlowConsumerError(
          `subscription "${this.subject}" is not consuming: its buffer (${this.maxPending} messages, ${this.maxPendingBytes} bytes) is full, new messages are dropped (${this.dropped} so far)`,
        ),
      );
    }
  }

  /** Bytes waiting in the iterator's buffer. */
  get pendingBytes(): number {
    return this.bufBytes;
  }

  /** Stops the subscription; with `max`, after that many messages in total. */
  unsubscribe(max?: number): void {
    if (this.isClosed) return;
    if (max !== undefined && max > 0 && this.received < max) {
      this.max = max;
      this.owner.unsubscribeSid(this, max);
      return;
    }
    this.owner.unsubscribeSid(this, 0);
  }

  /** Ends the subscription locally. Iterators finish after the buffered messages (or throw `err`). */
  close(err?: Error): void {
    if (this.isClosed) return;
    this.isClosed = true;
    if (this.subFlags !== 0) this.endImage(this.imaged);
    if (err) {
      this.failure = err;
      this.refusal = err;
    }
    if (this.waiter !== null && this.buf.length === 0) {
      const w = this.waiter;
      this.waiter = null;
      if (err) {
        this.failure = null;
        this.rejectWaiter!(err);
      } else {
        w({ value: undefined, done: true });
      }
    }
    this.resolveClosed();
  }

  [Symbol.asyncIterator](): AsyncIterator<Msg> {
    if (this.callback !== null) throw new OptionsError(`subscription "${this.subject}" has a callback; iterate only subscriptions made without one`);
    return {
      next: (): Promise<IteratorResult<Msg>> => {
        if (this.buf.length > 0) {
          const msg = this.buf.shift()!;
          this.bufBytes -= msg.size;
          if (this.buf.length === 0) this.overflowing = false;
          return Promise.resolve({ value: msg, done: false });
        }
        if (this.isClosed) {
          if (this.failure) {
            const f = this.failure;
            this.failure = null;
            return Promise.reject(f);
          }
          return Promise.resolve({ value: undefined, done: true });
        }
        return new Promise((resolve, reject) => {
          this.waiter = resolve;
          this.rejectWaiter = reject;
        });
      },
      return: (): Promise<IteratorResult<Msg>> => {
        this.unsubscribe();
        return Promise.resolve({ value: undefined, done: true });
      },
    };
  }
}
