/**
 * Microbursts: the busiest 1 ms and 5 ms of an interval, beside its average rate.
 * A feed that averages 5 Mbit/s over 5 minutes can still saturate a link for 5 ms at
 * a time; averages hide that, these peaks show it.
 *
 * Time is cut into 1 ms slots. The current slot counts messages and bytes; when a
 * message falls in a later slot, the current one is closed into a ring of the last 5
 * slots, whose sum is the sliding 5 ms window (it slides by 1 ms). Slots with nothing
 * in them are zeros; a gap of 5 ms or more empties the ring. Per message: one floor,
 * one compare, two additions. No timer, no allocation.
 *
 *   ring:  [ s-4 | s-3 | s-2 | s-1 | s ]   ← s is `cur`, still counting
 *   sum5 = the 4 closed slots in the ring + cur
 */
export interface BurstPeaks {
  /** Messages in the busiest 1 ms slot of the interval. */
  peak1msMsgs: number;
  peak1msBytes: number;
  /** Messages in the busiest 5 consecutive 1 ms slots. */
  peak5msMsgs: number;
  peak5msBytes: number;
}

const SLOTS = 5;

export class BurstMeter {
  private cur = -1;
  private curMsgs = 0;
  private curBytes = 0;
  /** Closed slots, oldest first when read from `head`. */
  private readonly ringMsgs = new Float64Array(SLOTS - 1);
  private readonly ringBytes = new Float64Array(SLOTS - 1);
  private head = 0;
  private sumMsgs = 0;
  private sumBytes = 0;
  private peak1Msgs = 0;
  private peak1Bytes = 0;
  private peak5Msgs = 0;
  private peak5Bytes = 0;

  /** Counts one message of `bytes` at time `ms` (milliseconds, any origin, non-decreasing). */
  note(ms: number, bytes: number): void {
    const slot = Math.floor(ms);
    if (slot !== this.cur) this.advance(slot);
    this.curMsgs++;
    this.curBytes += bytes;
  }

  private advance(slot: number): void {
    this.closeCurrent();
    const gap = slot - this.cur - 1; // empty slots between the old and the new one
    if (this.cur < 0 || gap >= SLOTS - 1 || gap < 0) {
      this.ringMsgs.fill(0);
      this.ringBytes.fill(0);
      this.sumMsgs = 0;
      this.sumBytes = 0;
    } else {
      for (let i = 0; i < gap; i++) this.push(0, 0);
    }
    this.push(this.curMsgs, this.curBytes);
    if (this.cur < 0) this.push(0, 0); // first slot ever: ring starts empty
    this.cur = slot;
    this.curMsgs = 0;
    this.curBytes = 0;
  }

  /** Shifts one closed slot into the ring, dropping the oldest. */
  private push(msgs: number, bytes: number): void {
    const h = this.head;
    this.sumMsgs += msgs - this.ringMsgs[h]!;
    this.sumBytes += bytes - this.ringBytes[h]!;
    this.ringMsgs[h] = msgs;
    this.ringBytes[h] = bytes;
    this.head = (h + 1) % (SLOTS - 1);
  }

  /** Folds the current (possibly partial) slot into the peaks. */
  private closeCurrent(): void {
    // A window ending in an empty slot holds less than the one ending a slot earlier.
    if (this.curMsgs === 0) return;
    if (this.curMsgs > this.peak1Msgs) this.peak1Msgs = this.curMsgs;
    if (this.curBytes > this.peak1Bytes) this.peak1Bytes = this.curBytes;
    const m5 = this.sumMsgs + this.curMsgs;
    const b5 = this.sumBytes + this.curBytes;
    if (m5 > this.peak5Msgs) this.peak5Msgs = m5;
    if (b5 > this.peak5Bytes) this.peak5Bytes = b5;
  }

  /** The peaks since the last take(), then starts a new interval (the ring carries on; a 5 ms window across the boundary may span a little less than 5 ms). */
  take(): BurstPeaks {
    this.closeCurrent();
    // The slot now counting is split at the interval boundary: what it has so far goes
    // into the ring (so the 5 ms window still sees it) and is not reported again.
    this.push(this.curMsgs, this.curBytes);
    this.curMsgs = 0;
    this.curBytes = 0;
    const out = { peak1msMsgs: this.peak1Msgs, peak1msBytes: this.peak1Bytes, peak5msMsgs: this.peak5Msgs, peak5msBytes: this.peak5Bytes };
    this.peak1Msgs = this.peak1Bytes = this.peak5Msgs = this.peak5Bytes = 0;
    return out;
  }
}
