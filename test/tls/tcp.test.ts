/**
 * TLS on the broker's TCP listener with the SDK over tls://: publish, subscribe and
 * request; a plain-text client refused by a TLS-only port with an error that says to use
 * TLS (and served beside TLS clients when TLS is not required); a CA that did not sign the
 * broker's certificate refused with a sentence naming the option; client certificates
 * verified and mapped to users whose permissions apply; a missing client certificate
 * refused; garbage on the TLS port leaves other clients alone; option errors at start.
 * Certificates are made by openssl for each run (certs.ts).
 */
import net from 'node:net';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ConfigError } from '../../broker/config.js';
import { varz } from '../../broker/endpoints.js';
import { ConnectionError, ServerError, type Bus } from '../../client/index.js';
import { describeNeeding, until, useWorld } from '../kit/index.js';
import { makeCerts, opensslProblem, type CertFiles } from './certs.js';

const world = useWorld();
const describeTls = describeNeeding('openssl', opensslProblem());

let certs: CertFiles;
beforeAll(() => {
  if (opensslProblem() === null) certs = makeCerts(['alice', 'bob', 'mallory']);
});
afterAll(() => certs?.remove());

function serverTls(extra: Record<string, unknown> = {}) {
  return { cert: certs.serverCert, key: certs.serverKey, ...extra };
}

function clientTls(cn?: string, ca = certs.ca) {
  const c = cn === undefined ? {} : { cert: certs.read(certs.client(cn).cert), key: certs.read(certs.client(cn).key) };
  return { ca: certs.read(ca), ...c };
}

async function failure(p: Promise<unknown>): Promise<Error> {
  const err = await p.then(
    () => null,
    (e: unknown) => e as Error,
  );
  expect(err).toBeInstanceOf(Error);
  return err!;
}

/** A round trip through the broker: once it is back, everything sent before it has been handled. */
async function roundTrip(bus: Bus): Promise<void> {
  await bus.flush();
}

