import { once } from 'node:events';
import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { ConnectionError, PendingLimitError, connect } from '../../client/index.js';
import { Bus } from '../../client/bus.js';
import { deadUrl, guard, portOf, sessionOf, until, useWorld } from '../kit/index.js';

const w = useWorld();

/** Fast reconnects so tests do not wait on backoff. */
const FAST = { reconnectDelayMs: 10, maxReconnectDelayMs: 50, reconnectJitterMs: 0 };

describe('reconnecting', () => {
  it('when the broker restarts on the same port the client emits disconnect then reconnect, and its subscriptions work again without re-subscribing', async () => {
    const b1 = await w.broker();
    const port = portOf(b1);
    const bus = await w.connect(b1.url, FAST);
    const events: string[] = [];
    bus.on('disconnect', () => events.push('disconnect'));
    bus.on('reconnect', (url: string) => events.push(`reconnect ${url}`));
    const got: string[] = [];
    const s = bus.subscribe('r.*', (m) => got.push(m.string()));
    bus.publish('r.1', 'before');
    await bus.flush();

    const disconnected = once(bus, 'disconnect');
    await b1.close();
    await disconnected;
    expect(bus.connected).toBe(false);
    expect(bus.isClosed).toBe(false);

    const reconnected = once(bus, 'reconnect');
    const b2 = await w.broker({ port });
    await reconnected;
    expect(events).toEqual(['disconnect', `reconnect tcp://127.0.0.1:${port}`]);
    expect(bus.connected).toBe(true);
    expect(bus.stats.reconnects).toBe(1);
    expect(s.isClosedNow).toBe(false);

    // Another client on the new broker reaches the old subscription.
    const pub = await w.connect(b2.url);
    pub.publish('r.2', 'after');
    await pub.flush();
    await bus.flush();
    expect(got).toEqual(['before', 'after']);
  });

  it('publishes made while disconnected are delivered after reconnecting, in order', async () => {
    const b1 = await w.broker();
    const port = portOf(b1);
    const bus = await w.connect(b1.url, FAST);
    const got: number[] = [];
    bus.subscribe('q', (m) => got.push(m.value as number));
    await bus.flush();

    const disconnected = once(bus, 'disconnect');
    await b1.close();
    await disconnected;
    for (let i = 0; i < 100; i++) bus.publish('q', i);
    expect(bus.pendingBytes).toBeGreaterThan(0);
    // A flush made while disconnected resolves once the broker has the backlog.
    const flushed = bus.flush();

    const b2 = await w.broker({ port });
    await flushed;
    expect(got).toEqual([...Array(100).keys()]);
    expect(b2.broker.counters.msgsIn).toBe(100);
  });

  it('drain() while reconnecting waits for the reconnect and sends what was published meanwhile', async () => {
    const b1 = await w.broker();
    const port = portOf(b1);
    const bus = await w.connect(b1.url, { ...FAST, timeoutMs: 10_000 });
    const disconnected = once(bus, 'disconnect');
    await b1.close();
    await disconnected;
    for (let i = 0; i < 10; i++) bus.publish('late', i);
    const drained = bus.drain();
    const b2 = await w.broker({ port });
    await drained;
    expect(bus.isClosed).toBe(true);
    expect(b2.broker.counters.msgsIn).toBe(10);
  });

  it('a request made while disconnected is answered after reconnecting', async () => {
    const b1 = await w.broker();
    const port = portOf(b1);
    // One connection serves and asks: its subscriptions are re-sent before its backlog.
    const bus = await w.connect(b1.url, FAST);
    bus.subscribe('svc', (m) => m.respond(`re:${m.string()}`));
    expect((await bus.request('svc', 'warm-up')).string()).toBe('re:warm-up');

    const disconnected = once(bus, 'disconnect');
    await b1.close();
    await disconnected;
    const pending = bus.request('svc', 'queued', { timeoutMs: 10_000 });
    await w.broker({ port });
    expect((await pending).string()).toBe('re:queued');
  });

  it('a subscription with max keeps its remaining count across a reconnect, and the new broker stops sending then', async () => {
    const b1 = await w.broker();
    const port = portOf(b1);
    const bus = await w.connect(b1.url, { ...FAST, name: 'limited' });
    const got: number[] = [];
    const s = bus.subscribe('m', (m) => got.push(m.value as number), { max: 5 });
    for (let i = 0; i < 2; i++) bus.publish('m', i);
    await bus.flush();
    const disconnected = once(bus, 'disconnect');
    await b1.close();
    await disconnected;
    const reconnected = once(bus, 'reconnect');
    const b2 = await w.broker({ port });
    await reconnected;
    const pub = await w.connect(b2.url);
    for (let i = 2; i < 10; i++) pub.publish('m', i);
    await pub.flush();
    await bus.flush();
    await s.closed;
    expect(got).toEqual([0, 1, 2, 3, 4]);
    expect(sessionOf(b2, 'limited').stats.msgsOut).toBe(3);
  });

  it('queue group membership survives a reconnect', async () => {
    const b1 = await w.broker();
    const port = portOf(b1);
    const m1 = await w.connect(b1.url, FAST);
    const m2 = await w.connect(b1.url, FAST);
    const got: number[][] = [[], []];
    m1.subscribe('job', (m) => got[0]!.push(m.value as number), { queue: 'g' });
    m2.subscribe('job', (m) => got[1]!.push(m.value as number), { queue: 'g' });
    const down = Promise.all([once(m1, 'disconnect'), once(m2, 'disconnect')]);
    await b1.close();
    await down;
    const up = Promise.all([once(m1, 'reconnect'), once(m2, 'reconnect')]);
    const b2 = await w.broker({ port });
    await up;
    await Promise.all([m1.flush(), m2.flush()]);
    const pub = await w.connect(b2.url);
    for (let i = 0; i < 100; i++) pub.publish('job', i);
    await pub.flush();
    await until(() => got[0]!.length + got[1]!.length >= 100, 'all jobs');
    expect(got.flat().sort((a, b) => a - b)).toEqual([...Array(100).keys()]);
    expect(got[0]!.length).toBe(50);
  });

  it('beyond reconnectBufferBytes, publish while disconnected throws PendingLimitError', async () => {
    const b1 = await w.broker();
    const bus = await w.connect(b1.url, { ...FAST, reconnectBufferBytes: 1000 });
    const disconnected = once(bus, 'disconnect');
    await b1.close();
    await disconnected;
    const payload = new Uint8Array(100);
    let accepted = 0;
    let err: unknown;
    for (let i = 0; i < 100 && err === undefined; i++) {
      try {
        bus.publish('overflow', payload);
        accepted++;
      } catch (e) {
        err = e;
      }
    }
    expect(err).toBeInstanceOf(PendingLimitError);
    expect((err as PendingLimitError).code).toBe('PENDING_LIMIT');
    expect(accepted).toBeGreaterThan(0);
    expect(accepted * 100).toBeLessThanOrEqual(1000);
    expect(bus.pendingBytes).toBeLessThanOrEqual(1000);
  });

  it('only the publishes that fitted the reconnect buffer are delivered, in order', async () => {
    const b1 = await w.broker();
    const port = portOf(b1);
    const bus = await w.connect(b1.url, { ...FAST, reconnectBufferBytes: 2000 });
    const got: number[] = [];
    bus.subscribe('o', (m) => got.push(Buffer.from(m.data).readUInt32LE(0)));
    await bus.flush();
    const disconnected = once(bus, 'disconnect');
    await b1.close();
    await disconnected;
    const sent: number[] = [];
    for (let i = 0; i < 200; i++) {
      const p = Buffer.alloc(64);
      p.writeUInt32LE(i, 0);
      try {
        bus.publish('o', p);
        sent.push(i);
      } catch (e) {
        expect(e).toBeInstanceOf(PendingLimitError);
      }
    }
    expect(sent.length).toBeLessThan(200);
    const reconnected = once(bus, 'reconnect');
    await w.broker({ port });
    await reconnected;
    await bus.flush();
    expect(got).toEqual(sent);
  });

  it('with a list of servers whose first is dead, connect uses the second', async () => {
    const dead = await deadUrl();
    const b = await w.broker();
    const bus = await w.connect([dead, b.url]);
    expect(bus.server).toBe(b.url);
    expect(bus.connected).toBe(true);
  });

  it('after losing its server, the client reconnects to another server of its list', async () => {
    const b1 = await w.broker();
    const b2 = await w.broker();
    const bus = await w.connect([b1.url, b2.url], FAST);
    expect(bus.server).toBe(b1.url);
    const got: string[] = [];
    bus.subscribe('fail.over', (m) => got.push(m.string()));
    const reconnected = once(bus, 'reconnect');
    await b1.close();
    const [url] = await reconnected;
    expect(url).toBe(b2.url);
    expect(bus.server).toBe(b2.url);
    bus.publish('fail.over', 'on b2');
    await bus.flush();
    expect(got).toEqual(['on b2']);
  });

  it('connecting to nothing rejects with ConnectionError', async () => {
    const dead = await deadUrl();
    await expect(connect(dead, { timeoutMs: 2000 })).rejects.toBeInstanceOf(ConnectionError);
    await expect(connect([dead, dead], { timeoutMs: 2000 })).rejects.toBeInstanceOf(ConnectionError);
  });

  it('close() while reconnecting ends cleanly: close resolves, close is emitted, and no reconnection follows', async () => {
    const b1 = await w.broker();
    const port = portOf(b1);
    const bus = await w.connect(b1.url, FAST);
    const errors: Error[] = [];
    bus.on('error', (e) => errors.push(e));
    let reconnects = 0;
    bus.on('reconnect', () => reconnects++);
    const sub = bus.subscribe('x', () => {});
    const disconnected = once(bus, 'disconnect');
    await b1.close();
    await disconnected;
    const closed = once(bus, 'close');
    await bus.close();
    await closed;
    await sub.closed;
    expect(bus.isClosed).toBe(true);
    expect(() => bus.publish('x', 'y')).toThrow(ConnectionError);

    const b2 = await w.broker({ port });
    // Give the (stopped) reconnect loop many of its 10-50 ms periods to misbehave.
    const deadline = Date.now() + 300;
    while (Date.now() < deadline) {
      expect(b2.broker.counters.connectionsTotal).toBe(0);
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(reconnects).toBe(0);
    expect(errors).toEqual([]);
  });

  it('close() during a long reconnect backoff resolves without waiting for the backoff', async () => {
    // A second "server" that accepts and hangs up at once: each reconnect attempt on it is visible.
    let attempts = 0;
    const trap = net.createServer((socket) => {
      attempts++;
      socket.destroy();
    });
    await new Promise<void>((resolve) => trap.listen(0, '127.0.0.1', resolve));
    try {
      const trapUrl = `tcp://127.0.0.1:${(trap.address() as net.AddressInfo).port}`;
      const b1 = await w.broker();
      const bus = await w.connect([b1.url, trapUrl], { reconnectDelayMs: 60_000, maxReconnectDelayMs: 60_000, reconnectJitterMs: 0 });
      const disconnected = once(bus, 'disconnect');
      await b1.close();
      await disconnected;
      // The loop tried the trap, then the dead b1, and now backs off for a minute.
      await until(() => attempts >= 1, 'a reconnect attempt');
      await Promise.race([bus.close(), guard(5_000, 'close() during the backoff')]);
      expect(bus.isClosed).toBe(true);
    } finally {
      await new Promise((resolve) => trap.close(resolve));
    }
  });

  it('a client with reconnect off closes when its server goes away', async () => {
    const b1 = await w.broker();
    const bus = await w.connect(b1.url, { reconnect: false });
    const events: string[] = [];
    bus.on('disconnect', () => events.push('disconnect'));
    bus.on('close', () => events.push('close'));
    const closed = once(bus, 'close');
    await b1.close();
    await closed;
    expect(events).toEqual(['disconnect', 'close']);
    expect(bus.isClosed).toBe(true);
  });

  it('after maxReconnectAttempts failed attempts the client reports a ConnectionError and closes', async () => {
    const b1 = await w.broker();
    const bus = await w.connect(b1.url, { ...FAST, maxReconnectAttempts: 3 });
    const errors: Error[] = [];
    bus.on('error', (e) => errors.push(e));
    // (events.once would reject on the 'error' event this test expects.)
    const closed = new Promise<void>((resolve) => bus.once('close', () => resolve()));
    await b1.close();
    await closed;
    expect(errors).toHaveLength(1);
    expect(errors[0]).toBeInstanceOf(ConnectionError);
    expect(errors[0]!.message).toMatch(/3 attempts/);
  });

  it('a Bus built directly opens with open() and is then usable', async () => {
    const b = await w.broker();
    const bus = w.track(new Bus(b.url));
    await bus.open();
    const got: string[] = [];
    bus.subscribe('d', (m) => got.push(m.string()));
    bus.publish('d', 'x');
    await bus.flush();
    expect(got).toEqual(['x']);
  });
});
