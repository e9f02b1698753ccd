/**
 * What may cross, against a real NATS cluster: loops (a broker leafed twice to the same
 * cluster, two brokers leafed to it) never deliver a message twice; `import`/`export`
 * bound what comes in and goes out, and `$SYS` stays home; the hub's leafnode
 * authorization is met with the remote's user/pass (or refused, and retried with back-off).
 * "Nothing more arrives" is checked after a request round trip over the same path.
 */
import type { NatsConnection } from '@nats-io/transport-node';
import { expect, it } from 'vitest';
import type { StartedBroker } from '../../broker/index.js';
import { connectBroker, type Bus } from '../../client/index.js';
import { describeNeeding, until } from '../kit/index.js';
import { randomBytes } from 'node:crypto';
import { encodeUserSeed, parseUserSeed } from '../../broker/leaf/nkey.js';
import { natsServerProblem } from './hub.js';
import { useLeafRig } from './rig.js';

const describe = describeNeeding('nats-server', natsServerProblem());

const { cleanup, hub, broker, nats } = useLeafRig();

async function bus(b: StartedBroker): Promise<Bus> {
  const c = await connectBroker(b.url, { reconnect: false });
  cleanup.push(() => c.close());
  return c;
}

async function reachable(n: NatsConnection, subject: string): Promise<void> {
  for (let i = 0; i < 1000; i++) {
    try {
      await n.request(subject, '', { timeout: 2000 });
      return;
    } catch (err) {
      const e = err as { code?: string; message: string };
      if (!/503|no responders/i.test(`${e.code ?? ''} ${e.message}`)) throw err;
    }
  }
  throw new Error(`${subject} never became reachable`);
}

