/**
 * Direct delivery: shm clients of one broker write each other's messages straight
 * into channel rings, and the broker thread only keeps everybody's interest up to
 * date (docs/SHM.md, "Direct delivery"). Real worker threads, a real broker, real TCP
 * clients beside them. Workers load dist/: run `npx tsc -p tsconfig.json` first.
 */
import { describe, expect, it } from 'vitest';
import type { BrokerOptions, StartedBroker } from '../../broker/index.js';
import { connectBroker as connect, type Bus } from '../../client/index.js';
import { eventually } from '../kit/index.js';
import { Agent, exited, until, useShmWorld } from './helpers.js';

const shm = useShmWorld();
const { buses, agents } = shm;

async function start(o: BrokerOptions = {}): Promise<StartedBroker> {
  return shm.start(o);
}

async function agent(b: StartedBroker, name: string, o: { direct?: boolean; wait?: string } = {}): Promise<Agent> {
  const a = await Agent.start((w: unknown) => b.endpoint('shm', { worker: w as never }), { name, wait: o.wait ?? 'hybrid', direct: o.direct });
  agents.push(a);
  return a;
}

type SubReport = { received: number; outOfOrder: number; first: number; next: number };
async function report(a: Agent): Promise<Record<string, SubReport>> {
  return (await a.call<{ subs: Record<string, SubReport> }>('report')).subs;
}

/** The agent's report for `subject` once `done` holds for it. */
function settled(a: Agent, subject: string, done: (r: SubReport) => boolean): Promise<SubReport> {
  return eventually(async () => (await report(a))[subject]!, done, `the report for ${subject}`, 5_000);
}

/** A TCP subscriber counting u32 sequence numbers on `subject`. */
async function tcpSub(b: StartedBroker, subject: string): Promise<{ st: SubReport; bus: Bus }> {
  const bus = await connect(b.url, { name: 'tcp-sub' });
  buses.push(bus);
  const st: SubReport = { received: 0, outOfOrder: 0, first: -1, next: 0 };
  bus.subscribe(subject, (m) => {
    const seq = (m.data as Buffer).readUInt32LE(0);
    st.received++;
    if (st.first < 0) st.first = seq;
    else if (seq !== st.next) st.outOfOrder++;
    st.next = seq + 1;
  });
  await bus.flush();
  return { st, bus };
}

