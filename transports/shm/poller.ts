import { runBatched } from '../batch.js';
import type { Signal, WaitStrategy } from './wait.js';

/** Something a poll loop serves: a connection end, or the hub's claim watcher. */
export interface Pollable {
  /** Does whatever there is to do (read, move queued bytes); returns how much (0 = nothing). */
  poll(): number;
  /** True if poll() would find work now. Called with the parked flag raised. */
  ready(): boolean;
  /** Periodic housekeeping (heartbeats, liveness of the peer), every tickMs. */
  tick(now: number): void;
  /** Upper bound on the tick interval this item needs, ms. */
  readonly tickMs: number;
  /** True if this item keeps the thread's event loop alive (an open connection does). */
  readonly keepsAlive: boolean;
}

/** Atomics.waitAsync (Node 16+, V8); TypeScript's ES2022 lib does not declare it. */
type WaitAsyncResult = { async: false; value: 'not-equal' | 'timed-out' } | { async: true; value: Promise<'ok' | 'timed-out'> };
const waitAsync = (Atomics as unknown as { waitAsync(a: Int32Array, i: number, v: number, t?: number): WaitAsyncResult }).waitAsync;

/** Longest stretch of work (polls that find something) before the event loop gets a turn, ms. */
const SLICE_MS = 0.5;
/** Longest stretch of spinning (polls that find nothing) before the event loop gets a turn, ms. */
const SPIN_BURST_MS = 0.02;
/**
 * The same while the thread writes on its own: long enough to catch a reply to what it
 * just sent without an event-loop turn (a hop through the broker is ~1-2 µs), short
 * enough to cost a thread that publishes in batches next to nothing.
 */
const BUSY_SPIN_BURST_MS = 0.003;
/**
 * A gap this long between two polls of a spin loop means the thread was descheduled:
 * the cores are contended. Spinning then only steals time from the thread that has
 * the work (measured: a hop with `hybrid` took 94 µs beside one CPU hog on 2 cores,
 * 17 µs with `park`), so `hybrid` parks at once for CONTENDED_BACKOFF_MS.
 */
const PREEMPTED_MS = 0.05;
const CONTENDED_BACKOFF_MS = 100;

const enum State {
  STOPPED,
  SCHEDULED,
  RUNNING,
  PARKED,
}

/**
 * The poll loop of one thread end: polls its items, and when none has work, spins or
 * parks on `signal` as the wait strategy says. It never holds the thread for long:
 * at most SLICE_MS of work or SPIN_BURST_MS of spinning between event-loop turns
 * (setImmediate), so the thread's own code, timers and I/O run while it polls. While
 * the thread writes to its links on its own (it publishes from its event loop), the
 * bursts are much shorter (BUSY_SPIN_BURST_MS): the thread has its own work to do.
 * With nothing to serve it stops.
 *
 * Each pass runs inside runBatched, so everything written to any link while handling
 * what was read (replies, fan-out) is published once, at the end of the pass.
 *
 * Threading: the thread that created it.
 */
export class Poller {
  private items: Pollable[] = [];
  private state = State.STOPPED;
  private work = 0;
  /** performance.now() of the last pass that found work (hybrid spins for a while after it). */
  private lastWork = 0;
  /** hybrid does not spin before this time (the thread was seen descheduled while spinning). */
  private noSpinUntil = 0;
  /** Commits on this loop's links (bumped by the links); compared across steps to see if the thread writes on its own. */
  writes = 0;
  private writesSeen = 0;
  private timer: NodeJS.Timeout | null = null;
  private timerMs = 0;

  constructor(
    readonly signal: Signal,
    private strategy: WaitStrategy,
    /** May this loop block its thread while parked? (Never for a broker.) */
    private readonly canBlock: boolean,
  ) {}

  get size(): number {
    return this.items.length;
  }

  setStrategy(s: WaitStrategy): void {
    this.strategy = s;
    this.kick();
  }

  add(p: Pollable): void {
    // Copy on write: a pass iterating the old array is unaffected.
    this.items = [...this.items, p];
    this.retime();
    this.kick();
  }

  remove(p: Pollable): void {
    const i = this.items.indexOf(p);
    if (i < 0) return;
    this.items = this.items.filter((x) => x !== p);
    this.retime();
    if (this.items.length === 0) this.kick(); // lets a parked loop see it has nothing left
  }

  /** Makes the loop run soon: wakes it if parked, schedules it if stopped. */
  kick(): void {
    if (this.state === State.STOPPED) this.schedule();
    else if (this.state === State.PARKED) this.signal.ring();
  }

