/**
 * Proof that one slow or greedy client does not hurt the others.
 *
 * A broker process with default options (a publish rate limit added for the greedy
 * publisher); a healthy subscriber and a paced publisher in this process (one clock:
 * latency = publish call to callback); 256-byte messages at a fixed rate on
 * `md.EURUSD.bid`. For each rate and each freeze length:
 *   - baseline: the healthy subscriber alone, for as long as a frozen case runs;
 *   - a subscriber process on the same subject, frozen with SIGSTOP for the freeze
 *     length while the stream goes on, then thawed (SIGCONT) for THAW_SECONDS more,
 *     under each policy (with the default write deadline of 10 s, a 2 s freeze is under
 *     it and 30 s beyond);
 *   - once per rate, a greedy publisher process flooding another subject as fast as it
 *     can, held to a publish rate limit with action "slow";
 *   - a reference off the bus: a process (bench/spin.ts) busy on one core for the thaw's
 *     second, what a thawed consumer catching up also is: on a 2-core machine, what a
 *     busy neighbour alone costs the healthy subscriber.
 * Reported per case: the healthy subscriber's latency percentiles (median of the runs)
 * and the spread of its p99, its p99 over the same-run baseline's p99 (target: 1.5x
 * at most), the baseline's own spread, the p99 of the samples after the freeze's end
 * (the thaw) over the baseline's samples of the same window, the healthy subscriber's losses, and the broker's
 * peak RSS growth (VmHWM) against the memory bound of one connection's outbound side
 * (outboundMemoryBound: maxPending and its documented granularity), with what the
 * policy did to the frozen consumer (cut off, drops, conflations, its pending peak).
 *
 *   node dist/bench/slow.js [--runs N] [--freeze 2,10,30] [--rates 10000,40000,80000]
 *                           [--policies disconnect,drop-oldest,...] [--max-pending BYTES] [--quick]
 *
 * --quick is a smoke check (one run, 10k msg/s, 0.5 s freeze, every policy): not figures;
 * its results go to a temporary folder, never over bench/results.
 */
import os from 'node:os';
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { connectBroker, type Bus } from '../client/index.js';
import type hdr from 'hdr-histogram-js';
import { histogram, medianOf, median, percentiles, type Percentiles } from './stats.js';
import { distRoot, startNode, type Proc } from './procs.js';

const POLICIES = ['disconnect', 'drop-oldest', 'drop-newest', 'conflate', 'block'] as const;
type PolicyName = (typeof POLICIES)[number];

interface Dump {
  metrics: { counters: Record<string, number>; connections: Array<Record<string, unknown>> };
  rss: number;
  hwm: number;
  bound: number;
  maxPending: number;
  writeDeadlineMs: number;
}

interface CaseResult {
  latency: Percentiles;
  /** The same, for the samples after the freeze's end only (the thaw: a frozen consumer catching up). */
  thaw: Percentiles;
  sent: number;
  received: number;
  /** Peak RSS of the broker over the case minus its RSS before, MiB. */
  rssGrowthMB: number;
  /** The outbound memory bound of one connection, MiB. */
  boundMB: number;
  frozen?: Record<string, unknown>;
}

const SUBJECT = 'md.EURUSD.bid';
const WARMUP_SECONDS = 0.5;
/** After the freeze, the stream goes on this long with the consumer thawed: its catch-up must not hurt either. */
const THAW_SECONDS = 1;

async function dump(p: Proc): Promise<Dump> {
  return new Promise((resolve) => {
    let buf = '';
    const onData = (d: Buffer) => {
      buf += d.toString();
      const line = buf.split('\n').find((l) => l.startsWith('{') && l.endsWith('}'));
      if (line) {
        p.child.stdout!.off('data', onData);
        resolve(JSON.parse(line) as Dump);
      }
    };
    p.child.stdout!.on('data', onData);
    p.child.kill('SIGUSR2');
  });
}

/**
 * Publishes at `rate` msg/s for `seconds` (after a warm-up) from this process; the
 * healthy subscriber measures. `mark` runs once, `mark.at` seconds into the measured
 * part, without pausing the stream. (bench/lvc.ts measures with it too.) While
 * `window.active` is true, each measured latency is also recorded in `window.h` (the
 * samples taken while something else happens, e.g. a late join's image).
 */
