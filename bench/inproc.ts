/**
 * The inproc transport against the floors of a same-thread asynchronous delivery, in
 * the same run (npm run bench -- --only inproc).
 *
 * Every system moves the same 16-byte payload on the same subject, one message in
 * flight: the next is published on the next event-loop turn (setImmediate) once the
 * previous has reached its callback, as in bench/hop.ts. Latency = publish call to
 * subscriber callback, on this thread's clock.
 *  - floor-1-handoff: the publisher encodes a PUB frame with hopbus's codec
 *    (writeMsgHeader, the subject, the payload) into a reused buffer and schedules one
 *    microtask; that parses the frame (checkFrame, MsgView), decodes the subject and
 *    hands a view of the payload to the callback. The least an asynchronous delivery
 *    with this codec can do.
 *  - floor-2-handoffs: the same with a broker's shape: a first microtask parses the PUB,
 *    looks its subject up in a Map, copies the frame as a MSG into the subscriber's
 *    buffer and schedules a second microtask, which parses and calls back. No
 *    subscriptions tree, policies, counters, limits or monitoring.
 *  - hopbus-inproc: startBroker in this process, two clients on broker.endpoint('inproc').
 * Each run measures all three, interleaved; the median of the runs with its spread.
 */
import { startBroker } from '../broker/index.js';
import { connectBroker, type Bus } from '../client/index.js';
import { MsgView, Op, checkFrame, msgSize, writeMsgHeader } from '../transports/protocol/index.js';
import { histogram, medianOf, nowNs, percentiles, type Percentiles } from './stats.js';

const SUBJECT = 'bench.hop';
const PAYLOAD = Buffer.alloc(16, 7);

type OnMsg = (subject: string, data: Buffer) => void;

/** One message in flight, `samples` after `warmup`: publish call to callback. */
function hopLoop(publish: () => void, subscribe: (cb: () => void) => void, samples: number, warmup: number): Promise<Percentiles> {
  const h = histogram();
  let t0 = 0;
  let i = 0;
  return new Promise((resolve) => {
    const send = () => {
      t0 = nowNs();
      publish();
    };
    subscribe(() => {
      const dt = nowNs() - t0;
      if (i++ >= warmup) h.recordValue(Math.max(1, Math.round(dt)));
      if (i < samples + warmup) setImmediate(send);
      else resolve(percentiles(h));
    });
    send();
  });
}

/** The cheapest microtask there is: a reaction on a settled promise (queueMicrotask costs an AsyncResource and a bound function per call). */
const RESOLVED = Promise.resolve();

/** A frame buffer one side fills and the other reads in a microtask. */
class Handoff {
  buf = Buffer.allocUnsafe(64 * 1024);
  used = 0;
  private queued = false;
  private readonly view = new MsgView();
  constructor(private readonly onFrame: (buf: Buffer, v: MsgView, off: number, len: number) => void) {}

  private readonly task = (): void => {
    this.queued = false;
    const b = this.buf;
    const n = this.used;
    this.used = 0;
    let off = 0;
    while (off < n) {
      const len = (b[off]! | (b[off + 1]! << 8) | (b[off + 2]! << 16) | (b[off + 3]! << 24)) >>> 0;
      if (checkFrame(b, off, len) !== null) throw new Error('bad frame');
      this.onFrame(b, this.view.parse(b, off, len), off, len);
      off += len;
    }
  };

  committed(n: number): void {
    this.used += n;
    if (!this.queued) {
      this.queued = true;
      void RESOLVED.then(this.task);
    }
  }
}

function encodePub(h: Handoff): void {
  const total = msgSize(SUBJECT.length, 0, 0, PAYLOAD.length, false);
  const b = h.buf;
  let p = writeMsgHeader(b, h.used, total, Op.PUB, 0, 0, 0, SUBJECT.length, 0, 0);
  for (let i = 0; i < SUBJECT.length; i++) b[p + i] = SUBJECT.charCodeAt(i);
  p += SUBJECT.length;
  for (let i = 0; i < PAYLOAD.length; i++) b[p + i] = PAYLOAD[i]!;
  h.committed(total);
}

function floor1(samples: number, warmup: number): Promise<Percentiles> {
  let handler: OnMsg = () => undefined;
  const h = new Handoff((b, v) => handler(v.subject(), b.subarray(v.payloadOff, v.payloadOff + v.payloadLen)));
  return hopLoop(
    () => encodePub(h),
    (cb) => (handler = cb),
    samples,
    warmup,
  );
}

function floor2(samples: number, warmup: number): Promise<Percentiles> {
  let handler: OnMsg = () => undefined;
  const subs = new Map([[SUBJECT, 1]]);
  const toSub = new Handoff((b, v) => handler(v.subject(), b.subarray(v.payloadOff, v.payloadOff + v.payloadLen)));
  const toBroker = new Handoff((b, v, off, len) => {
    if (subs.get(v.subject()) === undefined) return;
    b[off + 4] = Op.MSG;
    b.copy(toSub.buf, toSub.used, off, off + len);
    toSub.committed(len);
  });
  return hopLoop(
    () => encodePub(toBroker),
    (cb) => (handler = cb),
    samples,
    warmup,
  );
}

function hopbusHop(pub: Bus, sub: Bus, samples: number, warmup: number): Promise<Percentiles> {
  let handler: () => void = () => undefined;
  const s = sub.subscribe(SUBJECT, () => handler());
  return sub.flush().then(async () => {
    const r = await hopLoop(
      () => pub.publish(SUBJECT, PAYLOAD),
      (cb) => (handler = cb),
      samples,
      warmup,
    );
    s.unsubscribe();
    return r;
  });
}

export const INPROC_SYSTEMS = ['floor-1-handoff', 'floor-2-handoffs', 'hopbus-inproc'] as const;

export async function benchInproc(opts: { runs: number; samples: number; warmup: number }): Promise<Map<string, Percentiles[]>> {
  const b = await startBroker({ host: '127.0.0.1', port: 0, logLevel: 'silent' });
  const runs = new Map<string, Percentiles[]>(INPROC_SYSTEMS.map((s) => [s, []]));
  try {
    const pub = await connectBroker(b.endpoint('inproc'), { name: 'bench-pub' });
    const sub = await connectBroker(b.endpoint('inproc'), { name: 'bench-sub' });
    for (let r = 0; r < opts.runs; r++) {
      runs.get('floor-1-handoff')!.push(await floor1(opts.samples, opts.warmup));
      runs.get('floor-2-handoffs')!.push(await floor2(opts.samples, opts.warmup));
      runs.get('hopbus-inproc')!.push(await hopbusHop(pub, sub, opts.samples, opts.warmup));
    }
    await pub.close();
    await sub.close();
  } finally {
    await b.close();
  }
  return runs;
}

/** The medians of each system's runs. */
export function inprocMedians(runs: Map<string, Percentiles[]>): Map<string, ReturnType<typeof medianOf>> {
  return new Map([...runs].map(([k, v]) => [k, medianOf(v)]));
}
