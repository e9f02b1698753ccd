/**
 * Slow consumers over WebSocket: uWS's buffered amount is part of the link's pending
 * bytes, so the broker's policies act on a WebSocket consumer that stops reading as
 * on a TCP one. The consumer is a raw `ws` socket paused with ws.pause() (it reads
 * nothing more), the publisher an SDK client over TCP.
 *
 * What these tests wait for is acknowledged, never timed: a publisher's flush() (the
 * broker has routed everything sent before it) and the frames the consumer receives. How
 * many bytes the kernel's socket buffers take before uWS has to buffer depends on the
 * machine and its load, so no test asserts a snapshot of them.
 */
import WebSocket from 'ws';
import { describe, expect, it } from 'vitest';
import { Op } from '../../transports/protocol/index.js';
import { connectFrame, subFrame, until, useWorld } from '../kit/index.js';
import { wsUrl } from '../monitoring/http.js';

const w = useWorld();
const POLICY = { disconnect: 1, 'drop-oldest': 2, 'drop-newest': 3 } as const;

/** What a raw consumer has received: MSG frames, and the drops LOSS frames reported. */
interface Received {
  msgs: number;
  lossReports: number;
  dropped: number;
}

/** Counts the frames in a WebSocket's binary messages (a frame may span messages). */
function countFrames(ws: WebSocket): Received {
  const got: Received = { msgs: 0, lossReports: 0, dropped: 0 };
  let rest = Buffer.alloc(0);
  ws.on('message', (data: Buffer) => {
    const buf = rest.length === 0 ? data : Buffer.concat([rest, data]);
    let pos = 0;
    while (buf.length - pos >= 4 && buf.length - pos >= buf.readUInt32LE(pos)) {
      const op = buf[pos + 4];
      if (op === Op.MSG) got.msgs++;
      else if (op === Op.LOSS) {
        got.lossReports++;
        got.dropped += buf.readUInt32LE(pos + 12);
      }
      pos += buf.readUInt32LE(pos);
    }
    rest = Buffer.from(buf.subarray(pos));
  });
  return got;
}

async function stalledConsumer(url: string, policy: keyof typeof POLICY): Promise<{ ws: WebSocket; closed: Promise<void>; got: Received }> {
  const ws = new WebSocket(url);
  await new Promise((r, j) => {
    ws.once('open', r);
    ws.once('error', j);
  });
  const closed = new Promise<void>((r) => ws.once('close', () => r()));
  const got = countFrames(ws);
  const sub = subFrame(1, 'flood');
  sub[6] = POLICY[policy];
  const info = new Promise((r) => ws.once('message', r));
  ws.send(Buffer.concat([connectFrame({ name: `stalled-${policy}` }), sub]));
  await info;
  ws.pause(); // stop reading: the kernel buffers fill, then uWS buffers, then the policy acts
  return { ws, closed, got };
}

const LIMITS = { httpPort: 0, maxPending: 1 << 20, highWaterBytes: 256 * 1024, writeDeadlineMs: 0 };

describe('a WebSocket consumer that stops reading', () => {
  it('is closed with SLOW_CONSUMER under the disconnect policy; the publisher is unaffected', async () => {
    const b = await w.broker(LIMITS);
    const { ws, closed } = await stalledConsumer(wsUrl(b), 'disconnect');
    const pub = await w.connect(b.url, { name: 'pub' });
    const payload = Buffer.alloc(4096, 1);
    // Bursts, each acknowledged by a flush (the broker has routed it), until the policy acts.
    for (let burst = 0; b.broker.counters.slowConsumers === 0; burst++) {
      if (burst === 2000) throw new Error(`no slow consumer after ${burst} bursts of 200 x 4 KiB`);
      for (let i = 0; i < 200; i++) pub.publish('flood', payload);
      await pub.flush();
    }
    ws.resume();
    await closed;
    expect([...b.broker.sessions].map((s) => s.name)).toEqual(['pub']);
    await pub.flush();
  });

  it('loses messages under drop-newest, stays connected, and the drops show in the counters and reach the consumer in LOSS', async () => {
    const b = await w.broker(LIMITS);
    const { ws, got } = await stalledConsumer(wsUrl(b), 'drop-newest');
    const pub = await w.connect(b.url, { name: 'pub' });
    const payload = Buffer.alloc(4096, 1);
    // Bursts, each acknowledged by a flush: the broker has routed all of it, so the
    // counters read after it are final for what was published.
    let published = 0;
    for (let burst = 0; b.broker.counters.droppedNewest === 0; burst++) {
      if (burst === 2000) throw new Error(`no drop after ${burst} bursts of 200 x 4 KiB`);
      for (let i = 0; i < 200; i++) pub.publish('flood', payload);
      published += 200;
      await pub.flush();
    }
    expect(b.broker.counters.slowConsumers).toBe(0);
    const s = [...b.broker.sessions].find((x) => x.name === 'stalled-drop-newest')!;
    expect(s.open).toBe(true);
    expect(s.link.transport).toBe('ws');
    // Held only once the link itself was over its high-water mark (the kernel and uWS buffers full).
    expect(s.out.stats.pendingPeak).toBeGreaterThan(LIMITS.highWaterBytes);
    const dropped = s.out.stats.droppedNewest;
    expect(dropped).toBeGreaterThan(0);
    expect(dropped).toBe(b.broker.counters.droppedNewest);
    // Every message published was either kept for the consumer or dropped and counted.
    expect(s.stats.msgsOut + dropped).toBe(published);
    // Reading again, the consumer gets every message kept and a LOSS report of the rest.
    ws.resume();
    await until(() => got.msgs === s.stats.msgsOut && got.dropped === dropped, 'every kept message and the LOSS report at the consumer', 20_000);
    expect(got.lossReports).toBeGreaterThan(0);
    expect(s.out.pendingBytes).toBe(0);
    expect(s.open).toBe(true);
    ws.close();
  });
});
