/**
 * The latency service end to end: histograms fill when publishers stamp timestamps
 * and stay empty when they do not or when the service is off; clients report their
 * hops to the broker; $SYS.latency reports reach any subscriber; bus.stats().
 */
import { describe, expect, it } from 'vitest';
import { until, useWorld } from '../kit/index.js';
import type { StartedBroker } from '../../broker/index.js';
import type { Msg } from '../../client/index.js';
import { getJson } from './http.js';

const w = useWorld();
const FAST = { httpPort: 0, monitorIntervalMs: 50 };
const HOPS = ['pubToBroker', 'brokerToClient', 'endToEnd', 'handler'];
const SUMMARY_KEYS = ['count', 'min', 'mean', 'p50', 'p90', 'p99', 'p999', 'max'];

async function traffic(url: string, timestamps: boolean, n = 200) {
  const sub = await w.connect(url, { name: 'sub' });
  const pub = await w.connect(url, { name: 'pub', timestamps });
  let got = 0;
  sub.subscribe('lat.x', () => {
    got++;
  });
  await sub.flush();
  for (let i = 0; i < n; i++) pub.publish('lat.x', i);
  await pub.flush();
  await until(() => got === n, 'every message delivered');
  return { sub, pub };
}

/**
 * Resolves once the broker's monitor has run `n` more intervals (it replaces its rates at
 * each): what a negative check about periodic reports waits for, instead of a sleep.
 * Clients report on the same period (INFO reportIntervalMs = monitorIntervalMs).
 */
async function intervals(b: StartedBroker, n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    const r = b.broker.monitor.rates;
    await until(() => b.broker.monitor.rates !== r, `monitor interval ${i + 1} of ${n}`);
  }
}

describe('latency histograms', () => {
  it('fill for every hop class when timestamps are on, at the broker and in the client', async () => {
    const b = await w.broker(FAST);
    const { sub } = await traffic(b.url, true);
    // The client reports its hops at the next interval; the broker merges them.
    await until(() => b.broker.monitor.hops.endToEnd.total.totalCount >= 200, 'the client report merged at the broker');
    const l = await getJson(b, '/latency');
    expect(l).toMatchObject({ serverId: b.broker.serverId, enabled: true, intervalMs: 50, unit: 'us' });
    for (const hop of HOPS) {
      expect(Object.keys(l.total[hop]).sort()).toEqual([...SUMMARY_KEYS].sort());
      expect(Object.keys(l.interval[hop]).sort()).toEqual([...SUMMARY_KEYS].sort());
      // At this rate every message is measured (no sampling: metrics/latency.ts Sampler).
      expect(l.total[hop].count, hop).toBe(200);
      const s = l.total[hop];
      expect(s.min).toBeLessThanOrEqual(s.p50);
      expect(s.p50).toBeLessThanOrEqual(s.p99);
      expect(s.p99).toBeLessThanOrEqual(s.max);
    }
    // Transit: end to end covers both hops (HDR buckets and the per-process clock origin allow a little slack).
    expect(l.total.endToEnd.p50 + 5).toBeGreaterThanOrEqual(l.total.brokerToClient.p50);
    expect(l.clients).toHaveLength(1);
    expect(l.clients[0]).toMatchObject({ name: 'sub' });
    expect(l.clients[0].hops.endToEnd.count).toBe(200);
    expect(l.clients[0].msgsIn).toBeGreaterThanOrEqual(1);
    expect(l.clients[0].peak1ms).toBeGreaterThanOrEqual(1);
    expect(l.clients[0].peak5ms).toBeGreaterThanOrEqual(l.clients[0].peak1ms);
    const st = sub.stats();
    expect(st.msgsIn).toBeGreaterThanOrEqual(200);
    expect(st.latency!.total.endToEnd.count).toBe(200);
    expect(st.latency!.total.brokerToClient.count).toBe(200);
    expect(st.latency!.total.handler.count).toBe(200);
    expect(Object.keys(st.latency!.bursts).sort()).toEqual(['peak1msBytes', 'peak1msMsgs', 'peak5msBytes', 'peak5msMsgs']);
    // The counters are still readable as fields.
    expect(sub.stats.msgsIn).toBe(st.msgsIn);
    const c = await getJson(b, '/connz');
    const s = c.connections.find((x: { name: string }) => x.name === 'sub');
    expect(s.latency.endToEnd.count).toBe(200);
  });

  it('stay empty when the publisher does not stamp timestamps', async () => {
    const b = await w.broker(FAST);
    const { sub } = await traffic(b.url, false);
    await intervals(b, 3);
    const l = await getJson(b, '/latency');
    for (const hop of HOPS) expect(l.total[hop].count, hop).toBe(0);
    expect(l.clients).toHaveLength(0);
    expect(sub.stats().latency!.total.endToEnd.count).toBe(0);
    expect(b.broker.monitor.reports).toBe(0);
  });

  it('stay empty with the latency service switched off, in the broker and in the client', async () => {
    const b = await w.broker({ ...FAST, latency: false });
    const sub = await w.connect(b.url, { latency: false });
    const pub = await w.connect(b.url, { timestamps: true });
    let got = 0;
    sub.subscribe('off', (m: Msg) => {
      got++;
      // Timestamps still travel: turning measurement off does not change the wire.
      expect(typeof m.sentAt).toBe('bigint');
      expect(m.brokerAt! >= m.sentAt!).toBe(true);
    });
    await sub.flush();
    for (let i = 0; i < 50; i++) pub.publish('off', i);
    await until(() => got === 50, 'delivery');
    expect(b.broker.info(1).reportIntervalMs).toBe(0);
    const l = await getJson(b, '/latency');
    expect(l.enabled).toBe(false);
    for (const hop of HOPS) expect(l.total[hop].count).toBe(0);
    expect(sub.stats().latency).toBeNull();
  });

  it('takes brokerAt from the broker monotonic clock, after sentAt', async () => {
    const b = await w.broker(FAST);
    const sub = await w.connect(b.url);
    const pub = await w.connect(b.url, { timestamps: true });
    const got: Msg[] = [];
    sub.subscribe('ts', (m) => got.push(m));
    await sub.flush();
    const before = process.hrtime.bigint();
    pub.publish('ts', 'x');
    await until(() => got.length === 1, 'delivery');
    const after = process.hrtime.bigint();
    const m = got[0]!;
    expect(m.sentAt! >= before - 1000n).toBe(true);
    expect(m.brokerAt! >= m.sentAt!).toBe(true);
    expect(m.brokerAt! <= after + 1000n).toBe(true);
  });
});

