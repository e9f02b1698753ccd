/**
 * Slow-consumer policies and rate control, against a real broker, a real frozen
 * subscriber (a child process stopped with SIGSTOP) and healthy SDK subscribers.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import type { Bus, LossEvent, ServerError } from '../../client/index.js';
import { eventually, sessionOf, until, useChildProcesses, useWorld } from '../kit/index.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const fixture = path.join(here, '..', 'fixtures', 'subscriber.mjs');

interface Frozen {
  child: ChildProcess;
  lines: string[];
  /** Asks the child (after SIGCONT) what it received. */
  report(): Promise<{
    received: number;
    dropped: number;
    conflated: number;
    lastBySubject: Record<string, number>;
    head: number[];
    tail: number[];
    ordered: boolean;
  }>;
}

const track = useChildProcesses();

async function frozenSubscriber(url: string, pattern: string, policy: string): Promise<Frozen> {
  const child = spawn(process.execPath, [fixture, url, pattern, policy], { stdio: ['ignore', 'pipe', 'inherit'] });
  track(child);
  const lines: string[] = [];
  let buf = '';
  child.stdout!.on('data', (d: Buffer) => {
    buf += d.toString();
    let i: number;
    while ((i = buf.indexOf('\n')) >= 0) {
      lines.push(buf.slice(0, i));
      buf = buf.slice(i + 1);
    }
  });
  await until(() => lines.includes('READY'), 'the child subscriber to be ready');
  return {
    child,
    lines,
    async report() {
      const before = lines.length;
      child.kill('SIGUSR2');
      await until(() => lines.slice(before).some((l) => l.startsWith('{"received"')), 'the child report');
      return JSON.parse(lines.slice(before).find((l) => l.startsWith('{"received"'))!);
    },
  };
}

/** Publishes n 256-byte messages whose first 4 bytes are the sequence number; subject per message from `subject(i)`. */
async function publishSeq(pub: Bus, n: number, subject: (i: number) => string): Promise<void> {
  const payload = Buffer.alloc(256);
  for (let i = 0; i < n; i++) {
    payload.writeUInt32LE(i, 0);
    pub.publish(subject(i), payload);
    if (i % 500 === 499) await pub.flush();
  }
  await pub.flush();
}

function healthy(bus: Bus, pattern: string) {
  const got: number[] = [];
  bus.subscribe(pattern, (m) => got.push(Buffer.from(m.data).readUInt32LE(0)));
  return got;
}

const N = 20_000; // 5 MB of 256-byte payloads: far past the bounds below
const SMALL = { maxPending: 256 * 1024, highWaterBytes: 64 * 1024 };