describeTls('TLS on the TCP listener', () => {
  it('carries publish, subscribe and request over tls://', async () => {
    const b = await world.broker({ tls: serverTls() });
    expect(b.url).toMatch(/^tls:\/\/127\.0\.0\.1:\d+$/);
    const sub = await world.connect(b.url, { tls: clientTls(), reconnect: false });
    const pub = await world.connect(b.url, { tls: clientTls(), reconnect: false });
    const got: string[] = [];
    sub.subscribe('md.>', (m) => got.push(`${m.subject}=${m.string()}`));
    sub.subscribe('svc.echo', (m) => m.respond(`echo:${m.string()}`));
    await roundTrip(sub);
    for (let i = 0; i < 100; i++) pub.publish(`md.x.${i}`, String(i));
    const reply = await pub.request('svc.echo', 'hi');
    expect(reply.string()).toBe('echo:hi');
    await until(() => got.length === 100, '100 messages over TLS');
    expect(got[99]).toBe('md.x.99=99');
    const conns = b.broker.metrics().connections;
    expect(conns.every((c) => c.transport === 'tls')).toBe(true);
  });

  it('refuses a plain-text client on a TLS-only port with an error that names tls://', async () => {
    const b = await world.broker({ tls: serverTls() });
    const plainUrl = b.url.replace('tls://', 'tcp://');
    const err = await failure(world.connect(plainUrl, { reconnect: false }));
    expect(err).toBeInstanceOf(ConnectionError);
    const cause = (err as ConnectionError).cause as ServerError;
    expect(cause).toBeInstanceOf(ServerError);
    expect(cause.message).toMatch(/TLS connections only: connect to tls:\/\//);
    await until(() => b.broker.counters.tlsFailures === 1, 'the refusal counted');
  });

  it('serves plain and TLS clients on the same port when TLS is not required', async () => {
    const b = await world.broker({ tls: serverTls({ required: false }) });
    const secure = await world.connect(b.url, { tls: clientTls(), reconnect: false });
    const plain = await world.connect(b.url.replace('tls://', 'tcp://'), { reconnect: false });
    const got: string[] = [];
    secure.subscribe('x', (m) => got.push(m.string()));
    await roundTrip(secure);
    plain.publish('x', 'from plain');
    await until(() => got.length === 1, 'plain to TLS');
    expect(got).toEqual(['from plain']);
    expect(
      b.broker
        .metrics()
        .connections.map((c) => c.transport)
        .sort(),
    ).toEqual(['tcp', 'tls']);
  });

  it('refuses a broker certificate from an untrusted CA, saying which option gives the CA', async () => {
    const b = await world.broker({ tls: serverTls() });
    const err = await failure(world.connect(b.url, { tls: { ca: certs.read(certs.otherCa) }, reconnect: false }));
    expect(err.message).toMatch(/TLS handshake with tls:\/\/127\.0\.0\.1:\d+ failed/);
    expect(err.message).toMatch(/tls\.ca option, or --tls-ca/);
    await until(() => b.broker.counters.tlsFailures === 1, 'the failed handshake counted');
  });

  it('refuses TLS options with a tcp:// address instead of sending in plain text', async () => {
    const b = await world.broker({ tls: serverTls({ required: false }) });
    const err = await failure(world.connect(b.url.replace('tls://', 'tcp://'), { tls: clientTls(), reconnect: false }));
    expect(err.message).toMatch(/plain TCP, but TLS options were given: dial tls:\/\//);
  });

  it('maps a verified client certificate to its user, whose permissions apply', async () => {
    const b = await world.broker({
      tls: serverTls({ ca: certs.ca, verify: true }),
      users: [
        { user: 'alice', certificate: { subject: 'CN=alice,O=Desk' }, permissions: { publish: ['orders.>'], subscribe: ['orders.>'] } },
        { user: 'bob', certificate: { san: 'email:bob@desk.example' }, permissions: { publish: { deny: ['orders.>'] }, subscribe: ['orders.>'] } },
      ],
    });
    const alice = await world.connect(b.url, { tls: clientTls('alice'), reconnect: false, name: 'alice-app' });
    const bob = await world.connect(b.url, { tls: clientTls('bob'), reconnect: false, name: 'bob-app' });
    const errors: ServerError[] = [];
    bob.on('error', (e) => errors.push(e as ServerError));
    const got: string[] = [];
    alice.subscribe('orders.new', (m) => got.push(m.string()));
    await roundTrip(alice);
    bob.publish('orders.new', 'from bob');
    await roundTrip(bob);
    bob.publish('orders.new', 'bob again');
    await roundTrip(bob);
    alice.publish('orders.new', 'from alice');
    await until(() => got.length === 1, "alice's own order");
    await until(() => errors.length >= 1, "bob's refusal");
    expect(got).toEqual(['from alice']);
    expect(errors[0]!.code).toBe('AUTH');
    expect(errors[0]!.message).toMatch(/Permissions Violation for Publish to "orders\.new"/);
    expect(b.broker.counters.permissionViolations).toBeGreaterThanOrEqual(2);
  });

  it('refuses a verified certificate that no user claims, and a client with no certificate', async () => {
    const b = await world.broker({
      tls: serverTls({ ca: certs.ca, verify: true }),
      users: [{ user: 'alice', certificate: { subject: 'CN=alice' } }],
    });
    const unmapped = await failure(world.connect(b.url, { tls: clientTls('mallory'), reconnect: false }));
    expect(((unmapped as ConnectionError).cause as ServerError).code).toBe('AUTH');
    expect(((unmapped as ConnectionError).cause as Error).message).toMatch(/no user is configured for the client certificate .*CN=mallory/);
    const none = await failure(world.connect(b.url, { tls: clientTls(), reconnect: false }));
    expect(none).toBeInstanceOf(ConnectionError);
    expect(none.message).toMatch(/the broker wants a client certificate it trusts \(tls\.cert and tls\.key, or --tls-cert and --tls-key\)/);
    await until(() => b.broker.counters.tlsFailures >= 1, 'the certificate-less handshake counted');
    expect(b.broker.counters.authFailures).toBe(1);
    // The user's own certificate still works after both.
    const alice = await world.connect(b.url, { tls: clientTls('alice'), reconnect: false });
    await roundTrip(alice);
  });

  it('survives garbage and a half-open handshake on the TLS port; other clients carry on', async () => {
    const b = await world.broker({ tls: serverTls({ ca: certs.ca, verify: true }), users: [{ user: 'alice', certificate: { subject: 'CN=alice' } }] });
    const alice = await world.connect(b.url, { tls: clientTls('alice'), reconnect: false });
    const got: number[] = [];
    alice.subscribe('t', (m) => got.push(Number(m.string())));
    await roundTrip(alice);
    const port = Number(new URL(b.url).port);
    const socks: net.Socket[] = [];
    const closed: Array<Promise<void>> = [];
    for (const junk of [
      Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'),
      Buffer.from([0x16, 0x03, 0x01, 0xff, 0xff, 1, 2, 3, 4]),
      Buffer.from([0x16, 0x03, 0x01, 0, 5, 9, 9, 9, 9, 9]),
      Buffer.alloc(3000, 0x16),
    ]) {
      const s = net.connect(port, '127.0.0.1');
      s.on('error', () => {});
      s.resume(); // read (and drop) the refusal, so that the close is seen
      socks.push(s);
      closed.push(new Promise((r) => s.once('close', () => r())));
      s.write(junk);
    }
    await Promise.all(closed);
    for (let i = 0; i < 10; i++) alice.publish('t', String(i));
    await until(() => got.length === 10, 'alice still served');
    expect(b.broker.counters.tlsFailures).toBe(4);
    expect(b.broker.sessions.size).toBe(1);
  });

  it('closes a connection that starts a handshake and stops, and counts it', async () => {
    const b = await world.broker({ tls: serverTls(), handshakeTimeoutMs: 200 });
    const s = net.connect(Number(new URL(b.url).port), '127.0.0.1');
    s.on('error', () => {});
    s.resume();
    const closed = new Promise<void>((r) => s.once('close', () => r()));
    // A record header that promises more than ever comes.
    s.write(Buffer.from([0x16, 0x03, 0x01, 0x01, 0x00, 0x01]));
    await closed;
    expect(b.broker.counters.tlsFailures).toBe(1);
  });

  it('closes, without waiting for it, a connection whose handshake is still pending', async () => {
    // A handshake timeout far beyond the test's: close() must not wait for it.
    const b = await world.broker({ tls: serverTls(), handshakeTimeoutMs: 600_000 });
    const s = net.connect(Number(new URL(b.url).port), '127.0.0.1');
    s.on('error', () => {});
    s.resume();
    const closed = new Promise<void>((r) => s.once('close', () => r()));
    await new Promise<void>((r) => s.once('connect', () => r()));
    s.write(Buffer.from([0x16, 0x03, 0x01, 0x01, 0x00, 0x01]));
    await b.close();
    await closed;
  });

  it('refuses bad tls options at start, naming the option', async () => {
    await expect(world.broker({ tls: { cert: certs.serverCert } as never })).rejects.toThrow(/"tls" needs "cert" and "key"/);
    await expect(world.broker({ tls: serverTls({ cipher: 'x' }) })).rejects.toThrow(/"tls" has an unknown key "cipher"/);
    await expect(world.broker({ tls: { cert: '/nonexistent/cert.pem', key: certs.serverKey } })).rejects.toThrow(
      /"tls.cert": cannot read \/nonexistent\/cert.pem: ENOENT/,
    );
    await expect(world.broker({ tls: { cert: certs.serverCert, key: certs.client('alice').key } })).rejects.toThrow(ConfigError);
    await expect(world.broker({ tls: serverTls({ verify: true }) })).rejects.toThrow(/"tls.verify" needs "tls.ca"/);
    await expect(world.broker({ users: [{ user: 'a', certificate: { subject: 'alice' } }] })).rejects.toThrow(/ATTRIBUTE=value pairs/);
  });

  it('takes PEM text as well as file paths, and never logs the key', async () => {
    const b = await world.broker({ tls: { cert: certs.read(certs.serverCert), key: certs.read(certs.serverKey) } });
    const bus = await world.connect(b.url, { tls: clientTls(), reconnect: false });
    await roundTrip(bus);
    const shown = JSON.stringify(b.broker.options.tls);
    expect(shown).toContain('(PEM text)');
    expect(shown).not.toContain('PRIVATE KEY');
    expect(varz(b.broker).config.tls).toEqual({
      cert: '(PEM text)',
      key: '(PEM text)',
      ca: null,
      verify: false,
      required: true,
      minVersion: 'TLSv1.2',
      http: true,
    });
  });
});

describeTls('TLS records', () => {
  it('coalesces a burst of messages into few socket writes, so into few TLS records', async () => {
    const b = await world.broker({ tls: serverTls() });
    const sub = await world.connect(b.url, { tls: clientTls(), reconnect: false, name: 'sub' });
    const pub = await world.connect(b.url, { tls: clientTls(), reconnect: false, name: 'pub' });
    let got = 0;
    sub.subscribe('burst', () => got++);
    await sub.flush();
    // The broker's TLS socket towards the subscriber: count what is handed to it.
    const session = [...b.broker.sessions].find((s) => s.name === 'sub')!;
    const socket = (session.link as unknown as { socket: { write: (...a: unknown[]) => boolean } }).socket;
    const write = socket.write.bind(socket);
    const writes: number[] = [];
    socket.write = (...a: unknown[]) => {
      writes.push((a[0] as Buffer).length);
      return write(...a);
    };
    const N = 2000;
    const payload = Buffer.alloc(16, 7);
    for (let i = 0; i < N; i++) pub.publish('burst', payload);
    await until(() => got === N, 'the burst delivered');
    // node:tls cuts a write into records of at most 16 KiB of plaintext.
    const records = writes.reduce((n, len) => n + Math.ceil(len / 16384), 0);
    expect(writes.length).toBeGreaterThan(0);
    expect(records).toBeLessThan(N / 20);
  });
});
