/**
 * The multicast benchmark: hopbus over UDP multicast against the raw dgram floor,
 * measured in the same run.
 *
 *  - hop: publisher and subscriber in this process (one clock), loopback multicast,
 *    one message in flight, 16-byte payload; the floor is a bare dgram socket
 *    sending a datagram of the same size to a group another socket has joined.
 *  - ping-pong: the answering side in another process (hopbus: a MulticastBus
 *    echoing bench.ping to bench.pong; floor: a bare socket echoing every datagram
 *    to a second group); RTT/2.
 *  - throughput: a publisher process sends 16-byte messages as fast as it can to 1
 *    and to 4 receiving processes; rates are counted at each receiver (first to last
 *    message), with the repairs it needed and what stayed lost.
 *  - repair: 1% and 5% of datagrams dropped between source and receiver, either by
 *    nftables in a network namespace (root, nft installed: the source in one
 *    namespace, the receiver in another, a veth pair between) or, failing that, by
 *    the source's deterministic drop hook (seeded); the table says which. Reports
 *    the time from a gap's detection to its repair, and what stayed lost.
 *
 * Several runs, medians, spreads. `benchMulticast()` is called by bench/run.ts
 * (--only multicast); run alone: node dist/bench/multicast.js [--quick] [--runs N].
 */
import dgram from 'node:dgram';
import os from 'node:os';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { connectMulticast } from '../client/index.js';
import { HEADER } from '../transports/multicast/wire.js';
import { TwoHosts, type Peer } from './netns.js';
import { startNode } from './procs.js';
import { histogram, median, medianOf, nowNs, percentiles, type Percentiles } from './stats.js';

export interface MulticastBenchOptions {
  quick: boolean;
  runs: number;
  log: (line: string) => void;
  /** Subset of: hop, pingpong, throughput, repair (default all). */
  only?: string[];
  /** Offered rate of the throughput publisher, msg/s; 0 = as fast as it goes (default). */
  rate?: number;
}

const IFACE = '127.0.0.1';
const G = (n: number) => `239.88.${process.pid % 250}.${n}`;
const PORT = 46_000 + (process.pid % 1000) * 2;
const PAYLOAD = 16;
/** hopbus's datagram for 'bench.hop' and 16 bytes: our header plus the MSG frame. */
const HOP_DATAGRAM = HEADER + 20 + 'bench.hop'.length + PAYLOAD;
const literal = ((a: string, _o: unknown, cb: (e: null, a: string, f: number) => void) => cb(null, a, 4)) as never;
const PEER = 'bench/mcast-peer.js';

