/**
 * Queue groups hold state (a round-robin position) per queue name while they have
 * members, and none after: 100,000 distinct names that come and go leave the broker as
 * it was, whether members unsubscribe or their connection closes.
 */
import v8 from 'node:v8';
import vm from 'node:vm';
import { describe, expect, it } from 'vitest';
import { until, useWorld } from '../kit/index.js';

const w = useWorld();

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

function heapAfterGc(): number {
  gc();
  gc();
  return process.memoryUsage().heapUsed;
}

describe('queue group state', () => {
  it('100,000 distinct queue names, subscribed then unsubscribed or dropped with their connection, leave no state behind', async () => {
    const b = await w.broker();
    const router = b.broker.router;
    const warm = await w.connect(b.url);
    for (let i = 0; i < 1000; i++) warm.subscribe('jobs', { queue: `warm${i}` }).unsubscribe();
    await warm.flush();
    await warm.close();
    const before = heapAfterGc();

    const N = 100_000;
    const bus = await w.connect(b.url);
    for (let i = 0; i < N / 2; i++) {
      bus.subscribe(`jobs.${i % 100}`, { queue: `q${i}` }).unsubscribe();
      if (i % 5000 === 4999) await bus.flush();
    }
    await bus.flush();
    expect(router.queueGroups).toBe(0);
    // The other half is still subscribed when its connection goes.
    const leaving = await w.connect(b.url);
    for (let i = N / 2; i < N; i++) {
      leaving.subscribe(`jobs.${i % 100}`, { queue: `q${i}` });
      if (i % 5000 === 4999) await leaving.flush();
    }
    await leaving.flush();
    expect(router.queueGroups).toBe(N / 2);
    await leaving.close();
    await until(() => b.broker.sessions.size === 1, 'the broker to drop the closed connection');
    expect(router.queueGroups).toBe(0);

    // About 250 bytes a name were kept before: 25 MB here. A little garbage may stay.
    const grown = heapAfterGc() - before;
    expect(grown).toBeLessThan(8 * 1024 * 1024);
  });

  it('a group shared by two connections keeps its state until the last member leaves, and round robin carries on', async () => {
    const b = await w.broker();
    const router = b.broker.router;
    const m1 = await w.connect(b.url);
    const m2 = await w.connect(b.url);
    const got = [0, 0];
    const s1 = m1.subscribe('work', () => got[0]!++, { queue: 'g' });
    m2.subscribe('work', () => got[1]!++, { queue: 'g' });
    await Promise.all([m1.flush(), m2.flush()]);
    expect(router.queueGroups).toBe(1);
    s1.unsubscribe();
    await m1.flush();
    expect(router.queueGroups).toBe(1);
    const pub = await w.connect(b.url);
    for (let i = 0; i < 10; i++) pub.publish('work', i);
    await pub.flush();
    await m2.flush();
    expect(got).toEqual([0, 10]);
    await m2.close();
    await until(() => b.broker.sessions.size === 2, 'the broker to drop the closed member');
    expect(router.queueGroups).toBe(0);
  });
});
