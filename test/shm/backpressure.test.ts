/**
 * Full rings. A ring never overwrites unread bytes: what does not fit waits in the
 * writer's link, where it counts in pendingBytes exactly as a socket's unsent bytes
 * do, so a publishing worker learns it and the broker's slow-consumer policies act on
 * shm connections as on TCP ones.
 * Workers load dist/: run `npx tsc -p tsconfig.json` first.
 */
import { describe, expect, it } from 'vitest';
import type { BrokerOptions, StartedBroker } from '../../broker/index.js';
import { Agent, nextMessage, until, useShmWorld } from './helpers.js';

const shm = useShmWorld();
const { agents } = shm;

async function start(o: BrokerOptions): Promise<StartedBroker> {
  return shm.start(o);
}

function session(b: StartedBroker, name: string) {
  return [...b.broker.sessions].find((s) => s.name === name);
}

describe('a full ring', () => {
  it('a worker publishing into a full ring learns it (pendingBytes), and everything arrives in order once the consumer moves', async () => {
    // Small rings, and a consumer with the block policy that stops reading: the broker
    // stops reading the publisher, whose ring then fills.
    const b = await start({ maxPending: 1 << 20, highWaterBytes: 16 * 1024 });
    const sub = await Agent.start(b.endpoint('shm', { ringBytes: 4096 }), { name: 'sub', wait: 'park' });
    const pub = await Agent.start(b.endpoint('shm', { ringBytes: 4096 }), { name: 'pub', wait: 'park' });
    agents.push(sub, pub);
    await sub.call('sub', { subject: 'bp.test', seq: true, options: { policy: 'block' } });
    const frozen = await sub.freeze();

    const n = 1000;
    const { pendingBytes } = await pub.call<{ pendingBytes: number }>('pubNoWait', { subject: 'bp.test', n, size: 1000 });
    // Of ~1 MB published, at most the two 4 KiB rings and the consumer's 16 KiB
    // high-water mark (plus one in-flight chunk) got through: the rest waits at the publisher.
    expect(pendingBytes).toBeGreaterThan(n * 1000 - 64 * 1024);
    await until(() => session(b, 'pub')?.metrics().paused === true, 'the broker pauses the publisher');
    const consumerSide = session(b, 'sub')!;
    expect(consumerSide.link.pendingBytes).toBeGreaterThan(0);
    expect(consumerSide.link.writeBlockedSince).toBeGreaterThan(0);
    const stillPending = await pub.call<{ pendingBytes: number }>('pending');
    expect(stillPending.pendingBytes).toBeGreaterThan(n * 1000 - 64 * 1024);

    // Release the consumer: the held bytes flow, the broker resumes the publisher,
    // whose flush() then resolves.
    frozen.release();
    const flushed = await pub.call<{ pendingBytes: number }>('flush', { timeoutMs: 20_000 }, 30_000);
    expect(flushed.pendingBytes).toBe(0);
    await sub.call('flush');
    const { subs } = await sub.call<{ subs: Record<string, { received: number; outOfOrder: number; next: number }> }>('report');
    expect(subs['bp.test']).toMatchObject({ received: n, outOfOrder: 0, next: n });
    expect(b.broker.counters.slowConsumers).toBe(0);
  });

  it('a stuck shm consumer over maxPending is closed as a slow consumer, as a TCP one would be; the others are served', async () => {
    const b = await start({ maxPending: 64 * 1024 });
    const stuck = await Agent.start(b.endpoint('shm', { ringBytes: 4096 }), { name: 'stuck', wait: 'hybrid' });
    const fine = await Agent.start(b.endpoint('shm'), { name: 'fine', wait: 'hybrid' });
    const pub = await Agent.start(b.endpoint('shm'), { name: 'pub', wait: 'hybrid' });
    agents.push(stuck, fine, pub);
    await stuck.call('sub', { subject: 'sc.test', seq: true });
    await fine.call('sub', { subject: 'sc.test', seq: true });
    const frozen = await stuck.freeze(10_000);

    await pub.call('pub', { subject: 'sc.test', n: 500, size: 1000 });
    await until(() => b.broker.counters.slowConsumers === 1, 'the stuck consumer is closed');
    // Its subscriptions are gone at once; the session itself when its link has closed.
    expect(session(b, 'stuck')?.subs.size ?? 0).toBe(0);
    await fine.call('flush');
    const { subs } = await fine.call<{ subs: Record<string, { received: number; outOfOrder: number }> }>('report');
    expect(subs['sc.test']).toMatchObject({ received: 500, outOfOrder: 0 });

    // Once it thaws, the stuck worker reads the ERR and learns why it was dropped.
    const told = nextMessage<{ event?: string; reason?: string }>(stuck.worker, (m) => m.event === 'disconnect');
    frozen.release();
    await told;
    const { events } = await stuck.call<{ events: string[] }>('report');
    expect(events.join('\n')).toMatch(/slow consumer/i);
    await until(() => session(b, 'stuck') === undefined, 'the broker forgets the stuck consumer');
  });
});