describe('slow-consumer policies with a frozen subscriber', () => {
  const w = useWorld();

  /**
   * A broker with small bounds, a frozen subscriber with `policy` and a healthy one; N
   * messages published past them. Resolves once the healthy one has all, in order.
   */
  async function pastFrozen(policy: string) {
    const b = await w.broker(SMALL);
    const frozen = await frozenSubscriber(b.url, 'md.>', policy);
    const ok = await w.connect(b.url, { name: 'healthy' });
    const got = healthy(ok, 'md.>');
    await ok.flush();
    frozen.child.kill('SIGSTOP');
    const pub = await w.connect(b.url, { name: 'pub' });
    await publishSeq(pub, N, () => 'md.EURUSD.bid');
    await until(() => got.length === N, 'the healthy subscriber to get all');
    expect(got).toEqual(Array.from({ length: N }, (_, i) => i));
    return { b, frozen };
  }

  it('disconnect (the default): the frozen subscriber is closed as a slow consumer, the healthy one gets everything in order', async () => {
    const { b } = await pastFrozen('default');
    expect(b.broker.counters.slowConsumers).toBe(1);
    // Its subscriptions are gone at once; the socket itself is closed within the close grace.
    await until(() => ![...b.broker.sessions].some((s) => s.name === 'frozen'), 'the frozen session to be gone');
  });

  it('drop-newest: the frozen subscriber stays connected, memory stays bounded, and after thawing it learns exactly how many it lost', async () => {
    const { b, frozen } = await pastFrozen('drop-newest');
    const m = sessionOf(b, 'frozen').metrics();
    expect(m.pendingBytes).toBeLessThanOrEqual(SMALL.maxPending);
    expect(m.droppedNewest).toBeGreaterThan(0);
    expect(b.broker.counters.droppedNewest).toBe(m.droppedNewest);
    frozen.child.kill('SIGCONT');
    // Once it catches up, it has every message either received or reported lost.
    const r = await eventually(
      () => frozen.report(),
      (x) => x.received + x.dropped === N,
      'received + dropped to cover every message',
      15_000,
    );
    expect(r.received + r.dropped).toBe(N);
    expect(r.ordered).toBe(true);
    // drop-newest keeps the oldest: the first messages arrived.
    expect(r.head).toEqual([0, 1, 2, 3, 4]);
  });

  it('drop-oldest: the frozen subscriber gets the newest messages after thawing, and the count of what was dropped', async () => {
    const b = await w.broker(SMALL);
    const frozen = await frozenSubscriber(b.url, 'md.>', 'drop-oldest');
    frozen.child.kill('SIGSTOP');
    const pub = await w.connect(b.url, { name: 'pub' });
    await publishSeq(pub, N, () => 'md.EURUSD.bid');
    const m = sessionOf(b, 'frozen').metrics();
    expect(m.droppedOldest).toBeGreaterThan(0);
    expect(m.pendingBytes).toBeLessThanOrEqual(SMALL.maxPending);
    frozen.child.kill('SIGCONT');
    const r = await eventually(
      () => frozen.report(),
      (x) => x.received + x.dropped === N,
      'received + dropped to cover every message',
      15_000,
    );
    expect(r.received + r.dropped).toBe(N);
    expect(r.ordered).toBe(true);
    expect(r.tail[r.tail.length - 1]).toBe(N - 1);
  });

  it('conflate: after thawing, the frozen subscriber holds the latest value of every subject, and counts what was conflated', async () => {
    const b = await w.broker(SMALL);
    const frozen = await frozenSubscriber(b.url, 'md.>', 'conflate');
    frozen.child.kill('SIGSTOP');
    const pub = await w.connect(b.url, { name: 'pub' });
    const SUBJECTS = 10;
    await publishSeq(pub, N, (i) => `md.SYM${i % SUBJECTS}.bid`);
    const m = sessionOf(b, 'frozen').metrics();
    expect(m.conflated).toBeGreaterThan(0);
    // Conflation keeps at most one held message per subject.
    expect(m.heldMsgs).toBeLessThanOrEqual(SUBJECTS);
    frozen.child.kill('SIGCONT');
    const r = await eventually(
      () => frozen.report(),
      (x) => x.received + x.dropped + x.conflated === N,
      'every message accounted for',
      15_000,
    );
    expect(r.received + r.dropped + r.conflated).toBe(N);
    for (let s = 0; s < SUBJECTS; s++) expect(r.lastBySubject[`md.SYM${s}.bid`]).toBe(N - SUBJECTS + s);
  });

  it('block: the publisher is paused while the frozen subscriber is behind, and nobody loses anything once it thaws', async () => {
    const b = await w.broker(SMALL);
    const frozen = await frozenSubscriber(b.url, 'md.>', 'block');
    const ok = await w.connect(b.url, { name: 'healthy' });
    const got = healthy(ok, 'md.>');
    await ok.flush();
    frozen.child.kill('SIGSTOP');
    const pub = await w.connect(b.url, { name: 'pub' });
    // More than the kernel's socket buffers hold, so the broker's own queue fills.
    const M = 40_000;
    const done = publishSeq(pub, M, () => 'md.EURUSD.bid');
    await until(() => sessionOf(b, 'pub').metrics().paused, 'the publisher to be paused');
    // While paused, the healthy subscriber cannot have everything yet.
    expect(got.length).toBeLessThan(M);
    frozen.child.kill('SIGCONT');
    await done;
    await until(() => got.length === M, 'the healthy subscriber to get all', 20_000);
    const r = await frozen.report();
    expect(r.dropped).toBe(0);
    await until(() => b.broker.counters.pausedMs > 0, 'the pause to be accounted');
    const rr = await eventually(
      () => frozen.report(),
      (x) => x.received === M,
      'the frozen one to get all',
      20_000,
    );
    expect(rr.ordered).toBe(true);
    expect(b.broker.counters.droppedNewest + b.broker.counters.droppedOldest).toBe(0);
  });

  it('a write blocked past writeDeadlineMs makes a disconnect-policy subscriber a slow consumer below the byte bound', async () => {
    const b = await w.broker({ maxPending: 64 * 1024 * 1024, writeDeadlineMs: 200 });
    const frozen = await frozenSubscriber(b.url, 'md.>', 'disconnect');
    frozen.child.kill('SIGSTOP');
    const pub = await w.connect(b.url, { name: 'pub' });
    // Enough to fill the kernel's socket buffers so a write stays in flight.
    await publishSeq(pub, 40_000, () => 'md.EURUSD.bid');
    await until(() => b.broker.counters.slowConsumers === 1, 'the deadline to fire');
    expect(sessionOf(b, 'pub')).toBeDefined();
  });

  it('the subscriber learns of its losses through a loss event and the subscription counters', async () => {
    const b = await w.broker({ maxPending: 64 * 1024, highWaterBytes: 16 * 1024, maxPendingMsgs: 10, deliverRate: { msgsPerSec: 200, burstMsgs: 10 } });
    const sub = await w.connect(b.url, { name: 'limited' });
    const losses: LossEvent[] = [];
    sub.on('loss', (e: LossEvent) => losses.push(e));
    let n = 0;
    const s = sub.subscribe('t', () => n++, { policy: 'drop-newest' });
    await sub.flush();
    const pub = await w.connect(b.url);
    for (let i = 0; i < 500; i++) pub.publish('t', Buffer.alloc(16));
    await pub.flush();
    await until(() => losses.length > 0 && n + s.dropped === 500, 'every message delivered or reported lost');
    expect(s.dropped).toBeGreaterThan(0);
    expect(losses.reduce((a, e) => a + e.dropped, 0)).toBe(s.dropped);
    expect(losses[0]!.policy).toBe('drop-newest');
    expect(losses[0]!.subject).toBe('t');
  });

  it('an unknown policy name is refused by subscribe and by the broker config', async () => {
    const b = await w.broker();
    const bus = await w.connect(b.url);
    expect(() => bus.subscribe('x', () => {}, { policy: 'drop-everything' as never })).toThrow(/policy/);
    await expect(w.broker({ slowConsumerPolicy: 'lossy' as never })).rejects.toThrow(/slowConsumerPolicy/);
    await expect(w.broker({ publishRate: { msgsPerSec: -1 } })).rejects.toThrow(/msgsPerSec/);
    await expect(w.broker({ subjectRates: [{ pattern: 'a..b', msgsPerSec: 1 }] })).rejects.toThrow(/pattern/);
  });
});

