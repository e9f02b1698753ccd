/**
 * The last-value cache under a large late join: a broker process caching N subjects
 * (100,000 by default, 64-byte values on md.img.<i>); a healthy subscriber and a paced
 * publisher in this process on md.EURUSD.bid (256 B, one clock: latency = publish call to
 * callback, bench/slow.ts pacedRun). Each run:
 *   - baseline: the paced stream alone;
 *   - snapshot: the same, while a late joiner in another process (bench/lvc-snap.ts)
 *     subscribes to md.img.> with a snapshot and receives the N cached values.
 * Reported: the time from the joiner's subscribe to its snapshotDone, and the healthy
 * subscriber's p50/p99/p99.9/max, with its p99 over the baseline's (the bar: <= 2x).
 *
 *   node dist/bench/lvc.js [--runs N] [--subjects N] [--rate MSGS] [--seconds S] [--quick]
 */
import os from 'node:os';
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { connectBroker } from '../client/index.js';
import { median, medianOf, type Percentiles } from './stats.js';
import { distRoot, startNode, stopAll } from './procs.js';
import { pacedRun } from './slow.js';

interface RunResult {
  latency: Percentiles;
  lost: number;
  /** ms from subscribe to snapshotDone, and the cached values it counted (snapshot runs). */
  imageMs?: number;
  imageValues?: number;
}

export async function benchLvc(opts: { runs?: number; subjects?: number; rate?: number; seconds?: number } = {}): Promise<Record<string, unknown>> {
  const runs = opts.runs ?? 3;
  const subjects = opts.subjects ?? 100_000;
  const rate = opts.rate ?? 20_000;
  const seconds = opts.seconds ?? 2;
  const out: Record<string, unknown> = { runs, subjects, rate, seconds, date: new Date().toISOString(), loadavgBefore: os.loadavg() };
  const cfg = { cache: [{ pattern: 'md.img.>', maxSubjects: subjects, maxBytes: 1 << 30 }] };
  const results: Record<'baseline' | 'snapshot', RunResult[]> = { baseline: [], snapshot: [] };
  for (let r = 0; r < runs; r++) {
    for (const mode of ['baseline', 'snapshot'] as const) {
      const broker = await startNode('bench/slow-broker.js', [JSON.stringify(cfg)], /^READY /);
      const url = broker.ready.split(' ')[1]!;
      try {
        const pub = await connectBroker(url, { name: 'paced-pub' });
        const sub = await connectBroker(url, { name: 'healthy' });
        // Fill the cache, flushed every 10,000 (flow control: never more than that in flight).
        const value = Buffer.alloc(64, 1);
        for (let i = 0; i < subjects; i++) {
          pub.publish(`md.img.${i}`, value);
          if (i % 10_000 === 9_999) await pub.flush();
        }
        await pub.flush();
        let image: Promise<{ values: number; ms: number }> | null = null;
        let joiner: Awaited<ReturnType<typeof startNode>> | null = null;
        if (mode === 'snapshot') {
          joiner = await startNode('bench/lvc-snap.js', [url, 'md.img.>'], /^READY/, 10_000, { stdin: true });
          const j = joiner;
          image = new Promise((resolve) => {
            const onData = (d: Buffer) => {
              const m = /^DONE (\d+) ([\d.]+)/m.exec(d.toString());
              if (m) {
                j.child.stdout!.off('data', onData);
                resolve({ values: Number(m[1]), ms: Number(m[2]) });
              }
            };
            j.child.stdout!.on('data', onData);
          });
          // The late join starts with the paced stream (its first tick).
          setTimeout(() => j.child.stdin!.write('go\n'), 0);
        }
        const res = await pacedRun(pub, sub, rate, seconds);
        const img = image === null ? null : await image;
        results[mode].push({ latency: res.latency, lost: res.sent - res.received, ...(img ? { imageMs: img.ms, imageValues: img.values } : {}) });
        await joiner?.stop();
        await pub.close();
        await sub.close();
      } finally {
        await broker.stop();
      }
    }
  }
  const base = medianOf(results.baseline.map((x) => x.latency));
  const snap = medianOf(results.snapshot.map((x) => x.latency));
  const imageMs = median(results.snapshot.map((x) => x.imageMs!));
  const table = [
    '| case | subjects | time to snapshotDone ms | healthy p50 µs | p99 µs | p99.9 µs | max µs | p99 / baseline | healthy lost |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|',
    `| baseline | - | - | ${base.p50} | ${base.p99} | ${base.p999} | ${base.max} | 1.00 | ${results.baseline.reduce((a, x) => a + x.lost, 0)} |`,
    `| snapshot of ${subjects.toLocaleString('en-US')} subjects | ${subjects} | ${imageMs.toFixed(1)} | ${snap.p50} | ${snap.p99} | ${snap.p999} | ${snap.max} | ${(snap.p99 / base.p99).toFixed(2)} | ${results.snapshot.reduce((a, x) => a + x.lost, 0)} |`,
  ];
  out.results = results;
  out.table = table;
  out.loadavgAfter = os.loadavg();
  return out;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({
    options: { runs: { type: 'string' }, subjects: { type: 'string' }, rate: { type: 'string' }, seconds: { type: 'string' }, quick: { type: 'boolean' } },
  });
  try {
    const res = await benchLvc({
      runs: values.quick ? 1 : Number(values.runs ?? 3),
      subjects: Number(values.subjects ?? (values.quick ? 2_000 : 100_000)),
      rate: Number(values.rate ?? (values.quick ? 2_000 : 20_000)),
      seconds: Number(values.seconds ?? (values.quick ? 0.3 : 2)),
    });
    console.log(
      `load average before ${(res.loadavgBefore as number[]).map((x) => x.toFixed(2)).join(' ')}, after ${(res.loadavgAfter as number[]).map((x) => x.toFixed(2)).join(' ')}`,
    );
    console.log((res.table as string[]).join('\n'));
    // A --quick run checks that the benchmark works; its figures mean nothing and are not kept.
    if (!values.quick) {
      const dir = path.join(distRoot, '..', 'bench', 'results');
      fs.mkdirSync(dir, { recursive: true });
      fs.writeFileSync(path.join(dir, 'lvc-latest.json'), JSON.stringify(res, null, 2) + '\n');
      fs.writeFileSync(path.join(dir, 'lvc-latest.md'), (res.table as string[]).join('\n') + '\n');
    }
  } finally {
    await stopAll();
  }
  process.exit(0);
}
