/**
 * A subscriber cut off as a slow consumer learns why: the broker drops what the
 * subscriber will never read, sends SLOW_CONSUMER (best effort), and tells the client
 * again when it reconnects, in INFO, with the count of messages queued for the closed
 * connection; the client reports an 'error' with code SLOW_CONSUMER and how many it
 * lost. The subscriber is a real child process, frozen with SIGSTOP or slow by itself.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { until, useChildProcesses, useWorld } from '../kit/index.js';
import type { Bus } from '../../client/index.js';

const w = useWorld();
const fixture = fileURLToPath(new URL('./fixtures/slow-subscriber.mjs', import.meta.url));

interface Sub {
  child: ChildProcess;
  events: Record<string, unknown>[];
}

const track = useChildProcesses();

async function subscriber(url: string, pattern: string, spinMs: number): Promise<Sub> {
  const child = spawn(process.execPath, [fixture, url, pattern, String(spinMs)], { stdio: ['ignore', 'pipe', 'inherit'] });
  track(child);
  const events: Record<string, unknown>[] = [];
  let buf = '';
  child.stdout!.on('data', (d: Buffer) => {
    buf += d.toString();
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      events.push(JSON.parse(buf.slice(0, nl)) as Record<string, unknown>);
      buf = buf.slice(nl + 1);
    }
  });
  await until(() => events.some((e) => e.event === 'ready'), 'the subscriber to be ready');
  return { child, events };
}

/** Publishes 16 KiB messages, a flush at a time, until `done` holds. */
async function floodUntil(pub: Bus, subject: string, done: () => boolean): Promise<void> {
  const payload = new Uint8Array(16 * 1024);
  while (!done()) {
    for (let i = 0; i < 64; i++) pub.publish(subject, payload);
    await pub.flush();
  }
}

const OPTIONS = { maxPending: 1024 * 1024, highWaterBytes: 256 * 1024, writeDeadlineMs: 0 };

function slowError(s: Sub) {
  return s.events.find((e) => e.event === 'error' && e.code === 'SLOW_CONSUMER' && typeof e.lost === 'number') as { lost: number; message: string } | undefined;
}

describe('a subscriber closed as a slow consumer is told why', () => {
  it('frozen with SIGSTOP: once it runs again and reconnects, it reports SLOW_CONSUMER with how many messages it lost', async () => {
    const b = await w.broker(OPTIONS);
    const s = await subscriber(b.url, 'flood', 0);
    s.child.kill('SIGSTOP');
    const pub = await w.connect(b.url);
    await floodUntil(pub, 'flood', () => b.broker.counters.slowConsumers >= 1);
    s.child.kill('SIGCONT');
    await until(() => slowError(s) !== undefined, 'the subscriber to report SLOW_CONSUMER with a count', 20_000);
    const err = slowError(s)!;
    expect(err.lost).toBeGreaterThan(0);
    expect(err.message).toMatch(/slow consumer \(more than 1048576 bytes/);
    expect(s.events.some((e) => e.event === 'reconnect')).toBe(true);
    // Told once: the broker forgets the notice it gave.
    expect(b.broker.liveness.slowNotices).toBe(0);
  });

  it('merely slow (a 1 ms handler): it reports SLOW_CONSUMER, and the count is what the broker queued minus what arrived', async () => {
    const b = await w.broker(OPTIONS);
    const s = await subscriber(b.url, 'flood', 1);
    const pub = await w.connect(b.url);
    await floodUntil(pub, 'flood', () => b.broker.counters.slowConsumers >= 1);
    await until(() => slowError(s) !== undefined, 'the subscriber to report SLOW_CONSUMER with a count', 20_000);
    const err = slowError(s)!;
    expect(err.lost).toBeGreaterThan(0);
    expect(err.message).toMatch(/of the \d+ messages queued for it did not arrive/);
  });
});
