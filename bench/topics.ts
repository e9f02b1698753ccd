/**
 * Microbenchmark of topics/: SubjectTree.match with 10, 10k and 100k
 * subscriptions, and validateSubject.
 *
 * Each tinybench sample is one batch of BATCH calls timed together, reported
 * per call (one call is far below the timer's useful resolution). So nsPerOp
 * is the mean per call, and p50Ns / p99Ns are percentiles of batch means, not
 * of single calls: they show run-to-run jitter, not per-call tails.
 *
 * Scenarios per subscription count:
 * - "hit": the same subject over and over, default cache (4096): a Map lookup.
 * - "miss, no cache": same subject, cacheSize 0: full trie walk + result array.
 * - "miss, evicting": cacheSize 1024, rotating over 2048 distinct subjects.
 *   The cache is FIFO, so a cyclic walk over twice its size never hits; this
 *   is the trie walk plus the cost of inserting into and evicting from a full
 *   cache, i.e. the real cost of a cache-hostile publisher.
 * The hit rate actually observed is reported, to show each scenario is what
 * its name says.
 *
 * Run directly: `node dist/bench/topics.js [--quick]`.
 */
import { pathToFileURL } from 'node:url';
import { Bench, type FnReturnedObject } from 'tinybench';
import { SubjectTree, validateSubject } from '../topics/index.js';

export interface TopicsBenchResult {
  name: string;
  subscriptions: number;
  nsPerOp: number;
  p50Ns?: number;
  p99Ns?: number;
  opsPerSec: number;
  /** Values returned by one match of the measured subject(s) (first subject for rotations). */
  matched?: number;
  /** Cache hits / matches over the task, warm-up included. */
  hitRate?: number;
}

const BATCH = 1000;
const SIDES = ['bid', 'ask', 'trade'] as const;

// Prevents the optimiser from dropping calls whose result would be unused.
let sink = 0;

/**
 * n realistic subscriptions: a few wide wildcard "monitoring" subscriptions
 * (md.*.ask, md.*.bid, md.S0.>), 30% per-desk order streams (orders.deskN.>),
 * the rest one literal per market-data subject (md.S<k>.bid|ask|trade).
 */
export function topicPatterns(n: number): string[] {
  const wide = ['md.*.ask', 'md.*.bid', 'md.S0.>'].slice(0, Math.min(3, n));
  const rest = n - wide.length;
  const desks = Math.floor(rest * 0.3);
  const literals = rest - desks;
  const out = [...wide];
  for (let k = 0; k < desks; k++) out.push(`orders.desk${k}.>`);
  for (let j = 0; j < literals; j++) out.push(`md.S${Math.floor(j / 3)}.${SIDES[j % 3]}`);
  return out;
}

function makeTree(patterns: string[], cacheSize: number): SubjectTree<number> {
  const tree = new SubjectTree<number>({ cacheSize });
  patterns.forEach((p, i) => tree.insert(p, i));
  return tree;
}

function batched(body: () => void): () => FnReturnedObject {
  return () => {
    const t0 = performance.now();
    body();
    const elapsed = performance.now() - t0;
    return { overriddenDuration: elapsed / BATCH, overriddenIterationCost: elapsed };
  };
}

