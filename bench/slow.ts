/**
 * Proof that one slow or greedy client does not hurt the others.
 *
 * A broker process; a healthy subscriber and a paced publisher in this process
 * (one clock: latency = publish call to callback); 256-byte messages at a fixed rate
 * on `md.EURUSD.bid`. Each rate is run:
 *   - baseline: nobody else;
 *   - with a frozen subscriber on the same subject (a child process stopped with
 *     SIGSTOP before the run), under each policy;
 *   - with a greedy publisher process flooding another subject as fast as it can,
 *     held to a publish rate limit with action "slow".
 * Reported: the healthy subscriber's latency percentiles and losses, the broker's
 * RSS growth over the run, and what the policy did (from broker.metrics()).
 *
 *   node dist/bench/slow.js [--runs N] [--seconds S] [--rates 10000,40000,80000] [--quick]
 */
import os from 'node:os';
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { connectBroker, type Bus } from '../client/index.js';
import { histogram, medianOf, median, percentiles, type Percentiles } from './stats.js';
import { distRoot, startNode, type Proc } from './procs.js';

interface CaseResult {
  latency: Percentiles;
  sent: number;
  received: number;
  rssGrowthMB: number;
  frozen?: Record<string, unknown>;
}

const SUBJECT = 'md.EURUSD.bid';
const WARMUP_SECONDS = 0.5;

async function brokerMetrics(p: Proc): Promise<{ metrics: { counters: Record<string, number>; connections: Array<Record<string, unknown>> }; rss: number }> {
  return new Promise((resolve) => {
    const onData = (d: Buffer) => {
      const line = d
        .toString()
        .split('\n')
        .find((l) => l.startsWith('{'));
      if (line) {
        p.child.stdout!.off('data', onData);
        resolve(JSON.parse(line));
      }
    };
    p.child.stdout!.on('data', onData);
    p.child.kill('SIGUSR2');
  });
}

/** Publishes at `rate` msg/s for `seconds` from this process; the healthy subscriber measures. */
export async function pacedRun(pub: Bus, sub: Bus, rate: number, seconds: number): Promise<{ latency: Percentiles; sent: number; received: number }> {
  const h = histogram();
  let received = 0;
  let recording = false;
  const s = sub.subscribe(SUBJECT, (msg) => {
    const t = msg.data;
    const sentAt = Buffer.from(t.buffer, t.byteOffset, t.byteLength).readDoubleLE(0);
    if (recording) h.recordValue(Math.max(1, Math.round((performance.now() - sentAt) * 1e6)));
    received++;
  });
  await sub.flush();
  const payload = Buffer.alloc(256, 7);
  const warm = Math.round(rate * WARMUP_SECONDS);
  const total = warm + Math.round(rate * seconds);
  const t0 = performance.now();
  let sent = 0;
  // No per-message timers: a 1 ms tick publishes what is due by now, so traffic comes
  // in small bursts (40 messages per tick at 40k msg/s) and this process leaves the
  // CPU to the broker between ticks. The first WARMUP_SECONDS are not recorded.
  while (sent < total) {
    const due = Math.min(total, Math.floor(((performance.now() - t0) / 1000) * rate));
    for (; sent < due; sent++) {
      if (sent === warm) recording = true;
      payload.writeDoubleLE(performance.now(), 0);
      pub.publish(SUBJECT, payload);
    }
    await new Promise((r) => setTimeout(r, 1));
  }
  const end = Date.now() + 5000;
  while (received < sent && Date.now() < end) await new Promise((r) => setTimeout(r, 5));
  s.unsubscribe();
  await sub.flush();
  return { latency: percentiles(h), sent: sent - warm, received: received - warm };
}

