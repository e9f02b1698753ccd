/** The measurement primitives of metrics/: clock, u64 halves, burst meter, heavy hitters, histograms. */
import { describe, expect, it } from 'vitest';
import { CLOCK_ORIGIN_NS, monoNs, readU64, writeU64 } from '../../metrics/clock.js';
import { BurstMeter } from '../../metrics/burst.js';
import { SpaceSaving } from '../../metrics/topk.js';
import { HopRecorder, decodeHistogram, encodeHistogram, nsHistogram, summarize } from '../../metrics/latency.js';

describe('clock', () => {
  it('monoNs reads CLOCK_MONOTONIC (what process.hrtime.bigint reads) within a few microseconds', () => {
    expect(CLOCK_ORIGIN_NS).toBeGreaterThan(0);
    for (let i = 0; i < 5; i++) {
      const a = process.hrtime.bigint();
      const m = monoNs();
      const b = process.hrtime.bigint();
      expect(m).toBeGreaterThanOrEqual(Number(a) - 5000);
      expect(m).toBeLessThanOrEqual(Number(b) + 5000);
    }
  });

  it('u64 halves round-trip and match Buffer BigInt encoding', () => {
    const buf = Buffer.alloc(16);
    for (const v of [0, 1, 2 ** 32 - 1, 2 ** 32, 2 ** 32 + 1, 123456789012345, Number.MAX_SAFE_INTEGER]) {
      writeU64(buf, 3, v);
      expect(buf.readBigUInt64LE(3)).toBe(BigInt(v));
      expect(readU64(buf, 3)).toBe(v);
      buf.writeBigUInt64LE(BigInt(v), 8);
      expect(readU64(buf, 8)).toBe(v);
    }
  });
});

describe('BurstMeter', () => {
  it('finds the busiest 1 ms slot and the busiest 5 consecutive slots', () => {
    const m = new BurstMeter();
    // 10 messages at 0.x ms, 3 in slot 2, 50 in slot 4, 7 in slot 6, 1 in slot 20.
    for (let i = 0; i < 10; i++) m.note(100.1, 10);
    for (let i = 0; i < 3; i++) m.note(102.5, 10);
    for (let i = 0; i < 50; i++) m.note(104.9, 100);
    for (let i = 0; i < 7; i++) m.note(106.0, 10);
    m.note(120.3, 1);
    const p = m.take();
    expect(p.peak1msMsgs).toBe(50);
    expect(p.peak1msBytes).toBe(5000);
    // slots 102..106 hold 3 + 50 + 7 = 60; slots 100..104 hold 63.
    expect(p.peak5msMsgs).toBe(63);
    expect(p.peak5msBytes).toBe(100 + 30 + 5000);
  });

  it('starts a new interval at each take(), and a long gap empties the window', () => {
    const m = new BurstMeter();
    for (let i = 0; i < 5; i++) m.note(1.5, 1);
    expect(m.take().peak1msMsgs).toBe(5);
    m.note(1000.2, 1);
    m.note(1001.2, 1);
    const p = m.take();
    expect(p.peak1msMsgs).toBe(1);
    expect(p.peak5msMsgs).toBe(2);
    // Nothing since: nothing is reported twice.
    expect(m.take()).toEqual({ peak1msMsgs: 0, peak1msBytes: 0, peak5msMsgs: 0, peak5msBytes: 0 });
  });
});

describe('SpaceSaving', () => {
  it('keeps at most capacity subjects and always the heavy ones, with an error bound', () => {
    const s = new SpaceSaving(5);
    for (let round = 0; round < 20; round++) {
      s.add('hot.a', 100, 1000);
      s.add('hot.b', 50, 500);
      for (let i = 0; i < 30; i++) s.add(`cold.${round}.${i}`, 1, 10);
    }
    expect(s.size).toBe(5);
    const top = s.top(2);
    expect(top.map((t) => t.subject)).toEqual(['hot.a', 'hot.b']);
    expect(top[0]!.msgs - top[0]!.error).toBeLessThanOrEqual(2000);
    expect(top[0]!.msgs).toBeGreaterThanOrEqual(2000);
  });
});

describe('latency histograms', () => {
  it('summarise in microseconds, roll intervals into the total, and survive the HDR interchange encoding', () => {
    const r = new HopRecorder();
    for (let i = 1; i <= 1000; i++) r.record(i * 1000); // 1..1000 µs
    r.record(-5); // clock skew counts as the minimum
    const last = r.roll();
    expect(last.count).toBe(1001);
    expect(last.p50).toBeGreaterThan(495);
    expect(last.p50).toBeLessThan(505);
    expect(last.max).toBeGreaterThanOrEqual(999);
    expect(r.interval.totalCount).toBe(0);
    expect(r.total.totalCount).toBe(1001);
    const h = nsHistogram();
    for (let i = 0; i < 100; i++) h.recordValue(42_000);
    const back = summarize(decodeHistogram(encodeHistogram(h)));
    const orig = summarize(h);
    expect(back.count).toBe(orig.count);
    for (const k of ['p50', 'p99', 'max'] as const) expect(Math.abs(back[k] - orig[k])).toBeLessThan(0.1);
  });
});
