/**
 * The client's half of the latency service: histograms of the hops this client sees
 * (broker -> client, end to end, and its own handler time) for every timestamped
 * message it receives, read with `bus.stats()` and reported to the broker on
 * `$SYS.report.<clientId>` every report interval (INFO `reportIntervalMs`).
 *
 * Per timestamped message: two u64 reads from the frame, the chunk's arrival time
 * (one clock read per inbound chunk), one clock read after the callbacks, four
 * histogram or counter updates. Nothing is allocated. Off with connect option
 * `latency: false`.
 */
import { BurstMeter, type BurstPeaks } from '../metrics/burst.js';
import { chunkNowNs, monoNs, readU64 } from '../metrics/clock.js';
import { HopRecorder, encodeHistogram, summarize, type ClientReport, type LatencySummary } from '../metrics/latency.js';

export type ClientHop = 'brokerToClient' | 'endToEnd' | 'handler';
export const CLIENT_HOPS: readonly ClientHop[] = ['brokerToClient', 'endToEnd', 'handler'];

export interface ClientLatencyStats {
  /** Summaries of the last completed interval, µs. */
  interval: Record<ClientHop, LatencySummary>;
  /** Since the connection was made, µs. */
  total: Record<ClientHop, LatencySummary>;
  /** Busiest 1 ms / 5 ms of received messages in the last interval. */
  bursts: BurstPeaks;
}

export class LatencyMeter {
  readonly hops: Record<ClientHop, HopRecorder> = { brokerToClient: new HopRecorder(), endToEnd: new HopRecorder(), handler: new HopRecorder() };
  private readonly burst = new BurstMeter();
  bursts: BurstPeaks = { peak1msMsgs: 0, peak1msBytes: 0, peak5msMsgs: 0, peak5msBytes: 0 };
  /** Received in the current interval (timestamped or not). */
  private msgsIn = 0;
  private msgsOut = 0;
  private lastRoll = performance.now();
  /** End of the previous dispatch in this chunk: the start of the next message's handling. */
  private lastEnd = 0;

  /** A message arrived (before dispatch). Returns the arrival time for `handled`. */
  received(len: number): number {
    const now = chunkNowNs();
    this.burst.note(now / 1e6, len);
    this.msgsIn++;
    return now;
  }

  /** Transit hops of a timestamped message; `tsOff` is its timestamp block. */
  transit(buf: Buffer, tsOff: number, now: number): void {
    this.hops.endToEnd.record(now - readU64(buf, tsOff));
    this.hops.brokerToClient.record(now - readU64(buf, tsOff + 8));
  }

  /**
   * The callbacks of a timestamped message have returned. Handler time is measured
   * from the later of the chunk's arrival and the end of the previous message's
   * callbacks, so one clock read per message serves both.
   */
  handled(arrived: number): void {
    const end = monoNs();
    const start = this.lastEnd > arrived ? this.lastEnd : arrived;
    this.hops.handler.record(end - start);
    this.lastEnd = end;
  }

  sent(): void {
    this.msgsOut++;
  }

  /** Closes the interval. Returns the report to send, or null when nothing was measured. */
  roll(name: string): ClientReport | null {
    const now = performance.now();
    const hist: ClientReport['hist'] = {};
    let any = false;
    for (const h of CLIENT_HOPS) {
      if (this.hops[h].interval.totalCount > 0) {
        hist[h] = encodeHistogram(this.hops[h].interval);
        any = true;
      }
      this.hops[h].roll();
    }
    this.bursts = this.burst.take();
    const report: ClientReport | null = any
      ? { v: 1, name, intervalMs: Math.round(now - this.lastRoll), msgsIn: this.msgsIn, msgsOut: this.msgsOut, peak1ms: this.bursts.peak1msMsgs, peak5ms: this.bursts.peak5msMsgs, hist }
      : null;
    this.msgsIn = 0;
    this.msgsOut = 0;
    this.lastRoll = now;
    return report;
  }

  stats(): ClientLatencyStats {
    const interval = {} as Record<ClientHop, LatencySummary>;
    const total = {} as Record<ClientHop, LatencySummary>;
    for (const h of CLIENT_HOPS) {
      interval[h] = this.hops[h].last;
      // The current interval is not in `total` until it closes: show both together.
      const t = this.hops[h].total;
      if (this.hops[h].interval.totalCount > 0) {
        t.add(this.hops[h].interval);
        total[h] = summarize(t);
        t.subtract(this.hops[h].interval);
      } else {
        total[h] = summarize(t);
      }
    }
    return { interval, total, bursts: this.bursts };
  }
}
