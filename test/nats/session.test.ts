/**
 * The official Node NATS client (@nats-io/transport-node) against the broker's NATS
 * listener: the NATS session on the router, over real loopback sockets.
 */
import { connect, headers, type Msg, type NatsConnection } from '@nats-io/transport-node';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { MsgTemplate } from '../../broker/nats/encode.js';
import type { StartedBroker } from '../../broker/index.js';
import { VERSION } from '../../broker/index.js';
import { until, useWorld } from '../kit/index.js';

const world = useWorld();
const clients: NatsConnection[] = [];

afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close().catch(() => undefined)));
});

async function natsBroker(options: Parameters<typeof world.broker>[0] = {}): Promise<StartedBroker> {
  return world.broker({ natsPort: 0, ...options });
}

async function nats(b: StartedBroker, options: Record<string, unknown> = {}): Promise<NatsConnection> {
  const c = await connect({ servers: `127.0.0.1:${b.broker.natsPort}`, reconnect: false, ...options });
  clients.push(c);
  return c;
}

/** Collects what a subscription receives. */
function collect(c: NatsConnection, subject: string, opts: { queue?: string; max?: number } = {}): Msg[] {
  const got: Msg[] = [];
  c.subscribe(subject, { ...opts, callback: (_e, m) => void got.push(m) });
  return got;
}

describe('NATS listener: options', () => {
  it('is off unless natsPort is given, and reports its URL when on', async () => {
    const off = await world.broker();
    expect(off.broker.natsUrl).toBeNull();
    const on = await natsBroker();
    expect(on.broker.natsUrl).toMatch(/^nats:\/\/127\.0\.0\.1:\d+$/);
    expect(on.urls.every((u) => !u.startsWith('nats:'))).toBe(true);
  });

  it('refuses a natsPort out of range, naming it', async () => {
    await expect(world.broker({ natsPort: 70000 })).rejects.toThrow(/natsPort/);
  });
});

