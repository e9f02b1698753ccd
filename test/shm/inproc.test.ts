/**
 * inproc: clients on the broker's own thread, joined by a pair of in-memory links.
 */
import { describe, expect, it } from 'vitest';
import type { StartedBroker } from '../../broker/index.js';
import { connectBroker as connect, type Bus } from '../../client/index.js';
import type { LinkHandler } from '../../transports/link.js';
import { inprocPair } from '../../transports/inproc.js';
import { Agent, until, useShmWorld } from './helpers.js';

const shm = useShmWorld();
const { buses } = shm;

async function world(): Promise<StartedBroker> {
  return shm.start();
}
async function client(addr: Parameters<typeof connect>[0], name = ''): Promise<Bus> {
  const b = await connect(addr, { reconnect: false, name });
  buses.push(b);
  return b;
}
const tick = () => new Promise((r) => setImmediate(r));

describe('inproc pub/sub and request/reply', () => {
  it('inproc clients publish and subscribe among themselves and with TCP clients', async () => {
    const b = await world();
    const a = await client(b.endpoint('inproc'), 'a');
    const c = await client(b.endpoint('inproc'), 'c');
    const tcp = await client(b.url, 'tcp');
    const got: string[] = [];
    a.subscribe('x.>', (m) => got.push(`a:${m.subject}:${m.string()}`));
    tcp.subscribe('x.>', (m) => got.push(`tcp:${m.subject}:${m.string()}`));
    await a.flush();
    await tcp.flush();
    c.publish('x.1', 'from inproc');
    await c.flush();
    tcp.publish('x.2', 'from tcp');
    await tcp.flush();
    await until(() => got.length === 4, 'four deliveries');
    expect(got.sort()).toEqual(['a:x.1:from inproc', 'a:x.2:from tcp', 'tcp:x.1:from inproc', 'tcp:x.2:from tcp']);
  });

  it('request/reply between inproc clients, and from TCP to an inproc responder', async () => {
    const b = await world();
    const svc = await client(b.endpoint('inproc'));
    svc.subscribe('svc.add', (m) => {
      const { x, y } = m.value as { x: number; y: number };
      m.respond({ sum: x + y });
    });
    await svc.flush();
    const local = await client(b.endpoint('inproc'));
    expect((await local.request('svc.add', { x: 2, y: 3 })).value).toEqual({ sum: 5 });
    const tcp = await client(b.url);
    expect((await tcp.request('svc.add', { x: 20, y: 22 })).value).toEqual({ sum: 42 });
    await expect(local.request('svc.nobody', {}, { timeoutMs: 1000 })).rejects.toThrow(/no responders/i);
  });

  it('delivers asynchronously: publish() returns before the subscriber runs, and a subscriber that publishes does not recurse', async () => {
    const b = await world();
    const pinger = await client(b.endpoint('inproc'));
    const ponger = await client(b.endpoint('inproc'));
    let depthFirst = 0;
    let depthLast = 0;
    let rounds = 0;
    const N = 5000;
    ponger.subscribe('ping', (m) => ponger.publish('pong', m.data));
    let done!: () => void;
    const finished = new Promise<void>((r) => (done = r));
    pinger.subscribe('pong', () => {
      const depth = new Error().stack!.split('\n').length;
      if (rounds === 0) depthFirst = depth;
      depthLast = depth;
      if (++rounds < N) pinger.publish('ping', 'p');
      else done();
    });
    await pinger.flush();
    await ponger.flush();
    // A timer set now still fires during the ping-pong: the microtask chain yields to the event loop.
    let timerFiredAt = -1;
    setTimeout(() => (timerFiredAt = rounds), 0);
    pinger.publish('ping', 'p');
    const seenAtReturn = rounds;
    expect(seenAtReturn).toBe(0);
    await finished;
    expect(rounds).toBe(N);
    expect(depthLast).toBe(depthFirst);
    expect(timerFiredAt).toBeGreaterThanOrEqual(0);
    expect(timerFiredAt).toBeLessThan(N);
  });

  it('an inproc endpoint cannot be used from another thread, and says so', async () => {
    const b = await world();
    await expect(Agent.start(b.endpoint('inproc'))).rejects.toThrow(/only on its broker's thread/);
  });
});

describe('inproc links', () => {
  class Raw implements LinkHandler {
    chunks: { buf: Buffer; off: number; len: number }[] = [];
    closed: Error | null | undefined;
    drains = 0;
    onFrame(buf: Buffer, off: number, len: number): void {
      this.chunks.push({ buf, off, len });
    }
    onClose(err: Error | null): void {
      this.closed = err;
    }
    onDrain(): void {
      this.drains++;
    }
  }
  const ping = Buffer.from([6, 0, 0, 0, 0x30, 0]);

  it('hand over the bytes the writer encoded: no copy between the two ends', async () => {
    const [a, b] = inprocPair('inproc://t', 1 << 20, 1 << 20);
    const ra = new Raw();
    const rb = new Raw();
    a.start(ra);
    b.start(rb);
    const out = a.reserve(6);
    const at = a.writeOffset;
    ping.copy(out, at);
    a.commit(6);
    expect(rb.chunks.length).toBe(0); // not yet: in a microtask
    await tick();
    expect(rb.chunks.length).toBe(1);
    expect(rb.chunks[0]!.buf.buffer).toBe(out.buffer);
    expect(rb.chunks[0]!.buf.byteOffset + rb.chunks[0]!.off).toBe(out.byteOffset + at);
  });

  it('a paused receiver holds what it was given; the sender counts it in pendingBytes until it is read', async () => {
    const [a, b] = inprocPair('inproc://t', 1 << 20, 1 << 20);
    const ra = new Raw();
    const rb = new Raw();
    a.start(ra);
    b.start(rb);
    b.pause();
    for (let i = 0; i < 100; i++) a.send(ping, 0, 6);
    await tick();
    expect(rb.chunks.length).toBe(0);
    expect(a.pendingBytes).toBe(600);
    expect(a.writeBlockedSince).toBeGreaterThan(0);
    b.resume();
    await tick();
    expect(rb.chunks.length).toBe(100);
    expect(a.pendingBytes).toBe(0);
    expect(a.writeBlockedSince).toBe(0);
    expect(ra.drains).toBeGreaterThan(0);
  });

  it('close() delivers what was sent, then closes both ends cleanly; destroy() resets the peer', async () => {
    const [a, b] = inprocPair('inproc://t', 1 << 20, 1 << 20);
    const ra = new Raw();
    const rb = new Raw();
    a.start(ra);
    b.start(rb);
    a.send(ping, 0, 6);
    a.close();
    await until(() => rb.closed !== undefined && ra.closed !== undefined, 'both ends closed');
    expect(rb.chunks.length).toBe(1);
    expect(rb.closed).toBeNull();

    const [c, d] = inprocPair('inproc://t', 1 << 20, 1 << 20);
    const rc = new Raw();
    const rd = new Raw();
    c.start(rc);
    d.start(rd);
    d.destroy(new Error('gone'));
    await until(() => rc.closed !== undefined, 'the peer is reset');
    expect(rc.closed?.message).toMatch(/reset by the peer/);
  });
});
