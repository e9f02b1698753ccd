/**
 * Authentication on the hopbus protocol's listeners, with the SDK and raw sockets over
 * real TCP, Unix and WebSocket connections: users with hashed and plain passwords,
 * tokens, credentials in the URL, anonymous connections refused or allowed, the AUTH
 * error and the closed connection, the log line (address and user, no secret), the
 * counters in /metrics and /varz, the auth timeout and the per-address back-off on a
 * FakeClock.
 */
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { hashPassword } from '../../broker/auth/index.js';
import { FREE_FAILURES } from '../../broker/auth/backoff.js';
import { startBroker, type BrokerOptions } from '../../broker/index.js';
import { connectBroker } from '../../client/index.js';
import { FakeClock } from '../../runtime/clock.js';
import { RawClient, connectFrame, portOf, until, useWorld } from '../kit/index.js';
import { capture, refusal } from './helpers.js';
import { getJson, getText, wsUrl } from '../monitoring/http.js';

const ERR = 0x41;
const AUTH = 13;
const CHEAP = { N: 1024, r: 8, p: 1 };
const USERS: BrokerOptions = {
  users: [
    { user: 'alice', password: hashPassword('wonderland', CHEAP) },
    { user: 'bob', password: 'builder' },
  ],
  tokens: ['tok-123', { token: hashPassword('svc-secret', CHEAP), name: 'svc' }],
};

const world = useWorld();

describe('users and tokens on the hopbus listeners', () => {
  it('admits the right password (hashed or plain) and refuses a wrong one with AUTH, closed', async () => {
    const b = await world.broker(USERS);
    const alice = await world.connect(b.url, { user: 'alice', pass: 'wonderland', name: 'alice' });
    await alice.flush();
    const bob = await world.connect(b.url, { user: 'bob', pass: 'builder' });
    await bob.flush();
    const err = await refusal(connectBroker(b.url, { user: 'alice', pass: 'wonderlanD', reconnect: false }));
    expect(err.code).toBe('AUTH');
    expect(err.message).toMatch(/wrong user or password/);
    expect(err.message).not.toMatch(/wonderlanD/);
    await refusal(connectBroker(b.url, { user: 'mallory', pass: 'x', reconnect: false }));
    expect(b.broker.counters.authFailures).toBe(2);
    // The refused connections are closed: only the two admitted stay.
    await until(() => b.broker.sessions.size === 2, 'the refused sessions gone');
  });

  it('refuses a connection that presents nothing when users are configured, and says so', async () => {
    const b = await world.broker(USERS);
    const err = await refusal(connectBroker(b.url, { reconnect: false }));
    expect(err.code).toBe('AUTH');
    expect(err.message).toMatch(/authentication required/);
    const raw = await world.raw(b);
    raw.send(connectFrame({ name: 'raw' }));
    await raw.closed;
    expect(raw.frames.map((f) => [f.op, f.code])).toEqual([[ERR, AUTH]]);
  });

  it('admits tokens, plain and hashed, and refuses an unknown one', async () => {
    const b = await world.broker(USERS);
    await (await world.connect(b.url, { token: 'tok-123' })).flush();
    await (await world.connect(b.url, { token: 'svc-secret' })).flush();
    expect((await refusal(connectBroker(b.url, { token: 'tok-124', reconnect: false }))).message).toMatch(/unknown token/);
  });

  it('takes the user and password from the URL, over TCP and WebSocket, and keeps them out of the server address', async () => {
    const b = await world.broker({ ...USERS, httpPort: 0 });
    const u = new URL(b.url);
    const tcp = await world.connect(`tcp://alice:wonderland@${u.host}`);
    await tcp.flush();
    const ws = await world.connect(wsUrl(b).replace('ws://', 'ws://bob:builder@'));
    await ws.flush();
    expect(ws.server).not.toMatch(/builder/);
    await refusal(connectBroker(`tcp://alice:nope@${u.host}`, { reconnect: false }));
    await until(() => b.broker.sessions.size === 2, 'the refused session gone');
    expect([...b.broker.sessions].map((s) => s.link.transport).sort()).toEqual(['tcp', 'ws']);
  });

  it('checks credentials on a Unix socket too', async () => {
    const dir = world.tmpdir();
    const sock = path.join(dir, 'hopbus.sock');
    const b = await world.broker({ ...USERS, port: null, unix: sock });
    await (await world.connect(`unix://${sock}`, { user: 'bob', pass: 'builder' })).flush();
    await refusal(connectBroker(`unix://${sock}`, { reconnect: false }));
    expect(b.broker.counters.authFailures).toBe(1);
  });

  it('admits anonymous connections where `anonymous` allows them, beside users', async () => {
    const b = await world.broker({ ...USERS, anonymous: true });
    await (await world.connect(b.url)).flush();
    // Credentials that are presented are checked all the same.
    await refusal(connectBroker(b.url, { user: 'bob', pass: 'wrong', reconnect: false }));
  });

  it('keeps an open broker open: no users, no tokens, no checks', async () => {
    const b = await world.broker();
    const bus = await world.connect(b.url, { user: 'whoever', pass: 'whatever' });
    await bus.flush();
    expect(b.broker.counters.authFailures).toBe(0);
  });
});

