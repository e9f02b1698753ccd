/**
 * The workloads of the peer benchmark, written once against BusClient so every system
 * runs the same code. Each opens its own connections and closes them at the end; the
 * servers outlive the cases.
 *
 * Every connection is either a publisher or a subscriber (Redis allows nothing else),
 * except in ping-pong, where a system whose connections may do both (duplex) uses one
 * per side. Subscribers live in this process, beside the publisher: one clock for
 * latency, and the publisher can see how far the slowest subscriber is behind.
 */
import { histogram, nowNs, percentiles, type Percentiles } from '../stats.js';
import { startNode } from '../procs.js';
import type { BusClient, Endpoint, Target } from './target.js';

export type CaseGroup = 'hop' | 'paced' | 'pingpong' | 'throughput' | 'fanout';
export const CASE_GROUPS: readonly CaseGroup[] = ['hop', 'paced', 'pingpong', 'throughput', 'fanout'];

/** A latency figure: percentiles in µs, and messages that never arrived (open-loop cases). */
export interface LatencyFigure extends Percentiles {
  lost: number;
  /** Of what the subscribers missed, what their transport reported lost beyond repair (multicast). */
  unrepaired?: number;
}

/** A throughput figure: messages per second delivered to each subscriber (fan-out: deliveries per second in all). */
export interface ThroughputFigure {
  rate: number;
  sent: number;
  /** Deliveries counted at the subscribers. */
  received: number;
  /** Deliveries expected but not counted once the stream went quiet. */
  lost: number;
  /** Messages the subscribers' transport reported lost beyond repair (multicast gaps); absent elsewhere. */
  unrepaired?: number;
  seconds: number;
}

export type Figure = LatencyFigure | ThroughputFigure;

/** How much each case does: the full sizes give figures, the quick ones a smoke check. */
export interface Sizes {
  hopSamples: number;
  warmup: number;
  /** Seconds of schedule per paced rate, at least `pacedMinSamples` messages. */
  pacedSeconds: number;
  pacedMinSamples: number;
  pingpongSamples: number;
  tpCount: number;
  fanoutSamples: number;
  fanoutCount: number;
}

export const FULL: Sizes = {
  hopSamples: 20_000,
  warmup: 2_000,
  pacedSeconds: 2,
  pacedMinSamples: 5_000,
  pingpongSamples: 10_000,
  tpCount: 500_000,
  fanoutSamples: 5_000,
  fanoutCount: 100_000,
};
export const QUICK: Sizes = {
  hopSamples: 2_000,
  warmup: 200,
  pacedSeconds: 0.4,
  pacedMinSamples: 400,
  pingpongSamples: 1_000,
  tpCount: 50_000,
  fanoutSamples: 500,
  fanoutCount: 10_000,
};

export interface Case {
  /** Key in the results: 'hop', 'paced-10k', 'tp-1x4-256', ... */
  readonly id: string;
  readonly group: CaseGroup;
  readonly title: string;
  readonly metric: 'latency' | 'throughput';
  readonly unit: string;
  run(target: Target, ep: Endpoint, sizes: Sizes): Promise<Figure>;
}

/** The payload of the latency cases. */
const SMALL = 16;
/** The end-to-end window of the throughput cases: messages sent but not yet at the slowest subscriber. */
const WINDOW = 16_384;
/** Messages published between two looks at the window. */
const BATCH = 1_000;
/** A stream with no delivery for this long is over: what has not arrived is lost. */
const QUIET_MS = 1_000;

const tick = () => new Promise<void>((r) => setImmediate(r));
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * Waits until cond() holds, or until `progress()` has not changed for QUIET_MS.
 * Returns whether cond() holds, and when progress was last seen (ns, to the millisecond).
 */
async function until(cond: () => boolean, progress: () => number): Promise<{ ok: boolean; lastProgressNs: number }> {
  let last = progress();
  let since = nowNs();
  while (!cond()) {
    await sleep(1);
    const p = progress();
    if (p !== last) {
      last = p;
      since = nowNs();
    } else if (nowNs() - since > QUIET_MS * 1e6) return { ok: false, lastProgressNs: since };
  }
  return { ok: true, lastProgressNs: nowNs() };
}

