import { describe, expect, it } from 'vitest';
import { ERR, FLAG_FATAL, OP, sessionOf, until, useWorld } from './harness.js';

const w = useWorld();

/** Keepalive every 100 ms; two unanswered PINGs make a connection stale. */
const KEEPALIVE = { pingIntervalMs: 100, maxPingsOut: 2 };

describe('keepalive', () => {
  it('a connection that completed CONNECT but never answers PING is closed with ERR STALE_CONNECTION', async () => {
    const b = await w.broker(KEEPALIVE);
    const raw = await w.raw(b);
    raw.answerPings = false;
    await raw.handshake({ name: 'silent' });
    await raw.closed;
    expect(raw.count(OP.PING)).toBe(2);
    const errs = raw.errors();
    expect(errs.map((e) => [e.code, e.flags & FLAG_FATAL])).toEqual([[ERR.STALE_CONNECTION, FLAG_FATAL]]);
    expect(errs[0]!.text).toMatch(/stale/);
    await until(() => b.broker.sessions.size === 0, 'the broker to forget the stale connection');
  });

  it('a connection that answers PINGs stays open over many intervals', async () => {
    const b = await w.broker(KEEPALIVE);
    const raw = await w.raw(b);
    raw.answerPings = true;
    await raw.handshake();
    await until(() => raw.count(OP.PING) >= 6, 'six keepalive PINGs');
    expect(raw.isClosed).toBe(false);
    expect(raw.errors()).toEqual([]);
  });

  it('an SDK client answers the broker PINGs and stays connected over several intervals', async () => {
    const b = await w.broker(KEEPALIVE);
    const bus = await w.connect(b.url, { name: 'sdk' });
    let disconnects = 0;
    bus.on('disconnect', () => disconnects++);
    const got: string[] = [];
    bus.subscribe('alive', (m) => got.push(m.string()));
    // A raw peer that answers is the clock: six of its PINGs are six intervals.
    const clock = await w.raw(b);
    clock.answerPings = true;
    await clock.handshake();
    await until(() => clock.count(OP.PING) >= 6, 'six keepalive intervals');
    expect(disconnects).toBe(0);
    expect(bus.connected).toBe(true);
    expect(sessionOf(b, 'sdk').open).toBe(true);
    bus.publish('alive', 'yes');
    await bus.flush();
    expect(got).toEqual(['yes']);
  });

  it('with pingIntervalMs 0 the broker sends no PINGs', async () => {
    const b = await w.broker({ pingIntervalMs: 0, handshakeTimeoutMs: 100 });
    const raw = await w.raw(b);
    await raw.handshake();
    // A second connection that never sends CONNECT is closed after 100 ms: by then a
    // keepalive would have had time to PING the first.
    const idle = await w.raw(b);
    await idle.closed;
    await raw.roundTrip();
    expect(raw.count(OP.PING)).toBe(0);
    expect(raw.isClosed).toBe(false);
  });
});

describe('handshake timeout', () => {
  it('a connection that never sends CONNECT is closed after handshakeTimeoutMs with a fatal ERR', async () => {
    const b = await w.broker({ handshakeTimeoutMs: 150 });
    const raw = await w.raw(b);
    await raw.closed;
    const errs = raw.errors();
    expect(errs.map((e) => [e.code, e.flags & FLAG_FATAL])).toEqual([[ERR.PROTOCOL, FLAG_FATAL]]);
    expect(errs[0]!.text).toMatch(/CONNECT/);
    expect(raw.frames.some((f) => f.op === OP.INFO)).toBe(false);
  });

  it('a connection that sends CONNECT in time is not closed by the handshake timer', async () => {
    const b = await w.broker({ handshakeTimeoutMs: 150, pingIntervalMs: 0 });
    const raw = await w.raw(b);
    await raw.handshake();
    // Outlive the timer: a later connection that stays silent is closed by it.
    const idle = await w.raw(b);
    await idle.closed;
    await raw.roundTrip();
    expect(raw.isClosed).toBe(false);
    expect(raw.errors()).toEqual([]);
  });
});
