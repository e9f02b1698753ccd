/**
 * Per-subject permissions on real connections: the hopbus SDK over TCP and nats.js on
 * the NATS listener, side by side on one broker. A refused PUB is an error naming the
 * subject, is not delivered, and leaves the connection open; a refused SUB makes no
 * subscription; `$SYS.>` is reserved unless granted; allow_responses lets a responder
 * answer once; every refusal is counted.
 */
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterEach, describe, expect, it } from 'vitest';
import type { BrokerOptions, StartedBroker } from '../../broker/index.js';
import { ServerError, type Bus, type Msg } from '../../client/index.js';
import { until, useWorld } from '../kit/index.js';

const world = useWorld();
const nc: NatsConnection[] = [];
afterEach(async () => {
  await Promise.all(nc.splice(0).map((c) => c.close().catch(() => undefined)));
});

const OPTS: BrokerOptions = {
  natsPort: 0,
  users: [
    // Sees and sends everything, $SYS included.
    { user: 'admin', password: 'a', permissions: { publish: ['>', '$SYS.>'], subscribe: ['>', '$SYS.>'] } },
    {
      user: 'pricer',
      password: 'p',
      permissions: { publish: { allow: ['md.>'], deny: ['md.internal.>'] }, subscribe: { allow: ['orders.>', '_INBOX.>'], deny: ['orders.secret.>'] } },
    },
    { user: 'svc', password: 's', permissions: { publish: { deny: ['>'] }, subscribe: ['svc.>'], allow_responses: true } },
    { user: 'plain', password: 'x' },
  ],
};

function errors(bus: Bus): ServerError[] {
  const got: ServerError[] = [];
  bus.on('error', (e: Error) => {
    if (e instanceof ServerError) got.push(e);
  });
  return got;
}

async function admin(b: StartedBroker): Promise<{ bus: Bus; seen: Msg[] }> {
  const bus = await world.connect(b.url, { user: 'admin', pass: 'a' });
  const seen: Msg[] = [];
  bus.subscribe('>', (m) => void seen.push(m));
  await bus.flush();
  return { bus, seen };
}

