/**
 * Authentication on the NATS listener with the official Node client
 * (@nats-io/transport-node): user and password, token, and an nkey whose seed signs the
 * nonce sent in INFO (nats.js's nkeyAuthenticator); the refusals in nats-server's words
 * (`Authorization Violation`), an op before CONNECT, and the auth timeout.
 */
import { connect, nkeyAuthenticator, nkeys, type NatsConnection } from '@nats-io/transport-node';
import { afterEach, describe, expect, it } from 'vitest';
import { hashPassword } from '../../broker/auth/index.js';
import { startBroker, type BrokerOptions, type StartedBroker } from '../../broker/index.js';
import { FakeClock } from '../../runtime/clock.js';
import { until, useWorld } from '../kit/index.js';
import { RawNats } from '../nats/raw.js';

const world = useWorld();
const clients: NatsConnection[] = [];

afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close().catch(() => undefined)));
});

const kp = nkeys.createUser();
const SEED = kp.getSeed();
const AUTH: BrokerOptions = {
  natsPort: 0,
  users: [{ user: 'alice', password: hashPassword('wonderland', { N: 1024, r: 8, p: 1 }) }, { nkey: kp.getPublicKey() }],
  tokens: ['tok-123'],
};

async function nats(b: StartedBroker, options: Record<string, unknown> = {}): Promise<NatsConnection> {
  const c = await connect({ servers: `127.0.0.1:${b.broker.natsPort}`, reconnect: false, ...options });
  clients.push(c);
  return c;
}

async function refused(b: StartedBroker, options: Record<string, unknown>): Promise<Error> {
  const err = await nats(b, options).then(
    () => null,
    (e: unknown) => e as Error,
  );
  expect(err).toBeInstanceOf(Error);
  return err!;
}

describe('NATS listener authentication', () => {
  it('says auth_required and sends a nonce in INFO when nkeys are configured', async () => {
    const b = await world.broker(AUTH);
    const raw = await RawNats.dial(b.broker.natsPort!);
    const info = JSON.parse(raw.text.slice(5, raw.text.indexOf('\r\n'))) as { auth_required?: boolean; nonce?: string };
    raw.socket.destroy();
    expect(info.auth_required).toBe(true);
    expect(info.nonce).toMatch(/^[A-Za-z0-9_-]{22}$/);
  });

  it('admits user and password, a token and an nkey, and they talk to each other', async () => {
    const b = await world.broker(AUTH);
    const a = await nats(b, { user: 'alice', pass: 'wonderland' });
    const t = await nats(b, { token: 'tok-123' });
    const n = await nats(b, { authenticator: nkeyAuthenticator(SEED) });
    const got: string[] = [];
    a.subscribe('chat', { callback: (_e, m) => void got.push(m.string()) });
    await a.flush();
    t.publish('chat', 'from token');
    n.publish('chat', 'from nkey');
    await t.flush();
    await n.flush();
    await until(() => got.length === 2, 'both messages');
    expect(got.sort()).toEqual(['from nkey', 'from token']);
    expect(b.broker.counters.authFailures).toBe(0);
  });

  it('refuses a wrong password, an unknown token, a foreign nkey and no credentials with Authorization Violation', async () => {
    const b = await world.broker(AUTH);
    for (const opts of [{ user: 'alice', pass: 'nope' }, { token: 'tok-999' }, { authenticator: nkeyAuthenticator(nkeys.createUser().getSeed()) }, {}]) {
      const err = await refused(b, opts);
      expect(err.message.toLowerCase()).toContain('authorization violation');
    }
    expect(b.broker.counters.authFailures).toBe(4);
    await until(() => b.broker.natsSessions.size === 0, 'the refused connections closed');
  });

  it('closes with Authorization Violation a client that sends anything before CONNECT', async () => {
    const b = await world.broker(AUTH);
    const raw = await RawNats.dial(b.broker.natsPort!);
    raw.write('SUB > 1\r\n');
    await raw.waitFor(/-ERR 'Authorization Violation'\r\n/, 'the violation');
    await raw.waitClosed('an op before CONNECT');
  });

  it("closes a client that never sends CONNECT with nats-server's Authentication Timeout", async () => {
    const clock = new FakeClock(1000);
    const b = await startBroker({ host: '127.0.0.1', port: 0, logLevel: 'silent', handshakeTimeoutMs: 500, ...AUTH }, undefined, clock);
    try {
      const raw = await RawNats.dial(b.broker.natsPort!);
      clock.advance(500);
      await raw.waitFor(/-ERR 'Authentication Timeout'\r\n/, 'the timeout');
      await raw.waitClosed('no CONNECT');
    } finally {
      await b.close();
    }
  });
});
