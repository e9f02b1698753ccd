import { describe, expect, it } from 'vitest';
import { ERR, FLAG_FATAL, subFrame, until, useWorld } from '../kit/index.js';

const w = useWorld();

describe('slow consumers', () => {
  it('a subscriber that stops reading is disconnected with SLOW_CONSUMER while a healthy subscriber receives everything', async () => {
    const b = await w.broker({ maxPending: 64 * 1024 });

    // The stuck subscriber: subscribes, then stops reading its socket.
    const stuck = await w.raw(b);
    stuck.keepPayloads = false;
    await stuck.handshake({ name: 'stuck' });
    stuck.send(subFrame(1, 'feed'));
    await stuck.roundTrip();
    stuck.socket.pause();

    const healthy = await w.connect(b.url, { name: 'healthy' });
    const healthyErrors: Error[] = [];
    healthy.on('error', (e) => healthyErrors.push(e));
    let received = 0;
    let next = 0;
    let inOrder = true;
    healthy.subscribe('feed', (m) => {
      if ((m.value as { seq: number }).seq !== next) inOrder = false;
      next++;
      received++;
    });
    await healthy.flush();

    // Publish in flushed batches of ~32 KiB, well under maxPending, so a subscriber
    // that reads never has more than that queued, until the broker gives up on the
    // stuck one (once the kernel buffers towards it are full).
    const pub = await w.connect(b.url, { name: 'pub' });
    const blob = new Uint8Array(4000);
    let sent = 0;
    const publishBatch = async (): Promise<void> => {
      for (let i = 0; i < 8; i++) pub.publish('feed', { seq: sent++, blob });
      await pub.flush();
    };
    const cap = (64 * 1024 * 1024) / blob.length;
    while (b.broker.counters.slowConsumers === 0 && sent < cap) await publishBatch();
    expect(b.broker.counters.slowConsumers).toBe(1);

    // Let the stuck one read again: it finds the ERR after what was queued, then EOF.
    stuck.socket.resume();
    await stuck.closed;
    const errs = stuck.errors();
    expect(errs.map((e) => [e.code, e.flags & FLAG_FATAL])).toEqual([[ERR.SLOW_CONSUMER, FLAG_FATAL]]);
    expect(stuck.msgCount).toBeLessThan(sent);

    // Publishing goes on; the healthy subscriber gets every message, in order.
    for (let i = 0; i < 10; i++) await publishBatch();
    await until(() => received >= sent, `healthy subscriber to receive ${sent} (has ${received})`);
    await healthy.flush();
    expect(received).toBe(sent);
    expect(inOrder).toBe(true);
    expect(healthyErrors).toEqual([]);
    expect(healthy.connected).toBe(true);
    expect(b.broker.counters.slowConsumers).toBe(1);
    expect([...b.broker.sessions].map((s) => s.name).sort()).toEqual(['healthy', 'pub']);
  });

  it('an SDK subscriber cut off as a slow consumer gets a fatal ServerError SLOW_CONSUMER on its error event, then reconnects and is told how many it lost', async () => {
    // A message bigger than maxPending overflows the queue towards any subscriber at
    // once: the deterministic way to make an SDK client a slow consumer.
    const b = await w.broker({ maxPending: 1024 });
    const sub = await w.connect(b.url, { name: 'slow', reconnectDelayMs: 10, reconnectJitterMs: 0 });
    const errors: Error[] = [];
    sub.on('error', (e) => errors.push(e));
    const events: string[] = [];
    sub.on('disconnect', () => events.push('disconnect'));
    sub.on('reconnect', () => events.push('reconnect'));
    const got: number[] = [];
    sub.subscribe('feed', (m) => got.push(m.data.length));
    await sub.flush();
    const pub = await w.connect(b.url);
    pub.publish('feed', new Uint8Array(4096));
    await pub.flush();
    await until(() => events.includes('reconnect'), 'the reconnect');
    expect(b.broker.counters.slowConsumers).toBe(1);
    expect(events).toEqual(['disconnect', 'reconnect']);
    expect(errors).toHaveLength(2);
    const err = errors[0] as Error & { code: string; serverCode: string; fatal: boolean };
    expect(err.name).toBe('ServerError');
    expect(err.code).toBe('SLOW_CONSUMER');
    expect(err.serverCode).toBe('SLOW_CONSUMER');
    expect(err.fatal).toBe(true);
    // The big message was not written yet: dropped, so that the ERR came first, and counted
    // in the notice of the new connection.
    const notice = errors[1] as Error & { code: string; lost: number };
    expect(notice.name).toBe('SlowConsumerError');
    expect(notice.code).toBe('SLOW_CONSUMER');
    expect(notice.lost).toBe(1);
    // Small messages flow again on the new connection, through the same subscription.
    pub.publish('feed', new Uint8Array(10));
    await pub.flush();
    await sub.flush();
    expect(got).toEqual([10]);
  });
});
