/**
 * The last-value cache under a large late join: a broker process caching N subjects
 * (100,000 by default, 64-byte values on md.img.<i>); a healthy subscriber and a paced
 * publisher in this process on md.EURUSD.bid (256 B, one clock: latency = publish call to
 * callback, bench/slow.ts pacedRun). Each run:
 *   - baseline: the paced stream alone;
 *   - snapshot: the same, while a late joiner in another process (bench/lvc-snap.ts)
 *     subscribes to md.img.> with a snapshot and receives the N cached values.
 * The late join starts 0.2 s into the measured part of the stream (after its warm-up).
 * Reported: the time from the joiner's subscribe to its snapshotDone; the healthy
 * subscriber's p50/p99/p99.9/max over the whole run, and over the samples taken while the
 * image was in flight (from the go to the joiner's DONE); their p99 over the baseline's
 * (bar: <= 2x). Medians of the runs, with min..max of the p99s.
 *
 *   node dist/bench/lvc.js [--runs N] [--subjects N] [--rate MSGS] [--seconds S] [--quick]
 */
import os from 'node:os';
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { connectBroker } from '../client/index.js';
import { histogram, median, medianOf, percentiles, type Percentiles } from './stats.js';
import { distRoot, startNode, stopAll } from './procs.js';
import { pacedRun } from './slow.js';

interface RunResult {
  latency: Percentiles;
  lost: number;
  /** ms from subscribe to snapshotDone, and the cached values it counted (snapshot runs). */
  imageMs?: number;
  imageValues?: number;
  /** The healthy subscriber's latency while the image was in flight (snapshot runs). */
  during?: Percentiles;
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
        const window = { active: false, h: histogram() };
        let mark: { at: number; fn: () => void } | undefined;
        if (mode === 'snapshot') {
          joiner = await startNode('bench/lvc-snap.js', [url, 'md.img.>'], /^READY/, 10_000, { stdin: true });
          const j = joiner;
          image = new Promise((resolve) => {
            const onData = (d: Buffer) => {
              const m = /^DONE (\d+) ([\d.]+)/m.exec(d.toString());
              if (m) {
                window.active = false;
                j.child.stdout!.off('data', onData);
                resolve({ values: Number(m[1]), ms: Number(m[2]) });
              }
            };
            j.child.stdout!.on('data', onData);
          });
          // The late join starts inside the measured part of the stream.
          mark = {
            at: 0.2,
            fn: () => {
              window.active = true;
              j.child.stdin!.write('go\n');
            },
          };
        }
        const res = await pacedRun(pub, sub, rate, seconds, mark, window);
        const img = image === null ? null : await image;
        results[mode].push({
          latency: res.latency,
          lost: res.sent - res.received,
          ...(img ? { imageMs: img.ms, imageValues: img.values, during: percentiles(window.h) } : {}),
        });
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
  const during = medianOf(results.snapshot.map((x) => x.during!));
  const imageMs = median(results.snapshot.map((x) => x.imageMs!));
  const imageSpread = results.snapshot.map((x) => x.imageMs!);
  const spread = (p: { spread: Record<string, [number, number]> }) => `${p.spread.p99![0]}..${p.spread.p99![1]}`;
  const lost = (xs: RunResult[]) => xs.reduce((a, x) => a + x.lost, 0);
  const n = subjects.toLocaleString('en-US');
  const table = [
    '| case | time to snapshotDone ms | healthy p50 µs | p99 µs (min..max) | p99.9 µs | max µs | p99 / baseline | healthy lost |',
    '|---|---:|---:|---:|---:|---:|---:|---:|',
    `| baseline, the paced stream alone | - | ${base.p50} | ${base.p99} (${spread(base)}) | ${base.p999} | ${base.max} | 1.00 | ${lost(results.baseline)} |`,
    `| snapshot of ${n} subjects, whole run | ${imageMs.toFixed(1)} (${Math.min(...imageSpread).toFixed(1)}..${Math.max(...imageSpread).toFixed(1)}) | ${snap.p50} | ${snap.p99} (${spread(snap)}) | ${snap.p999} | ${snap.max} | ${(snap.p99 / base.p99).toFixed(2)} | ${lost(results.snapshot)} |`,
    `| snapshot of ${n} subjects, while the image is in flight (median ${Math.round(median(results.snapshot.map((x) => x.during!.count)))} samples) | - | ${during.p50} | ${during.p99} (${spread(during)}) | ${during.p999} | ${during.max} | ${(during.p99 / base.p99).toFixed(2)} | - |`,
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
