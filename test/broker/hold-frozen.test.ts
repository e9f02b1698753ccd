/**
 * A real subscriber process frozen with SIGSTOP while a publisher streams past every
 * bound, under each policy: what the broker holds for it never passes maxPending (the
 * bytes and bookkeeping the bounds count; memory within outboundMemoryBound), the hold
 * ring takes slabs in proportion to bytes, never per message, a healthy subscriber gets
 * everything in order, and the frozen one, once it runs again, gets everything (block),
 * or what it missed as counted losses (drop-oldest, drop-newest, conflate), or is
 * closed as a slow consumer (disconnect). No durations are asserted: every wait is for
 * an event (a flush round trip, a count, a report from the child).
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import type { Bus } from '../../client/index.js';
import { outboundMemoryBound } from '../../broker/policy.js';
import { eventually, sessionOf, until, useChildProcesses, useWorld } from '../kit/index.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const fixture = path.join(here, '..', 'fixtures', 'subscriber.mjs');

const track = useChildProcesses();

interface Report {
  received: number;
  dropped: number;
  conflated: number;
  lastBySubject: Record<string, number>;
  tail: number[];
  ordered: boolean;
}

async function frozenSubscriber(url: string, policy: string) {
  const child = spawn(process.execPath, [fixture, url, 'md.>', policy], { stdio: ['ignore', 'pipe', 'inherit'] });
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
  child.kill('SIGSTOP');
  return {
    child,
    lines,
    async report(): Promise<Report> {
      const before = lines.length;
      child.kill('SIGUSR2');
      await until(() => lines.slice(before).some((l) => l.startsWith('{"received"')), 'the child report');
      return JSON.parse(lines.slice(before).find((l) => l.startsWith('{"received"'))!) as Report;
    },
  };
}

const MAX = 512 * 1024;
const HIGH_WATER = 64 * 1024;
const N = 30_000; // 256-byte payloads: 7.7 MB, far past the bound and the kernel's socket buffers
const SUBJECTS = 8;

async function publish(pub: Bus, n: number): Promise<void> {
  const payload = Buffer.alloc(256);
  for (let i = 0; i < n; i++) {
    payload.writeUInt32LE(i, 0);
    pub.publish(`md.S${i % SUBJECTS}`, payload);
    if (i % 500 === 499) await pub.flush();
  }
  await pub.flush();
}

describe('a subscriber frozen with SIGSTOP while a publisher streams', () => {
  const w = useWorld();

  async function setup(policy: string) {
    const b = await w.broker({ maxPending: MAX, highWaterBytes: HIGH_WATER, writeDeadlineMs: 0 });
    const frozen = await frozenSubscriber(b.url, policy);
    const ok = await w.connect(b.url, { name: 'healthy' });
    const got: number[] = [];
    ok.subscribe('md.>', (m) => got.push(Buffer.from(m.data).readUInt32LE(0)));
    await ok.flush();
    const pub = await w.connect(b.url, { name: 'pub' });
    return { b, frozen, ok, got, pub };
  }

  /** What the broker held for the frozen consumer, at its peak, stayed within the bounds. */
  function expectBounded(m: { pendingPeak: number; memoryPeak: number; holdBlocks: number; heldPeak: number }, maxFrame: number, factor = 1) {
    expect(m.pendingPeak).toBeLessThanOrEqual(factor * MAX);
    expect(m.memoryPeak).toBeLessThanOrEqual(outboundMemoryBound(factor * MAX, HIGH_WATER, maxFrame));
    // The ring takes slabs for bytes, not objects for messages: far fewer than it held.
    expect(m.holdBlocks).toBeGreaterThan(0);
    expect(m.holdBlocks).toBeLessThan(N / 20);
  }

  for (const policy of ['drop-oldest', 'drop-newest', 'conflate'] as const) {
    it(`${policy}: bounded while frozen, the healthy subscriber gets everything, and the frozen one, thawed, gets the rest or its count`, async () => {
      const { b, frozen, got, pub } = await setup(policy);
      await publish(pub, N);
      await until(() => got.length === N, 'the healthy subscriber to get all');
      expect(got).toEqual(Array.from({ length: N }, (_, i) => i));
      const m = sessionOf(b, 'frozen').metrics();
      expectBounded(m, b.broker.maxFrame);
      expect(m.droppedOldest + m.droppedNewest + m.conflated).toBeGreaterThan(0);
      // Conflation holds one message per subject; the others hold up to the bound.
      if (policy === 'conflate') expect(m.heldPeak).toBeLessThanOrEqual(SUBJECTS);
      else expect(m.heldPeak).toBeGreaterThan(1000);
      frozen.child.kill('SIGCONT');
      const r = await eventually(
        () => frozen.report(),
        (x) => x.received + x.dropped + x.conflated === N,
        'every message received or reported lost',
        20_000,
      );
      // In order, but for conflation: a replaced message keeps its place with a newer value.
      if (policy !== 'conflate') expect(r.ordered).toBe(true);
      expect(r.dropped).toBe(m.droppedOldest + m.droppedNewest);
      expect(r.conflated).toBe(m.conflated);
      if (policy === 'drop-newest') expect(r.tail.at(-1)).toBeLessThan(N - 1);
      if (policy === 'drop-oldest') expect(r.tail.at(-1)).toBe(N - 1);
      if (policy === 'conflate') for (let s = 0; s < SUBJECTS; s++) expect(r.lastBySubject[`md.S${s}`]).toBe(N - SUBJECTS + s);
    });
  }

  it('block: the publisher is paused within twice the bound; once thawed, both subscribers get everything', async () => {
    const { b, frozen, got, pub } = await setup('block');
    const done = publish(pub, N);
    await until(() => sessionOf(b, 'pub').metrics().paused, 'the publisher to be paused');
    expectBounded(sessionOf(b, 'frozen').metrics(), b.broker.maxFrame, 2);
    frozen.child.kill('SIGCONT');
    await done;
    await until(() => got.length === N, 'the healthy subscriber to get all', 20_000);
    const r = await eventually(
      () => frozen.report(),
      (x) => x.received === N,
      'the frozen one to get all',
      20_000,
    );
    expect(r.ordered).toBe(true);
    expect(r.dropped + r.conflated).toBe(0);
    expectBounded(sessionOf(b, 'frozen').metrics(), b.broker.maxFrame, 2);
  });

  it('disconnect: closed as a slow consumer once it would pass the bound, having held no more; the healthy subscriber gets everything', async () => {
    const { b, frozen, got, pub } = await setup('disconnect');
    let peak = { pendingPeak: 0, memoryPeak: 0, holdBlocks: 0, heldPeak: 0 };
    const watch = (): boolean => {
      const s = [...b.broker.sessions].find((x) => x.name === 'frozen');
      if (s !== undefined) peak = s.metrics();
      return s === undefined;
    };
    const payload = Buffer.alloc(256);
    for (let i = 0; i < N; i++) {
      payload.writeUInt32LE(i, 0);
      pub.publish(`md.S${i % SUBJECTS}`, payload);
      if (i % 500 === 499) {
        await pub.flush();
        watch();
      }
    }
    await pub.flush();
    await until(() => got.length === N, 'the healthy subscriber to get all');
    expect(b.broker.counters.slowConsumers).toBe(1);
    await until(watch, 'the frozen session to be gone');
    expectBounded(peak, b.broker.maxFrame);
    frozen.child.kill('SIGCONT');
    await until(() => frozen.lines.some((l) => l.includes('"disconnect"')), 'the frozen one to see its connection end');
  });
});