describe('loops, bounds and credentials on the uplink', () => {
  it('a broker leafed twice to one cluster: one uplink serves, the other stands by; every message arrives once', async () => {
    const h = await hub();
    const [A, B, C] = h.nodes;
    const b = await broker({ leafnodes: { remotes: [{ urls: [A!.leafUrl] }, { urls: [B!.leafUrl] }], loopDelayMs: 600_000 } });
    const [u0, u1] = b.broker.leafnodes!.uplinks;
    await until(() => [u0!.state, u1!.state].sort().join() === 'connected,standby', 'one uplink connected, the other standing by', 10_000).catch(
      (err: Error) => {
        throw new Error(`${err.message}: ${JSON.stringify(b.broker.metrics().leafnodes)}`);
      },
    );

    expect(u0!.stats.loops + u1!.stats.loops).toBeGreaterThan(0);
    const client = await bus(b);
    let got = 0;
    client.subscribe('dup.x', () => void got++);
    client.subscribe('dup.ping', (m) => m.respond('ok'));
    await client.flush();
    const n = await nats(C!.clientPort);
    await reachable(n, 'dup.ping');
    for (let i = 0; i < 10; i++) n.publish('dup.x', String(i));
    await n.request('dup.ping', '', { timeout: 5000 });
    await n.request('dup.ping', '', { timeout: 5000 });
    await until(() => got >= 10, 'the ten messages');
    await client.flush();
    expect(got).toBe(10);
    // The serving node dies: an uplink serves again (the standby, woken, or the other on a learned URL), still once per message.
    const serving = u0!.state === 'connected' ? A! : B!;
    await serving.kill();
    await until(() => [u0!, u1!].some((u) => u.state === 'connected' && u.url !== serving.leafUrl), 'an uplink connected to a live node');
    await reachable(n, 'dup.ping');
    got = 0;
    for (let i = 0; i < 10; i++) n.publish('dup.x', String(i));
    await n.request('dup.ping', '', { timeout: 5000 });
    await n.request('dup.ping', '', { timeout: 5000 });
    await until(() => got >= 10, 'the ten messages after the failover');
    await client.flush();
    expect(got).toBe(10);
  });

  it('two brokers leafed to the cluster: a publish on one arrives once at the other, once at node C, and once locally', async () => {
    const h = await hub();
    const [A, B, C] = h.nodes;
    const b1 = await broker({ leafnodes: { remotes: [{ urls: [A!.leafUrl] }] } });
    const b2 = await broker({ leafnodes: { remotes: [{ urls: [B!.leafUrl] }] } });
    await h.leafs(A!, 1);
    await h.leafs(B!, 1);
    const c1 = await bus(b1);
    const c2 = await bus(b2);
    const counts = { b1: 0, b2: 0, c: 0 };
    c1.subscribe('dd.x', () => void counts.b1++);
    c2.subscribe('dd.x', () => void counts.b2++);
    c2.subscribe('dd.ping', (m) => m.respond('ok'));
    const n = await nats(C!.clientPort);
    n.subscribe('dd.x', { callback: () => void counts.c++ });
    n.subscribe('dd.cping', { callback: (_e, m) => void m.respond('ok') });
    await c1.flush();
    await c2.flush();
    await n.flush();
    await until(() => b1.broker.router.hasSubscribers('dd.ping') && b1.broker.router.hasSubscribers('dd.cping'), 'remote interest at broker 1');
    for (let i = 0; i < 10; i++) c1.publish('dd.x', i);
    await c1.request('dd.ping', '', { timeoutMs: 5000 });
    await c1.request('dd.cping', '', { timeoutMs: 5000 });
    await until(() => counts.b1 === 10 && counts.b2 === 10 && counts.c === 10, 'ten at each');
    // And nothing comes back around: a second round trip over every path.
    await c1.request('dd.ping', '', { timeoutMs: 5000 });
    await n.request('dd.ping', '', { timeout: 5000 });
    await c2.flush();
    expect(counts).toEqual({ b1: 10, b2: 10, c: 10 });
  });

  it('import and export bound what crosses; $SYS stays home', async () => {
    const h = await hub();
    const [A, , C] = h.nodes;
    const b = await broker({ leafnodes: { remotes: [{ urls: [A!.leafUrl], import: ['in.>', 'md.EURUSD.>'], export: ['out.>'] }] } });
    await h.leafs(A!, 1);
    const up = b.broker.leafnodes!.uplinks[0]!;
    const client = await bus(b);
    const got: string[] = [];
    client.subscribe('in.a', (m) => void got.push(m.subject));
    client.subscribe('other.a', (m) => void got.push(m.subject));
    client.subscribe('md.>', (m) => void got.push(m.subject));
    client.subscribe('$SYS.local.>', () => undefined);
    client.subscribe('in.ping', (m) => m.respond('ok'));
    await client.flush();
    // Announced: in.a, in.ping, md.> clipped to md.EURUSD.>; not other.a, not $SYS.local.>.
    expect([...up.interest.keys()].sort()).toEqual(['in.a', 'in.ping', 'md.EURUSD.>']);
    const n = await nats(C!.clientPort);
    const atC: string[] = [];
    n.subscribe('out.x', { callback: (_e, m) => void atC.push(m.subject) });
    n.subscribe('secret.x', { callback: (_e, m) => void atC.push(m.subject) });
    n.subscribe('$SYS.hopbus.x', { callback: (_e, m) => void atC.push(m.subject) });
    n.subscribe('out.ping', { callback: (_e, m) => void m.respond('ok') });
    await n.flush();
    await reachable(n, 'in.ping');
    n.publish('in.a', '');
    n.publish('other.a', '');
    n.publish('md.EURUSD.bid', '');
    n.publish('md.USDJPY.bid', '');
    await n.request('in.ping', '', { timeout: 5000 });
    await until(() => got.length >= 2, 'the imported messages');
    await client.flush();
    expect(got.sort()).toEqual(['in.a', 'md.EURUSD.bid']);
    // Out: only out.> is taken in from the hub's interest.
    await until(() => b.broker.router.hasSubscribers('out.ping'), 'out.ping interest at the broker');
    expect(b.broker.router.hasSubscribers('secret.x')).toBe(false);
    expect(b.broker.router.hasSubscribers('$SYS.hopbus.x')).toBe(false);
    client.publish('secret.x', '');
    client.publish('$SYS.hopbus.x', '');
    client.publish('out.x', '');
    await client.request('out.ping', '', { timeoutMs: 5000 });
    await until(() => atC.length >= 1, 'out.x at node C');
    await n.flush();
    expect(atC).toEqual(['out.x']);
  });

  it('a hub that stops reading (SIGSTOP) costs counted drops on the uplink, bounded by maxPending, and no stall of local traffic', async () => {
    const h = await hub();
    const [A, , C] = h.nodes;
    const b = await broker({ leafnodes: { remotes: [{ urls: [A!.leafUrl], maxPending: 256 * 1024, policy: 'drop-newest' }] } });
    await h.leafs(A!, 1);
    const up = b.broker.leafnodes!.uplinks[0]!;
    const n = await nats(C!.clientPort);
    n.subscribe('flow.>', { callback: () => undefined });
    await n.flush();
    await until(() => b.broker.router.hasSubscribers('flow.x'), 'the remote interest in flow.>');
    const pub = await bus(b);
    const sub = await bus(b);
    let local = 0;
    sub.subscribe('flow.x', () => void local++);
    await sub.flush();
    A!.proc!.kill('SIGSTOP');
    cleanup.push(async () => void A!.proc?.kill('SIGCONT'));
    const payload = Buffer.alloc(32 * 1024);
    // 64 MiB for the hub: far more than its socket buffers and the uplink's 256 KiB take.
    for (let round = 0; round < 16; round++) {
      for (let i = 0; i < 128; i++) pub.publish('flow.x', payload);
      await pub.flush();
    }
    await until(() => local === 16 * 128, 'every message at the local subscriber');
    const m = up.metrics();
    expect(m.dropped).toBeGreaterThan(0);
    expect(m.msgsOut + m.dropped).toBe(16 * 128);
    expect(m.pendingBytes).toBeLessThanOrEqual(256 * 1024 + payload.length + 1024);
    expect(b.broker.counters.droppedNewest).toBe(m.dropped);
    A!.proc!.kill('SIGCONT');
  });

  it("credentials: the hub's leafnode authorization refuses a wrong password (retried with back-off) and admits the right one", async () => {
    const h = await hub({ leafAuth: { user: 'leaf', password: 's3cret' } });
    const [A, B] = h.nodes;
    const bad = await broker({ leafnodes: { remotes: [{ urls: [A!.leafUrl], user: 'leaf', pass: 'wrong' }], reconnectDelayMs: 20, maxReconnectDelayMs: 40 } });
    const badUp = bad.broker.leafnodes!.uplinks[0]!;
    await until(() => badUp.failures >= 2, 'two refused attempts');
    expect(badUp.state).not.toBe('connected');
    expect(badUp.lastError).toMatch(/authorization violation/i);
    await bad.close();
    const good = await broker({ leafnodes: { remotes: [{ urls: [A!.leafUrl], user: 'leaf', pass: 's3cret' }] } });
    await until(() => good.broker.leafnodes!.uplinks[0]!.state === 'connected', 'admitted with user/pass');
    // The same through the URL's userinfo.
    const viaUrl = await broker({ leafnodes: { remotes: [{ urls: [B!.leafUrl.replace('nats://', 'nats://leaf:s3cret@')] }] } });
    await until(() => viaUrl.broker.leafnodes!.uplinks[0]!.state === 'connected', 'admitted with nats://user:pass@');
    await h.leafs(A!, 1, true);
  });

  it('credentials: an nkey seed signs the hub nonce; a token is sent as auth_token; a wrong seed is refused', async () => {
    const seed = encodeUserSeed(randomBytes(32));
    const pub = parseUserSeed(seed)!.publicKey;
    const h = await hub({ nodes: 1, extra: `authorization { users: [ { nkey: "${pub}" } ] }` });
    const [A] = h.nodes;
    const good = await broker({ leafnodes: { remotes: [{ urls: [A!.leafUrl], nkey: seed }] } });
    await until(() => good.broker.leafnodes!.uplinks[0]!.state === 'connected', 'admitted with the nkey');
    const other = await broker({
      leafnodes: { remotes: [{ urls: [A!.leafUrl], nkey: encodeUserSeed(randomBytes(32)) }], reconnectDelayMs: 20, maxReconnectDelayMs: 40 },
    });
    const up = other.broker.leafnodes!.uplinks[0]!;
    await until(() => up.failures >= 1, 'a refused attempt');
    expect(up.lastError).toMatch(/authorization violation/i);
    const th = await hub({ nodes: 1, extra: 'authorization { token: "t0ken" }' });
    const tok = await broker({ leafnodes: { remotes: [{ urls: [th.nodes[0]!.leafUrl], token: 't0ken' }] } });
    await until(() => tok.broker.leafnodes!.uplinks[0]!.state === 'connected', 'admitted with the token');
  });
});