describe('nats.js against hopbus', () => {
  it('connects: INFO has a semver version, proto 1, headers, max_payload, and no jetstream', async () => {
    const b = await natsBroker({ maxPayload: 4096, name: 'desk' });
    const c = await nats(b, { name: 'pricer' });
    await c.flush();
    const info = c.info!;
    expect(info.version).toBe(VERSION);
    expect(info.version).toMatch(/^\d+\.\d+\.\d+/);
    expect(info.proto).toBe(1);
    expect(info.headers).toBe(true);
    expect(info.max_payload).toBe(4096);
    expect(info.server_name).toBe('desk');
    expect(info.server_id).toBe(b.broker.serverId);
    expect(typeof info.client_id).toBe('number');
    expect((info as unknown as Record<string, unknown>).jetstream).toBeUndefined();
    await until(() => [...b.broker.natsSessions].some((s) => s.name === 'pricer' && s.client.lang === 'nats.js'), 'the session with its CONNECT');
  });

  it('publishes and subscribes with * and > wildcards', async () => {
    const b = await natsBroker();
    const a = await nats(b);
    const s = await nats(b);
    const star = collect(s, 'px.*.spot');
    const tail = collect(s, 'px.>');
    await s.flush();
    for (const subj of ['px.eur.spot', 'px.usd.fwd', 'other.x', 'px.jpy.spot']) a.publish(subj, subj);
    await a.flush();
    await until(() => star.length === 2 && tail.length === 3, 'the wildcard deliveries');
    expect(star.map((m) => m.subject)).toEqual(['px.eur.spot', 'px.jpy.spot']);
    expect(tail.map((m) => m.string())).toEqual(['px.eur.spot', 'px.usd.fwd', 'px.jpy.spot']);
  });

  it('a queue group gives each message to one member', async () => {
    const b = await natsBroker();
    const p = await nats(b);
    const members = await Promise.all([nats(b), nats(b), nats(b)]);
    const got = members.map((m) => collect(m, 'work', { queue: 'q' }));
    const plain = collect(members[0]!, 'work');
    await Promise.all(members.map((m) => m.flush()));
    for (let i = 0; i < 30; i++) p.publish('work', String(i));
    await p.flush();
    await until(() => got.reduce((n, g) => n + g.length, 0) === 30 && plain.length === 30, 'every message once in the group');
    const all = got.flat().map((m) => Number(m.string()));
    expect(all.sort((x, y) => x - y)).toEqual(Array.from({ length: 30 }, (_, i) => i));
    for (const g of got) expect(g.length).toBeGreaterThan(0);
  });

  it('request/reply, and NoResponders for a subject nobody serves', async () => {
    const b = await natsBroker();
    const svc = await nats(b);
    svc.subscribe('svc.echo', { callback: (_e, m) => void m.respond(`echo:${m.string()}`) });
    await svc.flush();
    const req = await nats(b);
    expect((await req.request('svc.echo', 'hi', { timeout: 5000 })).string()).toBe('echo:hi');
    await expect(req.request('nobody.home', 'x', { timeout: 5000 })).rejects.toThrow(/no responders/i);
  });

  it('headers round trip, repeated keys included', async () => {
    const b = await natsBroker();
    const a = await nats(b);
    const s = await nats(b);
    const got = collect(s, 'h');
    await s.flush();
    const h = headers();
    h.append('Trade-Id', '42');
    h.append('K', 'v1');
    h.append('K', 'v2');
    a.publish('h', 'body', { headers: h });
    a.publish('h', 'plain');
    await a.flush();
    await until(() => got.length === 2, 'both messages');
    expect(got[0]!.headers?.get('Trade-Id')).toBe('42');
    expect(got[0]!.headers?.values('K')).toEqual(['v1', 'v2']);
    expect(got[0]!.string()).toBe('body');
    expect(got[1]!.headers).toBeUndefined();
  });

  it('max auto-unsubscribes after that many messages, counting those already delivered', async () => {
    const b = await natsBroker();
    const a = await nats(b);
    const s = await nats(b);
    const early = collect(s, 'm', { max: 3 });
    const later: Msg[] = [];
    const sub = s.subscribe('m', { callback: (_e, m) => void later.push(m) });
    await s.flush();
    a.publish('m', '1');
    a.publish('m', '2');
    await a.flush();
    await until(() => later.length === 2, 'two messages');
    sub.unsubscribe(3); // 2 delivered already: one more
    await s.flush();
    for (let i = 3; i <= 6; i++) a.publish('m', String(i));
    const end = collect(s, 'end');
    await s.flush();
    a.publish('end', '');
    await a.flush();
    await until(() => end.length === 1, 'the marker after the messages');
    expect(early.map((m) => m.string())).toEqual(['1', '2', '3']);
    expect(later.map((m) => m.string())).toEqual(['1', '2', '3']);
    await until(() => [...b.broker.natsSessions].every((x) => x.subs.size <= 1), 'the expired subscriptions gone from the broker');
  });

  it('flush and drain: everything published before drain arrives, then the connection closes', async () => {
    const b = await natsBroker();
    const a = await nats(b);
    const s = await nats(b);
    const got = collect(s, 'd');
    await s.flush();
    for (let i = 0; i < 200; i++) a.publish('d', String(i));
    await a.drain();
    await until(() => got.length === 200, 'all 200 messages');
    await s.drain();
    expect(s.isClosed()).toBe(true);
    await until(() => b.broker.natsSessions.size === 0, 'both sessions gone');
  });

  it('echo: false keeps a connection from hearing its own publishes', async () => {
    const b = await natsBroker();
    const quiet = await nats(b, { noEcho: true });
    const other = await nats(b);
    const mine = collect(quiet, 'e');
    const theirs = collect(other, 'e');
    await quiet.flush();
    await other.flush();
    quiet.publish('e', 'from quiet');
    other.publish('e', 'from other');
    await quiet.flush();
    await other.flush();
    await until(() => theirs.length === 2 && mine.length === 1, 'the deliveries');
    expect(mine.map((m) => m.string())).toEqual(['from other']);
  });

  it('echo: false in a queue group: the other members get all of its publishes, as from nats-server', async () => {
    const b = await natsBroker();
    const quiet = await nats(b, { noEcho: true });
    const other = await nats(b);
    const mine = collect(quiet, 'w', { queue: 'g' });
    const theirs = collect(other, 'w', { queue: 'g' });
    await quiet.flush();
    await other.flush();
    for (let i = 0; i < 20; i++) quiet.publish('w', String(i));
    await quiet.flush();
    await until(() => theirs.length === 20, 'all 20 at the other member');
    other.publish('w', 'to the group');
    await other.flush();
    await until(() => theirs.length + mine.length === 21, 'the message from the other connection');
    expect(mine.map((m) => m.string())).toEqual(theirs.length === 21 ? [] : ['to the group']);
  });

  it('a payload over the advertised max_payload is refused by the client before it is sent', async () => {
    const b = await natsBroker({ maxPayload: 1024 });
    const c = await nats(b);
    expect(() => c.publish('big', new Uint8Array(2000))).toThrow(/max_payload|payload/i);
    expect(c.isClosed()).toBe(false);
  });

  it('reconnects to a broker restarted on the same port and resubscribes', async () => {
    const b1 = await natsBroker();
    const port = b1.broker.natsPort!;
    const c = await connect({ servers: `127.0.0.1:${port}`, reconnect: true, reconnectTimeWait: 50, maxReconnectAttempts: -1 });
    clients.push(c);
    const got = collect(c, 'r');
    await c.flush();
    const statuses = (async () => {
      for await (const s of c.status()) if (s.type === 'reconnect') return true;
      return false;
    })();
    await b1.close();
    const b2 = await world.broker({ natsPort: port });
    await expect(statuses).resolves.toBe(true);
    await until(() => [...b2.broker.natsSessions].some((s) => s.subs.size === 1), 'the subscription back on the new broker');
    const p = await nats(b2);
    p.publish('r', 'after restart');
    await p.flush();
    await until(() => got.length === 1, 'the message after the restart');
    expect(got[0]!.string()).toBe('after restart');
  });

  it('encode once: a message to many NATS subscribers is formatted once, not per subscriber', async () => {
    const b = await natsBroker();
    const subs = await Promise.all([nats(b), nats(b), nats(b), nats(b), nats(b)]);
    const got = subs.map((s) => collect(s, 'fan.>'));
    await Promise.all(subs.map((s) => s.flush()));
    const p = await nats(b);
    await p.flush();
    const prepare = vi.spyOn(MsgTemplate.prototype, 'prepare');
    try {
      p.publish('fan.out', 'one');
      await p.flush();
      await until(() => got.every((g) => g.length === 1), 'the message at all five');
      expect(prepare).toHaveBeenCalledTimes(1);
    } finally {
      prepare.mockRestore();
    }
  });
});