export async function benchSlow(opts: { runs?: number; seconds?: number; rates?: number[] } = {}): Promise<Record<string, unknown>> {
  const runs = opts.runs ?? 3;
  const seconds = opts.seconds ?? 2;
  const rates = opts.rates ?? [10_000, 40_000, 80_000];
  const policies = ['disconnect', 'drop-oldest', 'conflate'] as const;
  const out: Record<string, unknown> = { runs, seconds, rates, date: new Date().toISOString(), loadavgBefore: os.loadavg() };
  const table: string[] = [];
  const row = (name: string, rate: number, rs: CaseResult[], base?: Percentiles) => {
    const m = medianOf(rs.map((r) => r.latency));
    const lost = rs.reduce((a, r) => a + (r.sent - r.received), 0);
    const rss = median(rs.map((r) => r.rssGrowthMB));
    const ratio = base ? ` ${(m.p99 / base.p99).toFixed(2)}` : ' 1.00';
    table.push(
      `| ${name} | ${rate.toLocaleString('en-US')} | ${m.p50} | ${m.p99} | ${m.p999} | ${m.max} | ${m.spread.p99![0]}..${m.spread.p99![1]} |${ratio} | ${lost} | ${rss.toFixed(1)} |`,
    );
    return m;
  };
  table.push('| case | msg/s | p50 µs | p99 µs | p99.9 µs | max µs | p99 spread | p99 / baseline | healthy lost | broker RSS growth MB |');
  table.push('|---|---:|---:|---:|---:|---:|---|---:|---:|---:|');
  // 16 MiB per connection: the memory a frozen consumer may pin under a dropping policy.
  const cfg = { maxPending: 16 * 1024 * 1024, publishRate: { msgsPerSec: 100_000, burstMsgs: 10_000, action: 'slow' as const } };
  for (const rate of rates) {
    const results: Record<string, CaseResult[]> = { baseline: [] };
    for (let r = 0; r < runs; r++) {
      for (const mode of ['baseline', ...policies.map((p) => `frozen:${p}`), 'flood']) {
        const broker = await startNode('bench/slow-broker.js', [JSON.stringify(cfg)], /^READY /);
        const url = broker.ready.split(' ')[1]!;
        const extra: Proc[] = [];
        try {
          const pub = await connectBroker(url, { name: 'paced-pub' });
          const sub = await connectBroker(url, { name: 'healthy' });
          if (mode.startsWith('frozen:')) {
            const f = await startNode('bench/frozen.js', [url, 'md.>', mode.slice(7)], /^READY/);
            extra.push(f);
            f.child.kill('SIGSTOP');
          } else if (mode === 'flood') {
            extra.push(await startNode('bench/flood.js', [url, 'flood.x'], /^READY/));
          }
          const before = (await brokerMetrics(broker)).rss;
          const res = await pacedRun(pub, sub, rate, seconds);
          const after = await brokerMetrics(broker);
          const frozen = after.metrics.connections.find((c) => c.name === 'frozen');
          const flood = after.metrics.connections.find((c) => c.name === 'flood');
          const c = after.metrics.counters;
          (results[mode] ??= []).push({
            ...res,
            rssGrowthMB: (after.rss - before) / 2 ** 20,
            frozen: mode.startsWith('frozen:')
              ? {
                  connected: frozen !== undefined,
                  slowConsumers: c.slowConsumers,
                  droppedOldest: c.droppedOldest,
                  droppedNewest: c.droppedNewest,
                  conflated: c.conflated,
                  pendingBytes: frozen?.pendingBytes,
                  heldMsgs: frozen?.heldMsgs,
                }
              : mode === 'flood'
                ? { floodMsgsIn: flood?.msgsIn, pausedMs: c.pausedMs }
                : undefined,
          });
          await pub.close();
          await sub.close();
        } finally {
          for (const e of extra) {
            e.child.kill('SIGCONT');
            await e.stop();
          }
          await broker.stop();
        }
      }
    }
    const base = row('baseline', rate, results.baseline!);
    for (const p of policies) row(`frozen subscriber, ${p}`, rate, results[`frozen:${p}`]!, base);
    row('greedy publisher (rate-limited, slow)', rate, results.flood!, base);
    out[String(rate)] = results;
  }
  out.table = table;
  out.loadavgAfter = os.loadavg();
  return out;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({ options: { runs: { type: 'string' }, seconds: { type: 'string' }, rates: { type: 'string' }, quick: { type: 'boolean' } } });
  const res = await benchSlow({
    runs: values.quick ? 1 : Number(values.runs ?? 3),
    seconds: values.quick ? 0.5 : Number(values.seconds ?? 2),
    rates: values.rates ? values.rates.split(',').map(Number) : values.quick ? [40_000] : undefined,
  });
  console.log(
    `load average before ${(res.loadavgBefore as number[]).map((x) => x.toFixed(2)).join(' ')}, after ${(res.loadavgAfter as number[]).map((x) => x.toFixed(2)).join(' ')}`,
  );
  console.log((res.table as string[]).join('\n'));
  const dir = path.join(distRoot, '..', 'bench', 'results');
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'slow-latest.json'), JSON.stringify(res, null, 2) + '\n');
  fs.writeFileSync(path.join(dir, 'slow-latest.md'), (res.table as string[]).join('\n') + '\n');
  process.exit(0);
}
