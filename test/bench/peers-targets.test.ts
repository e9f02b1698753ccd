/**
 * The in-process targets, hopbus's NATS listener and the raw floors of the peer benchmark
 * (bench/peers/targets): each starts its real server (a broker on a worker thread, an
 * embedded broker, a broker process with its NATS listener driven by nats.js, a relay
 * thread over SharedArrayBuffer rings, a UDP relay process), and its clients carry
 * messages intact, in order, from a publisher to a subscriber, and through the
 * ping-pong's far side. Imported from dist/ (its workers and child processes run built JS):
 * run `npx tsc -p tsconfig.json` first.
 */
import os from 'node:os';
import { afterEach, describe, expect, it } from 'vitest';
import type { BusClient, RunningServer, Target } from '../../dist/bench/peers/target.js';
import { SERVERS, targetNamed } from '../../dist/bench/peers/targets/index.js';
import { startNode } from '../../dist/bench/procs.js';
import { until } from '../kit/index.js';

let running: RunningServer | null = null;
const clients: BusClient[] = [];
afterEach(async () => {
  await Promise.allSettled(clients.splice(0).map((c) => c.close()));
  await running?.stop();
  running = null;
});

async function start(t: Target): Promise<RunningServer> {
  const server = SERVERS.find((s) => s.name === t.server)!;
  running = await server.start(os.tmpdir());
  return running;
}

async function client(t: Target, srv: RunningServer, name: string): Promise<BusClient> {
  const c = await t.connect(t.endpoint(srv), name);
  clients.push(c);
  return c;
}

describe.each(['hopbus-shm', 'hopbus-inproc', 'hopbus-nats', 'nats-to-hopbus', 'hopbus-to-nats', 'node-sab-relay', 'node-dgram-relay'])(
  'peer bench target %s',
  (name) => {
    it('carries messages from a publisher to a subscriber, intact and in order', async () => {
      const t = targetNamed(name);
      const srv = await start(t);
      const pub = await client(t, srv, 'test-pub');
      const sub = await client(t, srv, 'test-sub');
      const got: number[] = [];
      await sub.subscribe('test.x', (p) => {
        expect(p.length).toBe(16);
        got.push(Buffer.from(p).readUInt32LE(0));
      });
      const n = 200;
      for (let i = 0; i < n; i++) {
        const payload = Buffer.alloc(16, 9);
        payload.writeUInt32LE(i, 0);
        pub.publish('test.x', payload);
        // One in flight for UDP (no flow control on the floor), bursts elsewhere.
        if (name === 'node-dgram-relay') await until(() => got.length === i + 1, `message ${i}`);
      }
      await until(() => got.length === n, `${n} messages`);
      expect(got).toEqual(Array.from({ length: n }, (_, i) => i));
    });

    it("answers pings through the ping-pong's far side", async () => {
      const t = targetNamed(name);
      const srv = await start(t);
      const ep = t.endpoint(srv);
      // A thread-bound transport has its own far side; the others run echo.js in a process of its own.
      const echo = t.echo !== undefined ? await t.echo(ep) : await startNode('bench/peers/echo.js', [t.name, JSON.stringify(ep)], /^READY/);
      try {
        const c = await client(t, srv, 'test-ping');
        let pongs = 0;
        await c.subscribe('bench.pong', () => pongs++);
        for (let i = 0; i < 20; i++) {
          c.publish('bench.ping', Buffer.alloc(16, i));
          await until(() => pongs === i + 1, `pong ${i}`);
        }
        expect(pongs).toBe(20);
      } finally {
        await echo.stop();
      }
    });
  },
);