export async function pacedRun(
  pub: Bus,
  sub: Bus,
  rate: number,
  seconds: number,
  mark?: { at: number; fn: () => void },
  window?: { active: boolean; h: hdr.Histogram },
): Promise<{ latency: Percentiles; sent: number; received: number; refused: number }> {
  const h = histogram();
  let received = 0;
  let recording = false;
  const s = sub.subscribe(SUBJECT, (msg) => {
    const t = msg.data;
    const sentAt = Buffer.from(t.buffer, t.byteOffset, t.byteLength).readDoubleLE(0);
    if (recording) {
      const ns = Math.max(1, Math.round((performance.now() - sentAt) * 1e6));
      h.recordValue(ns);
      if (window?.active) window.h.recordValue(ns);
    }
    received++;
  });
  await sub.flush();
  const payload = Buffer.alloc(256, 7);
  const warm = Math.round(rate * WARMUP_SECONDS);
  const total = warm + Math.round(rate * seconds);
  const markAt = mark ? warm + Math.round(rate * mark.at) : Infinity;
  const t0 = performance.now();
  let sent = 0;
  // Published, and refused by the client's own bound (PendingLimitError: the broker stopped
  // reading this publisher for so long that maxPendingBytes filled up, as `block` does).
  let published = 0;
  let refused = 0;
  // No per-message timers: a 1 ms tick publishes what is due by now, so traffic comes
  // in small bursts (40 messages per tick at 40k msg/s) and this process leaves the
  // CPU to the broker between ticks. The first WARMUP_SECONDS are not recorded.
  while (sent < total) {
    const due = Math.min(total, Math.floor(((performance.now() - t0) / 1000) * rate));
    for (; sent < due; sent++) {
      if (sent === warm) recording = true;
      if (sent === markAt) mark!.fn();
      payload.writeDoubleLE(performance.now(), 0);
      try {
        pub.publish(SUBJECT, payload);
        published++;
      } catch (err) {
        if ((err as { code?: string }).code !== 'PENDING_LIMIT') throw err;
        refused++;
      }
    }
    await new Promise((r) => setTimeout(r, 1));
  }
  // The healthy subscriber's barrier: a round trip through the broker after the last publish.
  await pub.flush();
  const end = Date.now() + 10_000;
  while (received < published && Date.now() < end) await new Promise((r) => setTimeout(r, 5));
  s.unsubscribe();
  await sub.flush();
  return { latency: percentiles(h), sent: published - warm, received: received - warm, refused };
}

export interface SlowOptions {
  runs?: number;
  /** Freeze lengths, seconds. */
  freezes?: number[];
  rates?: number[];
  policies?: readonly PolicyName[];
  /** Broker maxPending; default: the broker's default. */
  maxPending?: number;
}

