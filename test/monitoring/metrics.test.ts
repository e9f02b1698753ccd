/** The measurement primitives of metrics/: clock, u64 halves, burst meter, heavy hitters, histograms. */
import { describe, expect, it } from 'vitest';
import { CLOCK_ORIGIN_NS, monoNs, readU64, writeU64 } from '../../runtime/clock.js';
import { BurstMeter } from '../../metrics/burst.js';
import { SpaceSaving } from '../../metrics/topk.js';
import { FastCounts, HopRecorder, SAMPLE_TARGET_PER_SEC, Sampler, decodeHistogram, encodeHistogram, nsHistogram, summarize } from '../../metrics/latency.js';

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

  it('FastCounts lays counts out as HDR does: drained, they give the percentiles direct recording gives', () => {
    const fast = new FastCounts();
    const direct = nsHistogram();
    let x = 12345;
    for (let i = 0; i < 20_000; i++) {
      x = (x * 1103515245 + 12345) % 2147483648;
      const v = i % 3 === 0 ? 1 + (x % 2000) : i % 3 === 1 ? 1000 + (x % 5_000_000) : 1 + (x % 4_000_000_000);
      fast.record(v, 1);
      direct.recordValue(v);
    }
    fast.record(6e9, 1); // beyond 2^32 ns: counted as 4.29 s
    direct.recordValue(2 ** 32 - 1);
    const h = nsHistogram();
    fast.drainInto(h);
    expect(fast.total).toBe(0);
    expect(h.totalCount).toBe(direct.totalCount);
    for (const p of [1, 10, 50, 90, 99, 99.9, 100]) {
      const a = h.getValueAtPercentile(p);
      const b = direct.getValueAtPercentile(p);
      expect(Math.abs(a - b) / b, `p${p}: ${a} vs ${b}`).toBeLessThan(0.002);
    }
  });

  it('Sampler measures every message at low rates and one in a power of two, weighted, at high rates', () => {
    const s = new Sampler();
    let taken = 0;
    for (let i = 0; i < 1000; i++) if (s.take(i * 1e6)) taken++; // 1000 msg/s
    expect(taken).toBe(1000);
    expect(s.weight).toBe(1);
    s.adapt(SAMPLE_TARGET_PER_SEC * 10);
    expect(s.weight).toBe(16);
    taken = 0;
    for (let i = 0; i < 1600; i++) if (s.take(1e9 + i * 1e6)) taken++;
    expect(taken * 16).toBe(1600);
    // A burst: 2 M msg/s (500 ns apart) raises N within 8192 messages.
    const t = new Sampler();
    for (let i = 0; i < 8192; i++) t.take(5e9 + i * 500);
    expect(t.weight).toBe(64);
    s.adapt(1e12);
    expect(s.weight).toBe(1024);
    s.adapt(0);
    expect(s.weight).toBe(1);
    const r = new HopRecorder();
    r.record(5000, 64);
    expect(r.roll().count).toBe(64);
  });
});
