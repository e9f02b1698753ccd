/**
 * The shm transport, measured against its floors in the same run.
 *
 *   node dist/bench/shm.js [--quick] [--runs N] [--only hop,pingpong,throughput] [--wait spin,hybrid,park]
 *
 * Cases, for each wait strategy (the broker runs on this, the main thread):
 *  - hop: one worker publishes and receives its own messages through the broker
 *    thread, one in flight (2 thread crossings, 2 busy threads). Timed with the
 *    worker's own clock, publish call to subscriber callback.
 *  - pingpong: worker A -> worker B -> A. hopbus-shm: over direct channels (1 crossing
 *    per half, 2 threads); hopbus-shm-via-broker: connected with { direct: false },
 *    through the broker thread (2 crossings per half, 3 threads). RTT/2 at A, and
 *    one-way A -> B at B with the shared clock (performance.timeOrigin +
 *    performance.now(), see shm-worker.ts).
 *  - throughput: worker A publishes as fast as bounded queues allow, worker B counts;
 *    16 and 256-byte payloads; direct and via the broker.
 * Floors, with the same threads and the same number of crossings:
 *  - raw-sab: the same topology on bare SharedArrayBuffer words (the main thread
 *    relays), waiting the same way (spin: busy loop; park: Atomics.waitAsync on a
 *    doorbell; hybrid: 50 µs of spinning, then park), no protocol, no rings;
 *    raw-sab-direct: A and B write each other's word, the floor of direct delivery.
 *  - message-port: the same topology with MessagePort.postMessage (the main thread
 *    relays / echoes).
 *  - ring-only (throughput): the ring between two workers without a broker, frames
 *    of the same size, a ring as large as a direct channel's.
 * Each case runs `runs` times, the systems interleaved so noise lands on all alike;
 * the median of the runs is reported with its spread. Spinning threads on a machine
 * with fewer cores than busy threads time-slice; every run is bounded (maxMs).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { Worker } from 'node:worker_threads';
import { startBroker, type StartedBroker } from '../broker/index.js';
import { H_STATE, HUB_BYTES, STATE_CLAIMED, createConnection } from '../transports/shm/layout.js';
import type { WaitKind } from '../transports/shm/wait.js';
import { CHANNEL_RING } from '../transports/shm/direct.js';
import { median, medianOf, type Percentiles } from './stats.js';
import type { Job } from './shm-worker.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const WORKER = path.join(here, 'shm-worker.js');

export interface ShmBenchOptions {
  quick?: boolean;
  runs?: number;
  cases?: ('hop' | 'pingpong' | 'throughput')[];
  waits?: WaitKind[];
  log?: (line: string) => void;
}

type Latency = { median: Percentiles & { spread: Record<string, [number, number]> }; runs: Percentiles[] };
export interface ShmBenchResults {
  loadavgBefore: number[];
  loadavgAfter: number[];
  /** case -> wait -> system -> result */
  latency: Record<string, Record<string, Record<string, Latency>>>;
  /** `${wait}/${size}` -> system -> msg/s per run */
  throughput: Record<string, Record<string, { median: number; runs: number[] }>>;
}

// Raw word layout shared with shm-worker.ts (Int32 indices, one 128-byte line each).
const RAW = { A_OUT: 0, B_IN: 32, B_OUT: 64, A_IN: 96, RELAY_BELL: 128, A_BELL: 160, B_BELL: 192, DONE: 224 } as const;
const waitAsync = (Atomics as unknown as { waitAsync(a: Int32Array, i: number, v: number): { async: boolean; value: Promise<string> | string } }).waitAsync;

function rawPost(w: Int32Array, idx: number, v: number, bell: number): void {
  Atomics.store(w, idx, v);
  if (Atomics.load(w, bell + 1) !== 0) {
    Atomics.add(w, bell, 1);
    Atomics.notify(w, bell);
  }
}

/**
 * The main thread's part of the raw floor: forwards A's word to B (or back to A for
 * a hop) and B's to A, waiting between messages as `wait` says, until A is done.
 */
