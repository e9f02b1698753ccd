/**
 * Per-user limits on real connections: connections held at once, subscriptions per
 * connection, and the largest payload, told to hopbus clients in INFO and enforced by
 * the broker for clients that do not listen (a raw socket, a NATS client).
 */
import { connect } from '@nats-io/transport-node';
import { describe, expect, it } from 'vitest';
import type { BrokerOptions } from '../../broker/index.js';
import { ConnectionError, MaxPayloadError, connectBroker, type ServerError } from '../../client/index.js';
import { pubFrame, subFrame, until, useWorld } from '../kit/index.js';
import { RawNats } from '../nats/raw.js';

const world = useWorld();
const ERR = 0x41;
const MAX_PAYLOAD = 4;
const MAX_SUBSCRIPTIONS = 6;

const OPTS: BrokerOptions = {
  natsPort: 0,
  users: [
    { user: 'small', password: 's', limits: { maxConnections: 1, maxSubscriptions: 2, maxPayload: 100 } },
    { user: 'big', password: 'b' },
  ],
};

describe('per-user limits', () => {
  it('refuses a connection beyond the user maxConnections, and admits one again once a connection has gone', async () => {
    const b = await world.broker(OPTS);
    const first = await connectBroker(b.url, { user: 'small', pass: 's', reconnect: false });
    const err = await connectBroker(b.url, { user: 'small', pass: 's', reconnect: false }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConnectionError);
    expect(((err as ConnectionError).cause as ServerError).message).toMatch(/small already holds its maximum of 1 connections/);
    // Other users are not affected.
    await (await world.connect(b.url, { user: 'big', pass: 'b' })).flush();
    await first.close();
    await until(() => [...b.broker.sessions].every((s) => s.identity?.name !== 'small'), 'the first connection gone');
    await (await world.connect(b.url, { user: 'small', pass: 's' })).flush();
  });

  it('tells the lower limits in INFO, and the SDK keeps to them', async () => {
    const b = await world.broker(OPTS);
    const bus = await world.connect(b.url, { user: 'small', pass: 's' });
    expect(bus.info).toMatchObject({ maxPayload: 100, maxSubscriptions: 2 });
    expect(() => bus.publish('x', new Uint8Array(101))).toThrow(MaxPayloadError);
    const big = await world.connect(b.url, { user: 'big', pass: 'b' });
    expect(big.info!.maxPayload).toBe(b.broker.options.maxPayload);
  });

  it('refuses a SUB beyond maxSubscriptions and closes a connection that publishes over maxPayload anyway', async () => {
    const b = await world.broker(OPTS);
    const raw = await world.raw(b);
    await raw.handshake({ user: 'small', pass: 's' });
    raw.send(subFrame(1, 'a'), subFrame(2, 'b'), subFrame(3, 'c'));
    await until(() => raw.errors().length === 1, 'the third SUB refused');
    expect(raw.errors()[0]).toMatchObject({ code: MAX_SUBSCRIPTIONS, sid: 3 });
    expect(raw.errors()[0]!.text).toMatch(/limit 2/);
    raw.send(pubFrame('a', 'x'.repeat(100)), pubFrame('a', 'x'.repeat(101)));
    await raw.closed;
    expect(raw.frames.filter((f) => f.op === ERR).map((f) => f.code)).toEqual([MAX_SUBSCRIPTIONS, MAX_PAYLOAD]);
    expect(raw.errors()[1]!.text).toMatch(/the limit of small is 100/);
  });

  it('applies the same limits on the NATS listener', async () => {
    const b = await world.broker(OPTS);
    const c = await connect({ servers: `127.0.0.1:${b.broker.natsPort}`, user: 'small', pass: 's', reconnect: false });
    try {
      const second = await connect({ servers: `127.0.0.1:${b.broker.natsPort}`, user: 'small', pass: 's', reconnect: false }).catch((e: unknown) => e);
      expect((second as Error).message.toLowerCase()).toContain('authorization violation');
    } finally {
      await c.close();
    }
    await until(() => b.broker.natsSessions.size === 0, 'the connection gone');
    const raw = await RawNats.dial(b.broker.natsPort!);
    raw.write('CONNECT {"user":"small","pass":"s","verbose":false}\r\nSUB a 1\r\nSUB b 2\r\nSUB c 3\r\nPING\r\n');
    await raw.waitFor(/PONG\r\n/, 'PONG');
    expect(raw.text).toContain("-ERR 'maximum subscriptions exceeded'\r\n");
    raw.write(`PUB a 101\r\n${'x'.repeat(101)}\r\n`);
    await raw.waitFor(/-ERR 'Maximum Payload Violation'\r\n/, 'the payload refused');
    await raw.waitClosed('over maxPayload');
  });
});