export async function benchSlow(opts: SlowOptions = {}): Promise<Record<string, unknown>> {
  const runs = opts.runs ?? 3;
  const freezes = opts.freezes ?? [2, 10, 30];
  const rates = opts.rates ?? [10_000, 40_000, 80_000];
  const policies = opts.policies ?? POLICIES;
  const out: Record<string, unknown> = {
    runs,
    freezes,
    thawSeconds: THAW_SECONDS,
    rates,
    policies,
    date: new Date().toISOString(),
    loadavgBefore: os.loadavg(),
  };
  const table: string[] = [];
  table.push(
    "| case | msg/s | freeze s | p50 µs | p99 µs | p99.9 µs | max µs | p99 spread | p99 / baseline | baseline p99 spread | thaw p99 µs | thaw p99 / baseline's | healthy lost | broker RSS growth MiB | bound MiB | frozen consumer |",
  );
  table.push('|---|---:|---:|---:|---:|---:|---:|---|---:|---|---:|---:|---:|---:|---:|---|');
  let baseThaw = 0;
  const row = (name: string, rate: number, freeze: number | string, rs: CaseResult[], base: ReturnType<typeof medianOf> | null) => {
    const m = medianOf(rs.map((r) => r.latency));
    const thaw = Math.round(median(rs.map((r) => r.thaw.p99)) * 100) / 100;
    if (base === null) baseThaw = thaw;
    const thawRatio = base === null || freeze === '-' ? '' : (thaw / baseThaw).toFixed(2);
    const lost = rs.reduce((a, r) => a + (r.sent - r.received), 0);
    const rss = median(rs.map((r) => r.rssGrowthMB));
    const bound = rs[0]!.boundMB;
    const ratio = base ? m.p99 / base.p99 : 1;
    const verdict = base ? (ratio <= 1.5 ? '' : ' ✗') : '';
    const f = rs[rs.length - 1]!.frozen;
    const what = f === undefined ? '' : describeFrozen(f);
    table.push(
      `| ${name} | ${rate.toLocaleString('en-US')} | ${freeze} | ${m.p50} | ${m.p99} | ${m.p999} | ${m.max} | ${m.spread.p99![0]}..${m.spread.p99![1]} | ${ratio.toFixed(2)}${verdict} | ${base ? `${base.spread.p99![0]}..${base.spread.p99![1]}` : ''} | ${freeze === '-' ? '' : thaw} | ${thawRatio} | ${lost} | ${rss.toFixed(1)}${rss <= bound ? '' : ' ✗'} | ${bound.toFixed(1)} | ${what} |`,
    );
    return m;
  };
  const cfg = { publishRate: { msgsPerSec: 100_000, burstMsgs: 10_000, action: 'slow' as const }, ...(opts.maxPending ? { maxPending: opts.maxPending } : {}) };
  for (const rate of rates) {
    const byRate: Record<string, Record<string, CaseResult[]>> = {};
    for (const freeze of freezes) {
      const seconds = freeze + THAW_SECONDS;
      const results: Record<string, CaseResult[]> = {};
      for (let r = 0; r < runs; r++) {
        const modes = ['baseline', 'neighbour', ...policies.map((p) => `frozen:${p}`)];
        if (freeze === freezes[0]) modes.push('flood');
        for (const mode of modes) {
          const res = await runCase(cfg, mode, rate, freeze, seconds);
          (results[mode] ??= []).push(res);
          // Progress on stderr, so a long run shows where it is.
          console.error(
            `${rate} msg/s, freeze ${freeze} s, run ${r + 1}/${runs}, ${mode}: p99 ${res.latency.p99} µs, lost ${res.sent - res.received}${res.frozen ? `, ${describeFrozen(res.frozen)}` : ''}`,
          );
        }
      }
      byRate[String(freeze)] = results;
      const base = row('baseline', rate, freeze, results.baseline!, null);
      row('reference: a neighbour process busy on one core for the thaw', rate, freeze, results.neighbour!, base);
      for (const p of policies) row(`frozen subscriber, ${p}`, rate, freeze, results[`frozen:${p}`]!, base);
      if (results.flood) row('greedy publisher (rate-limited, slow)', rate, '-', results.flood, base);
    }
    out[String(rate)] = byRate;
  }
  out.table = table;
  out.loadavgAfter = os.loadavg();
  return out;
}

function describeFrozen(f: Record<string, unknown>): string {
  if (f.floodMsgsIn !== undefined) return `flood: ${String(f.floodMsgsIn)} msgs in, paused ${Math.round(Number(f.pausedMs))} ms`;
  const parts: string[] = [];
  if (f.slowConsumers) parts.push('cut off');
  const dropped = Number(f.droppedOldest ?? 0) + Number(f.droppedNewest ?? 0);
  if (dropped) parts.push(`${dropped} dropped`);
  if (f.conflated) parts.push(`${String(f.conflated)} conflated`);
  if (f.pendingPeak !== undefined) parts.push(`pending peak ${(Number(f.pendingPeak) / 2 ** 20).toFixed(1)} MiB`);
  if (f.publisherPausedMs) parts.push(`publisher paused ${Math.round(Number(f.publisherPausedMs))} ms`);
  if (f.refused) parts.push(`${String(f.refused)} publishes refused by the publisher's own full queue`);
  return parts.join(', ');
}

