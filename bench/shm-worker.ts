/**
 * The worker side of bench/shm.ts: one role per worker, chosen in workerData.
 * Every role posts one result message ({ result }) when it is done.
 *
 * Clocks: a hop within one worker is timed with that worker's performance.now().
 * Across threads the bench uses a shared clock: performance.now() plus the offset of
 * this thread's performance.timeOrigin from the main thread's (`refOrigin`), so the
 * per-sample values stay small (full double precision); the offset is known to
 * within 0.25 µs (the double ulp of an epoch in ms), a constant that does not move
 * the percentiles' spread.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { connectBroker, type Bus } from '../client/index.js';
import { ShmLink } from '../transports/shm/link.js';
import { Poller } from '../transports/shm/poller.js';
import { waitStrategy } from '../transports/shm/wait.js';
import { histogram, percentiles } from './stats.js';

export interface Job {
  role: string;
  ep?: unknown;
  wait: 'spin' | 'hybrid' | 'park';
  samples: number;
  warmup: number;
  /** Stop measuring after this long even if `samples` were not taken (spinning threads on too few cores). */
  maxMs: number;
  size: number;
  count: number;
  refOrigin: number;
  sab?: SharedArrayBuffer;
  conn?: SharedArrayBuffer;
  hub?: SharedArrayBuffer;
  /** hopbus: deliver worker to worker directly (the default) or through the broker thread. */
  direct?: boolean;
  /** raw floor: A and B exchange words directly instead of through the main thread's relay. */
  rawDirect?: boolean;
}

const job = workerData as Job;
const offset = performance.timeOrigin - job.refOrigin;
const shared = (): number => performance.now() + offset;
const post = (result: unknown) => parentPort!.postMessage({ result });
const tick = () => new Promise<void>((r) => setImmediate(r));

// --- hopbus over shm --------------------------------------------------------------------

async function bus(): Promise<Bus> {
  return connectBroker(job.ep as never, { wait: job.wait, name: job.role, reconnect: false, direct: job.direct ?? true });
}

/** Publisher and subscriber in this worker: publish -> broker thread -> back here. One in flight. */
async function hop(): Promise<void> {
  const b = await bus();
  const h = histogram();
  const payload = Buffer.alloc(job.size, 7);
  const total = job.samples + job.warmup;
  const deadline = performance.now() + job.maxMs;
  let t0 = 0;
  let i = 0;
  const send = () => {
    t0 = performance.now();
    b.publish('bench.hop', payload);
  };
  await new Promise<void>((resolve) => {
    b.subscribe('bench.hop', () => {
      const dt = performance.now() - t0;
      if (i++ >= job.warmup) h.recordValue(Math.max(1, Math.round(dt * 1e6)));
      if (i < total && performance.now() < deadline) setImmediate(send);
      else resolve();
    });
    void b.flush().then(send);
  });
  await b.close();
  post(percentiles(h));
}

/** Ping-pong between two workers through the broker thread: RTT/2 here, one-way at the ponger. */
async function ping(): Promise<void> {
  const b = await bus();
  const h = histogram();
  const payload = Buffer.alloc(Math.max(8, job.size), 7);
  const total = job.samples + job.warmup;
  let t0 = 0;
  let i = 0;
  await b.flush();
  // Wait until the ponger is subscribed (it answers 'bench.ready').
  for (;;) {
    try {
      await b.request('bench.ready', '', { timeoutMs: 1000 });
      break;
    } catch {
      await new Promise((r) => setTimeout(r, 10));
    }
  }
  const deadline = performance.now() + job.maxMs;
  const send = () => {
    t0 = shared();
    payload.writeDoubleLE(t0, 0);
    b.publish('bench.ping', payload);
  };
  await new Promise<void>((resolve) => {
    b.subscribe('bench.pong', () => {
      const rtt = shared() - t0;
      if (i++ >= job.warmup) h.recordValue(Math.max(1, Math.round((rtt / 2) * 1e6)));
      if (i < total && performance.now() < deadline) setImmediate(send);
      else resolve();
    });
    void b.flush().then(send);
  });
  b.publish('bench.stop', '');
  await b.flush();
  await b.close();
  post({ ...percentiles(h), roundTrips: i });
}

