import { once } from 'node:events';
import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { OP, portOf, subFrame, useWorld } from '../kit/index.js';

const w = useWorld();

describe('graceful broker close()', () => {
  it('flushes the messages pending towards each client before closing its connection', async () => {
    const b = await w.broker();
    const sub = await w.connect(b.url, { reconnect: false });
    let received = 0;
    let atDisconnect = -1;
    sub.subscribe('bulk', () => received++);
    sub.on('disconnect', () => (atDisconnect = received));
    await sub.flush();
    const pub = await w.connect(b.url, { reconnect: false });
    const N = 200;
    const blob = new Uint8Array(32 * 1024);
    for (let i = 0; i < N; i++) pub.publish('bulk', blob);
    // The broker has routed all of them: ~6 MiB is queued or in flight towards `sub`.
    await pub.flush();
    const closed = once(sub, 'close');
    await b.close();
    await closed;
    expect(atDisconnect).toBe(N);
    expect(received).toBe(N);
  });

  it('raw clients receive what was queued for them, then the connection ends cleanly', async () => {
    const b = await w.broker();
    const raw = await w.raw(b);
    raw.keepPayloads = false;
    await raw.handshake();
    raw.send(subFrame(1, 'x'));
    await raw.roundTrip();
    const pub = await w.connect(b.url, { reconnect: false });
    for (let i = 0; i < 500; i++) pub.publish('x', new Uint8Array(1000));
    await pub.flush();
    await b.close();
    await raw.closed;
    expect(raw.msgCount).toBe(500);
    expect(raw.errors()).toEqual([]);
  });

  it('resolves once every connection has closed, and stops accepting new ones', async () => {
    const b = await w.broker();
    const clients = await Promise.all([1, 2, 3].map(() => w.connect(b.url, { reconnect: false })));
    const port = portOf(b);
    await b.close();
    expect(b.broker.sessions.size).toBe(0);
    for (const c of clients) await whenClosed(c);
    const refused = await new Promise<boolean>((resolve) => {
      const s = net.connect({ host: '127.0.0.1', port });
      s.on('connect', () => {
        s.destroy();
        resolve(false);
      });
      s.on('error', () => resolve(true));
    });
    expect(refused).toBe(true);
  });

  it('calling close() twice returns the same shutdown', async () => {
    const b = await w.broker();
    await w.connect(b.url, { reconnect: false });
    const first = b.broker.close();
    const second = b.broker.close();
    expect(second).toBe(first);
    await first;
  });

  it('a client reading nothing does not hold the shutdown forever', async () => {
    const b = await w.broker();
    const raw = await w.raw(b);
    raw.keepPayloads = false;
    await raw.handshake();
    raw.send(subFrame(1, 'x'));
    await raw.roundTrip();
    raw.socket.pause();
    const pub = await w.connect(b.url, { reconnect: false });
    // More than the kernel buffers hold, so the broker cannot finish writing.
    for (let round = 0; round < 64; round++) {
      for (let i = 0; i < 16; i++) pub.publish('x', new Uint8Array(16 * 1024));
      await pub.flush();
    }
    await b.close();
    expect(b.broker.sessions.size).toBe(0);
    expect(raw.count(OP.ERR)).toBe(0);
  });
});

async function whenClosed(bus: { isClosed: boolean; once(e: string, f: () => void): unknown }): Promise<void> {
  if (bus.isClosed) return;
  await new Promise<void>((resolve) => bus.once('close', resolve));
}
