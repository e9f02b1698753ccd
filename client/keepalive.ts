/**
 * PING/PONG of one connection: keepalive PINGs every `intervalMs` (the connection is
 * stale after `maxOut` of them go unanswered) and flush()'s PINGs, which share one
 * queue because the broker answers PINGs in order. A keepalive PING's place in the
 * queue is null; a flush's is its waiter.
 *
 * Timers run on a Clock (runtime/clock.ts), so a test drives the keepalive with a
 * FakeClock instead of waiting for intervals.
 *
 * What a PONG confirms. The connection numbers the messages it hands towards the broker
 * (`KeepaliveHost.published`, 1, 2, ...); each PING remembers the number reached when it
 * was written (its mark), and its PONG confirms every message up to that mark (`acked`).
 * When the link is lost, the messages after `acked` are in three runs, oldest first:
 * written to the transport but unconfirmed (may be lost), kept in the reconnect backlog
 * (carried to the next connection), and dropped because the backlog was full (lost). A
 * flush waiting then resolves only if no message up to its mark is in a lost run; else
 * it rejects with MessagesLostError and how many. Losses no waiting flush covers are
 * reported by the next flush() (`untold`), so a flush never resolves over a loss.
 *
 * Threading: the client's thread.
 */
import type { Clock, Timer } from '../runtime/clock.js';
import { ConnectionError, MessagesLostError, TimeoutError } from './errors.js';

export interface PongWaiter {
  resolve(): void;
  reject(err: Error): void;
}

/** What the keepalive needs from its connection. */
export interface KeepaliveHost {
  /** Whether a PING written now goes to a live link. */
  readonly connected: boolean;
  /** Writes a PING on the live link. */
  sendPing(): void;
  /** `n` keepalive PINGs went unanswered: the link is to be dropped with `err`. */
  stale(err: Error): void;
  /** How many messages have been handed towards the broker (the link or the backlog) so far. */
  readonly published: number;
}

/** Where the runs of unconfirmed messages end when a link is lost (message numbers, see above). */
export interface LinkLoss {
  /** Last message written to the lost link's transport; (acked, sentEnd] may be lost. */
  sentEnd: number;
  /** Last message carried into the reconnect backlog; (sentEnd, keptEnd] go to the next link. */
  keptEnd: number;
  /** Last message published; (keptEnd, total] were dropped (the backlog was full, or no reconnect follows). */
  total: number;
  /** Why (keptEnd, total] were dropped, for the error. */
  dropped: string;
}

export class Keepalive {
  private readonly waiters: (PongWaiter | null)[] = [];
  /** The message number each PING in `waiters` follows. */
  private readonly marks: number[] = [];
  /** flush() PINGs asked for while disconnected: sent after the next handshake. */
  private unsent = 0;
  /** Keepalive PINGs sent since the last PONG. */
  private out = 0;
  private timer: Timer | null = null;
  /** Messages up to this number are confirmed processed by the broker. */
  acked = 0;
  /** Messages that may have been lost and that no flush has reported yet. */
  untold = 0;

  constructor(
    private readonly host: KeepaliveHost,
    private readonly clock: Clock,
    private readonly intervalMs: number,
    private readonly maxOut: number,
  ) {}

  /** Starts the keepalive interval (none with intervalMs 0). */
  start(): void {
    if (this.intervalMs <= 0 || this.timer !== null) return;
    this.timer = this.clock.interval(this.tick, this.intervalMs).unref();
  }

  private readonly tick = (): void => {
    if (!this.host.connected) return;
    if (this.out >= this.maxOut) {
      this.host.stale(new ConnectionError(`stale connection: ${this.out} PINGs unanswered`));
      return;
    }
    this.out++;
    this.waiters.push(null);
    this.marks.push(this.host.published);
    this.host.sendPing();
  };

  /**
   * A PING whose PONG resolves the promise (flush); sent now, or after reconnecting.
   * Rejects at once with MessagesLostError if messages were lost since the last flush.
   */
  flush(timeoutMs: number): Promise<void> {
    if (this.untold > 0) return Promise.reject(this.takeUntold('the connection was lost with them unconfirmed'));
    return new Promise<void>((resolve, reject) => {
      const timer = this.clock.timeout(() => {
        const i = this.waiters.indexOf(w);
        // The PING stays in the broker's queue: its place does too, as a keepalive's.
        if (i >= 0) this.waiters[i] = null;
        reject(new TimeoutError('flush', timeoutMs));
      }, timeoutMs);
      const w: PongWaiter = {
        resolve: () => {
          this.clock.clear(timer);
          resolve();
        },
        reject: (err) => {
          this.clock.clear(timer);
          reject(err);
        },
      };
      this.waiters.push(w);
      this.marks.push(this.host.published);
      if (this.host.connected) this.host.sendPing();
      else this.unsent++;
    });
  }

  /** Reports the untold losses (and forgets them): for a flush, or a drain that gives up. */
  takeUntold(why: string, more = 0): MessagesLostError {
    const err = new MessagesLostError(this.untold + more, why);
    this.untold = 0;
    return err;
  }

  /** A PONG arrived: the connection is alive; returns the flush it answers, if any. */
  pong(): PongWaiter | null {
    this.out = 0;
    const mark = this.marks.shift();
    if (mark !== undefined && mark > this.acked) this.acked = mark;
    return this.waiters.shift() ?? null;
  }

  /**
   * The link is gone: keepalive PINGs are gone with it; each waiting flush rejects if a
   * message up to its mark is in a lost run, and is sent again after reconnecting if not.
   * Returns the number the connection continues from: the lost runs are taken out of
   * the numbering (told now, or by the next flush), so the next loss does not count them
   * again. Every flush kept has its mark at or below the runs taken out, so marks hold.
   */
  linkLost(loss: LinkLoss): number {
    const { sentEnd, keptEnd, total, dropped } = loss;
    const acked = this.acked;
    const lostInAll = sentEnd - acked + (total - keptEnd);
    let told = 0;
    let kept = 0;
    for (let i = 0; i < this.waiters.length; i++) {
      const w = this.waiters[i]!;
      const m = this.marks[i]!;
      if (w === null) continue;
      const n = Math.max(0, Math.min(m, sentEnd) - acked) + Math.max(0, m - keptEnd);
      if (n > 0) {
        told = n;
        w.reject(new MessagesLostError(n, m > keptEnd ? dropped : 'the connection was lost with them written but unconfirmed'));
        continue;
      }
      this.waiters[kept] = w;
      this.marks[kept] = m;
      kept++;
    }
    this.waiters.length = kept;
    this.marks.length = kept;
    this.untold += lostInAll - told;
    this.unsent = kept;
    this.out = 0;
    return acked + (keptEnd - sentEnd);
  }

  /** After a handshake: the flush PINGs asked for while disconnected. */
  resend(): void {
    for (; this.unsent > 0; this.unsent--) this.host.sendPing();
  }

  /** Stops the interval and fails every waiting flush with `err`. */
  close(err: Error): void {
    this.clock.clear(this.timer);
    this.timer = null;
    for (const w of this.waiters.splice(0)) w?.reject(err);
    this.marks.length = 0;
  }
}
