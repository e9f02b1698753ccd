import hdr from 'hdr-histogram-js';

/** Latency percentiles of one run, in microseconds. */
export interface Percentiles {
  count: number;
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
}

/** An HDR histogram of nanosecond samples (3 significant digits, up to 60 s). */
export function histogram(): hdr.Histogram {
  return hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 60e9, numberOfSignificantValueDigits: 3 });
}

export function percentiles(h: hdr.Histogram): Percentiles {
  const us = (ns: number) => Math.round(ns / 10) / 100;
  return {
    count: h.totalCount,
    p50: us(h.getValueAtPercentile(50)),
    p90: us(h.getValueAtPercentile(90)),
    p99: us(h.getValueAtPercentile(99)),
    p999: us(h.getValueAtPercentile(99.9)),
    max: us(h.maxValue),
  };
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Median of each field over runs, and the spread (min..max) of each. */
export function medianOf(runs: Percentiles[]): Percentiles & { spread: Record<string, [number, number]> } {
  const keys = ['p50', 'p90', 'p99', 'p999', 'max'] as const;
  const out = { count: runs.reduce((a, r) => a + r.count, 0), spread: {} as Record<string, [number, number]> } as Percentiles & {
    spread: Record<string, [number, number]>;
  };
  for (const k of keys) {
    const vals = runs.map((r) => r[k]);
    out[k] = Math.round(median(vals) * 100) / 100;
    out.spread[k] = [Math.min(...vals), Math.max(...vals)];
  }
  return out;
}

/** Milliseconds → ns as an integer, from performance.now() differences. */
export const nowNs = (): number => performance.now() * 1e6;

/** Median of a figure over runs, with its spread. */
export interface Summary {
  median: number;
  min: number;
  max: number;
}

export function summarize(xs: number[]): Summary {
  return { median: median(xs), min: Math.min(...xs), max: Math.max(...xs) };
}
