/**
 * A multicast peer in its own process, for the multicast benchmark and for the tests
 * that run receivers and sources in other network namespaces
 * (`ip netns exec NS node dist/bench/mcast-peer.js ...`).
 *
 *   mcast-peer.js recv URL PATTERN [OPTIONS_JSON]
 *       subscribes; prints "READY" once joined. Payloads are expected to be decimal
 *       counters (as `pub` sends them); it counts messages, duplicates, reordering
 *       and loss events, and 'slow' events (a source dropped it from its window). Commands
 *       on stdin, one per line:
 *         stats   prints "STATS <json>"
 *         quit    closes and exits 0
 *   mcast-peer.js pub URL SUBJECT COUNT [OPTIONS_JSON]
 *       prints "READY <address>", waits for "go" on stdin, publishes COUNT messages
 *       (payload = the counter, padded to `size` bytes) at `rate` msg/s (0 = as
 *       fast as it goes, in slices of `slice`; while the flow-control window holds
 *       datagrams back, it awaits flush() before the next slice), prints "SENT <json>", then serves
 *       NAKs until "quit" (or, with exitAfterMs, exits without a goodbye: a source
 *       that dies).
 *   mcast-peer.js echo URL [OPTIONS_JSON]
 *       answers every message on bench.ping with the same payload on bench.pong.
 *   mcast-peer.js rawecho GROUP:PORT GROUP:PORT IFACE
 *       the floor: a bare dgram socket joined to the first group sends every
 *       datagram it receives, unchanged, to the second.
 *
 * OPTIONS_JSON: MulticastConnectOptions, plus for pub: rate, size, slice,
 * exitAfterMs, dropEvery (drop every Nth datagram at the source, first sends only),
 * dropPercent (seeded, deterministic) and dropSeqs (a list; with dropAlways, their
 * retransmissions too).
 */
import dgram from 'node:dgram';
import readline from 'node:readline';
import { connectMulticast, type MulticastConnectOptions, type MulticastLossEvent } from '../client/index.js';

const [mode, url, a3, a4, a5] = process.argv.slice(2);

interface PeerOptions extends MulticastConnectOptions {
  rate?: number;
  size?: number;
  slice?: number;
  exitAfterMs?: number;
  dropEvery?: number;
  dropPercent?: number;
  dropSeqs?: number[];
  /** Apply dropSeqs to retransmissions too: those datagrams can never be repaired. */
  dropAlways?: boolean;
}

function parseOpts(s: string | undefined): PeerOptions {
  return s ? (JSON.parse(s) as PeerOptions) : {};
}