/**
 * Opens connections, runs fn, and closes them whatever happens. A figure gets the losses
 * beyond repair the connections' transport reported (`unrepaired`), where it reports any.
 */
async function using<T extends Figure>(target: Target, ep: Endpoint, names: string[], fn: (clients: BusClient[]) => Promise<T>): Promise<T> {
  const clients: BusClient[] = [];
  try {
    for (const n of names) clients.push(await target.connect(ep, n));
    const f = await fn(clients);
    const reporting = clients.filter((c) => c.unrepaired !== undefined);
    if (reporting.length > 0) f.unrepaired = reporting.reduce((a, c) => a + c.unrepaired!(), 0);
    return f;
  } finally {
    await Promise.allSettled(clients.map((c) => c.close()));
  }
}

/**
 * One message in flight: send() publishes, arrive() is called by each delivery, and
 * once `expect` deliveries of the current message are in, its latency is recorded and
 * the next is sent on the next event-loop turn (setImmediate), so the receive path
 * finishes before the next publish. A message that never completes fails the run.
 */
function oneInFlight(
  send: () => void,
  expect: number,
  samples: number,
  warmup: number,
  halve: boolean,
): { arrive: () => void; start: () => Promise<LatencyFigure> } {
  const h = histogram();
  let t0 = 0;
  let i = 0;
  let need = expect;
  let finish!: (f: LatencyFigure) => void;
  let fail!: (e: Error) => void;
  const done = new Promise<LatencyFigure>((res, rej) => {
    finish = res;
    fail = rej;
  });
  const next = () => {
    need = expect;
    t0 = nowNs();
    send();
  };
  let seen = -1;
  let watchdog: NodeJS.Timeout | undefined;
  const arrive = () => {
    if (--need !== 0) return;
    const dt = nowNs() - t0;
    if (i++ >= warmup) h.recordValue(Math.max(1, Math.round(halve ? dt / 2 : dt)));
    if (i < samples + warmup) setImmediate(next);
    else {
      clearInterval(watchdog);
      finish({ ...percentiles(h), lost: 0 });
    }
  };
  const start = () => {
    watchdog = setInterval(() => {
      if (i === seen) {
        clearInterval(watchdog);
        fail(new Error(`message ${i} did not arrive within 5 s (one in flight)`));
      }
      seen = i;
    }, 5_000);
    next();
    return done;
  };
  return { arrive, start };
}

// --- (1) one hop ----------------------------------------------------------------------

const hop: Case = {
  id: 'hop',
  group: 'hop',
  title: 'One hop, one message in flight',
  metric: 'latency',
  unit: 'µs',
  run: (t, ep, z) =>
    using(t, ep, ['bench-pub', 'bench-sub'], async ([pub, sub]) => {
      const payload = Buffer.alloc(SMALL, 7);
      const f = oneInFlight(() => pub!.publish('bench.hop', payload), 1, z.hopSamples, z.warmup, false);
      await sub!.subscribe('bench.hop', f.arrive);
      return f.start();
    }),
};

/**
 * Open loop at `rate` msg/s. Message k is due at start + k/rate. Without a timer per
 * message: a loop on setImmediate sends, on each turn, every message that is due
 * (so between turns the receive path runs). Latency is measured from the message's
 * scheduled time, carried in its payload as k, so a send that falls behind schedule
 * counts against the system (no coordinated omission). Payloads are allocated before
 * the run, one per message, as clients may keep a reference until they write.
 */
function paced(rate: number, label: string): Case {
  return {
    id: `paced-${label}`,
    group: 'paced',
    title: `One hop, paced at ${label} msg/s (open loop)`,
    metric: 'latency',
    unit: 'µs',
    run: (t, ep, z) =>
      using(t, ep, ['bench-pub', 'bench-sub'], async ([pub, sub]) => {
        const total = Math.max(z.pacedMinSamples, Math.round(rate * z.pacedSeconds));
        const warm = Math.floor(total / 10);
        const slab = Buffer.alloc(total * SMALL, 7);
        const payloads: Buffer[] = new Array(total);
        for (let k = 0; k < total; k++) {
          payloads[k] = slab.subarray(k * SMALL, (k + 1) * SMALL);
          payloads[k]!.writeUInt32LE(k, 0);
        }
        const nsPer = 1e9 / rate;
        const h = histogram();
        let start = 0;
        let received = 0;
        await sub!.subscribe('bench.paced', (p) => {
          const k = (p[0]! | (p[1]! << 8) | (p[2]! << 16) | (p[3]! << 24)) >>> 0;
          received++;
          if (k >= warm) h.recordValue(Math.max(1, Math.round(nowNs() - (start + k * nsPer))));
        });
        start = nowNs();
        let sent = 0;
        await new Promise<void>((resolve) => {
          const loop = () => {
            const due = Math.min(total, Math.floor((nowNs() - start) / nsPer) + 1);
            for (; sent < due; sent++) pub!.publish('bench.paced', payloads[sent]!);
            if (sent < total) setImmediate(loop);
            else resolve();
          };
          loop();
        });
        await until(
          () => received >= total,
          () => received,
        );
        return { ...percentiles(h), lost: total - received };
      }),
  };
}

