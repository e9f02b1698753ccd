/**
 * Producer and consumer in real threads: millions of frames of varying sizes through
 * one ring, with every wait strategy on the consuming side; and a million messages
 * from a publishing worker through the broker thread to a subscribing worker.
 * Workers load dist/: run `npx tsc -p tsconfig.json` first.
 */
import { describe, expect, it } from 'vitest';
import { H_STATE, HUB_BYTES, STATE_CLAIMED, createConnection } from '../../transports/shm/layout.js';
import { Agent, exited, nextMessage, startWorker, useShmWorld } from './helpers.js';
import type { Worker } from 'node:worker_threads';

const workers: Worker[] = [];
const shm = useShmWorld();
const { agents } = shm;

async function ringAcrossThreads(count: number, consumerWait: string, producerWait: string): Promise<{ received: number; errors: number; firstError: string }> {
  const conn = createConnection(64 * 1024);
  Atomics.store(new Int32Array(conn), H_STATE, STATE_CLAIMED);
  const hub = new SharedArrayBuffer(HUB_BYTES);
  const seed = 12345;
  const consumer = startWorker('linkpeer', { conn, hub, side: 'broker', role: 'consume', count, wait: consumerWait, seed });
  const producer = startWorker('linkpeer', { conn, hub, side: 'client', role: 'produce', count, wait: producerWait, seed });
  workers.push(consumer, producer);
  const result = nextMessage<{ received: number; errors: number; firstError: string }>(consumer, (m) => 'received' in m, 60_000);
  const sent = await nextMessage<{ sent: number }>(producer, (m) => 'sent' in m, 60_000);
  expect(sent.sent).toBe(count);
  return result;
}

describe('shm ring across threads', () => {
  it('3,000,000 frames of 12..267 bytes arrive in order, intact, none lost or repeated (hybrid consumer)', async () => {
    const r = await ringAcrossThreads(3_000_000, 'hybrid', 'hybrid');
    expect(r).toEqual({ received: 3_000_000, errors: 0, firstError: '' });
  }, 60_000);

  it('500,000 frames with both ends parking (Atomics.waitAsync)', async () => {
    const r = await ringAcrossThreads(500_000, 'park', 'park');
    expect(r).toEqual({ received: 500_000, errors: 0, firstError: '' });
  }, 60_000);

  it('500,000 frames with both ends parking in Atomics.wait (blocking park)', async () => {
    const r = await ringAcrossThreads(500_000, 'park-blocking', 'park-blocking');
    expect(r).toEqual({ received: 500_000, errors: 0, firstError: '' });
  }, 60_000);

  it('500,000 frames with a spinning consumer', async () => {
    const r = await ringAcrossThreads(500_000, 'spin', 'hybrid');
    expect(r).toEqual({ received: 500_000, errors: 0, firstError: '' });
  }, 60_000);
});

describe('through the broker thread', () => {
  it('1,000,000 messages from a publishing worker reach a subscribing worker in order, none lost', async () => {
    const b = await shm.start();
    const sub = await Agent.start(b.endpoint('shm'), { wait: 'hybrid', name: 'sub' });
    const pub = await Agent.start(b.endpoint('shm'), { wait: 'hybrid', name: 'pub' });
    agents.push(sub, pub);
    await sub.call('sub', { subject: 'load.test', seq: true });
    const n = 1_000_000;
    await pub.call('pub', { subject: 'load.test', n, size: 16 }, 60_000);
    // The publisher's flush is answered after the broker routed all of it; the
    // subscriber's flush after everything routed to it before.
    await sub.call('flush');
    const { subs } = await sub.call<{ subs: Record<string, { received: number; outOfOrder: number; next: number }> }>('report');
    expect(subs['load.test']).toMatchObject({ received: n, outOfOrder: 0, next: n });
    void exited;
  }, 60_000);
});
