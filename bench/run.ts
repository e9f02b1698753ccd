/**
 * npm run bench: the topics microbenchmarks, then the end-to-end cases against a
 * broker process and the raw-Node floor (a TCP relay process) in the same run.
 * hopbus-tls is the same over TLS (a second broker process with certificates made by
 * openssl for the run), beside plain TCP in the same tables. hopbus-perm connects as a
 * user whose publish and subscribe rules total 1,000 allow/deny patterns, hopbus-user
 * as a user without rules on the same broker process (its reference, same run: the same
 * per-message check, over empty lists); hopbus-tcp, an open broker, checks nothing.
 * Each case runs several times, interleaved across systems so that noise on the
 * shared machine lands on all of them alike; the median of the runs is reported
 * with its spread. Writes bench/results/latest.json and latest.md.
 *
 *   node dist/bench/run.js [--runs N] [--quick] [--only topics,hop,pingpong,throughput,monitoring]
 */
import fs from 'node:fs';
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { benchTopics } from './topics.js';
import { benchMonitoring } from './monitoring.js';
import { HopbusTarget, RelayTarget, type Target, type ThroughputResult } from './hop.js';
import { median, medianOf, type Percentiles } from './stats.js';
import { distRoot, startNode, type Proc } from './procs.js';
import { benchMulticast } from './multicast.js';
import { benchShm } from './shm.js';
import { benchInproc } from './inproc.js';
import { makeCerts, opensslProblem, type CertFiles } from './certs.js';
import { hashPassword, type PermissionsConfig } from '../broker/auth/index.js';

const HELP = `Usage: node dist/bench/run.js [options]   (npm run bench -- [options])

Options:
  --runs N      runs per case, median reported (default 5)
  --quick       fewer samples, for a smoke check (not for figures)
  --only LIST   comma-separated subset of: topics,hop,inproc,pingpong,throughput,multicast,monitoring,shm
  -h, --help    show this help`;

let args;
try {
  args = parseArgs({
    options: { runs: { type: 'string' }, quick: { type: 'boolean' }, only: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
    strict: true,
  }).values;
} catch (err) {
  console.error(`bench: ${(err as Error).message}\n\n${HELP}`);
  process.exit(2);
}
if (args.help) {
  console.log(HELP);
  process.exit(0);
}
const RUNS = Number(args.runs ?? 5);
if (!Number.isInteger(RUNS) || RUNS < 1) {
  console.error('bench: --runs must be a positive integer');
  process.exit(2);
}
const QUICK = args.quick === true;
const CASES = new Set((args.only ?? 'topics,hop,inproc,pingpong,throughput,multicast,monitoring,shm').split(','));
for (const c of CASES) {
  if (!['topics', 'hop', 'inproc', 'pingpong', 'throughput', 'multicast', 'monitoring', 'shm'].includes(c)) {
    console.error(`bench: unknown case "${c}" in --only`);
    process.exit(2);
  }
}
const HOP_SAMPLES = QUICK ? 2_000 : 20_000;
const WARMUP = QUICK ? 200 : 2_000;
const TP_COUNT = QUICK ? 100_000 : 1_000_000;

const results: Record<string, unknown> = {
  date: new Date().toISOString(),
  machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model, memGiB: Math.round(os.totalmem() / 2 ** 30), kernel: os.release() },
  node: process.version,
  runs: RUNS,
  loadavgBefore: os.loadavg(),
};
const md: string[] = [];
const log = (s: string) => {
  console.log(s);
  md.push(s);
};

