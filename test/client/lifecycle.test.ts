import { once } from 'node:events';
import { describe, expect, it } from 'vitest';
import { ConnectionError } from '../../client/index.js';
import { until, useWorld } from '../kit/index.js';

const w = useWorld();

describe('flush()', () => {
  it('resolves once the broker has processed every publish made before it', async () => {
    const b = await w.broker();
    const bus = await w.connect(b.url);
    for (let i = 0; i < 1000; i++) bus.publish('f', i);
    await bus.flush();
    expect(b.broker.counters.msgsIn).toBe(1000);
  });

  it('concurrent flushes resolve in the order they were called', async () => {
    const b = await w.broker();
    const bus = await w.connect(b.url);
    const order: number[] = [];
    const flushes = [0, 1, 2, 3, 4].map((i) => {
      bus.publish('f', i);
      return bus.flush().then(() => order.push(i));
    });
    await Promise.all(flushes);
    expect(order).toEqual([0, 1, 2, 3, 4]);
  });

  it('resolves after every message the broker routed back to this connection before it was delivered', async () => {
    const b = await w.broker();
    const bus = await w.connect(b.url);
    let n = 0;
    bus.subscribe('loop', () => n++);
    for (let i = 0; i < 500; i++) bus.publish('loop', i);
    await bus.flush();
    expect(n).toBe(500);
  });

  it('rejects with ConnectionError on a closed connection', async () => {
    const b = await w.broker();
    const bus = await w.connect(b.url);
    await bus.close();
    await expect(bus.flush()).rejects.toBeInstanceOf(ConnectionError);
  });
});

describe('drain()', () => {
  it('delivers the messages already on their way, then closes', async () => {
    const b = await w.broker();
    const sub = await w.connect(b.url);
    const pub = await w.connect(b.url);
    let n = 0;
    const s = sub.subscribe('d', () => n++);
    await sub.flush();
    for (let i = 0; i < 5000; i++) pub.publish('d', i);
    // Every message is routed towards `sub` before it starts draining.
    await pub.flush();
    const closed = once(sub, 'close');
    await sub.drain();
    await closed;
    expect(n).toBe(5000);
    expect(sub.isClosed).toBe(true);
    expect(s.isClosedNow).toBe(true);
  });

  it('sends the publishes made before drain() first', async () => {
    const b = await w.broker();
    const sub = await w.connect(b.url);
    const got: number[] = [];
    sub.subscribe('d', (m) => got.push(m.value as number));
    await sub.flush();
    const pub = await w.connect(b.url);
    for (let i = 0; i < 100; i++) pub.publish('d', i);
    await pub.drain();
    await sub.flush();
    expect(got).toEqual([...Array(100).keys()]);
    expect(pub.isClosed).toBe(true);
  });

  it('lets an iterator finish its buffered messages and ends the loop', async () => {
    const b = await w.broker();
    const bus = await w.connect(b.url);
    const s = bus.subscribe('d');
    for (let i = 0; i < 10; i++) bus.publish('d', i);
    await bus.flush();
    await bus.drain();
    const got: number[] = [];
    for await (const m of s) got.push(m.value as number);
    expect(got).toEqual([...Array(10).keys()]);
  });

  it('refuses new subscriptions while draining, and the broker forgets the connection', async () => {
    const b = await w.broker();
    const bus = await w.connect(b.url, { name: 'drainer' });
    bus.subscribe('d', () => {});
    const draining = bus.drain();
    expect(() => bus.subscribe('x', () => {})).toThrow(ConnectionError);
    await draining;
    await until(() => b.broker.sessions.size === 0, 'the broker to drop the drained connection');
  });
});

describe('close()', () => {
  it('rejects pending requests with ConnectionError', async () => {
    const b = await w.broker();
    const responder = await w.connect(b.url);
    responder.subscribe('never', () => {});
    await responder.flush();
    const bus = await w.connect(b.url);
    const pending = bus.request('never', 'x', { timeoutMs: 10_000 });
    await bus.flush();
    const rejected = expect(pending).rejects.toBeInstanceOf(ConnectionError);
    await bus.close();
    await rejected;
  });

  it('emits close once, ends subscriptions, and makes further calls throw ConnectionError', async () => {
    const b = await w.broker();
    const bus = await w.connect(b.url);
    const s = bus.subscribe('c', () => {});
    let closes = 0;
    bus.on('close', () => closes++);
    await bus.close();
    await bus.close();
    await s.closed;
    expect(closes).toBe(1);
    expect(bus.isClosed).toBe(true);
    expect(bus.connected).toBe(false);
    expect(() => bus.publish('c', 'x')).toThrow(ConnectionError);
    expect(() => bus.subscribe('c', () => {})).toThrow(ConnectionError);
  });

  it('still writes out what was published before it', async () => {
    const b = await w.broker();
    const sub = await w.connect(b.url);
    const got: number[] = [];
    sub.subscribe('c', (m) => got.push(m.value as number));
    await sub.flush();
    const pub = await w.connect(b.url);
    for (let i = 0; i < 50; i++) pub.publish('c', i);
    await pub.close();
    await until(() => got.length === 50, '50 messages');
    expect(got).toEqual([...Array(50).keys()]);
  });

  it('a closed client is gone from the broker', async () => {
    const b = await w.broker();
    const bus = await w.connect(b.url);
    bus.subscribe('c', () => {});
    await bus.flush();
    expect(b.broker.sessions.size).toBe(1);
    await bus.close();
    await until(() => b.broker.sessions.size === 0, 'the session to end');
    expect(b.broker.tree.match('c').total).toBe(0);
  });
});
