/**
 * runtime/clock.ts: the one clock of hopbus, in two parts.
 *
 * 1. Monotonic time as plain numbers, read without allocating.
 *    The wire carries CLOCK_MONOTONIC nanoseconds (docs/PROTOCOL.md, FLAG_TS): the
 *    clock every process of one host shares. `process.hrtime.bigint()` reads it but
 *    allocates a BigInt per call; `performance.now()` reads the same clock (Node
 *    computes it as uv_hrtime() minus the process's time origin) as a double, without
 *    allocating. So the origin is measured once, at load, and added back:
 *    monoNs() = origin + performance.now() * 1e6, good to well under a microsecond, as
 *    a plain number (exact integers up to 2^53 ns = 104 days of uptime; beyond that,
 *    2 ns steps). In a browser there is no CLOCK_MONOTONIC: origin is 0 and timestamps
 *    are only comparable with themselves.
 *
 * 2. `Clock`: what a timer-driven class (keepalive, write deadlines, rate-limit
 *    throttles, repair timers) is given instead of calling performance.now() and
 *    setTimeout itself, so that a test drives it with a `FakeClock` and asserts on
 *    what happens at a given time instead of waiting for it.
 *
 * Imports nothing: runtime/ is below every other folder.
 */

const TWO32 = 4294967296;

function measureOrigin(): number {
  const p = (globalThis as { process?: { hrtime?: { bigint?: () => bigint } } }).process;
  const hr = p?.hrtime?.bigint;
  if (typeof hr !== 'function') return 0;
  // Sandwich the hrtime read between two performance.now() reads and keep the
  // tightest pair: the origin is then known to within half its spread (tens of ns).
  let best = Infinity;
  let origin = 0;
  for (let i = 0; i < 200; i++) {
    const a = performance.now();
    const h = hr();
    const b = performance.now();
    if (b - a < best) {
      best = b - a;
      origin = Number(h) - ((a + b) / 2) * 1e6;
    }
  }
  return Math.round(origin);
}

/** CLOCK_MONOTONIC in ns minus performance.now() in ns (0 in a browser). */
export const CLOCK_ORIGIN_NS = measureOrigin();

/** Monotonic time in ns, comparable between processes of one host. Allocates nothing. */
export function monoNs(): number {
  return Math.round(CLOCK_ORIGIN_NS + performance.now() * 1e6);
}

/** Reads a u64 little-endian as a number, from two u32 halves (no BigInt). */
export function readU64(buf: Uint8Array, off: number): number {
  const lo = buf[off]! | (buf[off + 1]! << 8) | (buf[off + 2]! << 16) | (buf[off + 3]! << 24);
  const hi = buf[off + 4]! | (buf[off + 5]! << 8) | (buf[off + 6]! << 16) | (buf[off + 7]! << 24);
  return (hi >>> 0) * TWO32 + (lo >>> 0);
}

/** Writes a non-negative integer below 2^53 as a u64 little-endian, in two u32 halves. */
export function writeU64(buf: Uint8Array, off: number, v: number): void {
  const hi = Math.floor(v / TWO32);
  const lo = v - hi * TWO32;
  buf[off] = lo;
  buf[off + 1] = lo >>> 8;
  buf[off + 2] = lo >>> 16;
  buf[off + 3] = lo >>> 24;
  buf[off + 4] = hi;
  buf[off + 5] = hi >>> 8;
  buf[off + 6] = hi >>> 16;
  buf[off + 7] = hi >>> 24;
}

/** A timer made by a Clock; cancel it with clock.clear(). */
export interface Timer {
  /** Does not keep the process alive (Node's unref); a no-op on a fake clock. */
  unref(): Timer;
}

/**
 * Time and timers for a class that acts on them. `now()` is in milliseconds on the
 * performance.now() scale. One instance may serve many objects; it is used from one
 * thread.
 */
export interface Clock {
  now(): number;
  /** Calls fn once, after ms. */
  timeout(fn: () => void, ms: number): Timer;
  /** Calls fn every ms until cleared. */
  interval(fn: () => void, ms: number): Timer;
  clear(t: Timer | null): void;
}

/** The real clock: performance.now() and Node's (or the browser's) timers. */
export const realClock: Clock = {
  now: () => performance.now(),
  timeout: (fn, ms) => wrapNative(setTimeout(fn, ms)),
  interval: (fn, ms) => wrapNative(setInterval(fn, ms)),
  clear: (t) => {
    if (t !== null) clearTimeout((t as NativeTimer).handle);
  },
};

interface NativeTimer extends Timer {
  handle: ReturnType<typeof setTimeout>;
}

function wrapNative(handle: ReturnType<typeof setTimeout>): Timer {
  const t: NativeTimer = {
    handle,
    unref() {
      (handle as { unref?: () => void }).unref?.();
      return t;
    },
  };
  return t;
}

interface FakeTimer extends Timer {
  at: number;
  every: number;
  fn: () => void;
  live: boolean;
  seq: number;
}

/**
 * A clock that moves only when told to: `advance(ms)` runs every timer that falls due,
 * in time order (timers due at the same time in the order they were made), with
 * `now()` reading each one's due time while it runs. For unit tests of timer-driven
 * classes: no test waits on the wall clock.
 */
export class FakeClock implements Clock {
  private t: number;
  private seq = 0;
  private readonly timers = new Set<FakeTimer>();

  constructor(start = 1000) {
    this.t = start;
  }

  now(): number {
    return this.t;
  }

  timeout(fn: () => void, ms: number): Timer {
    return this.add(fn, ms, 0);
  }

  interval(fn: () => void, ms: number): Timer {
    return this.add(fn, ms, Math.max(ms, 1e-6));
  }

  clear(t: Timer | null): void {
    if (t === null) return;
    (t as FakeTimer).live = false;
    this.timers.delete(t as FakeTimer);
  }

  /** Timers waiting to run. */
  get pending(): number {
    return this.timers.size;
  }

  /** Moves time forward by ms, running what falls due on the way. */
  advance(ms: number): void {
    const end = this.t + ms;
    for (;;) {
      let next: FakeTimer | null = null;
      for (const tm of this.timers) {
        if (tm.at <= end && (next === null || tm.at < next.at || (tm.at === next.at && tm.seq < next.seq))) next = tm;
      }
      if (next === null) break;
      this.t = Math.max(this.t, next.at);
      if (next.every > 0) {
        next.at += next.every;
        next.seq = this.seq++;
      } else {
        this.timers.delete(next);
        next.live = false;
      }
      next.fn();
    }
    this.t = end;
  }

  private add(fn: () => void, ms: number, every: number): Timer {
    const tm: FakeTimer = {
      at: this.t + Math.max(0, ms),
      every,
      fn,
      live: true,
      seq: this.seq++,
      unref: () => tm,
    };
    this.timers.add(tm);
    return tm;
  }
}
