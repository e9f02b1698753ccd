/**
 * hopbus as a leafnode of a real NATS cluster: three nats-server nodes (A, B, C) with
 * routes and leafnode ports, hopbus broker 1 leafed to A, broker 2 to B. Messages,
 * queue groups and request/reply cross between hopbus clients on both brokers and a
 * nats.js client on C; interest goes both ways, so only what is asked for crosses.
 * Negative checks wait for a round trip on the same path (a request through the same
 * hub and uplink), never for time.
 */
import { connect as natsConnect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startBroker, type StartedBroker } from '../../broker/index.js';
import { connectBroker, NoRespondersError, type Bus, type Msg } from '../../client/index.js';
import { describeNeeding, until } from '../kit/index.js';
import { natsServerProblem, startHub, type Hub } from './hub.js';

const describe = describeNeeding('nats-server', natsServerProblem());

describe('hopbus brokers leafed to a 3-node NATS cluster', () => {
  let hub: Hub;
  let b1: StartedBroker;
  let b2: StartedBroker;
  const buses: Bus[] = [];
  const natsConns: NatsConnection[] = [];

  async function bus(b: StartedBroker): Promise<Bus> {
    const c = await connectBroker(b.url, { reconnect: false });
    buses.push(c);
    return c;
  }

  async function natsOn(port: number): Promise<NatsConnection> {
    const c = await natsConnect({ servers: `127.0.0.1:${port}`, reconnect: false });
    natsConns.push(c);
    return c;
  }

  /** Waits until `n` (a nats.js client on the cluster) gets an answer on `subject`: interest has propagated to it. */
  async function reachable(n: NatsConnection, subject: string): Promise<void> {
    for (let i = 0; i < 500; i++) {
      try {
        await n.request(subject, '', { timeout: 1000 });
        return;
      } catch (err) {
        if (!/no responders|503/i.test(String((err as Error).message) + String((err as { code?: string }).code))) throw err;
      }
    }
    throw new Error(`${subject} never became reachable`);
  }

  beforeAll(async () => {
    hub = await startHub({ nodes: 3 });
    await hub.formed();
    const [A, B] = hub.nodes;
    b1 = await startBroker({ port: 0, httpPort: 0, name: 'b1', logLevel: 'error', leafnodes: { remotes: [{ urls: [A!.leafUrl] }] } });
    b2 = await startBroker({ port: 0, name: 'b2', logLevel: 'error', leafnodes: { remotes: [{ urls: [B!.leafUrl] }] } });
    await hub.leafs(A!, 1);
    await hub.leafs(B!, 1);
    await until(() => b1.broker.leafnodes!.uplinks[0]!.state === 'connected' && b2.broker.leafnodes!.uplinks[0]!.state === 'connected', 'both uplinks up');
  }, 30_000);

  afterAll(async () => {
    await Promise.all(buses.map((b) => b.close().catch(() => undefined)));
    await Promise.all(natsConns.map((c) => c.close().catch(() => undefined)));
    await b1?.close();
    await b2?.close();
    await hub?.stop();
  });

  it('a hopbus publish on broker 1 reaches a hopbus client on broker 2 and a nats.js client on node C, with its value and headers', async () => {
    const [, , C] = hub.nodes;
    const pub = await bus(b1);
    const sub = await bus(b2);
    const got2: Msg[] = [];
    sub.subscribe('md.>', (m) => void got2.push(m));
    sub.subscribe('md.ping', (m) => m.respond('pong'));
    await sub.flush();
    const n = await natsOn(C!.clientPort);
    const gotC: string[] = [];
    n.subscribe('md.*.bid', { callback: (_e, m) => void gotC.push(`${m.subject}=${m.string()}`) });
    await n.flush();
    // The interest of broker 2 has reached broker 1 once a request from broker 1 is answered.
    await until(() => b1.broker.router.hasSubscribers('md.ping') && b1.broker.router.hasSubscribers('md.EURUSD.bid'), 'remote interest at broker 1');
    pub.publish('md.EURUSD.bid', '1.0841', { headers: { Desk: 'fx' } });
    pub.publish('md.EURUSD.bid', { px: 1.0842 });
    pub.publish('md.USDJPY.ask', new Uint8Array([1, 2, 3]));
    expect((await pub.request('md.ping', '', { timeoutMs: 5000 })).value).toBe('pong');
    await until(() => got2.length >= 4 && gotC.length === 2, 'the messages at broker 2 and at node C');
    const [m1, m2, m3] = got2.filter((m) => m.subject !== 'md.ping');
    expect(m1!.subject).toBe('md.EURUSD.bid');
    expect(m1!.value).toBe('1.0841');
    expect(m1!.headers).toEqual({ Desk: 'fx' });
    expect(m2!.value).toEqual({ px: 1.0842 });
    expect(m3!.subject).toBe('md.USDJPY.ask');
    expect([...m3!.data]).toEqual([1, 2, 3]);
    expect(gotC[0]).toBe('md.EURUSD.bid=1.0841');
  });

  it('only what remote interest asks for crosses: a subject nobody elsewhere wants stays on broker 1', async () => {
    const pub = await bus(b1);
    const before = b1.broker.leafnodes!.uplinks[0]!.stats.msgsOut;
    expect(b1.broker.router.hasSubscribers('local.only')).toBe(false);
    pub.publish('local.only', 'x');
    await pub.flush();
    expect(b1.broker.leafnodes!.uplinks[0]!.stats.msgsOut).toBe(before);
  });

  it('a nats.js request from node C is answered by a hopbus responder on broker 2; requests to nobody fail with no responders on both sides', async () => {
    const [, , C] = hub.nodes;
    const svc = await bus(b2);
    svc.subscribe('svc.echo', (m) => m.respond(`echo:${m.string()}`));
    await svc.flush();
    const n = await natsOn(C!.clientPort);
    await reachable(n, 'svc.echo');
    const r = await n.request('svc.echo', 'hi', { timeout: 5000 });
    expect(r.string()).toBe('echo:hi');
    // hopbus -> hopbus across the cluster.
    const client = await bus(b1);
    await until(() => b1.broker.router.hasSubscribers('svc.echo'), 'svc.echo interest at broker 1');
    expect((await client.request('svc.echo', 'x', { timeoutMs: 5000 })).value).toBe('echo:x');
    await expect(client.request('svc.nobody', '', { timeoutMs: 5000 })).rejects.toBeInstanceOf(NoRespondersError);
    await expect(n.request('svc.nobody', '', { timeout: 5000 })).rejects.toThrow();
  });

  it('queue groups: local members first; from node C the work spreads over hopbus and nats.js members, each message once', async () => {
    const [, , C] = hub.nodes;
    const w1 = await bus(b1);
    const w2 = await bus(b2);
    const n = await natsOn(C!.clientPort);
    const counts = { b1: 0, b2: 0, c: 0 };
    w1.subscribe('work.jobs', () => void counts.b1++, { queue: 'workers' });
    w2.subscribe('work.jobs', () => void counts.b2++, { queue: 'workers' });
    n.subscribe('work.jobs', { queue: 'workers', callback: () => void counts.c++ });
    // Barriers: a responder on each side, reached the same way as the work.
    w1.subscribe('work.done.b1', (m) => m.respond('ok'));
    w2.subscribe('work.done.b2', (m) => m.respond('ok'));
    n.subscribe('work.done.c', { callback: (_e, m) => void m.respond('ok') });
    await w1.flush();
    await w2.flush();
    await n.flush();
    await reachable(n, 'work.done.b1');
    await reachable(n, 'work.done.b2');
    await until(() => b1.broker.router.hasSubscribers('work.done.c'), 'node C interest at broker 1');
    // From broker 1: its own member takes everything.
    const local = await bus(b1);
    for (let i = 0; i < 20; i++) local.publish('work.jobs', i);
    await local.flush();
    expect(await local.request('work.done.c', '', { timeoutMs: 5000 })).toBeDefined();
    expect(await local.request('work.done.b2', '', { timeoutMs: 5000 })).toBeDefined();
    expect(counts).toEqual({ b1: 20, b2: 0, c: 0 });
    // From node C: spread over the three members, each message once.
    counts.b1 = counts.b2 = counts.c = 0;
    for (let i = 0; i < 90; i++) n.publish('work.jobs', String(i));
    await n.flush();
    await n.request('work.done.b1', '', { timeout: 5000 });
    await n.request('work.done.b2', '', { timeout: 5000 });
    await until(() => counts.b1 + counts.b2 + counts.c === 90, 'all 90 jobs taken');
    expect(counts.b1).toBeGreaterThan(0);
    expect(counts.b2).toBeGreaterThan(0);
    expect(counts.c).toBeGreaterThan(0);
  });

  it('monitoring: the uplink in the broker metrics with its hub and counts; the hub /leafz holds its interest and its $LDS', async () => {
    const [A] = hub.nodes;
    const m = b1.broker.metrics().leafnodes;
    expect(m).toHaveLength(1);
    expect(m[0]!.state).toBe('connected');
    expect(m[0]!.hub?.server_name).toBe('A');
    expect(m[0]!.connects).toBe(1);
    expect(m[0]!.localInterest).toBe(b1.broker.leafnodes!.uplinks[0]!.interest.size);
    const http = `http://127.0.0.1:${b1.broker.httpPort}`;
    const varz = (await (await fetch(`${http}/varz`)).json()) as { leafnodes: Array<{ name: string; state: string; url: string }> };
    expect(varz.leafnodes.map((l) => [l.name, l.state, l.url])).toEqual([['leaf0', 'connected', A!.leafUrl]]);
    const connz = (await (await fetch(`${http}/connz`)).json()) as { leafnodes: Array<{ hub: { server_name: string } }> };
    expect(connz.leafnodes[0]!.hub.server_name).toBe('A');
    const metrics = await (await fetch(`${http}/metrics`)).text();
    expect(metrics).toMatch(/^hopbus_leafnode_connected\{leaf="leaf0"\} 1$/m);
    expect(metrics).toMatch(/^hopbus_leafnode_dropped_total\{leaf="leaf0"\} 0$/m);
    // The hub holds what broker 1 announced: each local interest key, and its $LDS subject.
    const leafs = await hub.leafs(A!, 1);
    expect(leafs).toHaveLength(1);
    expect(leafs[0]!.subscriptions).toBe(m[0]!.localInterest + 1);
  });
});