export async function benchTopics(opts?: { quick?: boolean }): Promise<TopicsBenchResult[]> {
  const quick = opts?.quick === true;
  const bench = new Bench({
    name: 'topics',
    time: quick ? 150 : 1000,
    warmupTime: quick ? 50 : 250,
    iterations: quick ? 32 : 64,
    throws: true,
  });
  const meta = new Map<string, { subscriptions: number; matched?: number; hitRate?: () => number }>();

  for (const n of [10, 10_000, 100_000]) {
    const patterns = topicPatterns(n);
    const symbols = Math.max(1, Math.ceil((n * 0.7) / 3));
    const subject = `md.S${Math.floor(symbols / 2)}.ask`; // a literal + md.*.ask (when present)
    // 2048 distinct subjects; with 10 subscriptions most name no existing
    // symbol and match only the wide wildcards.
    const rotation = Array.from({ length: 2048 }, (_, k) => `md.S${k}.${SIDES[k % 3]}`);

    const hitTree = makeTree(patterns, 4096);
    const noCacheTree = makeTree(patterns, 0);
    const evictTree = makeTree(patterns, 1024);
    const rate = (t: SubjectTree<number>) => () => {
      const s = t.stats();
      return s.hits / Math.max(1, s.hits + s.misses);
    };

    const hitName = `match, cache hit (${n} subs)`;
    bench.add(
      hitName,
      batched(() => {
        for (let i = 0; i < BATCH; i++) sink += hitTree.match(subject).length;
      }),
    );
    meta.set(hitName, { subscriptions: n, matched: hitTree.match(subject).length, hitRate: rate(hitTree) });

    const noCacheName = `match, miss: cacheSize 0 (${n} subs)`;
    bench.add(
      noCacheName,
      batched(() => {
        for (let i = 0; i < BATCH; i++) sink += noCacheTree.match(subject).length;
      }),
    );
    meta.set(noCacheName, { subscriptions: n, matched: noCacheTree.match(subject).length, hitRate: rate(noCacheTree) });

    const evictName = `match, miss: 2048 subjects > cache 1024 (${n} subs)`;
    let next = 0;
    bench.add(
      evictName,
      batched(() => {
        for (let i = 0; i < BATCH; i++) {
          sink += evictTree.match(rotation[next]!).length;
          next = next === rotation.length - 1 ? 0 : next + 1;
        }
      }),
    );
    meta.set(evictName, { subscriptions: n, matched: evictTree.match(rotation[0]!).length, hitRate: rate(evictTree) });
  }

  const toValidate = ['md.AAPL.bid', 'orders.desk42.fill.8812345', 'md.S1234.trade', 'prix.€.bid', 'a.b.c.d.e.f.g.h'];
  const validateName = 'validateSubject (5 subjects, 8-26 chars)';
  bench.add(
    validateName,
    batched(() => {
      for (let i = 0; i < BATCH; i++) validateSubject(toValidate[i % 5]!);
    }),
  );
  meta.set(validateName, { subscriptions: 0 });

  await bench.run();

  const results: TopicsBenchResult[] = [];
  for (const task of bench.tasks) {
    const r = task.result;
    if (r.state !== 'completed') throw new Error(`bench task ${task.name} ended ${r.state}`);
    const m = meta.get(task.name)!;
    const nsPerOp = r.latency.mean * 1e6;
    const out: TopicsBenchResult = {
      name: task.name,
      subscriptions: m.subscriptions,
      nsPerOp,
      p50Ns: r.latency.p50 * 1e6,
      p99Ns: r.latency.p99 * 1e6,
      opsPerSec: 1e9 / nsPerOp,
    };
    if (m.matched !== undefined) out.matched = m.matched;
    if (m.hitRate !== undefined) out.hitRate = m.hitRate();
    results.push(out);
  }
  if (sink === -1) console.log(sink); // keeps sink observable
  return results;
}

function formatTable(rows: TopicsBenchResult[]): string {
  const head = ['task', 'subs', 'ns/op', 'p50 ns', 'p99 ns', 'ops/s', 'matched', 'hit rate'];
  const body = rows.map((r) => [
    r.name,
    String(r.subscriptions),
    r.nsPerOp.toFixed(1),
    r.p50Ns?.toFixed(1) ?? '',
    r.p99Ns?.toFixed(1) ?? '',
    Math.round(r.opsPerSec).toLocaleString('en-US'),
    r.matched === undefined ? '' : String(r.matched),
    r.hitRate === undefined ? '' : `${(r.hitRate * 100).toFixed(1)}%`,
  ]);
  const widths = head.map((h, c) => Math.max(h.length, ...body.map((row) => row[c]!.length)));
  const line = (cells: string[]) => cells.map((x, c) => (c === 0 ? x.padEnd(widths[c]!) : x.padStart(widths[c]!))).join('  ');
  return [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line)].join('\n');
}

const invokedPath = process.argv[1];
if (invokedPath !== undefined && import.meta.url === pathToFileURL(invokedPath).href) {
  const quick = process.argv.includes('--quick');
  const rows = await benchTopics({ quick });
  console.log(`hopbus topics benchmark (${quick ? 'quick' : 'full'}; node ${process.version}; ${BATCH} calls per sample, p50/p99 are of batch means)`);
  console.log(formatTable(rows));
}
