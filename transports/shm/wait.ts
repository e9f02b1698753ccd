/**
 * Wait strategies: what a thread does when none of its shm connections has work.
 * Chosen per connection by the user (`connect(endpoint, { wait: 'hybrid' })`, or a
 * strategy object), in the manner of Aeron's idle strategies.
 *
 *   spin    poll without pause. Lowest latency (a message is seen within ~0.1 µs),
 *           costs a whole core for as long as the connection is open.
 *   hybrid  spin for `spinUs` after the last piece of work, then park. A reply that
 *           comes within the spin window costs what spin costs; a quiet connection
 *           costs nothing; on contended cores (the thread is seen descheduled while
 *           spinning) it parks at once for a while, as spinning would only delay the
 *           thread that has the work. The default.
 *   park    park at once. No CPU while idle; every wake-up pays the futex wake and
 *           the scheduler (several µs, more on a loaded machine).
 *
 * Parking is Atomics.waitAsync by default: the thread's event loop sleeps in the
 * kernel as usual and wakes for a peer's signal, its own timers or its I/O alike; a
 * wake-up costs about what Atomics.wait's costs (docs/SHM.md has the figures). With
 * `blocking: true`, a worker parks with Atomics.wait instead: the thread is frozen
 * until a peer rings or `sliceMs` passes, so its timers, messages and any publishing
 * it does from its own event loop wait up to `sliceMs`. Only for a worker that does
 * nothing but react to bus messages; never on the main thread.
 *
 * Spinning never starves the thread: the poll loop spins in bursts of at most 20 µs
 * between event-loop turns, and while the thread writes on its own (it publishes from
 * its event loop) it polls once per turn instead of spinning.
 *
 * The broker thread serves many connections with one loop; it polls as eagerly as the
 * most eager of its connected clients asks (`kind`), and never blocks.
 */

import { isMainThread } from 'node:worker_threads';
import { WAIT_KIND_HYBRID, WAIT_KIND_PARK, WAIT_KIND_SPIN } from './layout.js';
import { OptionsError } from '../../runtime/errors.js';

export type WaitKind = 'spin' | 'hybrid' | 'park';

export interface WaitStrategy {
  /** How eagerly the broker thread should poll this connection (it cannot run user code). */
  readonly kind: WaitKind;
  /**
   * Called when a poll pass found nothing to do, `idleNs` after the last pass that did:
   * true to poll again at once, false to park.
   */
  keepSpinning(idleNs: number): boolean;
  /** Block the thread while parked (Atomics.wait), where allowed: never on the main thread. */
  readonly blocking: boolean;
  /** Longest a blocking park lasts before the thread's event loop gets a turn, ms. */
  readonly sliceMs: number;
}

export interface WaitOptions {
  /** hybrid: how long to spin after the last work before parking, µs (default 50). */
  spinUs?: number;
  /** Park with Atomics.wait in a worker (default false: Atomics.waitAsync, which never blocks the thread). */
  blocking?: boolean;
  /** Longest blocking park before the event loop gets a turn, ms (default 10). */
  sliceMs?: number;
}

const DEFAULT_SPIN_US = 50;
const DEFAULT_SLICE_MS = 10;

function common(o: WaitOptions): { blocking: boolean; sliceMs: number } {
  const sliceMs = o.sliceMs ?? DEFAULT_SLICE_MS;
  if (!(Number.isFinite(sliceMs) && sliceMs > 0)) throw new OptionsError(`wait option "sliceMs" must be a positive number, got ${sliceMs}`);
  return { blocking: (o.blocking ?? false) && !isMainThread, sliceMs };
}

export class SpinWait implements WaitStrategy {
  readonly kind = 'spin';
  readonly blocking: boolean;
  readonly sliceMs: number;
  constructor(o: WaitOptions = {}) {
    ({ blocking: this.blocking, sliceMs: this.sliceMs } = common(o));
  }
  keepSpinning(): boolean {
    return true;
  }
}

export class HybridWait implements WaitStrategy {
  readonly kind = 'hybrid';
  readonly blocking: boolean;
  readonly sliceMs: number;
  private readonly spinNs: number;
  constructor(o: WaitOptions = {}) {
    ({ blocking: this.blocking, sliceMs: this.sliceMs } = common(o));
    const us = o.spinUs ?? DEFAULT_SPIN_US;
    if (!(Number.isFinite(us) && us >= 0)) throw new OptionsError(`wait option "spinUs" must be a non-negative number, got ${us}`);
    this.spinNs = us * 1000;
  }
  keepSpinning(idleNs: number): boolean {
    return idleNs < this.spinNs;
  }
}

export class ParkWait implements WaitStrategy {
  readonly kind = 'park';
  readonly blocking: boolean;
  readonly sliceMs: number;
  constructor(o: WaitOptions = {}) {
    ({ blocking: this.blocking, sliceMs: this.sliceMs } = common(o));
  }
  keepSpinning(): boolean {
    return false;
  }
}

export const DEFAULT_WAIT: WaitKind = 'hybrid';

/** A strategy from a name or an object; throws an OptionsError naming what is accepted. */
export function waitStrategy(w: unknown): WaitStrategy {
  if (w === undefined || w === null) w = DEFAULT_WAIT;
  if (typeof w === 'string') {
    switch (w) {
      case 'spin':
        return new SpinWait();
      case 'hybrid':
        return new HybridWait();
      case 'park':
        return new ParkWait();
    }
  } else if (isWaitStrategy(w)) {
    return w;
  }
  throw new OptionsError(`wait strategy must be 'spin', 'hybrid', 'park' or a WaitStrategy object, got ${JSON.stringify(w)}`);
}

export function isWaitStrategy(w: unknown): w is WaitStrategy {
  if (w === null || typeof w !== 'object') return false;
  const s = w as WaitStrategy;
  return (
    (s.kind === 'spin' || s.kind === 'hybrid' || s.kind === 'park') &&
    typeof s.keepSpinning === 'function' &&
    typeof s.blocking === 'boolean' &&
    typeof s.sliceMs === 'number' &&
    s.sliceMs > 0
  );
}

export function waitKindCode(kind: WaitKind): number {
  return kind === 'spin' ? WAIT_KIND_SPIN : kind === 'hybrid' ? WAIT_KIND_HYBRID : WAIT_KIND_PARK;
}

/**
 * A thread's doorbell: a sequence word the thread parks on and a `parked` flag it
 * raises first. A peer that has published data or freed space calls notify(): it
 * rings (add + Atomics.notify) only if the flag is up, so a busy thread costs its
 * peers one atomic load per batch and no system call.
 *
 * No lost wake-up: the parker raises `parked`, then re-checks its rings, then waits
 * on the seq value it read before raising the flag; a notifier publishes its index,
 * then reads `parked`. Sequential consistency puts one of the two checks after the
 * other's store, so either the parker sees the data or the notifier sees the flag,
 * and a ring between the parker's read of seq and its wait makes the wait return.
 */
export class Signal {
  constructor(
    readonly words: Int32Array,
    readonly seqIdx: number,
    readonly parkedIdx: number,
  ) {}

  notify(): void {
    if (Atomics.load(this.words, this.parkedIdx) !== 0) this.ring();
  }

  /** Rings whether or not the owner is parked (close, claims: rare events). */
  ring(): void {
    Atomics.add(this.words, this.seqIdx, 1);
    Atomics.notify(this.words, this.seqIdx);
  }
}