async function main(): Promise<void> {
  log(`# hopbus benchmark, ${results.date as string}`);
  log(
    `machine: ${os.cpus().length} x ${os.cpus()[0]?.model}, Node ${process.version}, load average before: ${os
      .loadavg()
      .map((x) => x.toFixed(2))
      .join(' ')}`,
  );
  log(`runs per case: ${RUNS}${QUICK ? ' (quick mode: smoke check only)' : ''}`);

  if (CASES.has('topics')) {
    const rows = await benchTopics({ quick: true });
    results.topics = rows;
    log('\n## Subject matching (tinybench)\n');
    log('| case | subscriptions | ns/op | ops/s |');
    log('|---|---:|---:|---:|');
    for (const r of rows) log(`| ${r.name} | ${r.subscriptions} | ${r.nsPerOp.toFixed(1)} | ${Math.round(r.opsPerSec).toLocaleString('en-US')} |`);
  }

  const sock = path.join(os.tmpdir(), `hopbus-bench-${process.pid}.sock`);
  const broker = await startNode('bin/hopbus.js', ['broker', '--port', '0', '--no-nats', '--unix', sock, '--log-level', 'warn'], /ready:/);
  const relay = await startNode('bench/relay.js', [], /^READY \d+/);
  const tcpUrl = /tcp:\/\/\S+/.exec(broker.ready)![0];
  const unixUrl = `unix://${sock}`;
  const relayPort = Number(relay.ready.split(' ')[1]);
  const procs: Proc[] = [broker, relay];
  // The TLS cases: a broker process serving tls:// with a certificate made for this run.
  const noTls = opensslProblem();
  let certs: CertFiles | null = null;
  let tlsUrl: string | null = null;
  if (noTls !== null) log(`hopbus-tls: skipped, ${noTls}`);
  else {
    certs = makeCerts([]);
    const tlsBroker = await startNode(
      'bin/hopbus.js',
      ['broker', '--port', '0', '--no-nats', '--log-level', 'warn', '--tls-cert', certs.serverCert, '--tls-key', certs.serverKey],
      /ready:/,
    );
    procs.push(tlsBroker);
    tlsUrl = /tls:\/\/\S+/.exec(tlsBroker.ready)![0];
  }
  const tlsCa = certs === null ? '' : certs.read(certs.ca);
  // The permission cases: one broker process with two users, one with 1,000 rules, one with none.
  const permDir = fs.mkdtempSync(path.join(os.tmpdir(), 'hopbus-bench-perm-'));
  let permUrl = '';
  let userUrl = '';
  try {
    const pass = randomBytes(12).toString('hex');
    const hash = hashPassword(pass);
    const rules = thousandRules();
    const users = [
      { user: 'bench-perm', password: hash, permissions: rules },
      { user: 'bench-user', password: hash },
    ];
    fs.writeFileSync(path.join(permDir, 'broker.json'), JSON.stringify({ users }));
    const permBroker = await startNode(
      'bin/hopbus.js',
      ['broker', '--port', '0', '--no-nats', '--log-level', 'warn', '--config', path.join(permDir, 'broker.json')],
      /ready:/,
    );
    procs.push(permBroker);
    const at = /tcp:\/\/(\S+)/.exec(permBroker.ready)![1]!;
    permUrl = `tcp://bench-perm:${pass}@${at}`;
    userUrl = `tcp://bench-user:${pass}@${at}`;
  } finally {
    fs.rmSync(permDir, { recursive: true, force: true });
  }
  try {
    const open = async (): Promise<Target[]> => [
      await new RelayTarget(relayPort).open(),
      await new HopbusTarget('hopbus-tcp', tcpUrl).open(),
      ...(tlsUrl !== null ? [await new HopbusTarget('hopbus-tls', tlsUrl, { tls: { ca: tlsCa } }).open()] : []),
      await new HopbusTarget('hopbus-perm', permUrl).open(),
      await new HopbusTarget('hopbus-user', userUrl).open(),
      await new HopbusTarget('hopbus-unix', unixUrl).open(),
    ];

    if (CASES.has('hop')) {
      const runs = new Map<string, Percentiles[]>();
      for (let r = 0; r < RUNS; r++) {
        for (const t of await open()) {
          const p = await t.hop(HOP_SAMPLES, WARMUP);
          runs.set(t.name, [...(runs.get(t.name) ?? []), p]);
          await t.close();
        }
      }
      results.hop = table('One hop, publisher and subscriber in one process, one message in flight (µs)', runs, HOP_SAMPLES);
      const tls = runs.get('hopbus-tls');
      if (tls !== undefined) {
        const a = medianOf(tls);
        const b = medianOf(runs.get('hopbus-tcp')!);
        log(`\nhopbus-tls / hopbus-tcp: p50 ${(a.p50 / b.p50).toFixed(2)}x, p99 ${(a.p99 / b.p99).toFixed(2)}x`);
      }
      const perm = medianOf(runs.get('hopbus-perm')!);
      const user = medianOf(runs.get('hopbus-user')!);
      const tcp = medianOf(runs.get('hopbus-tcp')!);
      log(`hopbus-perm (1,000 rules) / hopbus-user (no rules): p50 ${(perm.p50 / user.p50).toFixed(2)}x, p99 ${(perm.p99 / user.p99).toFixed(2)}x`);
      log(`hopbus-perm (1,000 rules) / hopbus-tcp (open broker): p50 ${(perm.p50 / tcp.p50).toFixed(2)}x, p99 ${(perm.p99 / tcp.p99).toFixed(2)}x`);
    }

    if (CASES.has('pingpong')) {
      const runs = new Map<string, Percentiles[]>();
      for (let r = 0; r < RUNS; r++) {
        for (const t of await open()) {
          // The echo process (bench/echo.ts) is given an address only, not the run's CA.
          if (t.name === 'hopbus-tls') {
            await t.close();
            continue;
          }
          const p = await t.pingpong(HOP_SAMPLES / 2, WARMUP);
          runs.set(t.name, [...(runs.get(t.name) ?? []), p]);
          await t.close();
        }
      }
      results.pingpong = table('Ping-pong across two processes, RTT/2 (µs)', runs, HOP_SAMPLES / 2);
    }

    if (CASES.has('throughput')) {
      const out: Record<string, unknown> = {};
      log('\n## Throughput, 1 publisher -> 1 subscriber in one process\n');
      log('| system | payload | msg/s (median) | spread | lost | ratio to floor |');
      log('|---|---:|---:|---|---:|---:|');
      for (const size of [16, 256]) {
        const runs = new Map<string, ThroughputResult[]>();
        for (let r = 0; r < RUNS; r++) {
          for (const t of await open()) {
            if (t.name === 'hopbus-unix') {
              await t.close();
              continue;
            }
            runs.set(t.name, [...(runs.get(t.name) ?? []), await t.throughput(TP_COUNT, size)]);
            await t.close();
          }
        }
        const floor = median(runs.get('node-tcp-relay')!.map((x) => x.msgsPerSec));
        for (const [name, rs] of runs) {
          const rates = rs.map((x) => x.msgsPerSec);
          const m = median(rates);
          const lost = rs.reduce((a, x) => a + x.lost, 0);
          out[`${name}/${size}`] = { median: m, runs: rs };
          log(
            `| ${name} | ${size} B | ${Math.round(m).toLocaleString('en-US')} | ${Math.min(...rates).toLocaleString('en-US')}..${Math.max(...rates).toLocaleString('en-US')} | ${lost} | ${(m / floor).toFixed(2)} |`,
          );
        }
      }
      results.throughput = out;
      for (const size of [16, 256]) {
        const tls = out[`hopbus-tls/${size}`] as { median: number } | undefined;
        if (tls !== undefined)
          log(`hopbus-tls / hopbus-tcp, ${size} B: ${(tls.median / (out[`hopbus-tcp/${size}`] as { median: number }).median).toFixed(2)}x`);
        const m = (name: string) => (out[`${name}/${size}`] as { median: number }).median;
        log(`hopbus-perm (1,000 rules) / hopbus-user (no rules), ${size} B: ${(m('hopbus-perm') / m('hopbus-user')).toFixed(2)}x`);
        log(`hopbus-perm (1,000 rules) / hopbus-tcp (open broker), ${size} B: ${(m('hopbus-perm') / m('hopbus-tcp')).toFixed(2)}x`);
      }
    }
  } finally {
    for (const p of procs) await p.stop();
    certs?.remove();
  }

  if (CASES.has('multicast')) results.multicast = await benchMulticast({ quick: QUICK, runs: RUNS, log });
  // The latency service and the WebSocket transport: their own broker processes (bench/monitoring.ts).
  if (CASES.has('monitoring')) results.monitoring = await benchMonitoring({ runs: RUNS, quick: QUICK, log });

  if (CASES.has('inproc')) {
    // All on this thread: see bench/inproc.ts.
    const runs = await benchInproc({ runs: RUNS, samples: HOP_SAMPLES, warmup: WARMUP });
    results.inproc = table('One hop in process, publisher, broker and subscriber on this thread (µs)', runs, HOP_SAMPLES, 'floor-1-handoff');
    const m = (k: string) => medianOf(runs.get(k)!);
    const hop = m('hopbus-inproc');
    const two = m('floor-2-handoffs');
    log(`\nhopbus-inproc / floor-2-handoffs: p50 ${(hop.p50 / two.p50).toFixed(2)}x, p99 ${(hop.p99 / two.p99).toFixed(2)}x`);
  }

  if (CASES.has('shm')) {
    // Worker threads and the broker thread of this process: see bench/shm.ts.
    log('');
    results.shm = await benchShm({ quick: QUICK, runs: RUNS, log: (s) => log(s.replace(/^(#+) /, '#$1 ')) });
  }

  results.loadavgAfter = os.loadavg();
  log(
    `\nload average after: ${os
      .loadavg()
      .map((x) => x.toFixed(2))
      .join(' ')}`,
  );
  const dir = path.join(distRoot, '..', 'bench', 'results');
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'latest.json'), JSON.stringify(results, null, 2) + '\n');
  fs.writeFileSync(path.join(dir, 'latest.md'), md.join('\n') + '\n');
  console.log(`\nwrote ${path.relative(process.cwd(), path.join(dir, 'latest.json'))} and latest.md`);
}

/**
 * Publish and subscribe rules totalling 1,000 allow/deny patterns, as a desk's config
 * might hold them: literals and wildcards over many instruments and desks, deny entries
 * among them, and the subjects this benchmark uses (bench.hop, bench.tp, bench.ping,
 * bench.pong) allowed in the middle of the lists, not first.
 */
function thousandRules(): PermissionsConfig {
  const allow = (side: 'pub' | 'sub'): string[] => {
    const out: string[] = [];
    for (let i = 0; i < 400; i++) {
      if (i === 200) out.push(side === 'pub' ? 'bench.*' : 'bench.hop');
      else if (side === 'sub' && i === 230) out.push('bench.tp');
      else if (side === 'sub' && i === 260) out.push('bench.ping');
      else if (side === 'sub' && i === 290) out.push('bench.pong');
      else if (i % 4 === 0) out.push(`md.${i}.>`);
      else if (i % 4 === 1) out.push(`orders.${i}.*`);
      else if (i % 4 === 2) out.push(`px.sym${i}.last`);
      else out.push(`desk${i}.*.fills.>`);
    }
    return out;
  };
  const deny = (): string[] => {
    const out: string[] = [];
    for (let i = 0; i < 100; i++) {
      if (i % 3 === 0) out.push(`md.${i * 4}.internal.>`);
      else if (i % 3 === 1) out.push(`orders.${i * 4 + 1}.cancel`);
      else out.push(`bench.secret${i}.>`);
    }
    return out;
  };
  return { publish: { allow: allow('pub'), deny: deny() }, subscribe: { allow: allow('sub'), deny: deny() } };
}

/** Prints one latency table with the ratio of each system to the floor, and returns it. */
function table(title: string, runs: Map<string, Percentiles[]>, samples: number, floorName = 'node-tcp-relay'): Record<string, unknown> {
  log(`\n## ${title}\n`);
  log(`${samples.toLocaleString('en-US')} samples per run after warm-up; median of ${RUNS} runs; spread of p50 and p99 over the runs.\n`);
  log('| system | p50 | p90 | p99 | p99.9 | max | p50 spread | p99 spread | p50 / floor | p99 / floor |');
  log('|---|---:|---:|---:|---:|---:|---|---|---:|---:|');
  const floor = medianOf(runs.get(floorName)!);
  const out: Record<string, unknown> = {};
  for (const [name, rs] of runs) {
    const m = medianOf(rs);
    out[name] = { median: m, runs: rs };
    const sp = (k: string) => `${m.spread[k]![0]}..${m.spread[k]![1]}`;
    log(
      `| ${name} | ${m.p50} | ${m.p90} | ${m.p99} | ${m.p999} | ${m.max} | ${sp('p50')} | ${sp('p99')} | ${(m.p50 / floor.p50).toFixed(2)} | ${(m.p99 / floor.p99).toFixed(2)} |`,
    );
  }
  return out;
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
