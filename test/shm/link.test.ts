/**
 * ShmLink, both ends in one thread: frames of every size through the rings (and
 * frames larger than a ring), back-pressure into the overflow queue, closing, and
 * the liveness checks.
 */
import { describe, expect, it } from 'vitest';
import { FakeClock } from '../../runtime/clock.js';
import { CLOSED_EXITED, H_CLIENT_CLOSED } from '../../transports/shm/layout.js';
import { type Collector, frameOf, linkPair, until } from './helpers.js';

describe('shm link: frames through the rings', () => {
  it('delivers frames of every size up to the ring capacity, in order, byte for byte, both ways', async () => {
    const cap = 4096;
    const { client, broker, atClient, atBroker } = linkPair(cap);
    const sizes = [6];
    for (let s = 8; s <= cap; s++) sizes.push(s);
    // Bounded in flight: the ring is a socket-sized buffer, not the subject here.
    for (let i = 0; i < sizes.length; i++) {
      client.send(frameOf(sizes[i]!, i), 0, sizes[i]!);
      broker.send(frameOf(sizes[i]!, i), 0, sizes[i]!);
      if (i % 64 === 63) await until(() => atBroker.frames.length === i + 1 && atClient.frames.length === i + 1, `frame ${i}`);
    }
    await until(() => atBroker.frames.length === sizes.length && atClient.frames.length === sizes.length, 'all frames');
    for (let i = 0; i < sizes.length; i++) {
      const want = frameOf(sizes[i]!, i);
      if (!atBroker.frames[i]!.equals(want) || !atClient.frames[i]!.equals(want)) throw new Error(`frame ${i} (${sizes[i]} bytes) differs`);
    }
    client.close();
    await until(() => atBroker.closed !== undefined && atClient.closed !== undefined, 'both ends closed');
  });

  it('carries frames larger than the ring, in pieces, through the overflow queue', async () => {
    const { client, atBroker } = linkPair(4096);
    const big = [frameOf(10_000, 1), frameOf(4097, 2), frameOf(100_000, 3)];
    for (const f of big) client.send(f, 0, f.length);
    expect(client.pendingBytes).toBeGreaterThan(0);
    await until(() => atBroker.frames.length === 3, 'three large frames');
    big.forEach((f, i) => expect(atBroker.frames[i]!.equals(f)).toBe(true));
    await until(() => client.pendingBytes === 0, 'the overflow queue empties');
    expect(client.writeBlockedSince).toBe(0);
  });

  it('encodes in place: reserve() hands out the ring itself when the frame fits', () => {
    const { client } = linkPair(4096);
    const buf = client.reserve(100);
    expect(buf.buffer).toBeInstanceOf(SharedArrayBuffer);
    expect(buf.length).toBe(4096);
  });
});

describe('shm link: a full ring', () => {
  it('never overwrites unread data: the writer queues, pendingBytes grows, and all arrives in order once the reader resumes', async () => {
    const cap = 4096;
    const { client, broker, atBroker } = linkPair(cap);
    broker.pause();
    const frames: Buffer[] = [];
    for (let i = 0; i < 200; i++) frames.push(frameOf(100 + (i % 50), i));
    for (const f of frames) client.send(f, 0, f.length);
    // Publish the ring now (what the writer's microtask does), and poll the reader: it has
    // bytes in its ring but, paused, nothing to do and nothing read.
    client.flush();
    expect(broker.ready()).toBe(false);
    expect(broker.poll()).toBe(0);
    // The ring holds at most `cap` bytes; the rest waits in the writer's queue.
    const total = frames.reduce((a, f) => a + f.length, 0);
    expect(atBroker.frames.length).toBe(0);
    expect(client.pendingBytes).toBeGreaterThanOrEqual(total - cap);
    expect(client.writeBlockedSince).toBeGreaterThan(0);
    const drainsBefore = (client as unknown as { handler: Collector }).handler.drains;

    broker.resume();
    await until(() => atBroker.frames.length === frames.length, 'every frame after resume');
    frames.forEach((f, i) => {
      if (!atBroker.frames[i]!.equals(f)) throw new Error(`frame ${i} differs`);
    });
    expect(client.pendingBytes).toBe(0);
    expect(client.writeBlockedSince).toBe(0);
    // The writer was told its queue drained (the broker pumps held messages on it).
    expect((client as unknown as { handler: Collector }).handler.drains).toBeGreaterThan(drainsBefore);
  });
});

describe('shm link: closing and liveness', () => {
  it('a clean close delivers everything written before it, then closes the peer without an error', async () => {
    const { client, atBroker, atClient } = linkPair(4096);
    for (let i = 0; i < 100; i++) client.send(frameOf(200, i), 0, 200);
    client.close();
    await until(() => atBroker.closed !== undefined, 'the broker end closes');
    expect(atBroker.frames.length).toBe(100);
    expect(atBroker.closed).toBeNull();
    await until(() => atClient.closed !== undefined, 'the client end reports its close');
    expect(atClient.closed).toBeNull();
  });

  it('destroy() resets the peer with an error', async () => {
    const { broker, atClient } = linkPair(4096);
    broker.destroy(new Error('bye'));
    await until(() => atClient.closed !== undefined, 'the client end closes');
    expect(atClient.closed?.message).toMatch(/reset by the broker/);
  });

  it('a thread that exits marks its connections, and the peer closes at once with the reason', async () => {
    const { client, atBroker } = linkPair(4096);
    client.exitNow(); // what the client thread's process 'exit' hook does
    expect(Atomics.load(client.header, H_CLIENT_CLOSED)).toBe(CLOSED_EXITED);
    await until(() => atBroker.closed !== undefined, 'the broker end closes');
    expect(atBroker.closed?.message).toMatch(/client thread exited/);
  });

  it('a peer that stops its heartbeat is declared gone after the timeout (the ticks on a fake time line)', async () => {
    // The pollers' own ticks never come (an hour apart): the test ticks both ends itself.
    const clock = new FakeClock(0);
    const { client, broker, atBroker } = linkPair(4096, { heartbeatMs: 3_600_000, heartbeatTimeoutMs: 60, clock });
    for (let t = 10; t <= 200; t += 10) {
      client.tick(t);
      broker.tick(t);
    }
    expect(broker.closed).toBe(false); // 200 ms of beating, far past the timeout: alive
    // The client stops (a terminated thread): no more ticks from it. Its last beat was seen at 200.
    broker.tick(260);
    expect(broker.closed).toBe(false); // 60 ms: not over the timeout yet
    broker.tick(261);
    await until(() => atBroker.closed !== undefined, 'the broker end gives up on the client');
    expect(atBroker.closed?.message).toMatch(/client thread stopped \(no heartbeat for 61 ms\)/);
  });
});
