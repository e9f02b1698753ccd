import { describe, expect, it } from 'vitest';
import { sessionOf, useWorld } from '../kit/index.js';

const w = useWorld();

describe('broker counters and session stats', () => {
  it('count messages and bytes in from publishers and out to each receiving connection once', async () => {
    const b = await w.broker();
    const s1 = await w.connect(b.url, { name: 's1' });
    const s2 = await w.connect(b.url, { name: 's2' });
    const pub = await w.connect(b.url, { name: 'pub' });
    s1.subscribe('c.*', () => {});
    s1.subscribe('c.>', () => {});
    s2.subscribe('c.x', () => {});
    await Promise.all([s1.flush(), s2.flush()]);

    for (let i = 0; i < 10; i++) pub.publish('c.x', 'payload');
    pub.publish('c.y', 'payload');
    pub.publish('nobody', 'payload');
    await pub.flush();
    await Promise.all([s1.flush(), s2.flush()]);

    const c = b.broker.counters;
    const p = sessionOf(b, 'pub').stats;
    expect(c.msgsIn).toBe(12);
    expect(p.msgsIn).toBe(12);
    expect(p.bytesIn).toBe(pub.stats.bytesOut);
    expect(c.bytesIn).toBe(p.bytesIn);
    expect(c.unrouted).toBe(1);
    // c.x to s1 (once, for two subscriptions) and s2; c.y to s1 only.
    expect(sessionOf(b, 's1').stats.msgsOut).toBe(11);
    expect(sessionOf(b, 's2').stats.msgsOut).toBe(10);
    expect(c.msgsOut).toBe(21);
    expect(s1.stats.msgsIn).toBe(11);
    expect(s2.stats.msgsIn).toBe(10);
    expect(sessionOf(b, 's1').stats.bytesOut).toBe(s1.stats.bytesIn);
    expect(c.bytesOut).toBe(s1.stats.bytesIn + s2.stats.bytesIn);
    expect(c.slowConsumers).toBe(0);
    expect(c.connectionsTotal).toBe(3);
  });

  it('a queue group delivery counts once, to the chosen member', async () => {
    const b = await w.broker();
    const m1 = await w.connect(b.url, { name: 'm1' });
    const m2 = await w.connect(b.url, { name: 'm2' });
    m1.subscribe('q', () => {}, { queue: 'g' });
    m2.subscribe('q', () => {}, { queue: 'g' });
    await Promise.all([m1.flush(), m2.flush()]);
    const pub = await w.connect(b.url);
    for (let i = 0; i < 10; i++) pub.publish('q', i);
    await pub.flush();
    expect(b.broker.counters.msgsOut).toBe(10);
    expect(sessionOf(b, 'm1').stats.msgsOut + sessionOf(b, 'm2').stats.msgsOut).toBe(10);
  });
});