async function pong(): Promise<void> {
  const b = await bus();
  const h = histogram();
  let i = 0;
  const done = new Promise<void>((resolve) => b.subscribe('bench.stop', () => resolve()));
  b.subscribe('bench.ping', (m) => {
    const d = m.data;
    const oneWay = shared() - new DataView(d.buffer, d.byteOffset, d.length).getFloat64(0, true);
    if (i++ >= job.warmup) h.recordValue(Math.max(1, Math.round(oneWay * 1e6)));
    b.publish('bench.pong', m.data);
  });
  b.subscribe('bench.ready', (m) => m.respond(''));
  await b.flush();
  await done;
  await b.close();
  post({ ...percentiles(h), roundTrips: i });
}

/** One-way throughput: publish `count` messages as fast as bounded queues allow. */
async function tpPub(): Promise<void> {
  const b = await bus();
  const payload = Buffer.alloc(job.size, 7);
  for (;;) {
    try {
      await b.request('bench.tp.ready', '', { timeoutMs: 1000 });
      break;
    } catch {
      await new Promise((r) => setTimeout(r, 10));
    }
  }
  const t0 = shared();
  let sent = 0;
  while (sent < job.count) {
    const end = Math.min(job.count, sent + 1000);
    for (; sent < end; sent++) b.publish('bench.tp', payload);
    if (b.pendingBytes > 1 << 20) while (b.pendingBytes > 1 << 18) await tick();
    else await tick();
  }
  await b.flush(60_000);
  await b.close();
  post({ t0 });
}

async function tpSub(): Promise<void> {
  const b = await bus();
  let n = 0;
  let tEnd = 0;
  let cut = '';
  const done = new Promise<void>((resolve) => {
    b.subscribe('bench.tp', () => {
      if (++n === job.count) {
        tEnd = shared();
        resolve();
      }
    });
    // Closed as a slow consumer (more than maxPending queued for it): the run is void.
    b.on('disconnect', (err) => {
      cut = err?.message ?? 'disconnected';
      resolve();
    });
  });
  b.on('error', () => {});
  b.subscribe('bench.tp.ready', (m) => m.respond(''));
  await b.flush();
  await done;
  await b.close();
  post({ tEnd, received: n, cut });
}

// --- floor: the ring alone, no broker ----------------------------------------------------

/** Frames of the size a PUB of `size` payload bytes on 'bench.tp' has, through one ring between two workers. */
async function ringTp(side: 'client' | 'broker'): Promise<void> {
  const link = new ShmLink({ conn: job.conn!, hub: job.hub!, side, remote: side, maxFrame: 1 << 24, heartbeatMs: 100, heartbeatTimeoutMs: 10_000 });
  link.attach(new Poller(link.ownSignal, waitStrategy(job.wait), true));
  const frameLen = 20 + 'bench.tp'.length + job.size;
  if (side === 'broker') {
    let n = 0;
    await new Promise<void>((resolve) => {
      link.start({
        onFrame() {
          if (++n === job.count) resolve();
        },
        onClose() {},
      });
    });
    post({ tEnd: shared(), received: n });
    link.close();
    return;
  }
  link.start({ onFrame() {}, onClose() {} });
  const t0 = shared();
  let sent = 0;
  while (sent < job.count) {
    const end = Math.min(job.count, sent + 1000);
    for (; sent < end; sent++) {
      // A PUB-shaped frame (INFO op so the reader accepts it without a CONNECT).
      const out = link.reserve(frameLen);
      const at = link.writeOffset;
      out.writeUInt32LE(frameLen, at);
      out[at + 4] = 0x02;
      out[at + 5] = 0;
      out.writeUInt16LE(1, at + 6);
      link.commit(frameLen);
    }
    if (link.pendingBytes > 1 << 20) while (link.pendingBytes > 1 << 18) await tick();
    else await tick();
  }
  while (link.pendingBytes > 0) await tick();
  post({ t0 });
  await new Promise((r) => setTimeout(r, 50));
  link.close();
}