describe('rate limits', () => {
  const w = useWorld();

  it('a publisher over a "refuse" limit has the excess dropped, counted and reported as RATE_LIMITED', async () => {
    const b = await w.broker({ publishRate: { msgsPerSec: 100, burstMsgs: 100, action: 'refuse' } });
    const sub = await w.connect(b.url);
    let n = 0;
    sub.subscribe('r', () => n++);
    await sub.flush();
    const pub = await w.connect(b.url, { name: 'greedy' });
    const errors: ServerError[] = [];
    pub.on('error', (e) => errors.push(e as ServerError));
    for (let i = 0; i < 1000; i++) pub.publish('r', 'x');
    await pub.flush();
    await sub.flush();
    expect(b.broker.counters.rateRefused).toBeGreaterThan(0);
    expect(n + b.broker.counters.rateRefused).toBe(1000);
    expect(n).toBeGreaterThanOrEqual(100);
    expect(n).toBeLessThan(1000);
    await until(() => errors.length > 0, 'the RATE_LIMITED error');
    expect(errors[0]!.serverCode).toBe('RATE_LIMITED');
  });

  it('a publisher over a "slow" limit loses nothing: the broker stops reading it until it is back in budget', async () => {
    const b = await w.broker({ publishRate: { msgsPerSec: 5000, burstMsgs: 100 } });
    const sub = await w.connect(b.url);
    let n = 0;
    sub.subscribe('r', () => n++);
    await sub.flush();
    const pub = await w.connect(b.url, { name: 'greedy' });
    for (let i = 0; i < 1000; i++) pub.publish('r', 'x');
    await pub.flush();
    await until(() => n === 1000, 'everything delivered');
    expect(sessionOf(b, 'greedy').metrics().throttled).toBeGreaterThan(0);
    expect(b.broker.counters.rateRefused).toBe(0);
  });

  it('a client can ask for a lower publish limit than the broker, never a higher one', async () => {
    const b = await w.broker({ publishRate: { msgsPerSec: 1000, burstMsgs: 1000, action: 'refuse' } });
    const pub = await w.connect(b.url, { name: 'polite', publishRate: { msgsPerSec: 10, burstMsgs: 10, action: 'refuse' } });
    pub.on('error', () => {});
    const sub = await w.connect(b.url);
    let n = 0;
    sub.subscribe('r', () => n++);
    await sub.flush();
    for (let i = 0; i < 100; i++) pub.publish('r', 'x');
    await pub.flush();
    await sub.flush();
    expect(n).toBeGreaterThanOrEqual(10);
    expect(n).toBeLessThan(100);
  });

  it('a subject-pattern limit applies to every publisher of matching subjects, and only to them', async () => {
    const b = await w.broker({ subjectRates: [{ pattern: 'noisy.>', msgsPerSec: 50, burstMsgs: 50, action: 'refuse' }] });
    const sub = await w.connect(b.url);
    let noisy = 0;
    let quiet = 0;
    sub.subscribe('noisy.>', () => noisy++);
    sub.subscribe('quiet.>', () => quiet++);
    await sub.flush();
    const p1 = await w.connect(b.url);
    const p2 = await w.connect(b.url);
    p1.on('error', () => {});
    p2.on('error', () => {});
    for (let i = 0; i < 200; i++) {
      p1.publish(`noisy.a${i % 3}`, 'x');
      p2.publish('noisy.b', 'x');
      p2.publish('quiet.c', 'x');
    }
    await p1.flush();
    await p2.flush();
    await sub.flush();
    expect(quiet).toBe(200);
    expect(noisy).toBeGreaterThanOrEqual(50);
    expect(noisy).toBeLessThan(400);
    expect(noisy + b.broker.counters.rateRefused).toBe(400);
  });

  it('metrics expose drops, conflation, pending peaks and pauses per connection', async () => {
    const b = await w.broker();
    const bus = await w.connect(b.url, { name: 'm' });
    bus.subscribe('x', () => {});
    await bus.flush();
    const m = b.broker.metrics();
    const c = m.connections.find((x) => x.name === 'm')!;
    for (const k of [
      'pendingBytes',
      'heldMsgs',
      'pendingPeak',
      'heldPeak',
      'droppedOldest',
      'droppedNewest',
      'conflated',
      'pausedMs',
      'throttled',
      'refused',
      'subscriptions',
    ]) {
      expect(c).toHaveProperty(k);
    }
    expect(c.subscriptions).toBe(1);
    for (const k of ['droppedOldest', 'droppedNewest', 'conflated', 'rateRefused', 'pausedMs', 'slowConsumers']) expect(m.counters).toHaveProperty(k);
  });
});