describe('direct delivery between workers', () => {
  it('messages go from the publishing thread to the subscribing one, in order, none lost or doubled, without the broker routing them', async () => {
    const b = await start();
    const sub = await agent(b, 'sub');
    const pub = await agent(b, 'pub');
    await sub.call('sub', { subject: 'direct.a', seq: true });
    await sub.call('sub', { subject: 'direct.warm' });
    // The channel is opened by the first message pub has for sub (WANT, OPEN, memory, ACK);
    // until pub has the memory and ACKs, the broker path serves sub. Warm up on another
    // subject until a message lands in the channel: pub has ACKed by then (it ACKs before it
    // writes), so every later message for sub goes into the channel.
    await eventually(
      async () => (await pub.call('pub', { subject: 'direct.warm', n: 1 }), b.broker.direct.stats()),
      (d) => d.channels === 1 && d.msgs > 0,
      'pub writing into its channel to sub',
    );
    const before = { ...b.broker.direct.stats(), msgsIn: b.broker.counters.msgsIn, msgsOut: b.broker.counters.msgsOut };
    const n = 50_000;
    await pub.call('pub', { subject: 'direct.a', n, size: 16 });
    await sub.call('flush');
    const r = await settled(sub, 'direct.a', (x) => x.received >= n);
    expect(r).toMatchObject({ received: n, outOfOrder: 0, first: 0, next: n });
    // With the channel acknowledged first, the broker routed none of them: all n went into the channel.
    const d = b.broker.direct.stats();
    expect(b.broker.counters.msgsIn - before.msgsIn).toBe(0);
    expect(b.broker.counters.msgsOut - before.msgsOut).toBe(0);
    expect(d.msgs - before.msgs).toBe(n);
    expect(d.bytes - before.bytes).toBeGreaterThan(n * 16);
    expect(d.channels).toBe(1);
  });

  it('a TCP subscriber and a worker subscriber of the same subject each get every message once, in order', async () => {
    const b = await start();
    const sub = await agent(b, 'sub');
    const pub = await agent(b, 'pub');
    await sub.call('sub', { subject: 'mixed.a', seq: true });
    const tcp = await tcpSub(b, 'mixed.a');
    const n = 20_000;
    await pub.call('pub', { subject: 'mixed.a', n, size: 32 });
    await until(() => tcp.st.received >= n, 'the TCP subscriber has everything');
    await sub.call('flush');
    const subs = await report(sub);
    expect(subs['mixed.a']).toMatchObject({ received: n, outOfOrder: 0, first: 0 });
    expect(tcp.st).toMatchObject({ received: n, outOfOrder: 0, first: 0, next: n });
  });

  it('a subscriber arriving mid-stream sees an unbroken run across the switch from the broker path to the channel', async () => {
    const b = await start();
    const sub = await agent(b, 'sub');
    const pub = await agent(b, 'pub');
    // The channel is open already (an earlier subject): the new subscription is fenced.
    await sub.call('sub', { subject: 'run.warm', seq: true });
    await pub.call('pub', { subject: 'run.warm', n: 100 });
    // A second subscriber too, connected but not subscribed yet: its channel is opened while the stream runs.
    const late = await agent(b, 'late');
    const n = 1_000_000;
    const before = b.broker.counters.msgsIn;
    const publishing = pub.call('pub', { subject: 'run.x', n, size: 16 }, 60_000);
    // The stream runs: its first messages reach the broker (nobody wants run.x yet, so they take the broker path).
    await until(() => b.broker.counters.msgsIn > before, 'the stream to start');
    await sub.call('sub', { subject: 'run.x', seq: true });
    await late.call('sub', { subject: 'run.x', seq: true });
    await publishing;
    expect(b.broker.direct.stats().channels).toBe(2);
    for (const a of [sub, late]) {
      const r = await settled(a, 'run.x', (x) => x.next >= n);
      expect(r.first).toBeGreaterThanOrEqual(0);
      expect(r).toMatchObject({ outOfOrder: 0, next: n, received: n - r.first });
    }
  });

  it('request/reply between workers, and from a TCP client to a worker', async () => {
    const b = await start();
    const server = await agent(b, 'server');
    const client = await agent(b, 'client');
    await server.call('echo', { subject: 'svc.echo' });
    for (let i = 0; i < 20; i++) {
      const r = await client.call<{ value: Uint8Array }>('request', { subject: 'svc.echo', data: `hello ${i}` });
      expect(Buffer.from(r.value).toString()).toBe(`hello ${i}`);
    }
    const tcp = await connect(b.url);
    buses.push(tcp);
    const reply = await tcp.request('svc.echo', 'from tcp');
    expect(reply.string()).toBe('from tcp');
    expect(b.broker.direct.stats().channels).toBeGreaterThanOrEqual(2);
  });

  it('after a TCP client subscribes and flushes, a worker that already writes the subject to a peer directly publishes to it too', async () => {
    const b = await start();
    const peer = await agent(b, 'peer');
    const pub = await agent(b, 'pub');
    for (let round = 0; round < 10; round++) {
      const subject = `barrier.${round}`;
      await peer.call('sub', { subject, seq: true });
      await pub.call('pub', { subject, n: 50 }); // the channel to the peer is in use for this subject
      const tcp = await tcpSub(b, subject); // subscribe + flush
      await pub.call('pub', { subject, n: 1 });
      await until(() => tcp.st.received === 1, `round ${round}: the TCP subscriber got the message published after its flush`);
    }
  });

  it('a subscriber with a slow-consumer policy other than disconnect is served by the broker, which applies it', async () => {
    const b = await start({ maxPending: 1 << 20 });
    const sub = await agent(b, 'sub');
    const pub = await agent(b, 'pub');
    await sub.call('sub', { subject: 'pol.a', seq: true, options: { policy: 'drop-newest' } });
    await pub.call('pub', { subject: 'pol.a', n: 2000 });
    await sub.call('flush');
    const r = await settled(sub, 'pol.a', (x) => x.received >= 2000);
    expect(r).toMatchObject({ received: 2000, outOfOrder: 0 });
    expect(b.broker.direct.stats().channels).toBe(0);
    expect(b.broker.counters.msgsIn).toBeGreaterThanOrEqual(2000);
  });

  it('a worker that connects with { direct: false } is served through the broker like any client', async () => {
    const b = await start();
    const sub = await agent(b, 'sub', { direct: false });
    const pub = await agent(b, 'pub');
    await sub.call('sub', { subject: 'plain.a', seq: true });
    await pub.call('pub', { subject: 'plain.a', n: 3000 });
    await sub.call('flush');
    const r = await settled(sub, 'plain.a', (x) => x.received >= 3000);
    expect(r).toMatchObject({ received: 3000, outOfOrder: 0, first: 0 });
    expect(b.broker.direct.stats()).toMatchObject({ members: 1, channels: 0 });
  });

  it('a broker with rate limits does not grant direct delivery (only it can apply them): workers are served through it', async () => {
    const b = await start({ subjectRates: [{ pattern: 'rl.>', msgsPerSec: 1_000_000, action: 'slow' }] });
    const sub = await agent(b, 'sub');
    const pub = await agent(b, 'pub');
    await sub.call('sub', { subject: 'rl.a', seq: true });
    await pub.call('pub', { subject: 'rl.a', n: 2000 });
    const r = await settled(sub, 'rl.a', (x) => x.received >= 2000);
    expect(r).toMatchObject({ received: 2000, outOfOrder: 0, first: 0 });
    expect(b.broker.direct.stats()).toMatchObject({ members: 0, channels: 0 });
    expect(b.broker.counters.msgsIn).toBeGreaterThanOrEqual(2000);
  });

  it('a subscriber that is terminated mid-stream: the publisher carries on, the other subscriber gets everything', async () => {
    const b = await start();
    const victim = await agent(b, 'victim');
    const keeper = await agent(b, 'keeper');
    const pub = await agent(b, 'pub');
    await victim.call('sub', { subject: 'crash.a', seq: true });
    await keeper.call('sub', { subject: 'crash.a', seq: true });
    await pub.call('pub', { subject: 'crash.a', n: 1000 });
    await until(() => b.broker.direct.stats().channels === 2, 'channels to both subscribers');
    const n = 100_000;
    const sent = b.broker.direct.stats().msgs;
    const publishing = pub.call('pub', { subject: 'crash.a', n, size: 16 }, 60_000);
    // Mid-stream: the channels have carried some of the new run.
    await until(() => b.broker.direct.stats().msgs > sent, 'the stream to start');
    await victim.worker.terminate();
    await exited(victim.worker);
    await publishing;
    await until(() => b.broker.direct.stats().members === 2, 'the victim has left the direct plane');
    const r = await settled(keeper, 'crash.a', (x) => x.received >= n + 1000);
    expect(r.received).toBe(n + 1000);
    expect(r.outOfOrder).toBe(1); // the second run starts again at 0
    // The publisher is still connected and serves a new subscriber.
    const fresh = await agent(b, 'fresh');
    await fresh.call('sub', { subject: 'crash.b', seq: true });
    await pub.call('pub', { subject: 'crash.b', n: 100 });
    await fresh.call('flush');
    const f = await settled(fresh, 'crash.b', (x) => x.received >= 100);
    expect(f).toMatchObject({ received: 100, outOfOrder: 0 });
  });
});
