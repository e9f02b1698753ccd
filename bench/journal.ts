/**
 * npm run bench:journal: what the journal costs and how fast it gives back, each figure
 * beside its reference measured in the same run.
 *
 *  - record: the TCP hop and 1 -> 1 throughput (16 B, 256 B) through a broker process
 *    recording every message (`--journal DIR --record 'bench.>'`, fsync 'interval')
 *    against the same through a broker process that records nothing. Afterwards the
 *    journal is read back: records written against messages published, so a drop
 *    (the writer's bound, docs/JOURNAL.md) shows as a count, not as a faster run.
 *  - replay: a journal of N 16-byte messages written for the run (JournalWriter, fsync
 *    'none'), then
 *      floor      the segment files read sequentially in 1 MiB chunks, each record's
 *                 length field walked and nothing else;
 *      reader     openJournal(dir).forEach(): every record parsed into the reused view,
 *                 its checksum verified, subject and payload lengths read;
 *      tcp        replay(dir, bus) into a broker process, counted by a TCP subscriber,
 *                 beside hopbus's own 1 -> 1 throughput at 16 B through the same broker.
 * Cases interleave across runs, the order alternating, and the page cache is written back
 * (sync) before each: medians with min..max spreads.
 *
 *   node dist/bench/journal.js [--runs N] [--count N] [--only record,replay] [--quick]
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { connectBroker, replay } from '../client/index.js';
import { JournalWriter, openJournal, recordSource } from '../journal/index.js';
import { SEGMENT_HEADER } from '../journal/segment.js';
import { HopbusTarget, type ThroughputResult } from './hop.js';
import { median, medianOf, nowNs, type Percentiles } from './stats.js';
import { startNode, stopAll, type Proc } from './procs.js';

const HELP = `Usage: node dist/bench/journal.js [options]   (npm run bench:journal -- [options])

Options:
  --runs N      runs per case, median reported (default 3)
  --count N     messages in the replay journal (default 5,000,000)
  --only LIST   comma-separated subset of: record,replay
  --quick       fewer samples and messages, for a smoke check (not for figures)
  -h, --help    show this help`;

let args;
try {
  args = parseArgs({
    options: {
      runs: { type: 'string' },
      count: { type: 'string' },
      only: { type: 'string' },
      quick: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  }).values;
} catch (err) {
  console.error(`bench:journal: ${(err as Error).message}\n\n${HELP}`);
  process.exit(2);
}
if (args.help) {
  console.log(HELP);
  process.exit(0);
}
const QUICK = args.quick === true;
const RUNS = Number(args.runs ?? 3);
const COUNT = Number(args.count ?? (QUICK ? 200_000 : 5_000_000));
for (const [name, v] of [
  ['--runs', RUNS],
  ['--count', COUNT],
] as const) {
  if (!Number.isSafeInteger(v) || v < 1) {
    console.error(`bench:journal: ${name} must be a positive integer`);
    process.exit(2);
  }
}
const CASES = new Set((args.only ?? 'record,replay').split(','));
for (const c of CASES) {
  if (c !== 'record' && c !== 'replay') {
    console.error(`bench:journal: unknown case "${c}" in --only`);
    process.exit(2);
  }
}
const HOP_SAMPLES = QUICK ? 2_000 : 20_000;
const WARMUP = QUICK ? 200 : 2_000;
const TP_COUNT = QUICK ? 100_000 : 1_000_000;

const md: string[] = [];
const log = (s: string): void => {
  console.log(s);
  md.push(s);
};
const loads = (): string =>
  os
    .loadavg()
    .map((x) => x.toFixed(2))
    .join(' ');
const fmt = (n: number): string => Math.round(n).toLocaleString('en-US');
const spread = (xs: number[]): string => `${fmt(Math.min(...xs))}..${fmt(Math.max(...xs))}`;

async function startBroker(extra: string[]): Promise<{ proc: Proc; url: string }> {
  const proc = await startNode('bin/hopbus.js', ['broker', '--port', '0', '--no-nats', '--log-level', 'warn', ...extra], /ready:/);
  return { proc, url: /tcp:\/\/\S+/.exec(proc.ready)![0] };
}

// --- recording cost ----------------------------------------------------------------------

async function benchRecord(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hopbus-bench-journal-'));
  const plain = await startBroker([]);
  // fsync 'interval' is the journal's default; said here so the figure names what it measured.
  const cfg = path.join(dir, 'broker.json');
  fs.writeFileSync(cfg, JSON.stringify({ journal: { dir: path.join(dir, 'j'), subjects: ['bench.>'], fsync: 'interval' } }));
  const rec = await startBroker(['--config', cfg]);
  let published = 0;
  try {
    // Alternating which goes first, and the page cache written back (sync) before each case:
    // a journal case leaves hundreds of MiB of dirty pages whose writeback would land on the next.
    const targets = (r: number): HopbusTarget[] => {
      const ts = [new HopbusTarget('hopbus-tcp', plain.url), new HopbusTarget('hopbus-journal', rec.url)];
      return r % 2 === 0 ? ts : ts.reverse();
    };
    const hops = new Map<string, Percentiles[]>();
    const tps = new Map<string, ThroughputResult[]>();
    for (let r = 0; r < RUNS; r++) {
      // The hops of both first, then the floods: a flood's writeback must not land on a hop.
      for (const t of targets(r)) {
        execFileSync('sync');
        await t.open();
        hops.set(t.name, [...(hops.get(t.name) ?? []), await t.hop(HOP_SAMPLES, WARMUP)]);
        if (t.name === 'hopbus-journal') published += HOP_SAMPLES + WARMUP;
        await t.close();
      }
      for (const t of targets(r)) {
        execFileSync('sync');
        await t.open();
        for (const size of [16, 256]) {
          const res = await t.throughput(TP_COUNT, size);
          tps.set(`${t.name}/${size}`, [...(tps.get(`${t.name}/${size}`) ?? []), res]);
          if (t.name === 'hopbus-journal') published += res.sent;
        }
        await t.close();
      }
    }
    log('\n## Recording cost: a broker recording every message (fsync interval) against one recording nothing\n');
    log(`hop: ${HOP_SAMPLES.toLocaleString('en-US')} samples per run after warm-up; throughput: ${TP_COUNT.toLocaleString('en-US')} messages per run.\n`);
    log('| system | hop p50 (µs) | p90 | p99 | p99.9 | max | p50 spread | p99 spread |');
    log('|---|---:|---:|---:|---:|---:|---|---|');
    const m = new Map<string, ReturnType<typeof medianOf>>();
    for (const [name, rs] of hops) {
      const x = medianOf(rs);
      m.set(name, x);
      log(
        `| ${name} | ${x.p50} | ${x.p90} | ${x.p99} | ${x.p999} | ${x.max} | ${x.spread.p50![0]}..${x.spread.p50![1]} | ${x.spread.p99![0]}..${x.spread.p99![1]} |`,
      );
    }
    const a = m.get('hopbus-journal')!;
    const b = m.get('hopbus-tcp')!;
    log(`\nhopbus-journal / hopbus-tcp, hop: p50 ${(a.p50 / b.p50).toFixed(2)}x, p99 ${(a.p99 / b.p99).toFixed(2)}x\n`);
    log('| system | payload | msg/s (median) | spread | lost |');
    log('|---|---:|---:|---|---:|');
    for (const size of [16, 256]) {
      for (const name of ['hopbus-tcp', 'hopbus-journal']) {
        const rs = tps.get(`${name}/${size}`)!;
        const rates = rs.map((x) => x.msgsPerSec);
        log(`| ${name} | ${size} B | ${fmt(median(rates))} | ${spread(rates)} | ${rs.reduce((s, x) => s + x.lost, 0)} |`);
      }
      const ratio = median(tps.get(`hopbus-journal/${size}`)!.map((x) => x.msgsPerSec)) / median(tps.get(`hopbus-tcp/${size}`)!.map((x) => x.msgsPerSec));
      log(`\nhopbus-journal / hopbus-tcp, ${size} B throughput: ${ratio.toFixed(2)}x\n`);
    }
  } finally {
    await rec.proc.stop();
    await plain.proc.stop();
  }
  // The broker has written everything it took when it stops (its journal closes first).
  let recorded = 0;
  openJournal(path.join(dir, 'j')).forEach({}, () => {
    recorded++;
  });
  const lastSeq = openJournal(path.join(dir, 'j')).lastSeq();
  log(
    `journal after the run: ${fmt(recorded)} records for ${fmt(published)} messages published to bench.> (last seq ${fmt(lastSeq)}; seqs taken but not written are the writer's counted drops: ${fmt(lastSeq - recorded)})`,
  );
  fs.rmSync(dir, { recursive: true, force: true });
}

// --- replay speed ------------------------------------------------------------------------

async function writeJournal(dir: string, count: number): Promise<void> {
  const w = await JournalWriter.open({ dir, fsync: 'none' });
  // 64 instruments, the shape of a small market-data feed.
  const srcs = Array.from({ length: 64 }, (_, i) => recordSource(`md.SYM${i}.trade`, Buffer.alloc(16, i)));
  let t = nowNs();
  for (let i = 0; i < count; i++) {
    // Flushed every 32k records (about 2 MiB), well inside the writer's 16 MiB bound: nothing is dropped.
    if (!w.append(srcs[i & 63]!, (t += 1000))) throw new Error(`the replay journal dropped record ${i + 1}`);
    if ((i & 0x7fff) === 0x7fff) await w.flush();
  }
  await w.close();
  const st = w.stats();
  if (st.appended !== count) throw new Error(`the replay journal took ${st.appended} of ${count} records`);
}

/** The floor: read every segment file front to back, walk the records' length fields. */
function floorRead(dir: string): number {
  const buf = Buffer.allocUnsafe(1024 * 1024);
  let n = 0;
  const files = fs
    .readdirSync(dir)
    .filter((f) => f.endsWith('.seg'))
    .sort();
  for (const f of files) {
    const fd = fs.openSync(path.join(dir, f), 'r');
    try {
      let pos = SEGMENT_HEADER;
      let have = 0; // bytes in buf from pos
      let at = 0; // offset of pos in buf
      for (;;) {
        if (have < 4 || have < buf.readUInt32LE(at)) {
          buf.copy(buf, 0, at, at + have);
          const got = fs.readSync(fd, buf, have, buf.length - have, pos + have);
          at = 0;
          if (got === 0) break;
          have += got;
          continue;
        }
        const len = buf.readUInt32LE(at);
        if (len === 0) break;
        n++;
        at += len;
        pos += len;
        have -= len;
      }
    } finally {
      fs.closeSync(fd);
    }
  }
  return n;
}

