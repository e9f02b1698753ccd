/**
 * One bus, two protocols: NATS clients (nats.js) and hopbus SDK clients on the same
 * subjects of one broker, both directions, with subjects, reply subjects, headers and
 * request/reply carried across, and every message counted.
 */
import { connect, headers, type Msg as NatsMsg, type NatsConnection } from '@nats-io/transport-node';
import { afterEach, describe, expect, it } from 'vitest';
import type { StartedBroker } from '../../broker/index.js';
import { connectBroker, type Bus, type Msg } from '../../client/index.js';
import { until, useWorld } from '../kit/index.js';

const world = useWorld();
const clients: NatsConnection[] = [];

afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close().catch(() => undefined)));
});

async function nats(b: StartedBroker): Promise<NatsConnection> {
  const c = await connect({ servers: `127.0.0.1:${b.broker.natsPort}`, reconnect: false });
  clients.push(c);
  return c;
}

describe('NATS and hopbus clients on one bus', () => {
  it('NATS -> hopbus: subject, reply, headers and payload bytes arrive', async () => {
    const b = await world.broker({ natsPort: 0 });
    const hb = await world.connect(b.url);
    const got: Msg[] = [];
    hb.subscribe('q.>', (m) => void got.push(m));
    await hb.flush();
    const n = await nats(b);
    const h = headers();
    h.append('Desk', 'fx');
    h.append('K', 'a');
    h.append('K', 'b');
    n.publish('q.eur', 'bid 1.0841', { headers: h, reply: 'answers.here' });
    n.publish('q.usd', new Uint8Array([0, 1, 255]));
    await n.flush();
    await until(() => got.length === 2, 'both messages at the hopbus subscriber');
    expect(got[0]!.subject).toBe('q.eur');
    expect(got[0]!.reply).toBe('answers.here');
    expect(got[0]!.string()).toBe('bid 1.0841');
    expect(got[0]!.headers).toEqual({ Desk: 'fx', K: 'a\nb' });
    expect([...got[1]!.data]).toEqual([0, 1, 255]);
    expect(got[1]!.headers).toBeUndefined();
  });

  it('hopbus -> NATS: strings, bytes and msgpack values arrive as their bytes, headers as a NATS/1.0 block', async () => {
    const b = await world.broker({ natsPort: 0 });
    const n = await nats(b);
    const got: NatsMsg[] = [];
    n.subscribe('t.*', { callback: (_e, m) => void got.push(m) });
    await n.flush();
    const hb = await world.connect(b.url);
    hb.publish('t.s', 'text', { headers: { Trace: 'abc', Multi: 'x\ny' }, reply: 'r.1' });
    hb.publish('t.b', new Uint8Array([9, 8, 7]));
    hb.publish('t.o', { px: 1.5 });
    await hb.flush();
    await until(() => got.length === 3, 'three messages at the NATS subscriber');
    expect(got[0]!.string()).toBe('text');
    expect(got[0]!.reply).toBe('r.1');
    expect(got[0]!.headers?.get('Trace')).toBe('abc');
    expect(got[0]!.headers?.values('Multi')).toEqual(['x', 'y']);
    expect([...got[1]!.data]).toEqual([9, 8, 7]);
    expect(got[2]!.data.length).toBeGreaterThan(0); // the msgpack bytes
  });

  it('request/reply both ways, and hopbus no-responders for a NATS request and the other way round', async () => {
    const b = await world.broker({ natsPort: 0 });
    const hb = await world.connect(b.url);
    const n = await nats(b);
    hb.subscribe('hb.svc', (m) => m.respond(`hopbus says ${m.string()}`));
    n.subscribe('nats.svc', { callback: (_e, m) => void m.respond(`nats says ${m.string()}`) });
    await hb.flush();
    await n.flush();
    expect((await n.request('hb.svc', 'hi', { timeout: 5000 })).string()).toBe('hopbus says hi');
    expect((await hb.request('nats.svc', 'yo', { timeoutMs: 5000 })).string()).toBe('nats says yo');
    await expect(n.request('nobody', 'x', { timeout: 5000 })).rejects.toThrow(/no responders/i);
    await expect(hb.request('nobody', 'x', { timeoutMs: 5000 })).rejects.toMatchObject({ code: 'NO_RESPONDERS' });
  });

  it('mixed traffic both directions: every message counted, none lost, order kept per publisher', async () => {
    const b = await world.broker({ natsPort: 0 });
    const N = 500;
    const hbSub = await world.connect(b.url);
    const hbPub = await world.connect(b.url);
    const nSub = await nats(b);
    const nPub = await nats(b);
    const atHopbus: Record<string, number[]> = { nats: [], hopbus: [] };
    const atNats: Record<string, number[]> = { nats: [], hopbus: [] };
    hbSub.subscribe('mix.*', (m) => void atHopbus[m.subject.slice(4)]!.push(Number(m.string())));
    nSub.subscribe('mix.*', { callback: (_e, m) => void atNats[m.subject.slice(4)]!.push(Number(m.string())) });
    await hbSub.flush();
    await nSub.flush();
    for (let i = 0; i < N; i++) {
      nPub.publish('mix.nats', String(i));
      hbPub.publish('mix.hopbus', String(i));
    }
    await nPub.flush();
    await hbPub.flush();
    const all = Array.from({ length: N }, (_, i) => i);
    await until(
      () => atHopbus.nats!.length === N && atHopbus.hopbus!.length === N && atNats.nats!.length === N && atNats.hopbus!.length === N,
      'every message at both subscribers',
    );
    expect(atHopbus.nats).toEqual(all);
    expect(atHopbus.hopbus).toEqual(all);
    expect(atNats.nats).toEqual(all);
    expect(atNats.hopbus).toEqual(all);
    const c = b.broker.counters;
    expect(c.droppedOldest + c.droppedNewest + c.slowConsumers).toBe(0);
  });

  it('a hopbus queue group and a NATS queue group of the same name are one group', async () => {
    const b = await world.broker({ natsPort: 0 });
    const hb = await world.connect(b.url);
    const n = await nats(b);
    let atHb = 0;
    let atN = 0;
    hb.subscribe('jobs', () => void atHb++, { queue: 'workers' });
    n.subscribe('jobs', { queue: 'workers', callback: () => void atN++ });
    await hb.flush();
    await n.flush();
    const p = await nats(b);
    for (let i = 0; i < 40; i++) p.publish('jobs', String(i));
    await p.flush();
    await until(() => atHb + atN === 40, 'each job once');
    expect(atHb).toBeGreaterThan(0);
    expect(atN).toBeGreaterThan(0);
  });

  it('over every hopbus transport: inproc, unix and WebSocket subscribers get a NATS publish, and answer its request', async () => {
    const dir = world.tmpdir();
    const b = await world.broker({ natsPort: 0, httpPort: 0, unix: `${dir}/hb.sock` });
    const ws = b.urls.find((u) => u.startsWith('ws:'))!;
    const buses: Bus[] = [
      world.track(await connectBroker(b.endpoint('inproc'), { name: 'inproc', reconnect: false })),
      world.track(await connectBroker(`unix://${dir}/hb.sock`, { name: 'unix', reconnect: false })),
      await world.connect(ws, { name: 'ws' }),
    ];
    const got: string[] = [];
    for (const [i, bus] of buses.entries()) {
      bus.subscribe('all.x', (m) => void got.push(`${i}:${m.string()}`));
      bus.subscribe(`svc.${i}`, (m) => m.respond(`from ${i}`));
      await bus.flush();
    }
    const n = await nats(b);
    n.publish('all.x', 'hello');
    await n.flush();
    await until(() => got.length === 3, 'the message at all three');
    expect(got.sort()).toEqual(['0:hello', '1:hello', '2:hello']);
    for (let i = 0; i < 3; i++) expect((await n.request(`svc.${i}`, '', { timeout: 5000 })).string()).toBe(`from ${i}`);
  });
});
