/**
 * What monitoring costs, measured both ways in one run:
 *
 *  - the latency service on vs off: hop p50 and 1->1 throughput, against two broker
 *    processes, one with the service on (clients stamp timestamps, the broker and the
 *    subscriber histogram every hop, clients report every interval, the broker
 *    publishes $SYS reports) and one with it off (`latency: false`, no timestamps,
 *    clients with `latency: false`). Target: at most 5% on each. A third case keeps
 *    the timestamps but measures nothing, to tell the cost of stamping (a clock read
 *    per publish, 16 bytes per frame) from the cost of measuring.
 *  - the WebSocket hop vs the TCP hop on the same broker (ws://.../bus vs tcp://).
 *    Target: WebSocket p50 within 2x of TCP.
 *
 * Runs are interleaved across the cases so that noise on the shared machine lands on
 * all of them alike; medians over runs, with the spread.
 *
 *   node dist/bench/monitoring.js [--runs N] [--quick]
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { HopbusTarget, type ThroughputResult } from './hop.js';
import { median, medianOf, type Percentiles } from './stats.js';
import { startNode, type Proc } from './procs.js';

export interface MonitoringBenchOptions {
  runs: number;
  quick: boolean;
  log?: (line: string) => void;
}

export interface MonitoringBenchResult {
  loadavgBefore: number[];
  loadavgAfter: number[];
  hop: Record<string, Percentiles & { spread: Record<string, [number, number]> }>;
  throughput: Record<string, { median: number; spread: [number, number]; lost: number }>;
  ratios: { hopP50OnOverOff: number; throughputOnOverOff: number; throughputOnOverTimestampsOnly: number; wsP50OverTcpP50: number };
}

const CASES = [
  { name: 'tcp, latency off', broker: 'off', ws: false, options: { timestamps: false, latency: false } },
  { name: 'tcp, latency on', broker: 'on', ws: false, options: { timestamps: true, latency: true } },
  // Timestamps on the wire but nobody measuring: isolates the measuring from the stamping.
  { name: 'tcp, timestamps only', broker: 'off', ws: false, options: { timestamps: true, latency: false } },
  { name: 'ws, latency off', broker: 'off', ws: true, options: { timestamps: false, latency: false } },
] as const;

export async function benchMonitoring(o: MonitoringBenchOptions): Promise<MonitoringBenchResult> {
  const log = o.log ?? ((l: string) => console.log(l));
  const samples = o.quick ? 2_000 : 20_000;
  const warmup = o.quick ? 200 : 2_000;
  const tpCount = o.quick ? 100_000 : 1_000_000;
  const loadavgBefore = os.loadavg();
  const cfg = path.join(os.tmpdir(), `hopbus-bench-latency-off-${process.pid}.json`);
  fs.writeFileSync(cfg, JSON.stringify({ latency: false }));
  const procs: Proc[] = [];
  try {
    const start = async (extra: string[]) => {
      const p = await startNode('bin/hopbus.js', ['broker', '--port', '0', '--no-nats', '--http-port', '0', '--log-level', 'warn', ...extra], /ready:/);
      procs.push(p);
      return p;
    };
    const on = await start([]);
    const off = await start(['--config', cfg]);
    // "hopbus broker ready: tcp://127.0.0.1:P  ws://127.0.0.1:H/bus"
    const urls = (p: Proc) => ({ tcp: /tcp:\/\/\S+/.exec(p.ready)![0], ws: /ws:\/\/\S+/.exec(p.ready)![0] });
    const at = { on: urls(on), off: urls(off) };
    const hopRuns = new Map<string, Percentiles[]>();
    const tpRuns = new Map<string, ThroughputResult[]>();
    for (let r = 0; r < o.runs; r++) {
      for (const c of CASES) {
        const url = c.ws ? at[c.broker].ws : at[c.broker].tcp;
        const t = await new HopbusTarget(c.name, url, c.options).open();
        hopRuns.set(c.name, [...(hopRuns.get(c.name) ?? []), await t.hop(samples, warmup)]);
        if (!c.ws) tpRuns.set(c.name, [...(tpRuns.get(c.name) ?? []), await t.throughput(tpCount, 16)]);
        await t.close();
      }
      log(`run ${r + 1}/${o.runs} done`);
    }
    const hop: MonitoringBenchResult['hop'] = {};
    for (const [name, rs] of hopRuns) hop[name] = medianOf(rs);
    const throughput: MonitoringBenchResult['throughput'] = {};
    for (const [name, rs] of tpRuns) {
      const rates = rs.map((x) => x.msgsPerSec);
      throughput[name] = { median: median(rates), spread: [Math.min(...rates), Math.max(...rates)], lost: rs.reduce((a, x) => a + x.lost, 0) };
    }
    const ratios = {
      hopP50OnOverOff: round(hop['tcp, latency on']!.p50 / hop['tcp, latency off']!.p50),
      throughputOnOverOff: round(throughput['tcp, latency on']!.median / throughput['tcp, latency off']!.median),
      throughputOnOverTimestampsOnly: round(throughput['tcp, latency on']!.median / throughput['tcp, timestamps only']!.median),
      wsP50OverTcpP50: round(hop['ws, latency off']!.p50 / hop['tcp, latency off']!.p50),
    };
    const result = { loadavgBefore, loadavgAfter: os.loadavg(), hop, throughput, ratios };
    report(result, o, samples, tpCount, log);
    return result;
  } finally {
    for (const p of procs) await p.stop();
    fs.rmSync(cfg, { force: true });
  }
}

function round(x: number): number {
  return Math.round(x * 1000) / 1000;
}

function report(r: MonitoringBenchResult, o: MonitoringBenchOptions, samples: number, tpCount: number, log: (l: string) => void): void {
  log(`\n## Monitoring cost (${o.runs} runs, medians${o.quick ? '; quick mode: smoke check only' : ''})\n`);
  log(`load average before: ${r.loadavgBefore.map((x) => x.toFixed(2)).join(' ')}; after: ${r.loadavgAfter.map((x) => x.toFixed(2)).join(' ')}`);
  log(`\nOne hop, one message in flight, ${samples.toLocaleString('en-US')} samples per run (µs):\n`);
  log('| case | p50 | p90 | p99 | p99.9 | max | p50 spread |');
  log('|---|---:|---:|---:|---:|---:|---|');
  for (const [name, m] of Object.entries(r.hop))
    log(`| ${name} | ${m.p50} | ${m.p90} | ${m.p99} | ${m.p999} | ${m.max} | ${m.spread.p50![0]}..${m.spread.p50![1]} |`);
  log(`\nThroughput, 1 publisher -> 1 subscriber, 16 B payloads, ${tpCount.toLocaleString('en-US')} messages per run:\n`);
  log('| case | msg/s | spread | lost |');
  log('|---|---:|---|---:|');
  for (const [name, t] of Object.entries(r.throughput))
    log(
      `| ${name} | ${Math.round(t.median).toLocaleString('en-US')} | ${t.spread[0].toLocaleString('en-US')}..${t.spread[1].toLocaleString('en-US')} | ${t.lost} |`,
    );
  log(`\nlatency service on/off: hop p50 x${r.ratios.hopP50OnOverOff} (target <= 1.05), throughput x${r.ratios.throughputOnOverOff} (target >= 0.95)`);
  log(`measuring alone (timestamps on in both): throughput x${r.ratios.throughputOnOverTimestampsOnly}`);
  log(`WebSocket/TCP hop p50: x${r.ratios.wsP50OverTcpP50} (target <= 2)`);
}

const isMain = process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url);
if (isMain) {
  const HELP = `Usage: node dist/bench/monitoring.js [--runs N] [--quick]\n\nThe cost of the latency service (on vs off) and the WebSocket hop vs the TCP hop, in one run.`;
  let args;
  try {
    args = parseArgs({ options: { runs: { type: 'string' }, quick: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } }, strict: true }).values;
  } catch (err) {
    console.error(`bench: ${(err as Error).message}\n\n${HELP}`);
    process.exit(2);
  }
  if (args.help) {
    console.log(HELP);
    process.exit(0);
  }
  const runs = Number(args.runs ?? 5);
  if (!Number.isInteger(runs) || runs < 1) {
    console.error('bench: --runs must be a positive integer');
    process.exit(2);
  }
  benchMonitoring({ runs, quick: args.quick === true }).then(
    (r) => {
      const dir = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'bench', 'results');
      fs.mkdirSync(dir, { recursive: true });
      fs.writeFileSync(
        path.join(dir, 'monitoring.json'),
        JSON.stringify({ date: new Date().toISOString(), node: process.version, cpus: os.cpus().length, runs, quick: args.quick === true, ...r }, null, 2) +
          '\n',
      );
      process.exit(0);
    },
    (err) => {
      console.error(err);
      process.exit(1);
    },
  );
}