async function rawRelay(sab: SharedArrayBuffer, wait: WaitKind, hop: boolean, maxMs: number): Promise<void> {
  const w = new Int32Array(sab);
  let a = 0;
  let b = 0;
  const deadline = performance.now() + maxMs + 5000;
  const pass = (): boolean => {
    let moved = false;
    const va = Atomics.load(w, RAW.A_OUT);
    if (va !== a) {
      a = va;
      if (hop) rawPost(w, RAW.A_IN, va, RAW.A_BELL);
      else rawPost(w, RAW.B_IN, va, RAW.B_BELL);
      moved = true;
    }
    if (!hop) {
      const vb = Atomics.load(w, RAW.B_OUT);
      if (vb !== b) {
        b = vb;
        rawPost(w, RAW.A_IN, vb, RAW.A_BELL);
        moved = true;
      }
    }
    return moved;
  };
  let lastMove = performance.now();
  for (let k = 1; ; k++) {
    if (pass()) lastMove = performance.now();
    if (a === -1 || Atomics.load(w, RAW.DONE) !== 0) {
      pass();
      return;
    }
    if ((k & 1023) === 0 && performance.now() > deadline) return;
    if (wait === 'spin' || (wait === 'hybrid' && performance.now() - lastMove < 0.05)) continue;
    const seq = Atomics.load(w, RAW.RELAY_BELL);
    Atomics.store(w, RAW.RELAY_BELL + 1, 1);
    if (Atomics.load(w, RAW.A_OUT) === a && (hop || Atomics.load(w, RAW.B_OUT) === b)) {
      const r = waitAsync(w, RAW.RELAY_BELL, seq);
      if (r.async) await r.value;
    }
    Atomics.store(w, RAW.RELAY_BELL + 1, 0);
    lastMove = performance.now();
  }
}

const roleOf = new WeakMap<Worker, string>();

function spawn(job: Partial<Job> & { role: string }, base: Omit<Job, 'role'>): Worker {
  const w = new Worker(WORKER, { workerData: { ...base, ...job } });
  roleOf.set(w, `${job.role} (${base.wait})`);
  return w;
}

function resultOf<T>(w: Worker): Promise<T> {
  return new Promise((resolve, reject) => {
    const on = (m: { result?: T }) => {
      if (m && typeof m === 'object' && 'result' in m) {
        w.off('message', on);
        resolve(m.result as T);
      }
    };
    w.on('message', on);
    w.once('error', reject);
    w.once('exit', (code) => reject(new Error(`bench worker ${roleOf.get(w)} exited with ${code} before its result`)));
  });
}

