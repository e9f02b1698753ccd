/**
 * Transports are interchangeable: workers on shm, clients over TCP and inproc
 * clients on the broker's thread all see each other's messages and requests.
 * Workers load dist/: run `npx tsc -p tsconfig.json` first.
 */
import { describe, expect, it } from 'vitest';
import type { StartedBroker } from '../../broker/index.js';
import { connectBroker as connect, type Bus } from '../../client/index.js';
import { Agent, until, useShmWorld } from './helpers.js';

const shm = useShmWorld();
const { buses, agents } = shm;

async function world(): Promise<StartedBroker> {
  return shm.start();
}
async function client(addr: Parameters<typeof connect>[0]): Promise<Bus> {
  const b = await connect(addr, { reconnect: false });
  buses.push(b);
  return b;
}

describe('shm and TCP together', () => {
  it('a worker publishes and a TCP client receives every message, in order', async () => {
    const b = await world();
    const tcp = await client(b.url);
    const seqs: number[] = [];
    tcp.subscribe('from.worker', (m) => seqs.push(Buffer.from(m.data.buffer, m.data.byteOffset, m.data.length).readUInt32LE(0)));
    await tcp.flush();
    const w = await Agent.start(b.endpoint('shm'), { wait: 'hybrid' });
    agents.push(w);
    await w.call('pub', { subject: 'from.worker', n: 10_000, size: 32 });
    await until(() => seqs.length === 10_000, '10,000 messages at the TCP client');
    expect(seqs.every((s, i) => s === i)).toBe(true);
  });

  it('a TCP client publishes and a worker receives every message, in order', async () => {
    const b = await world();
    const w = await Agent.start(b.endpoint('shm'), { wait: 'park' });
    agents.push(w);
    await w.call('sub', { subject: 'to.worker', seq: true });
    const tcp = await client(b.url);
    const payload = Buffer.alloc(64);
    for (let i = 0; i < 10_000; i++) {
      payload.writeUInt32LE(i, 0);
      tcp.publish('to.worker', payload);
    }
    await tcp.flush();
    await w.call('flush');
    const { subs } = await w.call<{ subs: Record<string, { received: number; outOfOrder: number }> }>('report');
    expect(subs['to.worker']).toMatchObject({ received: 10_000, outOfOrder: 0 });
  });

  it('requests cross transports both ways: TCP -> worker responder, worker -> inproc responder', async () => {
    const b = await world();
    const w = await Agent.start(b.endpoint('shm'), { wait: 'hybrid' });
    agents.push(w);
    await w.call('echo', { subject: 'svc.worker' });
    const tcp = await client(b.url);
    const r1 = await tcp.request('svc.worker', 'hello');
    expect(r1.string()).toBe('hello');

    const local = await client(b.endpoint('inproc'));
    local.subscribe('svc.local', (m) => m.respond(`local saw ${m.string()}`));
    await local.flush();
    const r2 = await w.call<{ value: unknown }>('request', { subject: 'svc.local', data: 'hi' });
    expect(r2.value).toBe('local saw hi');
  });

  it('two workers talk through the broker thread, each with its own wait strategy', async () => {
    const b = await world();
    const a = await Agent.start(b.endpoint('shm'), { wait: 'park', name: 'a' });
    const c = await Agent.start(b.endpoint('shm'), { wait: 'hybrid', name: 'c' });
    agents.push(a, c);
    await c.call('echo', { subject: 'svc.c' });
    for (let i = 0; i < 20; i++) {
      const r = await a.call<{ value: unknown }>('request', { subject: 'svc.c', data: `n${i}` });
      expect(Buffer.from(r.value as Uint8Array).toString()).toBe(`n${i}`);
    }
  });

  it('each wait strategy carries a request/reply round trip (spin kept short)', async () => {
    const b = await world();
    const tcp = await client(b.url);
    tcp.subscribe('svc.tcp', (m) => m.respond(m.data));
    await tcp.flush();
    for (const wait of ['park', 'hybrid', 'spin']) {
      const w = await Agent.start(b.endpoint('shm'), { wait });
      for (let i = 0; i < 50; i++) {
        const r = await w.call<{ value: unknown }>('request', { subject: 'svc.tcp', data: `${wait}${i}` });
        expect(Buffer.from(r.value as Uint8Array).toString()).toBe(`${wait}${i}`);
      }
      await w.call('close');
      await w.stop();
    }
  });
});
