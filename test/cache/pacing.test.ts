/**
 * Large images are paced under the subscriber's flow control: a subscriber that stops
 * reading in the middle of a 20,000-subject image (12 MB, far more than its maxPending and the socket buffers)
 * is not disconnected and holds no more than the high-water mark in the broker; others
 * are served meanwhile; when it reads again, the image completes. Asserted by the
 * broker's state and counters and by frames received, never by timing.
 */
import { describe, expect, it } from 'vitest';
import { ImageKind, Op, SUB_SNAPSHOT } from '../../transports/protocol/index.js';
import { subFrame, until, useWorld } from '../kit/index.js';

const world = useWorld();
const SUBJECTS = 20_000;
const HIGH_WATER = 64 * 1024;

describe('image pacing', () => {
  it('a subscriber that stops reading mid-image keeps its connection, costs at most the high-water mark, and others are unaffected', async () => {
    const b = await world.broker({
      cache: [{ pattern: 'md.>', maxSubjects: SUBJECTS, maxBytes: 64 << 20 }],
      highWaterBytes: HIGH_WATER,
      maxPending: 1 << 20,
    });
    const pub = await world.connect(b.url, { name: 'pub' });
    const payload = 'x'.repeat(600);
    for (let i = 0; i < SUBJECTS; i++) {
      pub.publish(`md.S${i}`, payload);
      if (i % 2000 === 1999) await pub.flush();
    }
    await pub.flush();
    expect(b.broker.cache.stats().subjects).toBe(SUBJECTS);

    // A raw subscriber, so that it can stop reading: a snapshot SUB, then its socket paused.
    const raw = await world.raw(b);
    raw.keepPayloads = false;
    await raw.handshake({ name: 'slow' });
    const sub = subFrame(1, 'md.>');
    sub[5] = SUB_SNAPSHOT;
    raw.socket.pause();
    raw.send(sub);
    const session = [...b.broker.sessions].find((s) => s.name === 'slow')!;
    // Stalled: the feed stopped at the high-water mark, the rest of the image waits.
    // The image (12 MB) is more than the socket buffers of a connection that does not read:
    // it cannot complete while the socket is paused.
    await until(() => session.feed !== null && session.feed.pauses > 0, 'the image under way');

    // Meanwhile a healthy subscriber gets every live message.
    const healthy = await world.connect(b.url, { name: 'healthy' });
    let got = 0;
    healthy.subscribe('live.x', () => got++);
    await healthy.flush();
    for (let i = 0; i < 500; i++) pub.publish('live.x', i);
    await until(() => got === 500, 'the healthy subscriber gets every live message');

    const feed = session.feed!;
    expect(session.open).toBe(true);
    expect(b.broker.counters.slowConsumers).toBe(0);
    expect(b.broker.cache.stats().imagesPending).toBe(1);
    // Never more than the high-water mark plus the frame that crossed it.
    expect(feed.peakPending).toBeLessThanOrEqual(HIGH_WATER + 700);
    expect(feed.pauses).toBeGreaterThan(0);

    raw.socket.resume();
    await until(() => raw.frames.some((f) => f.op === Op.IMAGE && f.flags === ImageKind.END), 'IMAGE END', 30_000);
    // Its only messages are the image's (the raw client keeps no payloads, only the count).
    expect(raw.msgCount).toBe(SUBJECTS);
    expect(raw.frames.filter((f) => f.op === Op.IMAGE).map((f) => f.flags)).toEqual([ImageKind.BEGIN, ImageKind.END]);
    expect(b.broker.cache.stats()).toMatchObject({ imagesPending: 0, snapshots: 1 });
    expect(b.broker.counters.slowConsumers).toBe(0);
    expect(raw.isClosed).toBe(false);
  }, 60_000);
});