  private schedule(): void {
    this.state = State.SCHEDULED;
    setImmediate(this.step);
  }

  private readonly pollAll = (): void => {
    const items = this.items;
    let work = 0;
    for (let i = 0; i < items.length; i++) work += items[i]!.poll();
    this.work = work;
  };

  private anyReady(): boolean {
    const items = this.items;
    for (let i = 0; i < items.length; i++) if (items[i]!.ready()) return true;
    return false;
  }

  private readonly step = (): void => {
    if (this.items.length === 0) {
      this.state = State.STOPPED;
      return;
    }
    this.state = State.RUNNING;
    const strategy = this.strategy;
    // Written to since our last pass: the thread is busy with its own work.
    const busy = this.writes !== this.writesSeen;
    let now = performance.now();
    const sliceEnd = now + SLICE_MS;
    const spinEnd = now + (busy ? BUSY_SPIN_BURST_MS : SPIN_BURST_MS);
    const backsOff = strategy.kind === 'hybrid';
    let prev = now;
    for (;;) {
      runBatched(this.pollAll, undefined);
      this.writesSeen = this.writes;
      if (this.items.length === 0) {
        this.state = State.STOPPED;
        return;
      }
      now = performance.now();
      if (this.work > 0) {
        this.lastWork = prev = now;
        if (now >= sliceEnd) break;
        continue;
      }
      if (backsOff && now - prev > PREEMPTED_MS) this.noSpinUntil = now + CONTENDED_BACKOFF_MS;
      prev = now;
      if ((!backsOff || now >= this.noSpinUntil) && strategy.keepSpinning((now - this.lastWork) * 1e6)) {
        if (now >= spinEnd) break;
        continue;
      }
      if (!(this.canBlock && strategy.blocking) || busy) {
        if (this.parkAsync()) return;
        continue;
      }
      const r = this.parkSync(Math.min(strategy.sliceMs, this.timerMs));
      if (r === 'timed-out') break; // idle: give the event loop its turn
      this.lastWork = now = performance.now();
      if (now >= sliceEnd) break;
    }
    this.schedule();
  };

  /** Atomics.wait on the signal; returns why it ended ('ready' if work came before parking). */
  private parkSync(ms: number): 'ok' | 'not-equal' | 'timed-out' | 'ready' {
    const { words, seqIdx, parkedIdx } = this.signal;
    const seq = Atomics.load(words, seqIdx);
    Atomics.store(words, parkedIdx, 1);
    if (this.anyReady()) {
      Atomics.store(words, parkedIdx, 0);
      return 'ready';
    }
    const r = Atomics.wait(words, seqIdx, seq, ms);
    Atomics.store(words, parkedIdx, 0);
    return r;
  }

  /** Parks with Atomics.waitAsync; returns false if there is work at once (keep polling). */
  private parkAsync(): boolean {
    const { words, seqIdx, parkedIdx } = this.signal;
    const seq = Atomics.load(words, seqIdx);
    Atomics.store(words, parkedIdx, 1);
    if (this.anyReady()) {
      Atomics.store(words, parkedIdx, 0);
      return false;
    }
    const r = waitAsync(words, seqIdx, seq);
    if (!r.async) {
      Atomics.store(words, parkedIdx, 0);
      return false;
    }
    this.state = State.PARKED;
    void r.value.then(this.onWake);
    return true;
  }

  private readonly onWake = (): void => {
    Atomics.store(this.signal.words, this.signal.parkedIdx, 0);
    if (this.state !== State.PARKED) return;
    this.step();
  };

  // --- housekeeping timer ------------------------------------------------------------

  private retime(): void {
    const items = this.items;
    let ms = Infinity;
    let alive = false;
    for (const p of items) {
      ms = Math.min(ms, p.tickMs);
      alive ||= p.keepsAlive;
    }
    if (items.length === 0) {
      if (this.timer) clearInterval(this.timer);
      this.timer = null;
      return;
    }
    ms = Math.max(5, Math.min(1000, ms));
    if (this.timer === null || ms !== this.timerMs) {
      if (this.timer) clearInterval(this.timer);
      this.timerMs = ms;
      this.timer = setInterval(this.onTick, ms);
    }
    if (alive) this.timer.ref();
    else this.timer.unref();
  }

  private readonly onTick = (): void => {
    const now = performance.now();
    const items = this.items;
    for (let i = 0; i < items.length; i++) items[i]!.tick(now);
  };
}
