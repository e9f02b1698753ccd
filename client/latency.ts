/**
 * The client's half of the latency service: histograms of the hops this client sees
 * (broker -> client, end to end, and its own handler time) for every timestamped
 * message it receives, read with `bus.stats()` and reported to the broker on
 * `$SYS.report.<clientId>` every report interval (INFO `reportIntervalMs`).
 *
 * Per message: the chunk's arrival time (one clock read per inbound chunk) and a
 * microburst count. Per measured timestamped message (all of them below 50k msg/s,
 * one in N above: metrics/latency.ts Sampler): two u64 reads from the frame, a clock
 * read around the callbacks (~50 ns each here), three typed-array increments.
 * Nothing is allocated. Off with connect option `latency: false`.
 */
import { BurstMeter, type BurstPeaks } from '../metrics/burst.js';
import { chunkNowNs } from '../metrics/clock.js';
import { monoNs, readU64 } from '../runtime/clock.js';
import { batching, windowId } from '../transports/batch.js';
import { HopRecorder, Sampler, stampWeight, encodeHistogram, summarize, type ClientReport, type LatencySummary } from '../metrics/latency.js';

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
  private readonly sampler = new Sampler();
  bursts: BurstPeaks = { peak1msMsgs: 0, peak1msBytes: 0, peak5msMsgs: 0, peak5msBytes: 0 };
  /** Received in the current interval (timestamped or not). */
  private msgsIn = 0;
  /** The connection's msgsOut counter at the last roll. */
  private outAtRoll = 0;
  private lastRoll = performance.now();
  /** How many messages the message last measured by transit() stands for. */
  lastWeight = 1;
  /** The inbound chunk (batch window) being dispatched. */
  private window = -1;

  /** A message arrived (before dispatch). Returns the arrival time for `handled`. */
  received(len: number): number {
    const now = chunkNowNs();
    this.burst.note(now / 1e6, len);
    this.msgsIn++;
    return now;
  }

  /**
   * Measures the transit hops of a timestamped message (`tsOff`: its timestamp block)
   * if the sampler picks it, and returns when its callbacks start: -1 = not measured.
   * The first message of an inbound chunk starts at the chunk's arrival (no clock
   * read); a later one at a clock read.
   */
  transit(buf: Buffer, tsOff: number, now: number): number {
    const w = windowId();
    const first = w !== this.window || !batching();
    this.window = w;
    if (!this.sampler.take(now)) return -1;
    const weight = (this.lastWeight = this.sampler.weight * stampWeight(buf, tsOff));
    this.hops.endToEnd.record(now - readU64(buf, tsOff), weight);
    this.hops.brokerToClient.record(now - readU64(buf, tsOff + 8), weight);
    return first ? now : monoNs();
  }

  /** The callbacks of a measured message have returned. */
  handled(start: number, weight: number): void {
    this.hops.handler.record(monoNs() - start, weight);
  }

  /** Closes the interval. Returns the report to send, or null when nothing was measured. */
  roll(name: string, msgsOutTotal: number): ClientReport | null {
    const now = performance.now();
    const hist: ClientReport['hist'] = {};
    let any = false;
    for (const h of CLIENT_HOPS) {
      if (this.hops[h].settle().totalCount > 0) {
        hist[h] = encodeHistogram(this.hops[h].interval);
        any = true;
      }
      this.hops[h].roll();
    }
    this.bursts = this.burst.take();
    this.sampler.adapt((this.msgsIn * 1000) / Math.max(1, now - this.lastRoll));
    const report: ClientReport | null = any
      ? {
          v: 1,
          name,
          intervalMs: Math.round(now - this.lastRoll),
          msgsIn: this.msgsIn,
          msgsOut: msgsOutTotal - this.outAtRoll,
          peak1ms: this.bursts.peak1msMsgs,
          peak5ms: this.bursts.peak5msMsgs,
          hist,
        }
      : null;
    this.msgsIn = 0;
    this.outAtRoll = msgsOutTotal;
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
      if (this.hops[h].settle().totalCount > 0) {
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