// --- floor: raw SharedArrayBuffer, the same wait strategy, no protocol ---------------------
// Word layout (Int32 indices, each on its own 128-byte line): see bench/shm.ts RAW.

const RAW = { A_OUT: 0, B_IN: 32, B_OUT: 64, A_IN: 96, RELAY_BELL: 128, A_BELL: 160, B_BELL: 192, DONE: 224, T0: 256 / 2 } as const;
const waitAsync = (Atomics as unknown as { waitAsync(a: Int32Array, i: number, v: number): { async: boolean; value: Promise<string> | string } }).waitAsync;

/** Waits until word `idx` differs from `old`, as the strategy says; -1 past the deadline. */
async function rawWait(w: Int32Array, idx: number, old: number, bell: number, deadline: number): Promise<number> {
  let v: number;
  if (job.wait !== 'park') {
    const spinEnd = job.wait === 'spin' ? deadline : performance.now() + 0.05;
    for (let k = 1; ; k++) {
      if ((v = Atomics.load(w, idx)) !== old) return v;
      if ((k & 1023) === 0 && performance.now() > spinEnd) break;
    }
    if (job.wait === 'spin') return -1;
  }
  for (;;) {
    const seq = Atomics.load(w, bell);
    Atomics.store(w, bell + 1, 1);
    if ((v = Atomics.load(w, idx)) !== old) {
      Atomics.store(w, bell + 1, 0);
      return v;
    }
    const r = waitAsync(w, bell, seq);
    if (r.async) await r.value;
    Atomics.store(w, bell + 1, 0);
    if ((v = Atomics.load(w, idx)) !== old) return v;
    if (performance.now() > deadline) return -1;
  }
}

/** Publishes v on word idx and rings the peer's bell if it is parked. */
function rawPost(w: Int32Array, idx: number, v: number, peerBell: number): void {
  Atomics.store(w, idx, v);
  if (Atomics.load(w, peerBell + 1) !== 0) {
    Atomics.add(w, peerBell, 1);
    Atomics.notify(w, peerBell);
  }
}

/** Worker -> main thread relay -> this worker (the hop's two crossings); RTT recorded whole. */
async function rawHop(): Promise<void> {
  const w = new Int32Array(job.sab!);
  const h = histogram();
  const deadline = performance.now() + job.maxMs;
  for (let i = 1; i <= job.samples + job.warmup; i++) {
    const t0 = performance.now();
    rawPost(w, RAW.A_OUT, i, RAW.RELAY_BELL);
    if ((await rawWait(w, RAW.A_IN, i - 1, RAW.A_BELL, deadline)) < 0) break;
    if (i > job.warmup) h.recordValue(Math.max(1, Math.round((performance.now() - t0) * 1e6)));
    if (performance.now() > deadline) break;
  }
  Atomics.store(w, RAW.DONE, 1);
  rawPost(w, RAW.A_OUT, -1, RAW.RELAY_BELL);
  post(percentiles(h));
}

/**
 * Worker A -> relay -> worker B -> relay -> A: RTT/2 at A, one-way A -> B at B (shared
 * clock). With rawDirect, A writes B's word and B writes A's: no relay, one crossing per half.
 */
async function rawPing(): Promise<void> {
  const w = new Int32Array(job.sab!);
  const t = new Float64Array(job.sab!);
  const h = histogram();
  const deadline = performance.now() + job.maxMs;
  const [out, bell] = job.rawDirect ? [RAW.B_IN, RAW.B_BELL] : [RAW.A_OUT, RAW.RELAY_BELL];
  for (let i = 1; i <= job.samples + job.warmup; i++) {
    const t0 = shared();
    t[RAW.T0] = t0;
    rawPost(w, out, i, bell);
    if ((await rawWait(w, RAW.A_IN, i - 1, RAW.A_BELL, deadline)) < 0) break;
    if (i > job.warmup) h.recordValue(Math.max(1, Math.round(((shared() - t0) / 2) * 1e6)));
    if (performance.now() > deadline) break;
  }
  Atomics.store(w, RAW.DONE, 1);
  rawPost(w, out, -1, bell);
  post({ ...percentiles(h), roundTrips: Atomics.load(w, RAW.A_IN) });
}

