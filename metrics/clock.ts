/**
 * Clocks for the latency service, read without allocating.
 *
 * The wire carries CLOCK_MONOTONIC nanoseconds (frame.ts FLAG_TS): the clock every
 * process of one host shares. `process.hrtime.bigint()` reads it but allocates a
 * BigInt per call; `performance.now()` reads the same clock (Node computes it as
 * uv_hrtime() minus the process's time origin) as a double, without allocating. So
 * we measure the origin once, at load, and add it back: monoNs() = origin +
 * performance.now() * 1e6, good to well under a microsecond, as a plain number
 * (exact integers up to 2^53 ns = 104 days of uptime; beyond that, 2 ns steps).
 *
 * In a browser there is no CLOCK_MONOTONIC: origin is 0 and timestamps are only
 * comparable with themselves (a browser client's hops are not measured against the
 * broker's clock).
 */
import { batching, windowId } from '../transports/batch.js';

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

let lastWindow = -1;
let lastNs = 0;

/**
 * The time the inbound chunk now being processed arrived, read once per chunk: every
 * frame of one socket read arrived together, and a clock read costs ~40-50 ns here,
 * as much as the rest of the per-message bookkeeping. Outside a batch window (no
 * chunk, e.g. a timer) it reads the clock every time.
 */
export function chunkNowNs(): number {
  if (!batching()) return monoNs();
  const w = windowId();
  if (w !== lastWindow) {
    lastWindow = w;
    lastNs = monoNs();
  }
  return lastNs;
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
