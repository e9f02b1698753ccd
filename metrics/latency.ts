/**
 * Latency histograms per hop class: what the broker and each client measure from the
 * timestamps a message carries (transports/protocol FLAG_TS), and how they are summarised and
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
 * Recording is a typed-array increment (FastCounts): no allocation. Each recorder keeps
 * an interval histogram (reset at every report) and one since start (the intervals
 * added up).
 */
import hdr from 'hdr-histogram-js';

/** Hop classes, in the order they are shown. Stable names: JSON keys and Prometheus labels. */
export const HOPS = ['pubToBroker', 'brokerToClient', 'endToEnd', 'handler'] as const;
export type Hop = (typeof HOPS)[number];

/** Largest latency an HDR histogram here tracks: 60 s. */
const HIGHEST_NS = 60e9;

/** An HDR histogram of nanoseconds, 3 significant digits (so 1 µs resolution up to 1 ms). */
export function nsHistogram(): hdr.Histogram {
  return hdr.build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: HIGHEST_NS,
    numberOfSignificantValueDigits: 3,
    bitBucketSize: 32,
    useWebAssembly: false,
  });
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

/**
 * The per-message side of a histogram: counts in a Uint32Array laid out exactly as
 * an HdrHistogram of 3 significant digits (2048 sub-buckets, unit 1 ns) lays out its
 * own, so recording is a clz32, a shift and an increment (~5 ns), where
 * hdr-histogram-js's recordValue measured ~160 ns here: three of those per message
 * cost more than the rest of the client's receive path. Once per interval the counts
 * are moved into a real HDR histogram (drainInto), which does everything else:
 * percentiles, merging, the interchange encoding.
 *
 *   index = (bucket + 1) * 1024 + (value >>> bucket) - 1024,
 *   bucket = max(0, 32 - clz32(value | 2047) - 11)
 *
 * Values are ns below 2^32 (4.29 s); longer ones are recorded as 4.29 s.
 */
export class FastCounts {
  private static readonly SIZE = (32 - 11 + 1) * 1024 + 1024;
  readonly counts = new Uint32Array(FastCounts.SIZE);
  total = 0;

  record(ns: number, weight: number): void {
    const v = ns < 1 ? 1 : ns >= 4294967295 ? 4294967295 : ns >>> 0;
    const bucket = 21 - Math.clz32(v | 2047);
    this.counts[((bucket + 1) << 10) + (v >>> bucket) - 1024]! += weight;
    this.total += weight;
  }

  /** Adds the counts into `h` (at each bucket's lowest value) and clears them. */
  drainInto(h: hdr.Histogram): void {
    if (this.total === 0) return;
    const c = this.counts;
    for (let i = 0; i < c.length; i++) {
      const n = c[i]!;
      if (n === 0) continue;
      const bucket = i < 2048 ? 0 : (i >>> 10) - 1;
      const sub = i < 2048 ? i : (i & 1023) + 1024;
      h.recordValueWithCount(sub * 2 ** bucket, n);
      c[i] = 0;
    }
    this.total = 0;
  }
}

/** Samples per second a sampler aims at; below it every message is measured. */
export const SAMPLE_TARGET_PER_SEC = 50_000;

/**
 * Which messages to measure. Below SAMPLE_TARGET_PER_SEC messages a second every one
 * is; above, one in N (N a power of two), recorded with weight N, so counts still add
 * up to messages and percentiles stay those of a uniform sample. At 3 M msg/s that is
 * one in 64: the per-message cost is an increment and two masks, where measuring every
 * message cost ~15-20% of throughput.
 *
 * N follows the rate both ways: every 4096 messages from the time they took (so a
 * burst is sampled within a few ms of starting), and at every interval from the
 * interval's rate (so N comes down when traffic does).
 */
export class Sampler {
  private mask = 0;
  private n = 0;
  private lastAt = 0;

  /** True for the messages to measure; `nowNs` is the message's arrival time. */
  take(nowNs: number): boolean {
    const n = ++this.n;
    if ((n & 4095) === 0) {
      if (this.lastAt > 0 && nowNs > this.lastAt) this.adapt((4096 * 1e9) / (nowNs - this.lastAt));
      this.lastAt = nowNs;
    }
    return (n & this.mask) === 0;
  }

  /** How many messages each measured one stands for. */
  get weight(): number {
    return this.mask + 1;
  }

  /** Sets N from a message rate. */
  adapt(perSec: number): void {
    let n = 1;
    while (n * SAMPLE_TARGET_PER_SEC < perSec && n < 1024) n <<= 1;
    this.mask = n - 1;
  }
}

/**
 * The publisher's side of sampling. Above SAMPLE_TARGET_PER_SEC publishes a second,
 * only one message in N carries timestamps (each costs a clock read and 16 bytes on
 * the wire, the dearest part of the service at high rates), N a power of two up to
 * 128. The stamped message carries N in byte 7 of its PUB/MSG frame, so every hop
 * that measures it counts it N times. The clock is read once per 4096 publishes.
 */
export class StampSampler {
  private mask = 0;
  private n = 0;
  private lastAt = 0;

  /** True when this publish is to carry timestamps. */
  next(): boolean {
    const n = ++this.n;
    if ((n & 4095) === 0) {
      const now = performance.now();
      if (this.lastAt > 0 && now > this.lastAt) {
        const perSec = (4096 * 1000) / (now - this.lastAt);
        let k = 1;
        while (k * SAMPLE_TARGET_PER_SEC < perSec && k < 128) k <<= 1;
        this.mask = k - 1;
      }
      this.lastAt = now;
    }
    return (n & this.mask) === 0;
  }

  /** How many publishes the stamped one stands for (goes in byte 7). */
  get weight(): number {
    return this.mask + 1;
  }
}

/** The weight a stamped frame carries (byte 7; 0 from senders that do not sample means 1). */
export function stampWeight(buf: Uint8Array, tsOff: number): number {
  return buf[tsOff - 13] || 1;
}

/** One hop class: an interval histogram and a since-start histogram. */
export class HopRecorder {
  readonly interval = nsHistogram();
  readonly total = nsHistogram();
  private readonly fast = new FastCounts();
  /** Summary of the last completed interval. */
  last: LatencySummary = { ...EMPTY };

  /**
   * Records one latency in ns, standing for `weight` messages (see Sampler). Negative
   * values (clock skew) count as 1 ns. Allocates nothing.
   */
  record(ns: number, weight = 1): void {
    this.fast.record(ns, weight);
  }

  /** Moves what record() counted into the interval histogram. */
  settle(): hdr.Histogram {
    this.fast.drainInto(this.interval);
    return this.interval;
  }

  /** Adds another process's interval histogram (a client report) into this one. */
  merge(h: hdr.Histogram): void {
    this.interval.add(h);
  }

  /** Closes the interval: summarises it, adds it to the total, resets it. */
  roll(): LatencySummary {
    this.settle();
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
