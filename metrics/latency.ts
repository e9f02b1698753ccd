/**
 * Latency histograms per hop class: what the broker and each client measure from the
 * timestamps a message carries (frame.ts FLAG_TS), and how they are summarised and
 * reported. docs/MONITORING.md explains the hop classes; docs/PROTOCOL.md the report.
 *
 *   publisher send ──pubToBroker──▶ broker receive ──brokerToClient──▶ client receive ──handler──▶ callbacks done
 *   └──────────────────────────────── endToEnd ─────────────────────────────────┘
 *
 * endToEnd is transit only (send call to the bytes arriving at the subscriber);
 * handler is the application's own processing time (the subscriber callbacks for
 * that message). Telling them apart is the point: a slow strategy shows up in
 * handler, a slow network or broker in the transit hops.
 *
 * Recording is a histogram increment: no allocation. Each recorder keeps an interval
 * histogram (reset at every report) and one since start (the intervals added up).
 */
import hdr from 'hdr-histogram-js';

/** Hop classes, in the order they are shown. Stable names: JSON keys and Prometheus labels. */
export const HOPS = ['pubToBroker', 'brokerToClient', 'endToEnd', 'handler'] as const;
export type Hop = (typeof HOPS)[number];

/** Largest latency tracked: 60 s (longer ones are recorded as 60 s). */
const HIGHEST_NS = 60e9;

/** An HDR histogram of nanoseconds, 3 significant digits (so 1 µs resolution up to 1 ms). */
export function nsHistogram(): hdr.Histogram {
  return hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: HIGHEST_NS, numberOfSignificantValueDigits: 3, bitBucketSize: 32, useWebAssembly: false });
}

/** Percentiles of a histogram, in microseconds with 2 decimals. Stable field names. */
export interface LatencySummary {
  count: number;
  min: number;
  mean: number;
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
}

const EMPTY: LatencySummary = { count: 0, min: 0, mean: 0, p50: 0, p90: 0, p99: 0, p999: 0, max: 0 };

export function summarize(h: hdr.Histogram): LatencySummary {
  if (h.totalCount === 0) return { ...EMPTY };
  const us = (ns: number) => Math.round(ns / 10) / 100;
  return {
    count: h.totalCount,
    min: us(h.minNonZeroValue),
    mean: us(h.mean),
    p50: us(h.getValueAtPercentile(50)),
    p90: us(h.getValueAtPercentile(90)),
    p99: us(h.getValueAtPercentile(99)),
    p999: us(h.getValueAtPercentile(99.9)),
    max: us(h.getValueAtPercentile(100)),
  };
}

/** One hop class: an interval histogram and a since-start histogram. */
export class HopRecorder {
  readonly interval = nsHistogram();
  readonly total = nsHistogram();
  /** Summary of the last completed interval. */
  last: LatencySummary = { ...EMPTY };

  /** Records one latency in ns. Negative values (clock skew) count as 1 ns; beyond 60 s as 60 s. */
  record(ns: number): void {
    this.interval.recordValue(ns < 1 ? 1 : ns > HIGHEST_NS ? HIGHEST_NS : ns);
  }

  /** Adds another process's interval histogram (a client report) into this one. */
  merge(h: hdr.Histogram): void {
    this.interval.add(h);
  }

  /** Closes the interval: summarises it, adds it to the total, resets it. */
  roll(): LatencySummary {
    this.last = summarize(this.interval);
    if (this.interval.totalCount > 0) this.total.add(this.interval);
    this.interval.reset();
    return this.last;
  }

  reset(): void {
    this.interval.reset();
    this.total.reset();
    this.last = { ...EMPTY };
  }
}

/** A recorder per hop class. */
export type HopRecorders = Record<Hop, HopRecorder>;

export function hopRecorders(): HopRecorders {
  return { pubToBroker: new HopRecorder(), brokerToClient: new HopRecorder(), endToEnd: new HopRecorder(), handler: new HopRecorder() };
}

/**
 * What a client publishes on `$SYS.report.<clientId>` every report interval (msgpack
 * map). Histograms travel in the standard HdrHistogram interchange form (compressed,
 * base64: `encodeIntoCompressedBase64`), so the broker merges them exactly and any
 * HdrHistogram library can read them.
 */
export interface ClientReport {
  /** Report format version: 1. */
  v: 1;
  /** The client's name (CONNECT name). */
  name: string;
  /** Length of the interval the report covers, in ms. */
  intervalMs: number;
  /** Messages received and published in the interval. */
  msgsIn: number;
  msgsOut: number;
  /** Busiest 1 ms and 5 ms of received messages in the interval. */
  peak1ms: number;
  peak5ms: number;
  /** Interval histograms of the hops this client measures (only non-empty ones). */
  hist: Partial<Record<'brokerToClient' | 'endToEnd' | 'handler', string>>;
}

export const encodeHistogram = (h: hdr.Histogram): string => hdr.encodeIntoCompressedBase64(h);
export const decodeHistogram = (s: string): hdr.Histogram => hdr.decodeFromCompressedBase64(s, 32, false);
