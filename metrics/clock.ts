/**
 * The arrival time of the inbound chunk being processed, for the latency service.
 * Monotonic time itself (monoNs, readU64, writeU64) is runtime/clock.ts.
 */
import { batching, windowId } from '../transports/batch.js';
import { monoNs } from '../runtime/clock.js';

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
