import { describe, expect, it } from 'vitest';
import { StampSampler, stampWeight } from '../../metrics/latency.js';
import { connect } from '../../client/index.js';
import { startBroker } from '../../broker/index.js';

describe('publisher-side stamp sampling', () => {
  it('stamps every publish at low rates and one in N (N a power of two up to 128) when publishing fast', () => {
    const s = new StampSampler();
    // A tight loop publishes far above 50k/s: after the first 4096 the sampler thins out.
    let stamped = 0;
    for (let i = 0; i < 4096; i++) if (s.next()) stamped++;
    expect(stamped).toBe(4096);
    for (let i = 0; i < 4096; i++) s.next();
    const n = s.weight;
    expect(n).toBeGreaterThan(1);
    expect(n).toBeLessThanOrEqual(128);
    expect(n & (n - 1)).toBe(0);
    stamped = 0;
    for (let i = 0; i < 1024; i++) if (s.next()) stamped++;
    expect(stamped).toBe(1024 / n);
  });

  it('a stamped frame carries its weight in byte 7, and frames without one count once', () => {
    const frame = Buffer.alloc(64);
    const tsOff = 20;
    expect(stampWeight(frame, tsOff)).toBe(1);
    frame[7] = 32;
    expect(stampWeight(frame, tsOff)).toBe(32);
  });

  it('a fast publisher with the latency service on stamps a sample, each stamped message carrying its weight', async () => {
    const b = await startBroker({ host: '127.0.0.1', port: 0, logLevel: 'silent' });
    try {
      const pub = await connect(b.url, { timestamps: true });
      const sub = await connect(b.url, { latency: false });
      let total = 0;
      let stamped = 0;
      let weighted = 0;
      sub.subscribe('fast', (m) => {
        total++;
        if (m.sentAt !== undefined) {
          stamped++;
          weighted += (m as unknown as { buf: Buffer }).buf[(m as unknown as { tsOff: number }).tsOff - 13] || 1;
        }
      });
      await sub.flush();
      const N = 50_000;
      for (let i = 0; i < N; i++) pub.publish('fast', 'x');
      await pub.flush();
      await sub.flush();
      expect(total).toBe(N);
      expect(stamped).toBeGreaterThan(0);
      expect(stamped).toBeLessThan(N);
      // The weights add up to the messages they stand for, within one sampling window.
      expect(Math.abs(weighted - N)).toBeLessThanOrEqual(4096 + 128);
      await pub.close();
      await sub.close();
    } finally {
      await b.close();
    }
  });
});