/** The Peer class of netns.ts without a namespace: commands on stdin, JSON lines back. */
class PeerShim {
  private out = '';
  constructor(readonly proc: Awaited<ReturnType<typeof startNode>>) {
    proc.child.stdout!.on('data', (d: Buffer) => (this.out += d.toString()));
    proc.child.stdin?.on('error', () => {}); // EPIPE from a peer that already exited
  }
  send(cmd: string): void {
    const child = this.proc.child;
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.stdin!.write(`${cmd}\n`);
  }
  async line<T>(prefix: string, timeoutMs = 60_000): Promise<T> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const i = this.out.indexOf(`${prefix} `);
      const nl = i >= 0 ? this.out.indexOf('\n', i) : -1;
      if (nl >= 0) {
        const t = this.out.slice(i + prefix.length + 1, nl);
        this.out = this.out.slice(nl + 1);
        return JSON.parse(t) as T;
      }
      if (Date.now() > end) throw new Error(`no ${prefix} line within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }
  async stats<T>(): Promise<T> {
    this.send('stats');
    return this.line<T>('STATS');
  }
}

// --- hop, in one process -------------------------------------------------------------------------

async function hopHopbus(samples: number, warmup: number): Promise<Percentiles> {
  const url = `udp://${G(1)}:${PORT}?iface=${IFACE}`;
  const pub = await connectMulticast(url, { lingerMs: 0 });
  const sub = await connectMulticast(url, { lingerMs: 0 });
  const h = histogram();
  const payload = Buffer.alloc(PAYLOAD, 7);
  let t0 = 0;
  let i = 0;
  await new Promise<void>((resolve) => {
    const send = () => {
      t0 = nowNs();
      pub.publish('bench.hop', payload);
    };
    sub.subscribe('bench.hop', () => {
      const dt = nowNs() - t0;
      if (i++ >= warmup) h.recordValue(Math.max(1, Math.round(dt)));
      if (i < samples + warmup) setImmediate(send);
      else resolve();
    });
    void sub.flush().then(send);
  });
  await pub.close();
  await sub.close();
  return percentiles(h);
}

async function hopRaw(samples: number, warmup: number): Promise<Percentiles> {
  const group = G(2);
  const r = dgram.createSocket({ type: 'udp4', reuseAddr: true });
  await new Promise<void>((res) => r.bind(PORT, group, () => res()));
  r.addMembership(group, IFACE);
  const s = dgram.createSocket({ type: 'udp4', lookup: literal });
  await new Promise<void>((res) => s.bind(0, IFACE, () => res()));
  s.setMulticastInterface(IFACE);
  const msg = Buffer.alloc(HOP_DATAGRAM, 7);
  const h = histogram();
  let t0 = 0;
  let i = 0;
  await new Promise<void>((resolve) => {
    const send = () => {
      t0 = nowNs();
      s.send(msg, 0, msg.length, PORT, group);
    };
    r.on('message', () => {
      const dt = nowNs() - t0;
      if (i++ >= warmup) h.recordValue(Math.max(1, Math.round(dt)));
      if (i < samples + warmup) setImmediate(send);
      else resolve();
    });
    send();
  });
  r.close();
  s.close();
  return percentiles(h);
}

// --- ping-pong, across processes -----------------------------------------------------------------

async function pingHopbus(samples: number, warmup: number): Promise<Percentiles> {
  const url = `udp://${G(3)}:${PORT}?iface=${IFACE}`;
  const opts = {
    channels: [`${G(4)}:${PORT}`],
    rules: [
      { prefix: 'bench.ping', channel: 0 },
      { prefix: 'bench.pong', channel: 1 },
    ],
    lingerMs: 0,
  };
  const echo = await startNode(PEER, ['echo', url, JSON.stringify(opts)], /^READY/, 10_000, { stdin: true });
  const bus = await connectMulticast(url, opts);
  const h = histogram();
  const payload = Buffer.alloc(PAYLOAD, 7);
  let t0 = 0;
  let i = 0;
  try {
    await new Promise<void>((resolve) => {
      const send = () => {
        t0 = nowNs();
        bus.publish('bench.ping', payload);
      };
      bus.subscribe('bench.pong', () => {
        const rtt = nowNs() - t0;
        if (i++ >= warmup) h.recordValue(Math.max(1, Math.round(rtt / 2)));
        if (i < samples + warmup) setImmediate(send);
        else resolve();
      });
      void bus.flush().then(() => setTimeout(send, 20));
    });
  } finally {
    await bus.close();
    await echo.stop();
  }
  return percentiles(h);
}

async function pingRaw(samples: number, warmup: number): Promise<Percentiles> {
  const gPing = G(5);
  const gPong = G(6);
  const echo = await startNode(PEER, ['rawecho', `${gPing}:${PORT}`, `${gPong}:${PORT}`, IFACE], /^READY/, 10_000, { stdin: true });
  const r = dgram.createSocket({ type: 'udp4', reuseAddr: true });
  await new Promise<void>((res) => r.bind(PORT, gPong, () => res()));
  r.addMembership(gPong, IFACE);
  const s = dgram.createSocket({ type: 'udp4', lookup: literal });
  await new Promise<void>((res) => s.bind(0, IFACE, () => res()));
  s.setMulticastInterface(IFACE);
  const msg = Buffer.alloc(HEADER + 20 + 'bench.ping'.length + PAYLOAD, 7);
  const h = histogram();
  let t0 = 0;
  let i = 0;
  try {
    await new Promise<void>((resolve) => {
      const send = () => {
        t0 = nowNs();
        s.send(msg, 0, msg.length, PORT, gPing);
      };
      r.on('message', () => {
        const rtt = nowNs() - t0;
        if (i++ >= warmup) h.recordValue(Math.max(1, Math.round(rtt / 2)));
        if (i < samples + warmup) setImmediate(send);
        else resolve();
      });
      setTimeout(send, 20);
    });
  } finally {
    r.close();
    s.close();
    await echo.stop();
  }
  return percentiles(h);
}

// --- throughput, 1 and N receiving processes ------------------------------------------------------

interface RecvStats {
  received: number;
  lostReported: number;
  seconds: number;
  naksSent: number;
  gapsRepaired: number;
  lostMessages: number;
  duplicates: number;
  reordered: number;
  repairMs: number[];
}

export interface ThroughputRun {
  receivers: number;
  /** Messages per second at each receiver (first to last message). */
  rates: number[];
  sent: number;
  sentPerSec: number;
  /** Messages not received (and not reported lost either would be a bug: counted apart). */
  unrepaired: number;
  silentlyMissing: number;
  gapsRepaired: number;
  naks: number;
  retransmits: number;
}

async function throughput(receivers: number, count: number, rate: number): Promise<ThroughputRun> {
  const url = `udp://${G(7)}:${PORT}?iface=${IFACE}`;
  const peers: PeerShim[] = [];
  try {
    for (let i = 0; i < receivers; i++) peers.push(new PeerShim(await startNode(PEER, ['recv', url, 'bench.tp'], /^READY/, 10_000, { stdin: true })));
    const pub = new PeerShim(
      await startNode(PEER, ['pub', url, 'bench.tp', String(count), JSON.stringify({ size: PAYLOAD, slice: 2000, rate })], /^READY/, 10_000, { stdin: true }),
    );
    peers.push(pub);
    pub.send('go');
    const sent = await pub.line<{ count: number; rate: number }>('SENT', 120_000);
    let got: RecvStats[] = [];
    for (let i = 0; i < 200; i++) {
      await new Promise((r) => setTimeout(r, 100));
      got = await Promise.all(peers.slice(0, receivers).map((p) => p.stats<RecvStats>()));
      if (got.every((g) => g.received + g.lostReported >= count)) break;
    }
    const ps = await pub.stats<{ retransmits: number }>();
    return {
      receivers,
      rates: got.map((g) => Math.round(g.received / g.seconds)),
      sent: sent.count,
      sentPerSec: sent.rate,
      unrepaired: got.reduce((s, g) => s + g.lostMessages, 0),
      silentlyMissing: got.reduce((s, g) => s + Math.max(0, count - g.received - g.lostReported), 0),
      gapsRepaired: got.reduce((s, g) => s + g.gapsRepaired, 0),
      naks: got.reduce((s, g) => s + g.naksSent, 0),
      retransmits: ps.retransmits,
    };
  } finally {
    for (const p of peers) p.send('quit');
    await Promise.all(peers.map((p) => p.proc.stop()));
  }
}

// --- repair under loss ------------------------------------------------------------------------------

export interface RepairRun {
  lossPercent: number;
  method: 'nftables' | 'drop-hook';
  count: number;
  received: number;
  gapsRepaired: number;
  unrepaired: number;
  naks: number;
  repairMs: { p50: number; p90: number; p99: number; max: number };
}

function canNft(): boolean {
  if (process.getuid?.() !== 0) return false;
  try {
    execFileSync('nft', ['--version'], { stdio: 'pipe' });
    execFileSync('ip', ['netns', 'list'], { stdio: 'pipe' });
    return true;
  } catch {
    return false;
  }
}

function pct(xs: number[]): RepairRun['repairMs'] {
  const s = [...xs].sort((a, b) => a - b);
  const at = (p: number) => (s.length === 0 ? 0 : Math.round(s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]! * 100) / 100);
  return { p50: at(50), p90: at(90), p99: at(99), max: at(100) };
}

