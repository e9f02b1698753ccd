/**
 * What the broker says it holds for a consumer is what it holds: /connz and
 * broker.metrics() report `memoryBytes` (write buffers at their capacity, the hold
 * ring's slabs and slot pages, a partial inbound frame) beside `pendingBytes` (the
 * frame bytes queued). Checked against the broker process's RSS from /proc, with a
 * subscriber process frozen by SIGSTOP; and held messages cost no V8 heap.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import v8 from 'node:v8';
import vm from 'node:vm';
import { afterEach, describe, expect, it } from 'vitest';
import { holdPool } from '../../broker/holdring.js';
import { eventually, until, useWorld } from '../kit/index.js';
import { useBrokerProcesses } from '../client/processes.js';

const w = useWorld();
const brokerProcess = useBrokerProcesses();
const fixture = fileURLToPath(new URL('./fixtures/slow-subscriber.mjs', import.meta.url));
v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;
const children: ChildProcess[] = [];
afterEach(async () => {
  for (const c of children.splice(0)) {
    if (c.exitCode !== null || c.signalCode !== null) continue;
    const gone = once(c, 'exit');
    c.kill('SIGKILL');
    await gone;
  }
});

function rssOf(pid: number): number {
  return Number(/VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) * 1024;
}

interface Conn {
  name: string;
  pendingBytes: number;
  heldMsgs: number;
  memoryBytes: number;
  memoryPeak: number;
}

async function connz(http: string): Promise<Conn[]> {
  const r = await fetch(`${http}/connz`);
  return ((await r.json()) as { connections: Conn[] }).connections;
}

describe('honest accounting of what the broker holds', () => {
  it('a frozen drop-oldest consumer: memoryBytes counts the hold ring and the write buffers, stays within maxPending and the slack of the write buffers, and the broker process RSS grew by at least that', async () => {
    const MAX = 16 * 1024 * 1024;
    const HIGH_WATER = 1024 * 1024;
    const HOLD_SLAB = 256 * 1024;
    const broker = await brokerProcess({ config: { maxPending: MAX, slowConsumerPolicy: 'drop-oldest', httpPort: 0, writeDeadlineMs: 0 } });
    const pid = broker.proc.pid!;
    const child = spawn(process.execPath, [fixture, broker.url, 'feed', '0'], { stdio: ['ignore', 'pipe', 'inherit'] });
    children.push(child);
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    await until(() => out.includes('"ready"'), 'the subscriber to be ready');
    child.kill('SIGSTOP');
    const pub = await w.connect(broker.url);
    const rss0 = rssOf(pid);
    const payload = new Uint8Array(256);
    for (let i = 0; i < 200_000; i++) {
      pub.publish('feed', payload);
      if (i % 2000 === 1999) await pub.flush();
    }
    await pub.flush();
    const slow = (
      await eventually(
        () => connz(broker.http),
        (cs) => cs.some((c) => c.name === 'slow' && c.heldMsgs > 0),
        'the frozen consumer to hold messages',
      )
    ).find((c) => c.name === 'slow')!;
    const grown = rssOf(pid) - rss0;
    // Slabs, pages and write buffers at their capacity: at least the bytes queued, and
    // beyond the bound only by the write buffers' slack (docs/FLOW.md).
    expect(slow.memoryBytes).toBeGreaterThan(slow.pendingBytes);
    expect(slow.memoryBytes).toBeLessThanOrEqual(MAX + 3 * HIGH_WATER + 2 * HOLD_SLAB);
    expect(slow.memoryPeak).toBeGreaterThanOrEqual(slow.memoryBytes);
    expect(slow.pendingBytes).toBeLessThanOrEqual(MAX);
    // The process grew by at least what it says it holds (the rest is garbage not yet collected).
    expect(grown).toBeGreaterThan(slow.memoryBytes * 0.9);
  });

  it('in the same process, after garbage collection, the buffers grew by what memoryBytes says (within 25%) and the heap by next to nothing per held message', async () => {
    const MAX = 16 * 1024 * 1024;
    const b = await w.broker({ maxPending: MAX, slowConsumerPolicy: 'drop-oldest', writeDeadlineMs: 0 });
    const child = spawn(process.execPath, [fixture, b.url, 'feed', '0'], { stdio: ['ignore', 'pipe', 'inherit'] });
    children.push(child);
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    await until(() => out.includes('"ready"'), 'the subscriber to be ready');
    child.kill('SIGSTOP');
    const pub = await w.connect(b.url);
    const payload = new Uint8Array(256);
    pub.publish('feed', payload);
    await pub.flush();
    holdPool.drain(); // slabs kept from earlier brokers of this process would hide the growth
    const live = () => {
      gc();
      gc();
      return process.memoryUsage();
    };
    const before = live();
    for (let i = 0; i < 200_000; i++) {
      pub.publish('feed', payload);
      if (i % 2000 === 1999) await pub.flush();
    }
    await pub.flush();
    const slow = b.broker.metrics().connections.find((c) => c.name === 'slow')!;
    expect(slow.heldMsgs).toBeGreaterThan(0);
    const after = live();
    const grown = after.heapUsed + after.arrayBuffers - (before.heapUsed + before.arrayBuffers);
    expect(slow.memoryBytes).toBeGreaterThan(0.75 * grown);
    expect(slow.memoryBytes).toBeLessThan(1.25 * grown);
    // Off the V8 heap: tens of thousands of held messages, and the heap grew by less than
    // 16 bytes each (a Held object and its Buffer were about 190).
    expect(slow.heldMsgs).toBeGreaterThan(20_000);
    expect(after.heapUsed - before.heapUsed).toBeLessThan(16 * slow.heldMsgs);
    // What the process holds for it is the bound, give or take slabs and write buffers.
    expect(slow.memoryBytes).toBeLessThan(MAX + 4 * 1024 * 1024);
  });

  it('broker.metrics() reports the same memoryBytes as /connz for a stuck reader, and a partial inbound frame counts at its full length', async () => {
    const b = await w.broker({ maxPending: 4 * 1024 * 1024, slowConsumerPolicy: 'drop-oldest' });
    const raw = await w.raw(b);
    await raw.handshake({ name: 'stuck' });
    raw.send(Buffer.from([0x00, 0x00, 0x10, 0x00, 0x10, 0x00])); // the first 6 bytes of a 1 MiB PUB
    const m = await eventually(
      () => Promise.resolve(b.broker.metrics().connections.find((c) => c.name === 'stuck')!),
      (c) => c.memoryBytes >= 1024 * 1024,
      'the partial frame to be counted',
    );
    expect(m.pendingBytes).toBe(0);
  });
});
