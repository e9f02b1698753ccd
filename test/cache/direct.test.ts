/**
 * Snapshot subscriptions on direct (shm) connections, with real worker threads: a
 * snapshot subscription is served through the broker for its whole life (direct
 * publishers learn it as REMOTE interest), in order with its image, while the same
 * worker's plain subscription keeps being served through the channel; and the cache
 * sees every message of its subjects even when only direct peers subscribe (the cache's
 * patterns are REMOTE interest for every direct publisher). Workers load dist/.
 */
import { describe, expect, it } from 'vitest';
import { connectBroker } from '../../client/index.js';
import { eventually, until } from '../kit/index.js';
import { Agent, useShmWorld } from '../shm/helpers.js';

const shm = useShmWorld();

type Report = {
  received: number;
  outOfOrder: number;
  first: number;
  next: number;
  snapshots: number;
  seqBreaks: number;
  noSeq: number;
  firstSeq: number;
  lastSeq: number;
  imageDone?: number;
};

async function agent(ep: () => unknown, name: string): Promise<Agent> {
  const a = await Agent.start(ep, { name, wait: 'hybrid' });
  shm.agents.push(a);
  return a;
}

async function report(a: Agent, key: string): Promise<Report> {
  return (await a.call<{ subs: Record<string, Report> }>('report')).subs[key]!;
}

describe('snapshot subscriptions and direct delivery', () => {
  it('the snapshot subscription gets its image then every later message through the broker, in sequence; the plain one stays direct', async () => {
    const b = await shm.start({ cache: [{ pattern: 'md.>', maxSubjects: 100, maxBytes: 1 << 20 }] });
    const sub = await agent((w?: unknown) => b.endpoint('shm', { worker: w as never }), 'sub');
    const pub = await agent((w?: unknown) => b.endpoint('shm', { worker: w as never }), 'pub');
    await sub.call('sub', { subject: 'md.a', key: 'plain', seq: true });
    await sub.call('sub', { subject: 'md.warm' });
    // Until a message lands in the channel, the broker serves sub; then pub writes to it itself.
    await eventually(
      async () => (await pub.call('pub', { subject: 'md.warm', n: 1 }), b.broker.direct.stats()),
      (d) => d.channels === 1 && d.msgs > 0,
      'pub writing into its channel to sub',
    );
    // The cache saw those messages although only a direct peer subscribes.
    const tcp = await connectBroker(b.url);
    shm.buses.push(tcp);
    expect(b.broker.cache.get('md.warm')!.seq).toBeGreaterThan(0);
    expect(await tcp.last('md.warm')).toBeInstanceOf(Uint8Array);

    const n = 20_000;
    const streaming = pub.call('pub', { subject: 'md.a', n, size: 16 });
    // Mid-stream: a snapshot subscription on the same worker and subject.
    await until(() => (b.broker.cache.get('md.a')?.seq ?? 0) > 1000, 'the stream under way');
    await sub.call('sub', { subject: 'md.a', key: 'snap', options: { snapshot: true } });
    await streaming;
    await sub.call('flush');
    const total = n;
    const snap = await eventually(
      () => report(sub, 'snap'),
      (r) => r.lastSeq === total,
      'the snapshot subscription up to the last message',
      10_000,
    );
    // One cached value (snapshotDone said 1), then live messages in sequence, every one from the broker (each has a seq).
    expect(snap).toMatchObject({ snapshots: 1, imageDone: 1, seqBreaks: 0, noSeq: 0, lastSeq: total });
    expect(snap.received).toBe(total - snap.firstSeq + 1);
    const plain = await eventually(
      () => report(sub, 'plain'),
      (r) => r.next === n,
      'the plain subscription',
    );
    expect(plain).toMatchObject({ received: n, outOfOrder: 0, first: 0 });
    // The plain subscription kept the channel: most of the stream never went through the broker to it.
    expect(b.broker.direct.stats().msgs).toBeGreaterThan(n / 2);
    expect(b.broker.cache.get('md.a')!.seq).toBe(total);
  }, 60_000);
});
