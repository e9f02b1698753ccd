/**
 * An iterator subscription is bounded in bytes as well as in messages: a consumer that
 * never reads, in its own process, is sent 1 MiB messages by another client; past its
 * byte bound (64 MiB by default) the arriving messages are dropped, counted and reported,
 * and the process's memory (RSS from /proc) stays bounded.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { jsonLines, until, useChildProcesses, useWorld } from '../kit/index.js';

const w = useWorld();
const fixture = fileURLToPath(new URL('./fixtures/hoarder.mjs', import.meta.url));
const track = useChildProcesses();

function rssOf(pid: number): number {
  return Number(/VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) * 1024;
}

async function hoarder(url: string, args: string[]) {
  const child = track(spawn(process.execPath, [fixture, url, 'big', ...args], { stdio: ['ignore', 'pipe', 'inherit'] }));
  const events = jsonLines(child.stdout!);
  await until(() => events.some((e) => e.event === 'ready'), 'the consumer to be ready');
  /** Asks for its counters (SIGUSR2) until `done` holds; returns the last report. */
  const stats = async (done: (s: { received: number; dropped: number; pendingBytes: number }) => boolean) => {
    for (;;) {
      const n = events.length;
      child.kill('SIGUSR2');
      await until(() => events.slice(n).some((e) => e.event === 'stats'), 'a stats report');
      const s = events.slice(n).find((e) => e.event === 'stats') as unknown as { received: number; dropped: number; pendingBytes: number };
      if (done(s)) return s;
    }
  };
  return { child, events, stats };
}

describe('iterator subscription bounded in bytes', () => {
  it('300 messages of 1 MiB to a consumer that never reads, bounded at 32 MiB: the rest are dropped and reported, and its RSS stays bounded', async () => {
    const b = await w.broker({ maxPayload: 2 * 1024 * 1024 });
    const h = await hoarder(b.url, [String(32 * 1024 * 1024)]);
    const rss0 = rssOf(h.child.pid!);
    const pub = await w.connect(b.url);
    const payload = new Uint8Array(1024 * 1024);
    const N = 300;
    for (let i = 0; i < N; i++) {
      pub.publish('big', payload);
      if (i % 16 === 15) await pub.flush();
    }
    await pub.flush();
    const s = await h.stats((x) => x.received === N);
    expect(s.pendingBytes).toBeLessThanOrEqual(32 * 1024 * 1024);
    expect(s.pendingBytes).toBeGreaterThan(30 * 1024 * 1024);
    expect(s.dropped).toBe(N - 31);
    expect(h.events.filter((e) => e.event === 'error' && e.code === 'SLOW_CONSUMER')).toHaveLength(1);
    // Unbounded, it would hold 300 MiB more.
    expect(rssOf(h.child.pid!) - rss0).toBeLessThan(150 * 1024 * 1024);
  });
});