/** Mulberry32: a small seeded PRNG, so a given dropPercent drops the same datagrams every run. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function busOptions(o: PeerOptions): MulticastConnectOptions {
  const { rate: _r, size: _s, slice: _sl, exitAfterMs: _e, dropEvery, dropPercent, dropSeqs, dropAlways, ...rest } = o;
  if (dropEvery) rest.testDrop = (seq, _ch, re) => !re && seq % dropEvery === 0;
  if (dropPercent) {
    const rnd = prng(12345);
    rest.testDrop = (_seq, _ch, re) => !re && rnd() * 100 < dropPercent;
  }
  if (dropSeqs) {
    const set = new Set(dropSeqs);
    rest.testDrop = (seq, _ch, re) => (dropAlways || !re) && set.has(seq);
  }
  return rest;
}

function lines(onLine: (l: string) => void): void {
  readline.createInterface({ input: process.stdin }).on('line', (l) => onLine(l.trim()));
}

async function recv(): Promise<void> {
  const o = parseOpts(a4);
  const bus = await connectMulticast(url!, busOptions(o));
  let received = 0;
  let duplicates = 0;
  let reordered = 0;
  let maxSeen = -1;
  let lossEvents = 0;
  let lostReported = 0;
  let firstAt = 0;
  let lastAt = 0;
  const gone: string[] = [];
  const repairMs: number[] = [];
  bus.on('repair', (e: { ms: number }) => {
    if (repairMs.length < 1_000_000) repairMs.push(e.ms);
  });
  let seen = new Uint8Array(1 << 20);
  let distinct = 0;
  bus.on('loss', (e: MulticastLossEvent) => {
    lossEvents++;
    lostReported += e.dropped;
  });
  bus.on('source-gone', (e) => gone.push(`${e.reason}`));
  let slow = 0;
  bus.on('slow', () => slow++);
  bus.on('error', () => {});
  bus.subscribe(a3!, (m) => {
    // The counter, parsed from the ASCII digits in place (no string): the receiver's
    // own work should not dominate what a throughput run measures.
    const d = m.data;
    let n = 0;
    for (let i = 0; i < d.length; i++) {
      const c = d[i]!;
      if (c < 48 || c > 57) break;
      n = n * 10 + (c - 48);
    }
    if (received === 0) firstAt = performance.now();
    received++;
    if (n >= seen.length) {
      const grown = new Uint8Array(Math.max(n + 1, seen.length * 2));
      grown.set(seen);
      seen = grown;
    }
    if (seen[n] === 1) duplicates++;
    else {
      seen[n] = 1;
      distinct++;
    }
    if (n < maxSeen) reordered++;
    else maxSeen = n;
    // performance.now() per message would cost more than the rest: the clock is read every 256.
    if ((received & 255) === 0) lastAt = performance.now();
  });
  await bus.flush();
  console.log('READY');
  lines(async (l) => {
    if (l === 'stats') {
      const s = bus.stats;
      if (received > 0 && (received & 255) !== 0 && lastAt < firstAt) lastAt = performance.now();
      console.log(
        `STATS ${JSON.stringify({ received, distinct, duplicates, reordered, maxSeen, lossEvents, lostReported, gone, slow, seconds: (lastAt - firstAt) / 1000, naksSent: s.naksSent, gapsRepaired: s.gapsRepaired, lostDatagrams: s.lostDatagrams, lostMessages: s.lostMessages, duplicatesDatagrams: s.duplicates, datagramsIn: s.datagramsIn, statusSent: s.statusSent, recvBufferBytesGranted: s.recvBufferBytesGranted, repairMs })}`,
      );
      repairMs.length = 0;
    } else if (l === 'quit') {
      await bus.close();
      process.exit(0);
    }
  });
}

async function pub(): Promise<void> {
  const o = parseOpts(a5);
  const count = Number(a4);
  const bus = await connectMulticast(url!, busOptions(o));
  const size = o.size ?? 16;
  const rate = o.rate ?? 0;
  const slice = o.slice ?? 256;
  const pad = (n: number) => {
    const s = String(n);
    return s.length >= size ? s : s + ' '.repeat(size - s.length);
  };
  console.log(`READY ${bus.address}`);
  const publishAll = async (): Promise<void> => {
    const t0 = performance.now();
    let i = 0;
    while (i < count) {
      const end = Math.min(count, i + slice);
      for (; i < end; i++) bus.publish(a3!, pad(i));
      if (rate > 0) {
        const due = t0 + (i / rate) * 1000;
        const wait = due - performance.now();
        if (wait > 1) await new Promise((r) => setTimeout(r, wait));
        else await new Promise((r) => setImmediate(r));
      } else {
        await new Promise((r) => setImmediate(r));
      }
      // Back-pressure: datagrams wait for the receivers' window; flush() resolves once they left.
      if (bus.pendingBytes > 0) await bus.flush(60_000);
    }
    const seconds = (performance.now() - t0) / 1000;
    console.log(`SENT ${JSON.stringify({ count, seconds, rate: Math.round(count / seconds), ...bus.stats })}`);
    if (o.exitAfterMs !== undefined) setTimeout(() => process.exit(0), o.exitAfterMs); // dies: no BYE
  };
  lines(async (l) => {
    if (l === 'go') void publishAll();
    else if (l === 'stats') console.log(`STATS ${JSON.stringify(bus.stats)}`);
    else if (l === 'quit') {
      await bus.close();
      process.exit(0);
    }
  });
}

async function echo(): Promise<void> {
  const bus = await connectMulticast(url!, busOptions(parseOpts(a3)));
  bus.subscribe('bench.ping', (m) => bus.publish('bench.pong', m.data));
  await bus.flush();
  console.log('READY');
  lines(async (l) => {
    if (l === 'quit') {
      await bus.close();
      process.exit(0);
    }
  });
}

async function rawEcho(): Promise<void> {
  const [g1, p1] = url!.split(':');
  const [g2, p2] = a3!.split(':');
  const iface = a4 ?? '127.0.0.1';
  const out = dgram.createSocket({ type: 'udp4', lookup: ((a: string, _o: unknown, cb: (e: null, a: string, f: number) => void) => cb(null, a, 4)) as never });
  await new Promise<void>((r) => out.bind(0, iface, () => r()));
  out.setMulticastInterface(iface);
  const inp = dgram.createSocket({ type: 'udp4', reuseAddr: true });
  await new Promise<void>((r) => inp.bind(Number(p1), g1, () => r()));
  inp.addMembership(g1!, iface);
  inp.on('message', (m) => out.send(m, 0, m.length, Number(p2), g2));
  console.log('READY');
  lines((l) => {
    if (l === 'quit') process.exit(0);
  });
}

process.on('SIGTERM', () => process.exit(0));
const run = mode === 'recv' ? recv : mode === 'pub' ? pub : mode === 'echo' ? echo : mode === 'rawecho' ? rawEcho : null;
if (run === null) {
  console.error('usage: mcast-peer.js recv URL PATTERN [JSON] | pub URL SUBJECT COUNT [JSON] | echo URL [JSON] | rawecho G:P G:P IFACE');
  process.exit(2);
}
run().catch((err) => {
  console.error(err);
  process.exit(1);
});