describe('permissions with the hopbus SDK', () => {
  it('refuses a PUB outside the allow list or inside the deny list, naming it, delivers nothing, keeps the connection', async () => {
    const b = await world.broker(OPTS);
    const { seen } = await admin(b);
    const pricer = await world.connect(b.url, { user: 'pricer', pass: 'p' });
    const errs = errors(pricer);
    pricer.publish('orders.new', 'x');
    pricer.publish('md.internal.fix', 'y');
    pricer.publish('md.EURUSD', 'ok');
    await pricer.flush();
    await until(() => errs.length === 2 && seen.length === 1, 'two refusals and one delivery');
    expect(errs.map((e) => [e.code, e.fatal, e.message])).toEqual([
      ['AUTH', false, 'server error AUTH: Permissions Violation for Publish to "orders.new"'],
      ['AUTH', false, 'server error AUTH: Permissions Violation for Publish to "md.internal.fix"'],
    ]);
    expect(seen.map((m) => m.subject)).toEqual(['md.EURUSD']);
    expect(pricer.connected).toBe(true);
    expect(b.broker.counters.permissionViolations).toBe(2);
  });

  it('refuses a SUB that could see a denied subject, and makes no subscription; an allowed one works', async () => {
    const b = await world.broker(OPTS);
    const { bus: adm } = await admin(b);
    const pricer = await world.connect(b.url, { user: 'pricer', pass: 'p' });
    const errs = errors(pricer);
    const wide: Msg[] = [];
    const narrow: Msg[] = [];
    pricer.subscribe('orders.>', (m) => void wide.push(m)); // overlaps orders.secret.>
    pricer.subscribe('md.>', (m) => void wide.push(m)); // not allowed at all
    pricer.subscribe('orders.new', (m) => void narrow.push(m));
    await pricer.flush();
    await until(() => errs.length === 2, 'two refusals');
    expect(errs.map((e) => e.message)).toEqual([
      'server error AUTH: Permissions Violation for Subscription to "orders.>"',
      'server error AUTH: Permissions Violation for Subscription to "md.>"',
    ]);
    adm.publish('orders.secret.x', 'no');
    adm.publish('md.EURUSD', 'no');
    adm.publish('orders.new', 'yes');
    await adm.flush();
    await until(() => narrow.length === 1, 'the allowed subscription');
    await pricer.flush();
    expect(wide).toEqual([]);
    const session = [...b.broker.sessions].find((s) => s.identity?.name === 'pricer')!;
    expect([...session.subs.values()].map((s) => s.pattern)).toEqual(['orders.new']);
  });

  it('reserves $SYS.> unless granted: no spoofed reports, no reading them, but a client may send its own report', async () => {
    const b = await world.broker(OPTS);
    const { seen } = await admin(b);
    const plain = await world.connect(b.url, { user: 'plain', pass: 'x' });
    const errs = errors(plain);
    plain.publish('$SYS.latency', 'fake');
    plain.subscribe('$SYS.stats', () => {});
    plain.subscribe('>', () => {}); // would see $SYS.> too
    plain.publish(`$SYS.report.${plain.info!.clientId}`, 'mine');
    plain.publish('anything.else', 'fine');
    await plain.flush();
    await until(() => errs.length === 3, 'three refusals');
    expect(errs.map((e) => e.message.replace('server error AUTH: ', ''))).toEqual([
      'Permissions Violation for Publish to "$SYS.latency"',
      'Permissions Violation for Subscription to "$SYS.stats"',
      'Permissions Violation for Subscription to ">"',
    ]);
    await until(() => seen.length === 2, 'the allowed messages');
    expect(seen.map((m) => m.subject)).toEqual([`$SYS.report.${plain.info!.clientId}`, 'anything.else']);
  });

  it('allow_responses: a responder without publish rights answers each request once', async () => {
    const b = await world.broker(OPTS);
    const svc = await world.connect(b.url, { user: 'svc', pass: 's' });
    const errs = errors(svc);
    svc.subscribe('svc.time', (m) => {
      m.respond('first');
      m.respond('second'); // the right was for one answer
    });
    svc.publish('svc.unasked', 'no');
    await svc.flush();
    const client = await world.connect(b.url, { user: 'admin', pass: 'a' });
    const reply = await client.request('svc.time', 'now?', { timeoutMs: 5000 });
    expect(reply.string()).toBe('first');
    await until(() => errs.length === 2, 'the unasked publish and the second answer refused');
    expect(errs[0]!.message).toMatch(/Publish to "svc.unasked"/);
    expect(errs[1]!.message).toMatch(/Publish to "_INBOX\./);
  });
});

describe('permissions on the NATS listener', () => {
  it('answers a refused PUB with -ERR Permissions Violation, delivers nothing, keeps the connection', async () => {
    const b = await world.broker(OPTS);
    const { seen } = await admin(b);
    const c = await connect({ servers: `127.0.0.1:${b.broker.natsPort}`, user: 'pricer', pass: 'p', reconnect: false });
    nc.push(c);
    const statuses: string[] = [];
    void (async () => {
      for await (const s of c.status()) if (s.type === 'error') statuses.push(String((s as { error?: Error }).error?.message ?? ''));
    })();
    c.publish('orders.new', 'x');
    c.publish('md.EURUSD', 'ok');
    await c.flush();
    await until(() => seen.length === 1 && b.broker.counters.permissionViolations === 1, 'one delivery and one refusal');
    expect(seen.map((m) => m.subject)).toEqual(['md.EURUSD']);
    expect(c.isClosed()).toBe(false);
    await until(() => statuses.some((s) => /permissions violation for publish to "orders.new"/i.test(s)), 'the -ERR at the client');
  });

  it('refuses a NATS SUB outside the rights: nothing arrives on it, allowed ones work', async () => {
    const b = await world.broker(OPTS);
    const { bus: adm } = await admin(b);
    const c = await connect({ servers: `127.0.0.1:${b.broker.natsPort}`, user: 'pricer', pass: 'p', reconnect: false });
    nc.push(c);
    const denied: string[] = [];
    const told: string[] = [];
    const allowed: string[] = [];
    c.subscribe('orders.secret.x', {
      callback: (e, m) => {
        if (e !== null) told.push(e.message);
        else denied.push(m.subject);
      },
    });
    c.subscribe('orders.new', {
      callback: (e, m) => {
        if (e === null) allowed.push(m.subject);
      },
    });
    await c.flush();
    await until(() => b.broker.counters.permissionViolations === 1, 'the refusal counted');
    adm.publish('orders.secret.x', 'no');
    adm.publish('orders.new', 'yes');
    await adm.flush();
    await until(() => allowed.length === 1, 'the allowed one');
    await c.flush();
    expect(denied).toEqual([]);
    await until(() => told.length === 1, 'nats.js told the subscription');
    expect(told[0]!.toLowerCase()).toContain('permissions violation for subscription to "orders.secret.x"');
    expect(c.isClosed()).toBe(false);
  });
});