async function rawPong(): Promise<void> {
  const w = new Int32Array(job.sab!);
  const t = new Float64Array(job.sab!);
  const h = histogram();
  const deadline = performance.now() + job.maxMs + 2000;
  let seen = 0;
  for (;;) {
    const v = await rawWait(w, RAW.B_IN, seen, RAW.B_BELL, deadline);
    if (v < 0 || Atomics.load(w, RAW.DONE) !== 0) break;
    seen = v;
    if (v > job.warmup) h.recordValue(Math.max(1, Math.round((shared() - t[RAW.T0]!) * 1e6)));
    if (job.rawDirect) rawPost(w, RAW.A_IN, v, RAW.A_BELL);
    else rawPost(w, RAW.B_OUT, v, RAW.RELAY_BELL);
  }
  post({ ...percentiles(h), roundTrips: seen });
}

// --- floor: MessagePort.postMessage through the main thread ------------------------------

/** Worker -> main -> this worker via postMessage (the main thread echoes); RTT recorded whole. */
async function portHop(): Promise<void> {
  const h = histogram();
  const deadline = performance.now() + job.maxMs;
  const port = parentPort!;
  let t0 = 0;
  let i = 0;
  await new Promise<void>((resolve) => {
    const on = (m: unknown) => {
      if (typeof m !== 'number') return;
      if (i++ >= job.warmup) h.recordValue(Math.max(1, Math.round((performance.now() - t0) * 1e6)));
      if (i < job.samples + job.warmup && performance.now() < deadline) {
        t0 = performance.now();
        port.postMessage(i);
      } else {
        port.off('message', on);
        resolve();
      }
    };
    port.on('message', on);
    t0 = performance.now();
    port.postMessage(0);
  });
  post(percentiles(h));
}

/** A -> main -> B -> main -> A via postMessage: RTT/2 at A, one-way at B. */
async function portPing(): Promise<void> {
  const h = histogram();
  const deadline = performance.now() + job.maxMs;
  const port = parentPort!;
  let t0 = 0;
  let i = 0;
  await new Promise<void>((resolve) => {
    const on = (m: unknown) => {
      if (typeof m !== 'number') return;
      if (i++ >= job.warmup) h.recordValue(Math.max(1, Math.round(((shared() - t0) / 2) * 1e6)));
      if (i < job.samples + job.warmup && performance.now() < deadline) {
        t0 = shared();
        port.postMessage(t0);
      } else {
        port.off('message', on);
        resolve();
      }
    };
    port.on('message', on);
    t0 = shared();
    port.postMessage(t0);
  });
  port.postMessage('stop');
  post(percentiles(h));
}

async function portPong(): Promise<void> {
  const h = histogram();
  const port = parentPort!;
  let i = 0;
  await new Promise<void>((resolve) => {
    port.on('message', (m: unknown) => {
      if (m === 'stop') return resolve();
      if (typeof m !== 'number') return;
      if (i++ >= job.warmup) h.recordValue(Math.max(1, Math.round((shared() - m) * 1e6)));
      port.postMessage(m);
    });
    port.postMessage('ready');
  });
  post(percentiles(h));
}

const roles: Record<string, () => Promise<void>> = {
  hop,
  ping,
  pong,
  'tp-pub': tpPub,
  'tp-sub': tpSub,
  'ring-tp-pub': () => ringTp('client'),
  'ring-tp-sub': () => ringTp('broker'),
  'raw-hop': rawHop,
  'raw-ping': rawPing,
  'raw-pong': rawPong,
  'port-hop': portHop,
  'port-ping': portPing,
  'port-pong': portPong,
};

// A pending Atomics.waitAsync does not keep a thread alive (the raw floors park on
// one); this does, until the role ends with process.exit.
setInterval(() => {}, 1 << 30);

const run = roles[job.role];
if (run === undefined) throw new Error(`unknown bench role ${job.role}`);
run().then(
  () => setTimeout(() => process.exit(0), 10),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
