/**
 * Slow consumers over WebSocket: uWS's buffered amount is part of the link's pending
 * bytes, so the broker's policies act on a WebSocket consumer that stops reading as
 * on a TCP one. The consumer is a raw `ws` socket paused with ws.pause() (it reads
 * nothing more), the publisher an SDK client over TCP.
 */
import WebSocket from 'ws';
import { describe, expect, it } from 'vitest';
import { connectFrame, subFrame, until, useWorld } from '../kit/index.js';
import { wsUrl } from '../monitoring/http.js';

const w = useWorld();
const POLICY = { disconnect: 1, 'drop-oldest': 2, 'drop-newest': 3 } as const;

async function stalledConsumer(url: string, policy: keyof typeof POLICY): Promise<{ ws: WebSocket; closed: Promise<void> }> {
  const ws = new WebSocket(url);
  await new Promise((r, j) => {
    ws.once('open', r);
    ws.once('error', j);
  });
  const closed = new Promise<void>((r) => ws.once('close', () => r()));
  const sub = subFrame(1, 'flood');
  sub[6] = POLICY[policy];
  const info = new Promise((r) => ws.once('message', r));
  ws.send(Buffer.concat([connectFrame({ name: `stalled-${policy}` }), sub]));
  await info;
  ws.pause(); // stop reading: the kernel buffers fill, then uWS buffers, then the policy acts
  return { ws, closed };
}

const LIMITS = { httpPort: 0, maxPending: 1 << 20, highWaterBytes: 256 * 1024, writeDeadlineMs: 0 };

describe('a WebSocket consumer that stops reading', () => {
  it('is closed with SLOW_CONSUMER under the disconnect policy; the publisher is unaffected', async () => {
    const b = await w.broker(LIMITS);
    const { ws, closed } = await stalledConsumer(wsUrl(b), 'disconnect');
    const pub = await w.connect(b.url, { name: 'pub' });
    const payload = Buffer.alloc(4096, 1);
    await until(
      () => {
        for (let i = 0; i < 200; i++) pub.publish('flood', payload);
        return b.broker.counters.slowConsumers > 0;
      },
      'the slow consumer closed',
      20_000,
    );
    ws.resume();
    await closed;
    expect([...b.broker.sessions].map((s) => s.name)).toEqual(['pub']);
    await pub.flush();
  });

  it('loses messages under drop-newest, stays connected, and the drops show in the counters', async () => {
    const b = await w.broker(LIMITS);
    const { ws } = await stalledConsumer(wsUrl(b), 'drop-newest');
    const pub = await w.connect(b.url, { name: 'pub' });
    const payload = Buffer.alloc(4096, 1);
    await until(
      () => {
        for (let i = 0; i < 200; i++) pub.publish('flood', payload);
        return b.broker.counters.droppedNewest > 0;
      },
      'drops by the policy',
      20_000,
    );
    await pub.flush();
    expect(b.broker.counters.slowConsumers).toBe(0);
    const s = [...b.broker.sessions].find((x) => x.name === 'stalled-drop-newest')!;
    expect(s.open).toBe(true);
    expect(s.link.transport).toBe('ws');
    expect(s.link.pendingBytes).toBeGreaterThan(0);
    expect(s.out.stats.droppedNewest).toBeGreaterThan(0);
    // Reading again, the consumer drains what was held.
    ws.resume();
    await until(() => s.out.pendingBytes === 0, 'the consumer drained', 20_000);
    ws.close();
  });
});