/** One case on a fresh broker: `mode` is baseline, frozen:<policy> or flood. */
async function runCase(cfg: object, mode: string, rate: number, freeze: number, seconds: number): Promise<CaseResult> {
  const broker = await startNode('bench/slow-broker.js', [JSON.stringify(cfg)], /^READY /);
  const url = broker.ready.split(' ')[1]!;
  const extra: Proc[] = [];
  try {
    const pub = await connectBroker(url, { name: 'paced-pub' });
    const sub = await connectBroker(url, { name: 'healthy' });
    let frozen: Proc | null = null;
    if (mode.startsWith('frozen:')) {
      frozen = await startNode('bench/frozen.js', [url, 'md.>', mode.slice(7)], /^READY/);
      extra.push(frozen);
      frozen.child.kill('SIGSTOP');
    } else if (mode === 'flood') {
      extra.push(await startNode('bench/flood.js', [url, 'flood.x'], /^READY/));
    }
    const neighbour = mode === 'neighbour' ? await startNode('bench/spin.js', [String(THAW_SECONDS * 1000)], /^READY/) : null;
    if (neighbour !== null) extra.push(neighbour);
    // The thaw window: every case records the samples after `freeze` seconds apart as well.
    const thawWindow = { active: false, h: histogram() };
    const before = await dump(broker);
    // At the end of the freeze: what the broker holds then, and the thaw.
    let atThaw: Promise<Dump> | null = null;
    const mark = {
      at: freeze,
      fn: () => {
        thawWindow.active = true;
        if (neighbour !== null) neighbour.child.kill('SIGUSR2');
        if (frozen === null) return;
        atThaw = dump(broker).then((d) => {
          frozen.child.kill('SIGCONT');
          return d;
        });
      },
    };
    const res = await pacedRun(pub, sub, rate, seconds, mark, thawWindow);
    const after = await dump(broker);
    const thaw = atThaw === null ? after : await (atThaw as Promise<Dump>);
    const fc = thaw.metrics.connections.find((c) => c.name === 'frozen');
    const flood = after.metrics.connections.find((c) => c.name === 'flood');
    const c = thaw.metrics.counters;
    await pub.close();
    await sub.close();
    return {
      ...res,
      thaw: percentiles(thawWindow.h),
      rssGrowthMB: (after.hwm - before.rss) / 2 ** 20,
      boundMB: after.bound / 2 ** 20,
      frozen: mode.startsWith('frozen:')
        ? {
            connectedAtThaw: fc !== undefined,
            slowConsumers: c.slowConsumers,
            droppedOldest: c.droppedOldest,
            droppedNewest: c.droppedNewest,
            conflated: c.conflated,
            pendingPeak: fc?.pendingPeak,
            memoryPeak: fc?.memoryPeak,
            heldMsgs: fc?.heldMsgs,
            holdBlocks: fc?.holdBlocks,
            publisherPausedMs: after.metrics.counters.pausedMs,
            refused: res.refused,
          }
        : mode === 'flood'
          ? { floodMsgsIn: flood?.msgsIn, pausedMs: after.metrics.counters.pausedMs }
          : undefined,
    };
  } finally {
    for (const e of extra) {
      e.child.kill('SIGCONT');
      await e.stop();
    }
    await broker.stop();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({
    options: {
      runs: { type: 'string' },
      freeze: { type: 'string' },
      rates: { type: 'string' },
      policies: { type: 'string' },
      'max-pending': { type: 'string' },
      quick: { type: 'boolean' },
    },
  });
  const list = (s: string | undefined) => (s === undefined ? undefined : s.split(',').map(Number));
  const policies = values.policies?.split(',') as PolicyName[] | undefined;
  for (const p of policies ?? [])
    if (!(POLICIES as readonly string[]).includes(p)) throw new Error(`--policies: unknown policy "${p}"; known: ${POLICIES.join(', ')}`);
  const res = await benchSlow({
    runs: values.runs ? Number(values.runs) : values.quick ? 1 : undefined,
    freezes: list(values.freeze) ?? (values.quick ? [0.5] : undefined),
    rates: list(values.rates) ?? (values.quick ? [10_000] : undefined),
    policies,
    maxPending: values['max-pending'] ? Number(values['max-pending']) : undefined,
  });
  console.log(
    `load average before ${(res.loadavgBefore as number[]).map((x) => x.toFixed(2)).join(' ')}, after ${(res.loadavgAfter as number[]).map((x) => x.toFixed(2)).join(' ')}`,
  );
  console.log((res.table as string[]).join('\n'));
  const dir = values.quick ? fs.mkdtempSync(path.join(os.tmpdir(), 'hopbus-slow-')) : path.join(distRoot, '..', 'bench', 'results');
  fs.mkdirSync(dir, { recursive: true });
  const md = [values.quick ? '_quick smoke run: not figures_\n' : '', ...(res.table as string[])].join('\n') + '\n';
  fs.writeFileSync(path.join(dir, 'slow-latest.json'), JSON.stringify(res, null, 2) + '\n');
  fs.writeFileSync(path.join(dir, 'slow-latest.md'), md);
  console.log(`written to ${dir}/slow-latest.{json,md}`);
  process.exit(0);
}
