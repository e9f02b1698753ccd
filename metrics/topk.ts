/**
 * The busiest subjects, in bounded memory: the space-saving algorithm (Metwally,
 * Agrawal, El Abbadi, 2005). At most `capacity` subjects are tracked; a subject not
 * tracked when the table is full replaces the one with the smallest count and
 * inherits that count as its error bound. Any subject whose true count exceeds
 * total/capacity is guaranteed to be in the table, and each reported count
 * overestimates the truth by at most its `error`.
 *
 * The broker feeds it once per interval with per-subject counts it already keeps on
 * its cached routes (see broker/monitor.ts), not once per message, so the cost here
 * is off the message path. Memory: `capacity` entries, whatever the number of
 * subjects published.
 */
export interface HeavyHitter {
  subject: string;
  /** Estimated messages (an overestimate by at most `error`). */
  msgs: number;
  bytes: number;
  error: number;
}

export class SpaceSaving {
  private readonly entries = new Map<string, HeavyHitter>();

  constructor(readonly capacity = 100) {}

  add(subject: string, msgs: number, bytes: number): void {
    const e = this.entries.get(subject);
    if (e !== undefined) {
      e.msgs += msgs;
      e.bytes += bytes;
      return;
    }
    if (this.entries.size < this.capacity) {
      this.entries.set(subject, { subject, msgs, bytes, error: 0 });
      return;
    }
    let min: HeavyHitter | null = null;
    for (const x of this.entries.values()) if (min === null || x.msgs < min.msgs) min = x;
    this.entries.delete(min!.subject);
    this.entries.set(subject, { subject, msgs: min!.msgs + msgs, bytes: min!.bytes + bytes, error: min!.msgs });
  }

  /** The `n` largest, busiest first. */
  top(n: number): HeavyHitter[] {
    return [...this.entries.values()]
      .sort((a, b) => b.msgs - a.msgs)
      .slice(0, n)
      .map((e) => ({ ...e }));
  }

  get size(): number {
    return this.entries.size;
  }
}