export async function benchShm(o: ShmBenchOptions = {}): Promise<ShmBenchResults> {
  const log = o.log ?? ((s: string) => console.log(s));
  const quick = o.quick ?? false;
  const runs = o.runs ?? (quick ? 1 : 5);
  const cases = new Set(o.cases ?? ['hop', 'pingpong', 'throughput']);
  const waits = o.waits ?? ['spin', 'hybrid', 'park'];
  const base: Omit<Job, 'role'> = {
    wait: 'hybrid',
    samples: quick ? 3_000 : 20_000,
    // The JIT needs a few thousand round trips before the hot path settles.
    warmup: quick ? 2_000 : 5_000,
    maxMs: quick ? 2_000 : 8_000,
    size: 16,
    count: quick ? 200_000 : 1_000_000,
    refOrigin: performance.timeOrigin,
  };
  maxMsOf = base.maxMs;
  const res: ShmBenchResults = { loadavgBefore: os.loadavg(), loadavgAfter: [], latency: {}, throughput: {} };
  log(`# hopbus shm benchmark, ${new Date().toISOString()}`);
  log(
    `machine: ${os.cpus().length} x ${os.cpus()[0]?.model}, Node ${process.version}, load average before: ${res.loadavgBefore.map((x) => x.toFixed(2)).join(' ')}`,
  );
  log(
    `runs per case: ${runs}${quick ? ' (quick mode: smoke check only)' : ''}; ${base.samples.toLocaleString('en-US')} samples per run after ${base.warmup} warm-up, each run bounded to ${base.maxMs} ms`,
  );

  const broker = await startBroker({ host: '127.0.0.1', port: 0, logLevel: 'silent' });
  try {
    if (cases.has('hop')) {
      res.latency.hop = await latencyCase(broker, base, waits, runs, 'hop');
      printLatency(log, 'Hop: worker -> broker thread -> the same worker, one in flight (µs; 2 crossings, 2 threads)', res.latency.hop, 'raw-sab');
    }
    if (cases.has('pingpong')) {
      res.latency.pingpong = await latencyCase(broker, base, waits, runs, 'pingpong');
      res.latency.oneway = splitOneWay(res.latency.pingpong);
      printLatency(
        log,
        'Ping-pong between workers A and B, RTT/2 (µs). hopbus-shm: direct channels, 1 crossing per half, 2 threads (floor: raw-sab-direct); hopbus-shm-via-broker and raw-sab: through the broker / main thread, 2 crossings per half, 3 threads (floor: raw-sab)',
        res.latency.pingpong,
        'raw-sab',
        FLOOR_OF,
      );
      printLatency(log, 'One-way A -> B in the same ping-pong, shared clock (µs)', res.latency.oneway, 'raw-sab', FLOOR_OF);
    }
    if (cases.has('throughput')) {
      log('\n## One-way throughput, worker A -> worker B (hopbus-shm: direct channel; hopbus-shm-via-broker: through the broker thread)\n');
      log('| wait | payload | system | msg/s (median) | spread | ratio to ring-only |');
      log('|---|---:|---|---:|---|---:|');
      for (const wait of waits) {
        for (const size of [16, 256]) {
          const key = `${wait}/${size}`;
          const rows: Record<string, number[]> = { 'hopbus-shm': [], 'hopbus-shm-via-broker': [], 'ring-only': [] };
          for (let r = 0; r < runs; r++) {
            rows['hopbus-shm']!.push(await busThroughput(broker, { ...base, wait, size }));
            rows['hopbus-shm-via-broker']!.push(await busThroughput(broker, { ...base, wait, size, direct: false }));
            rows['ring-only']!.push(await ringThroughput({ ...base, wait, size }));
          }
          res.throughput[key] = {};
          const floor = median(rows['ring-only']!);
          for (const [sys, all] of Object.entries(rows)) {
            const xs = all.filter((x) => Number.isFinite(x));
            const cut = all.length - xs.length;
            const note = cut > 0 ? ` (${cut} of ${all.length} runs void: the subscriber was cut off as a slow consumer)` : '';
            if (xs.length === 0) {
              res.throughput[key]![sys] = { median: NaN, runs: all };
              log(`| ${wait} | ${size} B | ${sys} | -${note} | | |`);
              continue;
            }
            const m = median(xs);
            res.throughput[key]![sys] = { median: m, runs: all };
            log(
              `| ${wait} | ${size} B | ${sys} | ${Math.round(m).toLocaleString('en-US')}${note} | ${Math.min(...xs).toLocaleString('en-US')}..${Math.max(...xs).toLocaleString('en-US')} | ${(m / floor).toFixed(2)} |`,
            );
          }
        }
      }
    }
  } finally {
    await broker.close();
  }
  res.loadavgAfter = os.loadavg();
  log(`\nload average after: ${res.loadavgAfter.map((x) => x.toFixed(2)).join(' ')}`);
  return res;
}

/** Per wait strategy and run: hopbus, raw SAB, MessagePort, interleaved. */
async function latencyCase(
  broker: StartedBroker,
  base: Omit<Job, 'role'>,
  waits: WaitKind[],
  runs: number,
  kind: 'hop' | 'pingpong',
): Promise<Record<string, Record<string, Latency>>> {
  const out: Record<string, Record<string, Latency>> = {};
  for (const wait of waits) {
    const names =
      kind === 'hop' ? ['hopbus-shm', 'raw-sab', 'message-port'] : ['hopbus-shm', 'raw-sab-direct', 'hopbus-shm-via-broker', 'raw-sab', 'message-port'];
    const rows: Record<string, Percentiles[]> = Object.fromEntries(names.map((n) => [n, []]));
    const oneWay: Record<string, Percentiles[]> = Object.fromEntries(names.map((n) => [n, []]));
    const job = { ...base, wait };
    for (let r = 0; r < runs; r++) {
      if (kind === 'hop') {
        rows['hopbus-shm']!.push(await resultOf<Percentiles>(spawn({ role: 'hop', ep: broker.endpoint('shm') }, job)));
        rows['raw-sab']!.push(await rawHop(job));
        rows['message-port']!.push(await portHop(job));
      } else {
        const systems = [
          ['hopbus-shm', busPingPong],
          ['raw-sab-direct', rawPingPong],
          ['hopbus-shm-via-broker', busPingPong],
          ['raw-sab', rawPingPong],
          ['message-port', portPingPong],
        ] as const;
        for (const [sys, f] of systems) {
          const variant = sys === 'hopbus-shm-via-broker' ? { direct: false } : sys === 'raw-sab-direct' ? { rawDirect: true } : {};
          const [half, one] = await f(broker, { ...job, ...variant });
          rows[sys]!.push(half);
          oneWay[sys]!.push(one);
        }
      }
    }
    out[wait] = {};
    for (const [sys, rs] of Object.entries(rows)) out[wait]![sys] = { median: medianOf(rs), runs: rs };
    if (kind === 'pingpong') for (const [sys, rs] of Object.entries(oneWay)) out[wait]![`${sys}:one-way`] = { median: medianOf(rs), runs: rs };
  }
  return out;
}