describe('what a failure leaves behind', () => {
  it('logs the address and the user, never the secret, and counts it in /metrics and /varz', async () => {
    const { lines, logger } = capture();
    const b = await startBroker({ host: '127.0.0.1', port: 0, httpPort: 0, ...USERS }, logger);
    try {
      await refusal(connectBroker(b.url, { user: 'alice', pass: 'not-the-password', reconnect: false }));
      await refusal(connectBroker(b.url, { token: 'not-a-token', reconnect: false }));
      await until(() => lines.filter((l) => l.msg === 'authentication failed').length === 2, 'two log lines');
      const failed = lines.filter((l) => l.msg === 'authentication failed');
      expect(failed[0]).toMatchObject({ user: 'alice', protocol: 'hopbus', transport: 'tcp', reason: 'wrong user or password' });
      expect(failed[0]!.remote).toMatch(/^127\.0\.0\.1:\d+$/);
      expect(failed[1]).toMatchObject({ user: 'token', reason: 'unknown token' });
      const all = lines.map((l) => JSON.stringify(l)).join('\n');
      expect(all).not.toMatch(/not-the-password|not-a-token|builder/);
      // The plain-text password of bob was warned about at startup, by name only.
      expect(lines.some((l) => l.msg?.toString().startsWith('plain-text secret') && l.secret === 'user "bob"')).toBe(true);
      const metrics = await getText(b, '/metrics');
      expect(metrics.body).toMatch(/^hopbus_auth_failures_total 2$/m);
      const varz = await getJson(b, '/varz');
      expect(varz.totals.authFailures).toBe(2);
    } finally {
      await b.close();
    }
  });
});

describe('on the clock', () => {
  it('closes a connection that never authenticates when the handshake timeout runs out', async () => {
    const clock = new FakeClock(1000);
    const b = await startBroker({ host: '127.0.0.1', port: 0, logLevel: 'silent', handshakeTimeoutMs: 2000, ...USERS }, undefined, clock);
    try {
      const raw = await RawClient.dial({ port: portOf(b) });
      await until(() => b.broker.sessions.size === 1, 'the session');
      clock.advance(1999);
      expect(raw.isClosed).toBe(false);
      clock.advance(1);
      await raw.closed;
      expect(raw.frames.map((f) => f.op)).toEqual([ERR]);
      expect(raw.frames[0]!.text).toMatch(/no CONNECT within 2000 ms/);
    } finally {
      await b.close();
    }
  });

  it('backs off an address after repeated failures, refusing even the right password until its time is up', async () => {
    const clock = new FakeClock(1000);
    const b = await startBroker({ host: '127.0.0.1', port: 0, logLevel: 'silent', ...USERS }, undefined, clock);
    try {
      for (let i = 0; i < FREE_FAILURES; i++) await refusal(connectBroker(b.url, { user: 'alice', pass: `guess${i}`, reconnect: false }));
      const err = await refusal(connectBroker(b.url, { user: 'alice', pass: 'wonderland', reconnect: false }));
      expect(err.message).toMatch(/too many failed attempts from this address; try again in 250 ms/);
      clock.advance(250);
      const ok = await connectBroker(b.url, { user: 'alice', pass: 'wonderland', reconnect: false });
      world.track(ok);
      await ok.flush();
      expect(b.broker.counters.authFailures).toBe(FREE_FAILURES + 1);
    } finally {
      await b.close();
    }
  });
});