// --- (2) ping-pong across two processes ---------------------------------------------

const pingpong: Case = {
  id: 'pingpong',
  group: 'pingpong',
  title: 'Ping-pong, RTT/2 (across two processes unless noted)',
  metric: 'latency',
  unit: 'µs',
  async run(t, ep, z) {
    const echo = t.echo !== undefined ? await t.echo(ep) : await startNode('bench/peers/echo.js', [t.name, JSON.stringify(ep)], /^READY/);
    try {
      const names = t.duplex ? ['bench-ping'] : ['bench-ping', 'bench-pong'];
      return await using(t, ep, names, async (cs) => {
        const pub = cs[0]!;
        const sub = cs[cs.length - 1]!;
        const payload = Buffer.alloc(SMALL, 7);
        const f = oneInFlight(() => pub.publish('bench.ping', payload), 1, z.pingpongSamples, z.warmup, true);
        await sub.subscribe('bench.pong', f.arrive);
        return f.start();
      });
    } finally {
      await echo.stop();
    }
  },
};

// --- (3) throughput, 1 -> N ---------------------------------------------------------

/**
 * One publisher to `subs` subscribers as fast as it can go, with end-to-end flow
 * control so no queue grows without bound: every BATCH messages the publisher yields
 * one event-loop turn (subscribers read), and while more than WINDOW messages are on
 * their way to the slowest subscriber it waits. Rate = messages delivered to each
 * subscriber per second, from the first publish to the last delivery.
 */
/**
 * Deliveries per subscriber connection. The time of the last expected delivery is
 * taken once, when the last counter reaches its goal, not per message: a clock read
 * per message cost the harness ~7% of its time at 2 M msg/s.
 */
class Tally {
  readonly counts: Int32Array;
  goal = 0;
  private complete = 0;
  doneAt = 0;

  constructor(subscribers: number) {
    this.counts = new Int32Array(subscribers);
  }

  count(i: number): void {
    if (++this.counts[i]! === this.goal && ++this.complete === this.counts.length) this.doneAt = nowNs();
  }

  slowest(): number {
    let m = this.counts[0]!;
    for (let i = 1; i < this.counts.length; i++) if (this.counts[i]! < m) m = this.counts[i]!;
    return m;
  }

  total(): number {
    return this.counts.reduce((a, b) => a + b, 0);
  }
}

async function stream(pub: BusClient, subjects: readonly string[], payload: Uint8Array, count: number, tally: Tally): Promise<ThroughputFigure> {
  tally.goal = count;
  const progress = () => tally.total();
  const n = subjects.length;
  const t0 = nowNs();
  let sent = 0;
  while (sent < count) {
    const end = Math.min(count, sent + BATCH);
    for (; sent < end; sent++) pub.publish(subjects[sent % n]!, payload);
    if (sent - tally.slowest() > WINDOW) await until(() => sent - tally.slowest() <= WINDOW / 2, progress);
    else await tick();
  }
  const expected = count * tally.counts.length;
  const end = await until(() => tally.total() >= expected, progress);
  const received = tally.total();
  // All in: the exact time of the last delivery. Some lost: when deliveries stopped (to the ms).
  const seconds = ((end.ok ? tally.doneAt : end.lastProgressNs) - t0) / 1e9;
  return { rate: Math.round(received / tally.counts.length / seconds), sent, received, lost: expected - received, seconds };
}