function splitOneWay(pp: Record<string, Record<string, Latency>>): Record<string, Record<string, Latency>> {
  const out: Record<string, Record<string, Latency>> = {};
  for (const [wait, systems] of Object.entries(pp)) {
    out[wait] = {};
    for (const [sys, l] of Object.entries(systems)) {
      if (sys.endsWith(':one-way')) {
        out[wait]![sys.slice(0, -8)] = l;
        delete systems[sys];
      }
    }
  }
  return out;
}

async function rawHop(job: Omit<Job, 'role'>): Promise<Percentiles> {
  const sab = new SharedArrayBuffer(2048);
  const w = spawn({ role: 'raw-hop', sab }, job);
  const result = resultOf<Percentiles>(w);
  await rawRelay(sab, job.wait, true, job.maxMs);
  return result;
}

async function portHop(job: Omit<Job, 'role'>): Promise<Percentiles> {
  const w = spawn({ role: 'port-hop' }, job);
  w.on('message', (m) => {
    if (typeof m === 'number') w.postMessage(m);
  });
  return resultOf<Percentiles>(w);
}

async function busPingPong(broker: StartedBroker, job: Omit<Job, 'role'>): Promise<[Percentiles, Percentiles]> {
  const b = spawn({ role: 'pong', ep: broker.endpoint('shm') }, job);
  const a = spawn({ role: 'ping', ep: broker.endpoint('shm') }, job);
  return Promise.all([resultOf<Percentiles>(a), resultOf<Percentiles>(b)]);
}

async function rawPingPong(_broker: StartedBroker, job: Omit<Job, 'role'>): Promise<[Percentiles, Percentiles]> {
  const sab = new SharedArrayBuffer(2048);
  const b = spawn({ role: 'raw-pong', sab }, job);
  const a = spawn({ role: 'raw-ping', sab }, job);
  const results = Promise.all([resultOf<Percentiles>(a), resultOf<Percentiles>(b)]);
  if (!job.rawDirect) await rawRelay(sab, job.wait, false, job.maxMs);
  return results;
}

async function portPingPong(_broker: StartedBroker, job: Omit<Job, 'role'>): Promise<[Percentiles, Percentiles]> {
  const b = spawn({ role: 'port-pong' }, job);
  await new Promise<void>((resolve) => b.once('message', () => resolve()));
  const a = spawn({ role: 'port-ping' }, job);
  a.on('message', (m) => {
    if (typeof m === 'number' || m === 'stop') b.postMessage(m);
  });
  b.on('message', (m) => {
    if (typeof m === 'number') a.postMessage(m);
  });
  return Promise.all([resultOf<Percentiles>(a), resultOf<Percentiles>(b)]);
}

async function busThroughput(broker: StartedBroker, job: Omit<Job, 'role'>): Promise<number> {
  const sub = spawn({ role: 'tp-sub', ep: broker.endpoint('shm') }, job);
  const pub = spawn({ role: 'tp-pub', ep: broker.endpoint('shm') }, job);
  const [{ tEnd, received, cut }, { t0 }] = await Promise.all([resultOf<{ tEnd: number; received: number; cut: string }>(sub), resultOf<{ t0: number }>(pub)]);
  // A subscriber the broker cut off as a slow consumer: no figure for this run (NaN, reported as such).
  if (cut !== '') return NaN;
  return Math.round(received / ((tEnd - t0) / 1000));
}

async function ringThroughput(job: Omit<Job, 'role'>): Promise<number> {
  // The same ring size as a direct channel: the floor of what the channel carries.
  const conn = createConnection(CHANNEL_RING);
  Atomics.store(new Int32Array(conn), H_STATE, STATE_CLAIMED);
  const hub = new SharedArrayBuffer(HUB_BYTES);
  const sub = spawn({ role: 'ring-tp-sub', conn, hub }, job);
  const pub = spawn({ role: 'ring-tp-pub', conn, hub }, job);
  const [{ tEnd, received }, { t0 }] = await Promise.all([resultOf<{ tEnd: number; received: number }>(sub), resultOf<{ t0: number }>(pub)]);
  return Math.round(received / ((tEnd - t0) / 1000));
}