async function benchReplay(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hopbus-bench-replay-'));
  const jdir = path.join(dir, 'j');
  const tw = nowNs();
  await writeJournal(jdir, COUNT);
  const bytes = fs.readdirSync(jdir).reduce((s, f) => s + fs.statSync(path.join(jdir, f)).size, 0);
  log(
    `\n## Replay speed: a journal of ${fmt(COUNT)} messages of 16 B on 64 subjects (${(bytes / 2 ** 20).toFixed(0)} MiB of files, written in ${((nowNs() - tw) / 1e9).toFixed(1)} s)\n`,
  );
  const broker = await startBroker([]);
  const rates = new Map<string, number[]>();
  const put = (k: string, v: number): void => void rates.set(k, [...(rates.get(k) ?? []), v]);
  try {
    for (let r = 0; r < RUNS; r++) {
      // The files are in the page cache after the write: every case reads from memory.
      let t0 = nowNs();
      const nf = floorRead(jdir);
      put('floor', nf / ((nowNs() - t0) / 1e9));
      if (nf !== COUNT) throw new Error(`the floor walked ${nf} of ${COUNT} records`);

      const j = openJournal(jdir);
      let payload = 0;
      t0 = nowNs();
      const nr = j.forEach({}, (v) => {
        payload += v.payloadLen;
      });
      put('reader', nr / ((nowNs() - t0) / 1e9));
      if (nr !== COUNT || payload !== COUNT * 16) throw new Error(`the reader gave ${nr} of ${COUNT} records`);

      // Replay into a TCP subscriber through the broker, and the broker's 1 -> 1 reference.
      const sub = await connectBroker(broker.url, { name: 'bench-replay-sub' });
      const pub = await connectBroker(broker.url, { name: 'bench-replay-pub' });
      let got = 0;
      let done: () => void = () => undefined;
      const all = new Promise<void>((res) => (done = res));
      sub.subscribe('md.>', () => {
        if (++got === COUNT) done();
      });
      await sub.flush();
      t0 = nowNs();
      const summary = await replay(jdir, pub, { speed: 'max' });
      await all;
      put('tcp', COUNT / ((nowNs() - t0) / 1e9));
      if (summary.messages !== COUNT) throw new Error(`replay published ${summary.messages} of ${COUNT}`);
      await pub.close();
      await sub.close();

      const t = await new HopbusTarget('hopbus-tcp', broker.url).open();
      const tp = await t.throughput(TP_COUNT, 16);
      await t.close();
      put('one-to-one', tp.msgsPerSec);
      if (tp.lost > 0) throw new Error(`the 1 -> 1 reference lost ${tp.lost}`);
    }
  } finally {
    await broker.proc.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
  const m = (k: string): number => median(rates.get(k)!);
  log('| case | msg/s (median) | spread | ratio |');
  log('|---|---:|---|---:|');
  log(`| floor: segment files read and their records walked | ${fmt(m('floor'))} | ${spread(rates.get('floor')!)} | 1.00 (to the floor) |`);
  log(
    `| in-process reader (openJournal().forEach) | ${fmt(m('reader'))} | ${spread(rates.get('reader')!)} | ${(m('reader') / m('floor')).toFixed(2)} (to the floor) |`,
  );
  log(`| hopbus 1 -> 1 over TCP, 16 B (reference) | ${fmt(m('one-to-one'))} | ${spread(rates.get('one-to-one')!)} | 1.00 (to 1 -> 1) |`);
  log(
    `| replay() into a TCP subscriber through the broker | ${fmt(m('tcp'))} | ${spread(rates.get('tcp')!)} | ${(m('tcp') / m('one-to-one')).toFixed(2)} (to 1 -> 1) |`,
  );
  // A day of one OPRA line: about 2 billion messages (the figure the feed's users quote).
  const day = 2e9;
  log(
    `\nOne day of one OPRA line (about 2 billion messages) at these medians: ${(day / m('reader') / 60).toFixed(0)} min through the in-process reader, ${(day / m('tcp') / 60).toFixed(0)} min replayed through the broker to a TCP subscriber.`,
  );
}

async function main(): Promise<void> {
  log(`# hopbus journal benchmark, ${new Date().toISOString()}`);
  log(`machine: ${os.cpus().length} x ${os.cpus()[0]?.model}, Node ${process.version}, load average before: ${loads()}`);
  log(`runs per case: ${RUNS}${QUICK ? ' (quick mode: smoke check only)' : ''}`);
  if (CASES.has('record')) await benchRecord();
  if (CASES.has('replay')) await benchReplay();
  log(`\nload average after: ${loads()}`);
  const out = path.join(process.cwd(), 'bench', 'results');
  fs.mkdirSync(out, { recursive: true });
  fs.writeFileSync(path.join(out, 'journal.md'), md.join('\n') + '\n');
  console.log(`\nwrote bench/results/journal.md`);
}

main().then(
  async () => {
    await stopAll();
    process.exit(0);
  },
  async (err) => {
    console.error(err);
    await stopAll();
    process.exit(1);
  },
);
