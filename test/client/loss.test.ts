/**
 * A flush or a drain never resolves over a loss. The broker runs in a child process,
 * killed with SIGKILL while a publisher's messages are queued, then started again on the
 * same port: what the lost connection had not written is carried to the new one as far
 * as the reconnect buffer holds it; everything else is reported with its count.
 */
import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { MessagesLostError } from '../../client/index.js';
import { Bus } from '../../client/bus.js';
import { FakeClock } from '../../runtime/clock.js';
import type { Link } from '../../transports/link.js';
import { until, useWorld } from '../kit/index.js';
import { useBrokerProcesses } from './processes.js';

const w = useWorld();
const brokerProcess = useBrokerProcesses();

/** Fast reconnects so tests do not wait on backoff. */
const FAST = { reconnectDelayMs: 10, maxReconnectDelayMs: 50, reconnectJitterMs: 0 };

/** The next `name` event (events.once would reject on the 'error' events these tests expect). */
function event(bus: Bus, name: 'disconnect' | 'reconnect' | 'close'): Promise<void> {
  return new Promise((resolve) => bus.once(name, () => resolve()));
}

/** Subscribes `bus` to its own subject and marks which sequence numbers came back. */
function selfSubscribe(bus: Bus, subject: string, n: number) {
  const seen = new Uint8Array(n);
  const state = {
    distinct: 0,
    afterReconnect: 0,
    /** How many of [from, to) arrived. */
    inRange: (from: number, to: number) => seen.subarray(from, to).reduce((a, b) => a + b, 0),
  };
  bus.subscribe(subject, (m) => {
    const i = Buffer.from(m.data.buffer, m.data.byteOffset, 4).readUInt32LE(0);
    if (seen[i] === 0) state.distinct++;
    seen[i] = 1;
    if (bus.stats.reconnects > 0) state.afterReconnect++;
  });
  return state;
}

function publishAll(bus: Bus, subject: string, from: number, n: number, size = 64): void {
  const p = Buffer.alloc(size);
  for (let i = from; i < from + n; i++) {
    p.writeUInt32LE(i, 0);
    bus.publish(subject, p);
  }
}

/**
 * Whether everything the bus's link was given is in one write in flight (handed to the
 * socket, not taken by the peer), and nothing waits behind it in its write buffer.
 * Reads the link's own fields: what a user never needs to see.
 */
function allInFlight(bus: Bus): boolean {
  const link = (bus as unknown as { conn: { link: Link & { used: number } } | null }).conn!.link;
  return link.writeBlockedSince !== 0 && link.used === 0;
}

/** Whether the link has a write in flight and bytes waiting behind it. */
function queuedBehind(bus: Bus): boolean {
  const link = (bus as unknown as { conn: { link: Link & { used: number } } | null }).conn!.link;
  return link.writeBlockedSince !== 0 && link.used > 0;
}

/**
 * A first batch larger than the kernel's socket buffers can take (here up to 32 MiB at
 * the receiver and 4 MiB at the sender), for a broker that is not reading: it stays in
 * flight, so what is published after it waits in the client's write buffer.
 */
const A = 4096;
const A_SIZE = 16 * 1024;
const BIG = { maxPendingBytes: 256 * 1024 * 1024 };

