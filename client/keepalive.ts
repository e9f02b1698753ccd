/**
 * PING/PONG of one connection: keepalive PINGs every `intervalMs` (the connection is
 * stale after `maxOut` of them go unanswered) and flush()'s PINGs, which share one
 * queue because the broker answers PINGs in order. A keepalive PING's place in the
 * queue is null; a flush's is its waiter.
 *
 * Timers run on a Clock (runtime/clock.ts), so a test drives the keepalive with a
 * FakeClock instead of waiting for intervals.
 *
 * Threading: the client's thread.
 */
import type { Clock, Timer } from '../runtime/clock.js';
import { ConnectionError, TimeoutError } from './errors.js';

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
}

export class Keepalive {
  private readonly waiters: (PongWaiter | null)[] = [];
  /** flush() PINGs asked for while disconnected: sent after the next handshake. */
  private unsent = 0;
  /** Keepalive PINGs sent since the last PONG. */
  private out = 0;
  private timer: Timer | null = null;

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
    this.host.sendPing();
  };

  /** A PING whose PONG resolves the promise (flush); sent now, or after reconnecting. */
  flush(timeoutMs: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const timer = this.clock.timeout(() => reject(new TimeoutError('flush', timeoutMs)), timeoutMs);
      this.waiters.push({
        resolve: () => {
          this.clock.clear(timer);
          resolve();
        },
        reject: (err) => {
          this.clock.clear(timer);
          reject(err);
        },
      });
      if (this.host.connected) this.host.sendPing();
      else this.unsent++;
    });
  }

  /** A PONG arrived: the connection is alive; returns the flush it answers, if any. */
  pong(): PongWaiter | null {
    this.out = 0;
    return this.waiters.shift() ?? null;
  }

  /**
   * The link is gone: keepalive PINGs are gone with it; flushes are sent again after
   * reconnecting. (Issue 18: a flush then resolves over what the lost link dropped;
   * the fix belongs here and in reconnect.ts's Backlog, which would have to carry it.)
   */
  linkLost(): void {
    for (let i = this.waiters.length - 1; i >= 0; i--) if (this.waiters[i] === null) this.waiters.splice(i, 1);
    this.unsent = this.waiters.length;
    this.out = 0;
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
  }
}