async function repair(lossPercent: number, count: number, useNft: boolean): Promise<RepairRun> {
  const pubOpts = { size: PAYLOAD, slice: 100, rate: 100_000 };
  let net: TwoHosts | null = null;
  const peers: Array<PeerShim | Peer> = [];
  try {
    let recv: PeerShim | Peer;
    let pub: PeerShim | Peer;
    if (useNft) {
      net = new TwoHosts();
      net.create();
      const port = PORT + 1;
      net.randomLoss(net.b, 'input', port, lossPercent);
      recv = await net.peer(net.b, ['recv', `udp://${G(8)}:${port}?iface=${net.addrB}`, 'bench.rp']);
      pub = await net.peer(net.a, ['pub', `udp://${G(8)}:${port}?iface=${net.addrA}`, 'bench.rp', String(count), JSON.stringify(pubOpts)]);
    } else {
      const url = `udp://${G(8)}:${PORT + 1}?iface=${IFACE}`;
      recv = new PeerShim(await startNode(PEER, ['recv', url, 'bench.rp'], /^READY/, 10_000, { stdin: true }));
      pub = new PeerShim(
        await startNode(PEER, ['pub', url, 'bench.rp', String(count), JSON.stringify({ ...pubOpts, dropPercent: lossPercent })], /^READY/, 10_000, {
          stdin: true,
        }),
      );
    }
    peers.push(recv, pub);
    pub.send('go');
    await pub.line('SENT', 120_000);
    let g = null as RecvStats | null;
    const repairMs: number[] = [];
    for (let i = 0; i < 100; i++) {
      await new Promise((r) => setTimeout(r, 100));
      const s: RecvStats = await recv.stats<RecvStats>();
      repairMs.push(...s.repairMs);
      g = s;
      if (s.received + s.lostReported >= count) break;
    }
    return {
      lossPercent,
      method: useNft ? 'nftables' : 'drop-hook',
      count,
      received: g!.received,
      gapsRepaired: g!.gapsRepaired,
      unrepaired: g!.lostMessages + Math.max(0, count - g!.received - g!.lostReported),
      naks: g!.naksSent,
      repairMs: pct(repairMs),
    };
  } finally {
    for (const p of peers) p.send('quit');
    await Promise.all(peers.map((p) => p.proc.stop()));
    await net?.destroy();
  }
}