/** Waits until the process is stopped (state T in /proc/<pid>/stat). */
async function stopped(pid: number): Promise<void> {
  await until(() => /^\d+ \(.*\) T/.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8')), `process ${pid} to stop`);
}

describe('flush() across a broker killed with SIGKILL and restarted on the same port', () => {
  // The broker is frozen first, so the first batch stays in flight (handed to the socket,
  // not taken by the broker) while the second waits in the client's write buffer.
  it('what the lost connection had not written is carried over and delivered; the flush rejects with at most the in-flight count, and the next one resolves', async () => {
    const B = 5_000;
    const b1 = await brokerProcess();
    const bus = await w.connect(b1.url, { ...FAST, ...BIG, reconnectBufferBytes: 64 * 1024 * 1024 });
    const got = selfSubscribe(bus, 'carry', A + B);
    await bus.flush();

    b1.proc.kill('SIGSTOP');
    await stopped(b1.proc.pid!);
    publishAll(bus, 'carry', 0, A, A_SIZE);
    await until(() => allInFlight(bus), 'the first batch to be handed to the socket');
    publishAll(bus, 'carry', A, B);
    expect(queuedBehind(bus)).toBe(true);
    const flushed = bus.flush().then(
      () => null,
      (e: unknown) => e,
    );
    const down = event(bus, 'disconnect');
    await b1.kill('SIGKILL');
    await down;
    const up = event(bus, 'reconnect');
    await brokerProcess({ port: b1.port });
    await up;
    const err = await flushed;
    if (err !== null) await bus.flush(); // after a rejected flush, the next covers what came after it

    const missing = A + B - got.distinct;
    if (err === null) expect(missing).toBe(0);
    else {
      expect(err).toBeInstanceOf(MessagesLostError);
      expect(missing).toBeLessThanOrEqual((err as MessagesLostError).lost);
      expect((err as MessagesLostError).lost).toBeLessThanOrEqual(A);
    }
    // The second batch was never written to the dead socket: carried, it all arrived
    // through the restarted broker.
    expect(got.inRange(A, A + B)).toBe(B);
    expect(got.afterReconnect).toBeGreaterThanOrEqual(B);
  });

  it('beyond the reconnect buffer the flush rejects, counting every message that did not arrive; the oldest carried are delivered, and an error event reports the dropped', async () => {
    const B = 20_000;
    const b1 = await brokerProcess();
    const bus = await w.connect(b1.url, { ...FAST, ...BIG, reconnectBufferBytes: 256 * 1024 });
    const errors: unknown[] = [];
    bus.on('error', (e) => errors.push(e));
    const got = selfSubscribe(bus, 'overflow', A + B);
    await bus.flush();

    b1.proc.kill('SIGSTOP');
    await stopped(b1.proc.pid!);
    publishAll(bus, 'overflow', 0, A, A_SIZE);
    await until(() => allInFlight(bus), 'the first batch to be handed to the socket');
    publishAll(bus, 'overflow', A, B); // ~1.7 MB waiting in the write buffer: 256 KiB of it fits
    expect(queuedBehind(bus)).toBe(true);
    const flushed = bus.flush().then(
      () => null,
      (e: unknown) => e,
    );
    const down = event(bus, 'disconnect');
    await b1.kill('SIGKILL');
    await down;
    const err = await flushed;
    expect(err).toBeInstanceOf(MessagesLostError);
    const lost = (err as MessagesLostError).lost;
    const dropped = errors.filter((e) => e instanceof MessagesLostError) as MessagesLostError[];
    expect(dropped.length).toBe(1);
    expect(dropped[0]!.message).toMatch(/reconnectBufferBytes/);
    expect(dropped[0]!.lost).toBeGreaterThan(0);
    expect(dropped[0]!.lost).toBeLessThan(B);

    const up = event(bus, 'reconnect');
    await brokerProcess({ port: b1.port });
    await up;
    await bus.flush();
    expect(A + B - got.distinct).toBeLessThanOrEqual(lost);
    // The oldest of the second batch were carried: exactly those the backlog kept.
    expect(got.inRange(A, A + B)).toBe(B - dropped[0]!.lost);
    expect(got.afterReconnect).toBeGreaterThan(0);
  });
});

describe('drain() while disconnected', () => {
  it('rejects with MessagesLostError counting the backlog when no broker comes back within timeoutMs, and closes', async () => {
    const b1 = await brokerProcess();
    // The client's timers (the drain's wait for a broker, the reconnect delays) run on a
    // fake clock: "no broker within timeoutMs" is the test advancing it, not time passing.
    const clock = new FakeClock();
    const bus = w.track(new Bus(b1.url, { ...FAST, timeoutMs: 300 }, clock));
    await bus.open();
    await bus.flush();
    const down = event(bus, 'disconnect');
    await b1.kill('SIGKILL');
    await down;
    for (let i = 0; i < 10; i++) bus.publish('late', i);
    let settled = false;
    const result = bus.drain().then(
      () => null,
      (e: unknown) => e,
    );
    void result.finally(() => (settled = true));
    await until(() => {
      clock.advance(100);
      return settled;
    }, 'the drain to give up once timeoutMs has passed on the clock');
    const err = await result;
    expect(err).toBeInstanceOf(MessagesLostError);
    expect((err as MessagesLostError).lost).toBe(10);
    expect(bus.isClosed).toBe(true);
  });

  it('delivers the backlog and resolves when the broker comes back on the same port', async () => {
    const b1 = await brokerProcess();
    const bus = await w.connect(b1.url, { ...FAST, timeoutMs: 10_000 });
    await bus.flush();
    const down = event(bus, 'disconnect');
    await b1.kill('SIGKILL');
    await down;
    for (let i = 0; i < 10; i++) bus.publish('late', i);
    const drained = bus.drain();
    await brokerProcess({ port: b1.port });
    await drained;
    expect(bus.isClosed).toBe(true);
  });
});
