/**
 * ShmLink's timer-driven parts on a fake clock: the heartbeat that declares a silent
 * peer gone, and the bound on a graceful close whose peer does not take what is
 * queued. Both ends live in this thread and no poll loop runs: the test calls tick()
 * the way the poll loop does, with the clock's time.
 */
import { describe, expect, it } from 'vitest';
import { FakeClock } from '../../runtime/clock.js';
import { CLOSE_GRACE_MS } from '../../transports/buffered.js';
import type { LinkHandler } from '../../transports/link.js';
import { CLOSED_ABORT, H_CLIENT_CLOSED, H_STATE, HUB_BYTES, STATE_CLAIMED, createConnection } from '../../transports/shm/layout.js';
import { ShmLink } from '../../transports/shm/link.js';

const TIMEOUT_MS = 500;

class Handler implements LinkHandler {
  closes: (Error | null)[] = [];
  onFrame(): void {}
  onClose(err: Error | null): void {
    this.closes.push(err);
  }
}

function pair(clock: FakeClock, capacity = 4096): { client: ShmLink; broker: ShmLink; atClient: Handler } {
  const conn = createConnection(capacity);
  Atomics.store(new Int32Array(conn), H_STATE, STATE_CLAIMED);
  const hub = new SharedArrayBuffer(HUB_BYTES);
  const cfg = { conn, hub, maxFrame: 1 << 20, heartbeatMs: 100, heartbeatTimeoutMs: TIMEOUT_MS, clock, keepsAlive: false };
  const client = new ShmLink({ ...cfg, side: 'client', remote: 'test-client' });
  const broker = new ShmLink({ ...cfg, side: 'broker', remote: 'test-broker' });
  const atClient = new Handler();
  client.start(atClient);
  broker.start(new Handler());
  return { client, broker, atClient };
}

const microtasks = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('ShmLink on a fake clock', () => {
  it('stays open while the peer beats, however long', () => {
    const clock = new FakeClock();
    const { client, broker } = pair(clock);
    for (let i = 0; i < 50; i++) {
      clock.advance(100);
      broker.tick(clock.now());
      client.tick(clock.now());
    }
    expect(client.closed).toBe(false);
    expect(broker.closed).toBe(false);
    client.destroy();
    broker.destroy();
  });

  it('declares the peer gone after heartbeatTimeoutMs without a beat, not before', async () => {
    const clock = new FakeClock();
    const { client, broker, atClient } = pair(clock);
    client.tick(clock.now()); // sees the broker's beat counter once
    clock.advance(TIMEOUT_MS);
    client.tick(clock.now());
    expect(client.closed).toBe(false);
    clock.advance(1);
    client.tick(clock.now());
    expect(client.closed).toBe(true);
    expect(Atomics.load(client.header, H_CLIENT_CLOSED)).toBe(CLOSED_ABORT);
    await microtasks();
    expect(atClient.closes).toHaveLength(1);
    expect(atClient.closes[0]?.message).toMatch(/the broker thread stopped \(no heartbeat for 501 ms\)/);
    broker.destroy();
  });

  it('a close whose queued bytes the peer never takes ends after CLOSE_GRACE_MS', async () => {
    const clock = new FakeClock();
    const { client, broker, atClient } = pair(clock, 4096);
    const f = Buffer.alloc(1000);
    f.writeUInt32LE(1000, 0);
    f[4] = 0x02;
    f.writeUInt16LE(1, 6);
    for (let i = 0; i < 10; i++) client.send(f, 0, f.length); // more than the ring holds: the rest waits
    expect(client.pendingBytes).toBeGreaterThan(0);
    client.close();
    expect(client.closed).toBe(false);
    clock.advance(CLOSE_GRACE_MS - 1);
    expect(client.closed).toBe(false);
    clock.advance(1);
    expect(client.closed).toBe(true);
    await microtasks();
    expect(atClient.closes.map((e) => e?.message)).toEqual(['shm close timed out: the peer did not take what was queued']);
    expect(clock.pending).toBe(0);
    broker.destroy();
  });

  it('exposes its shared memory for the direct plane', () => {
    const clock = new FakeClock();
    const { client, broker } = pair(clock);
    expect(client.shared).toBeInstanceOf(SharedArrayBuffer);
    expect(client.shared).toBe(broker.shared);
    client.destroy();
    broker.destroy();
  });
});