// --- the whole benchmark ------------------------------------------------------------------------------

export async function benchMulticast(o: MulticastBenchOptions): Promise<Record<string, unknown>> {
  const { log, runs, quick } = o;
  const only = new Set(o.only ?? ['hop', 'pingpong', 'throughput', 'repair']);
  const rate = o.rate ?? 0;
  const HOP = quick ? 2_000 : 20_000;
  const WARM = quick ? 200 : 2_000;
  const TP = quick ? 300_000 : 2_000_000;
  const RP = quick ? 50_000 : 300_000;
  const out: Record<string, unknown> = { loadavgBefore: os.loadavg() };
  log(`\n## Multicast (loopback, iface ${IFACE})${quick ? ' (quick mode: smoke check only)' : ''}\n`);
  log(
    `load average before: ${os
      .loadavg()
      .map((x) => x.toFixed(2))
      .join(' ')}`,
  );

  const lat = async (title: string, cases: Record<string, () => Promise<Percentiles>>, floorName: string, samples: number) => {
    const res = new Map<string, Percentiles[]>();
    for (let r = 0; r < runs; r++) for (const [name, fn] of Object.entries(cases)) res.set(name, [...(res.get(name) ?? []), await fn()]);
    log(`\n### ${title}\n`);
    log(`${samples.toLocaleString('en-US')} samples per run after warm-up; median of ${runs} runs; spread over the runs.\n`);
    log('| system | p50 | p90 | p99 | p99.9 | max | p50 spread | p99 spread | p50 / floor |');
    log('|---|---:|---:|---:|---:|---:|---|---|---:|');
    const floor = medianOf(res.get(floorName)!);
    const table: Record<string, unknown> = {};
    for (const [name, rs] of res) {
      const m = medianOf(rs);
      table[name] = { median: m, runs: rs };
      const sp = (k: string) => `${m.spread[k]![0]}..${m.spread[k]![1]}`;
      log(`| ${name} | ${m.p50} | ${m.p90} | ${m.p99} | ${m.p999} | ${m.max} | ${sp('p50')} | ${sp('p99')} | ${(m.p50 / floor.p50).toFixed(2)} |`);
    }
    return table;
  };

  if (only.has('hop'))
    out.hop = await lat(
      'Hop over loopback multicast, publisher and subscriber in one process, one in flight (µs)',
      { 'raw-dgram': () => hopRaw(HOP, WARM), 'hopbus-udp': () => hopHopbus(HOP, WARM) },
      'raw-dgram',
      HOP,
    );
  if (only.has('pingpong'))
    out.pingpong = await lat(
      'Ping-pong across two processes over loopback multicast, RTT/2 (µs)',
      { 'raw-dgram': () => pingRaw(HOP / 2, WARM), 'hopbus-udp': () => pingHopbus(HOP / 2, WARM) },
      'raw-dgram',
      HOP / 2,
    );

  if (only.has('throughput')) {
    log(`\n### Throughput, 16-byte messages, 1 publisher process -> N receiving processes (msg/s at each receiver)\n`);
    log(
      `${TP.toLocaleString('en-US')} messages per run, ${rate > 0 ? `offered at ${rate.toLocaleString('en-US')} msg/s` : 'published as fast as the publisher goes'}; median of ${runs} runs.\n`,
    );
    log(
      '| receivers | msg/s per receiver (median of runs, slowest receiver) | spread | publisher msg/s | gaps repaired | NAKs | retransmits | unrepaired | silently missing |',
    );
    log('|---:|---:|---|---:|---:|---:|---:|---:|---:|');
    const tp: Record<string, ThroughputRun[]> = {};
    for (const n of [1, 4]) {
      const rs: ThroughputRun[] = [];
      for (let r = 0; r < runs; r++) rs.push(await throughput(n, TP, rate));
      tp[n] = rs;
      const slowest = rs.map((x) => Math.min(...x.rates));
      const sum = (k: keyof ThroughputRun) => rs.reduce((s, x) => s + (x[k] as number), 0);
      log(
        `| ${n} | ${Math.round(median(slowest)).toLocaleString('en-US')} | ${Math.min(...slowest).toLocaleString('en-US')}..${Math.max(...slowest).toLocaleString('en-US')} | ${Math.round(median(rs.map((x) => x.sentPerSec))).toLocaleString('en-US')} | ${sum('gapsRepaired')} | ${sum('naks')} | ${sum('retransmits')} | ${sum('unrepaired')} | ${sum('silentlyMissing')} |`,
      );
    }
    out.throughput = tp;
  }

  if (only.has('repair')) {
    const nft = canNft();
    log(
      `\n### Repair under loss (${nft ? "nftables random drop on the receiver's input, source and receiver in two network namespaces over a veth pair" : "the source's deterministic drop hook (seeded; nftables or root not available)"})\n`,
    );
    log(`${RP.toLocaleString('en-US')} messages at 100,000 msg/s per run; time from a gap's detection to its repair (ms), all runs pooled.\n`);
    log('| loss | method | gaps repaired | repair p50 | p90 | p99 | max | NAKs | unrepaired |');
    log('|---:|---|---:|---:|---:|---:|---:|---:|---:|');
    const rp: Record<string, RepairRun[]> = {};
    for (const loss of [1, 5]) {
      const rs: RepairRun[] = [];
      for (let r = 0; r < runs; r++) rs.push(await repair(loss, RP, nft));
      rp[loss] = rs;
      const med = (k: keyof RepairRun['repairMs']) => median(rs.map((x) => x.repairMs[k]));
      log(
        `| ${loss}% | ${rs[0]!.method} | ${rs.reduce((s, x) => s + x.gapsRepaired, 0)} | ${med('p50')} | ${med('p90')} | ${med('p99')} | ${Math.max(...rs.map((x) => x.repairMs.max))} | ${rs.reduce((s, x) => s + x.naks, 0)} | ${rs.reduce((s, x) => s + x.unrepaired, 0)} |`,
      );
    }
    out.repair = rp;
  }
  out.loadavgAfter = os.loadavg();
  return out;
}

// Standalone: node dist/bench/multicast.js [--quick] [--runs N] [--only hop,pingpong,throughput,repair] [--rate MSGS_PER_SEC]
if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({
    options: { quick: { type: 'boolean' }, runs: { type: 'string' }, only: { type: 'string' }, rate: { type: 'string' } },
    strict: true,
  });
  const runs = Number(values.runs ?? 5);
  benchMulticast({
    quick: values.quick === true,
    runs,
    log: (s) => console.log(s),
    ...(values.only ? { only: values.only.split(',') } : {}),
    ...(values.rate ? { rate: Number(values.rate) } : {}),
  }).then(
    (out) => {
      console.log(`\nload average after: ${(out.loadavgAfter as number[]).map((x) => x.toFixed(2)).join(' ')}`);
      process.exit(0);
    },
    (err) => {
      console.error(err);
      process.exit(1);
    },
  );
}
