/**
 * TLS on the NATS listener, as nats-server does it: INFO in plain text with tls_required
 * (or tls_available) and tls_verify, then the client's handshake on the same socket.
 * nats.js (@nats-io/transport-node) with `tls: { caFile }` connects and meets hopbus
 * clients on tls://; client certificates map to users; a plain-text CONNECT on a
 * TLS-only port gets nats-server's -ERR; with `required: false` both kinds are served.
 */
import net from 'node:net';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import type { StartedBroker } from '../../broker/index.js';
import { describeNeeding, until, useWorld } from '../kit/index.js';
import { makeCerts, opensslProblem, type CertFiles } from './certs.js';

const world = useWorld();
const describeTls = describeNeeding('openssl', opensslProblem());
const clients: NatsConnection[] = [];

let certs: CertFiles;
beforeAll(() => {
  if (opensslProblem() === null) certs = makeCerts(['alice', 'bob']);
});
afterAll(() => certs?.remove());
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close().catch(() => undefined)));
});

async function nats(b: StartedBroker, options: Record<string, unknown> = {}): Promise<NatsConnection> {
  const c = await connect({ servers: `127.0.0.1:${b.broker.natsPort}`, reconnect: false, ...options });
  clients.push(c);
  return c;
}

/** The first line a raw socket reads from the NATS port, and the socket. */
async function rawInfo(b: StartedBroker): Promise<{ socket: net.Socket; info: Record<string, unknown>; next: () => Promise<string> }> {
  const socket = net.connect(b.broker.natsPort!, '127.0.0.1');
  let text = '';
  const waiters: Array<() => void> = [];
  socket.on('data', (d) => {
    text += d.toString('latin1');
    for (const w of waiters.splice(0)) w();
  });
  socket.on('error', () => {});
  const line = async (): Promise<string> => {
    while (!text.includes('\r\n')) await new Promise<void>((r) => waiters.push(r));
    const i = text.indexOf('\r\n');
    const l = text.slice(0, i);
    text = text.slice(i + 2);
    return l;
  };
  const first = await line();
  expect(first.startsWith('INFO ')).toBe(true);
  return { socket, info: JSON.parse(first.slice(5)) as Record<string, unknown>, next: line };
}

describeTls('TLS on the NATS listener', () => {
  it('advertises tls_required in a plain-text INFO, and refuses a plain-text CONNECT in nats-server words', async () => {
    const b = await world.broker({ natsPort: 0, tls: { cert: certs.serverCert, key: certs.serverKey } });
    const { socket, info, next } = await rawInfo(b);
    expect(info.tls_required).toBe(true);
    expect(info.tls_verify).toBeUndefined();
    const closed = new Promise<void>((r) => socket.once('close', () => r()));
    socket.write('CONNECT {"verbose":false}\r\nPING\r\n');
    expect(await next()).toBe("-ERR 'Secure Connection - TLS Required'");
    await closed;
    expect(b.broker.counters.tlsFailures).toBe(1);
  });

  it('serves nats.js with tls: { caFile }, and its messages meet hopbus clients on tls://', async () => {
    const b = await world.broker({ natsPort: 0, tls: { cert: certs.serverCert, key: certs.serverKey } });
    const nc = await nats(b, { tls: { caFile: certs.ca } });
    const hop = await world.connect(b.url, { tls: { ca: certs.read(certs.ca) }, reconnect: false });
    const fromNats: string[] = [];
    hop.subscribe('n2h', (m) => fromNats.push(m.string()));
    await hop.flush();
    const fromHop: string[] = [];
    nc.subscribe('h2n', {
      callback: (_e, m) => {
        fromHop.push(m.string());
      },
    });
    nc.subscribe('svc', {
      callback: (_e, m) => {
        m.respond(`re:${m.string()}`);
      },
    });
    await nc.flush();
    for (let i = 0; i < 50; i++) nc.publish('n2h', `n${i}`);
    hop.publish('h2n', 'hello nats');
    const reply = await hop.request('svc', 'q');
    expect(reply.string()).toBe('re:q');
    await until(() => fromNats.length === 50 && fromHop.length === 1, 'both ways over TLS');
    expect(fromNats[49]).toBe('n49');
    expect(fromHop).toEqual(['hello nats']);
    expect(b.broker.metrics().nats.map((n) => n.transport)).toEqual(['tls']);
  });

  it('refuses nats.js when it does not trust the broker CA', async () => {
    const b = await world.broker({ natsPort: 0, tls: { cert: certs.serverCert, key: certs.serverKey } });
    const err = await nats(b, { tls: { caFile: certs.otherCa } }).then(
      () => null,
      (e: unknown) => e as Error,
    );
    expect(err).toBeInstanceOf(Error);
    await until(() => b.broker.counters.tlsFailures === 1, 'the failed handshake counted');
    expect(b.broker.natsSessions.size).toBe(0);
  });

  it('verifies client certificates (tls_verify) and maps them to users with their permissions', async () => {
    const b = await world.broker({
      natsPort: 0,
      tls: { cert: certs.serverCert, key: certs.serverKey, ca: certs.ca, verify: true },
      users: [
        { user: 'alice', certificate: { subject: 'CN=alice' }, permissions: { publish: ['md.>'], subscribe: ['md.>', '_INBOX.>'] } },
        { user: 'bob', certificate: { subject: 'CN=bob' }, permissions: { publish: { deny: ['md.>'] }, subscribe: ['md.>'] } },
      ],
    });
    const { info, socket } = await rawInfo(b);
    socket.destroy();
    expect(info.tls_required).toBe(true);
    expect(info.tls_verify).toBe(true);
    const alice = await nats(b, { tls: { caFile: certs.ca, certFile: certs.client('alice').cert, keyFile: certs.client('alice').key } });
    const bob = await nats(b, { tls: { caFile: certs.ca, certFile: certs.client('bob').cert, keyFile: certs.client('bob').key } });
    const seen: string[] = [];
    alice.subscribe('md.x', {
      callback: (_e, m) => {
        seen.push(m.string());
      },
    });
    await alice.flush();
    bob.publish('md.x', 'from bob');
    await bob.flush().catch(() => undefined);
    alice.publish('md.x', 'from alice');
    await until(() => seen.length === 1 && b.broker.counters.permissionViolations === 1, 'alice delivered, bob refused');
    expect(seen).toEqual(['from alice']);
    // No certificate at all: the handshake fails.
    const none = await nats(b, { tls: { caFile: certs.ca } }).then(
      () => null,
      (e: unknown) => e as Error,
    );
    expect(none).toBeInstanceOf(Error);
    await until(() => b.broker.counters.tlsFailures >= 1, 'the certificate-less client counted');
  });

  it('serves plain and TLS NATS clients side by side when TLS is not required (tls_available)', async () => {
    const b = await world.broker({ natsPort: 0, tls: { cert: certs.serverCert, key: certs.serverKey, required: false } });
    const { info, socket } = await rawInfo(b);
    socket.destroy();
    expect(info.tls_available).toBe(true);
    expect(info.tls_required).toBeUndefined();
    const secure = await nats(b, { tls: { caFile: certs.ca } });
    const plain = await nats(b, { tls: null });
    const got: string[] = [];
    secure.subscribe('x', {
      callback: (_e, m) => {
        got.push(m.string());
      },
    });
    await secure.flush();
    plain.publish('x', 'plain to tls');
    await until(() => got.length === 1, 'plain to TLS');
    expect(
      b.broker
        .metrics()
        .nats.map((n) => n.transport)
        .sort(),
    ).toEqual(['tcp', 'tls']);
  });
});