describe('$SYS.latency and $SYS.stats', () => {
  it('arrive periodically at any subscriber, with hop summaries, bursts, rates and busiest subjects', async () => {
    const b = await w.broker(FAST);
    const watcher = await w.connect(b.url, { name: 'engine' });
    const lat: Record<string, any>[] = []; // eslint-disable-line @typescript-eslint/no-explicit-any
    const stats: Record<string, any>[] = []; // eslint-disable-line @typescript-eslint/no-explicit-any
    watcher.subscribe('$SYS.latency', (m) => lat.push(m.value as Record<string, unknown>));
    watcher.subscribe('$SYS.stats', (m) => stats.push(m.value as Record<string, unknown>));
    await watcher.flush();
    const { pub } = await traffic(b.url, true, 300);
    await until(() => lat.some((r) => r.total.endToEnd.count === 300) && stats.some((s) => s.topSubjects.length > 0), 'reports with the traffic in them');
    const r = lat.at(-1)!;
    expect(r.serverId).toBe(b.broker.serverId);
    for (const hop of HOPS) expect(Object.keys(r.interval[hop]).sort()).toEqual([...SUMMARY_KEYS].sort());
    expect(Object.keys(r.bursts).sort()).toEqual(['peak1msBytes', 'peak1msMsgs', 'peak5msBytes', 'peak5msMsgs']);
    const s = stats.find((x) => x.topSubjects.length > 0)!;
    expect(s.topSubjects[0]).toMatchObject({ subject: 'lat.x' });
    expect(s.topSubjects[0].msgsPerSec).toBeGreaterThan(0);
    expect(s.bursts.peak1msMsgs).toBeGreaterThan(0);
    expect(s.bursts.peak5msMsgs).toBeGreaterThanOrEqual(s.bursts.peak1msMsgs);
    expect(s.rates.msgsInPerSec).toBeGreaterThan(0);
    expect(s).toMatchObject({ connections: 3 });
    expect(s.totals.msgsIn).toBeGreaterThanOrEqual(300);
    await pub.close();
  });

  it('are not built when nobody subscribes', async () => {
    const b = await w.broker(FAST);
    await traffic(b.url, true, 10);
    const before = b.broker.counters.msgsOut;
    await intervals(b, 4);
    // Only the client's own reports (to nobody) were published meanwhile.
    expect(b.broker.counters.msgsOut).toBe(before);
  });

  it('a report that is not a v1 msgpack map is counted and ignored', async () => {
    const b = await w.broker(FAST);
    const c = await w.connect(b.url);
    c.publish('$SYS.report.99', { v: 7 });
    c.publish('$SYS.report.99', 'text');
    c.publish('$SYS.report.99', { v: 1, hist: { endToEnd: 'not base64 hdr' } });
    await c.flush();
    expect(b.broker.monitor.badReports).toBe(2);
    expect(b.broker.monitor.reports).toBe(0);
  });
});