function throughput(subs: number, size: number): Case {
  return {
    id: `tp-1x${subs}-${size}`,
    group: 'throughput',
    title: `Throughput, 1 publisher -> ${subs} subscriber${subs > 1 ? 's' : ''}, ${size} B`,
    metric: 'throughput',
    unit: 'msg/s per subscriber',
    run: (t, ep, z) =>
      using(t, ep, ['bench-pub', ...Array.from({ length: subs }, (_, i) => `bench-sub${i}`)], async ([pub, ...ss]) => {
        const tally = new Tally(subs);
        for (let i = 0; i < subs; i++) await ss[i]!.subscribe('bench.tp', () => tally.count(i));
        return stream(pub!, ['bench.tp'], Buffer.alloc(size, 7), subs === 1 ? z.tpCount : Math.round(z.tpCount / 2), tally);
      }),
  };
}

// --- (4) fan-out with wildcards --------------------------------------------------------

/**
 * 10 subjects fan.s0.tick .. fan.s9.tick and 10 subscriber connections with one
 * subscription per subject each, 100 in all: connections 0-5 subscribe to the exact
 * subject, 6-7 to fan.sI.*, 8-9 to fan.sI.>. Every message reaches 10 subscriptions on
 * 10 connections, and no connection has two subscriptions matching one subject, so
 * every system delivers it the same way (one copy per connection).
 */
const FAN_SUBJECTS = Array.from({ length: 10 }, (_, i) => `fan.s${i}.tick`);
const fanPattern = (conn: number, i: number) => (conn < 6 ? `fan.s${i}.tick` : conn < 8 ? `fan.s${i}.*` : `fan.s${i}.>`);
const FAN_CONNS = Array.from({ length: 10 }, (_, c) => `bench-fan${c}`);

async function fanSubscribe(ss: BusClient[], onMessage: (conn: number) => void): Promise<void> {
  for (let c = 0; c < ss.length; c++) {
    const fn = () => onMessage(c);
    for (let i = 0; i < FAN_SUBJECTS.length; i++) await ss[c]!.subscribe(fanPattern(c, i), fn);
  }
}

const fanoutLatency: Case = {
  id: 'fanout-lat',
  group: 'fanout',
  title: 'Fan-out latency, 100 subscriptions (40 wildcard) on 10 subjects, to the 10th delivery',
  metric: 'latency',
  unit: 'µs',
  run: (t, ep, z) =>
    using(t, ep, ['bench-pub', ...FAN_CONNS], async ([pub, ...ss]) => {
      const payload = Buffer.alloc(SMALL, 7);
      let k = 0;
      const f = oneInFlight(() => pub!.publish(FAN_SUBJECTS[k++ % 10]!, payload), 10, z.fanoutSamples, Math.min(z.warmup, z.fanoutSamples), false);
      await fanSubscribe(ss, f.arrive);
      return f.start();
    }),
};

const fanoutThroughput: Case = {
  id: 'fanout-tp',
  group: 'fanout',
  title: 'Fan-out throughput, 100 subscriptions on 10 subjects, 16 B: deliveries per second',
  metric: 'throughput',
  unit: 'deliveries/s',
  run: (t, ep, z) =>
    using(t, ep, ['bench-pub', ...FAN_CONNS], async ([pub, ...ss]) => {
      // Each message reaches one subscription on every connection, so counting per
      // connection gives the same window arithmetic as 1 -> 10.
      const tally = new Tally(ss.length);
      await fanSubscribe(ss, (c) => tally.count(c));
      const f = await stream(pub!, FAN_SUBJECTS, Buffer.alloc(SMALL, 7), z.fanoutCount, tally);
      return { ...f, rate: f.rate * ss.length };
    }),
};

export const CASES: readonly Case[] = [
  hop,
  paced(1_000, '1k'),
  paced(10_000, '10k'),
  paced(50_000, '50k'),
  pingpong,
  throughput(1, 16),
  throughput(1, 256),
  throughput(4, 16),
  throughput(4, 256),
  fanoutLatency,
  fanoutThroughput,
];

/** Whether a target can run a case: fan-out needs wildcards; a target may list the groups it runs. */
export function runs(t: Target, c: Case): boolean {
  if (c.group === 'fanout' && !t.wildcards) return false;
  return t.cases === undefined || t.cases.includes(c.group);
}