let maxMsOf = 0;

/** Which raw floor a system is measured against (the same threads and crossings). */
const FLOOR_OF: Record<string, string> = { 'hopbus-shm': 'raw-sab-direct' };

function printLatency(
  log: (s: string) => void,
  title: string,
  byWait: Record<string, Record<string, Latency>>,
  floorName: string,
  floorOf: Record<string, string> = {},
): void {
  log(`\n## ${title}\n`);
  log("median of the runs; spread of p50 over the runs; ratios to each system's own floor.\n");
  log('| wait | system | samples | p50 | p90 | p99 | p99.9 | max | p50 spread | p50 / floor | p99 / floor |');
  log('|---|---|---:|---:|---:|---:|---:|---:|---|---:|---:|');
  for (const [wait, systems] of Object.entries(byWait)) {
    for (const [sys, l] of Object.entries(systems)) {
      const floor = systems[floorOf[sys] ?? floorName]?.median;
      const m = l.median;
      const ratio = (k: 'p50' | 'p99') => (floor && floor[k] > 0 ? (m[k] / floor[k]).toFixed(2) : '-');
      const n = Math.round(l.runs.reduce((a, r) => a + r.count, 0) / l.runs.length);
      if (n === 0) {
        // More spinning threads than cores: not even the warm-up completed in maxMs.
        const trips = Math.max(...l.runs.map((r) => (r as Percentiles & { roundTrips?: number }).roundTrips ?? 0));
        log(`| ${wait} | ${sys} | 0 | collapsed: at most ${trips} round trips in a run of ${maxMsOf} ms | | | | | | | |`);
        continue;
      }
      log(
        `| ${wait} | ${sys} | ${n.toLocaleString('en-US')} | ${m.p50} | ${m.p90} | ${m.p99} | ${m.p999} | ${m.max} | ${m.spread.p50![0]}..${m.spread.p50![1]} | ${ratio('p50')} | ${ratio('p99')} |`,
      );
    }
  }
}

// --- standalone ----------------------------------------------------------------------------

const HELP = `Usage: node dist/bench/shm.js [options]

Options:
  --runs N        runs per case, median reported (default 5; 1 with --quick)
  --quick         fewer samples, shorter runs: a smoke check, not figures
  --only LIST     comma-separated subset of: hop,pingpong,throughput
  --wait LIST     comma-separated subset of: spin,hybrid,park
  --out DIR       also write shm.json and shm.md there (default bench/results)
  -h, --help      show this help`;

async function main(): Promise<void> {
  let args;
  try {
    args = parseArgs({
      options: {
        runs: { type: 'string' },
        quick: { type: 'boolean' },
        only: { type: 'string' },
        wait: { type: 'string' },
        out: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
    }).values;
  } catch (err) {
    console.error(`bench/shm: ${(err as Error).message}\n\n${HELP}`);
    process.exit(2);
  }
  if (args.help) {
    console.log(HELP);
    return;
  }
  const runs = args.runs === undefined ? undefined : Number(args.runs);
  if (runs !== undefined && !(Number.isInteger(runs) && runs >= 1)) {
    console.error('bench/shm: --runs must be a positive integer');
    process.exit(2);
  }
  const list = <T extends string>(s: string | undefined, allowed: readonly T[], what: string): T[] | undefined => {
    if (s === undefined) return undefined;
    const xs = s.split(',') as T[];
    for (const x of xs) {
      if (!allowed.includes(x)) {
        console.error(`bench/shm: unknown ${what} "${x}"; known: ${allowed.join(', ')}`);
        process.exit(2);
      }
    }
    return xs;
  };
  const md: string[] = [];
  const results = await benchShm({
    quick: args.quick === true,
    runs,
    cases: list(args.only, ['hop', 'pingpong', 'throughput'] as const, 'case'),
    waits: list(args.wait, ['spin', 'hybrid', 'park'] as const, 'wait strategy'),
    log: (s) => {
      console.log(s);
      md.push(s);
    },
  });
  const dir = args.out ?? path.join(here, '..', '..', 'bench', 'results');
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'shm.json'), JSON.stringify(results, null, 2) + '\n');
  fs.writeFileSync(path.join(dir, 'shm.md'), md.join('\n') + '\n');
  console.log(`\nwrote ${path.relative(process.cwd(), path.join(dir, 'shm.json'))} and shm.md`);
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  main().then(
    () => process.exit(0),
    (err) => {
      console.error(err);
      process.exit(1);
    },
  );
}
