/**
 * The slow-consumer policies of broker/policy.ts, unit by unit: Outbound (the fast path
 * into the link, and each policy at its bounds, over the hold ring of holdring.ts),
 * over a real inproc link whose reading end is paused, so the bytes in the link are
 * exactly what the test wrote. Time is a FakeClock; nothing waits on the wall clock.
 */
import { describe, expect, it } from 'vitest';
import { Outbound, POLICY_RANK, type LossCounters, type OutboundOwner, type OutboundPublisher } from '../../broker/policy.js';
import { SLOT_BYTES, spanOf } from '../../broker/holdring.js';
import { Limiter } from '../../broker/ratelimit.js';
import { FakeClock } from '../../runtime/clock.js';
import { MSG_HEADER, MsgView, Op, Policy, msgSize, writeMsgHeader } from '../../transports/protocol/index.js';
import { inprocPair, type InprocLink } from '../../transports/inproc.js';

/** A MSG frame of exactly `size` bytes on `subject`, its payload filled with `fill`. */
function msg(subject: string, size = 100, fill = 0, sid = 0): Buffer {
  const s = Buffer.byteLength(subject);
  const p = size - MSG_HEADER - s;
  const buf = Buffer.alloc(msgSize(s, 0, 0, p, false), fill);
  const at = writeMsgHeader(buf, 0, buf.length, Op.MSG, 0, 0, sid, s, 0, 0);
  buf.write(subject, at, 'utf8');
  return buf;
}

const view = new MsgView();
const describeFrame = (f: Buffer) => {
  if (f[4] === Op.LOSS) return { op: 'LOSS', sid: f.readUInt32LE(8), policy: f[6], dropped: f.readUInt32LE(12), conflated: f.readUInt32LE(16) };
  const v = view.parse(f, 0, f.length);
  return { op: 'MSG', subject: v.subject(), sid: v.sid, fill: f[f.length - 1], len: f.length };
};

function lossCounters(sid: number, policy: Policy): LossCounters {
  return { sid, policy, dropped: 0, conflated: 0, unreportedDropped: 0, unreportedConflated: 0 };
}

/** The consumer's end of an inproc link, paused: it reads only when told to. */
class Consumer {
  readonly frames: Buffer[] = [];
  readonly link: InprocLink;
  private readonly reader: InprocLink;
  private started = false;
  constructor() {
    [this.reader, this.link] = inprocPair('inproc://outbound-test', 1 << 24, 1 << 24);
  }

  /** Reads everything the link holds (microtasks and one macrotask turn; no timer). */
  async read(): Promise<ReturnType<typeof describeFrame>[]> {
    if (!this.started) {
      this.started = true;
      this.reader.start({ onFrame: (b, o, l) => this.frames.push(Buffer.from(b.subarray(o, o + l))), onClose: () => {} });
    } else {
      this.reader.resume();
    }
    await new Promise((r) => setImmediate(r));
    this.reader.pause();
    const got = this.frames.splice(0).map(describeFrame);
    return got;
  }
}

class Owner implements OutboundOwner {
  readonly slow: string[] = [];
  readonly drops = { oldest: 0, newest: 0, conflated: 0 };
  constructor(readonly link: InprocLink) {}
  slowConsumer(reason: string): void {
    this.slow.push(reason);
  }
  countDrops(oldest: number, newest: number, conflated: number): void {
    this.drops.oldest += oldest;
    this.drops.newest += newest;
    this.drops.conflated += conflated;
  }
}

class Publisher implements OutboundPublisher {
  blockedBy = new Set<object>();
  block(by: object): void {
    this.blockedBy.add(by);
  }
  unblock(by: object): void {
    this.blockedBy.delete(by);
  }
}

/**
 * What the consumer gets when it reads on and the session pumps at every drain, as
 * broker/session.ts does (onDrain -> pump), until nothing is held or in the link.
 */
async function drainAll(out: Outbound, consumer: Consumer): Promise<ReturnType<typeof describeFrame>[]> {
  const all: ReturnType<typeof describeFrame>[] = [];
  for (let i = 0; i < 1000; i++) {
    all.push(...(await consumer.read()));
    if (out.hold.length === 0 && consumer.link.pendingBytes === 0) break;
    out.pump();
  }
  return all;
}

interface Setup {
  highWater?: number;
  maxBytes?: number;
  maxMsgs?: number;
  limiter?: Limiter | null;
  clock?: FakeClock;
}

/** What one held 100-byte message costs against the bound: its bytes and its slot. */
const HELD = 100 + SLOT_BYTES;
/** The same for a conflatable one (its span is rounded up). */
const HELD_C = spanOf(100, true) + SLOT_BYTES;
/** The default bound: 100 bytes in the link and two held messages. */
const BOUND = 100 + 2 * HELD;

/** The held frames' last bytes (the `fill` of msg()), oldest first. */
const heldFills = (out: Outbound) => out.hold.toFrames().map((f) => f.at(-1));

/** An Outbound over a fresh paused consumer. Defaults: high water 0 (the second 100-byte message is held), BOUND bytes, no message bound. */
function outbound(o: Setup = {}) {
  const consumer = new Consumer();
  const owner = new Owner(consumer.link);
  const clock = o.clock ?? new FakeClock();
  const out = new Outbound(owner, o.highWater ?? 0, o.maxBytes ?? BOUND, o.maxMsgs ?? 0, o.limiter ?? null, clock);
  return { out, owner, consumer, clock, link: consumer.link };
}

/** Delivers a 100-byte message on `subject` with `policy`; returns the bytes queued. */
function send(out: Outbound, subject: string, policy: Policy, subs: LossCounters[], fill = 0, from: OutboundPublisher | null = null, sid = 0): number {
  const f = msg(subject, 100, fill);
  return out.deliver(f, 0, f.length, sid, subject, subs, policy, from);
}

describe('POLICY_RANK', () => {
  it('orders the policies from least to most lossy: block, disconnect, drop-oldest, drop-newest, conflate', () => {
    const order = [Policy.BLOCK, Policy.DISCONNECT, Policy.DROP_OLDEST, Policy.DROP_NEWEST, Policy.CONFLATE];
    const ranks = order.map((p) => POLICY_RANK[p]!);
    expect([...ranks].sort((a, b) => a - b)).toEqual(ranks);
  });
});

describe('Outbound', () => {
  it('a consumer that keeps up gets every message straight into the link: nothing held', async () => {
    const { out, consumer, link } = outbound({ highWater: 1000 });
    const sub = lossCounters(1, Policy.DROP_OLDEST);
    for (let i = 0; i < 5; i++) expect(send(out, 'a', Policy.DROP_OLDEST, [sub], i)).toBe(100);
    expect(out.hold.length).toBe(0);
    expect(link.pendingBytes).toBe(500);
    expect((await consumer.read()).map((f) => f.fill)).toEqual([0, 1, 2, 3, 4]);
  });

  it("patches the sid of its own copy (a queue delivery), never the caller's frame", async () => {
    const { out, consumer } = outbound({ highWater: 1000 });
    const f = msg('q', 100);
    out.deliver(f, 0, f.length, 42, 'q', [], Policy.DROP_OLDEST, null);
    expect(f.readUInt32LE(8)).toBe(0);
    expect((await consumer.read())[0]!.sid).toBe(42);
  });

  it('past the high-water mark, messages are held (not written) and count as pending', () => {
    const { out, link } = outbound();
    send(out, 'a', Policy.DROP_OLDEST, []);
    send(out, 'a', Policy.DROP_OLDEST, []);
    expect(link.pendingBytes).toBe(100);
    expect(out.hold.length).toBe(1);
    expect(out.pendingBytes).toBe(200);
    expect(out.stats.heldPeak).toBe(1);
    expect(out.stats.pendingPeak).toBe(200);
  });

  describe('drop-newest', () => {
    it('at the byte bound, the arriving message is dropped, counted on its subscriptions and reported as dropped-newest', () => {
      const { out, owner } = outbound();
      const sub = lossCounters(3, Policy.DROP_NEWEST);
      for (let i = 0; i < 3; i++) expect(send(out, 'a', Policy.DROP_NEWEST, [sub], i)).toBe(100);
      expect(send(out, 'a', Policy.DROP_NEWEST, [sub], 9)).toBe(0);
      expect(out.pendingBytes).toBe(300);
      expect(sub.dropped).toBe(1);
      expect(sub.unreportedDropped).toBe(1);
      expect(out.stats.droppedNewest).toBe(1);
      expect(owner.drops).toEqual({ oldest: 0, newest: 1, conflated: 0 });
      expect(heldFills(out)).toEqual([1, 2]); // the held ones are the first ones
    });

    it('at the message bound, likewise', () => {
      const { out } = outbound({ maxBytes: 1 << 20, maxMsgs: 2 });
      const sub = lossCounters(3, Policy.DROP_NEWEST);
      for (let i = 0; i < 4; i++) send(out, 'a', Policy.DROP_NEWEST, [sub], i);
      expect(out.hold.length).toBe(2);
      expect(sub.dropped).toBe(1);
    });
  });

  describe('drop-oldest', () => {
    it('at the byte bound, the oldest held message makes room for the arriving one', async () => {
      const { out, owner, consumer } = outbound();
      const sub = lossCounters(4, Policy.DROP_OLDEST);
      for (let i = 0; i < 5; i++) expect(send(out, 'a', Policy.DROP_OLDEST, [sub], i)).toBe(100);
      expect(out.pendingBytes).toBe(300);
      expect(sub.dropped).toBe(2);
      expect(out.stats.droppedOldest).toBe(2);
      expect(owner.drops).toEqual({ oldest: 2, newest: 0, conflated: 0 });
      // The link keeps message 0; the hold keeps the newest two; the gap is reported before them.
      expect((await drainAll(out, consumer)).map((f) => (f.op === 'MSG' ? f.fill : f.op))).toEqual([0, 'LOSS', 3, 4]);
    });

    it('at the message bound, likewise', () => {
      const { out } = outbound({ maxBytes: 1 << 20, maxMsgs: 2 });
      for (let i = 0; i < 5; i++) send(out, 'a', Policy.DROP_OLDEST, [], i);
      expect(out.hold.length).toBe(2);
      expect(heldFills(out)).toEqual([3, 4]);
    });

    it('a stuck consumer costs no allocation per message: the ring takes no slab or page once it is full, whatever the number of messages', () => {
      const { out } = outbound({ maxBytes: 64 * 1024 });
      for (let i = 0; i < 1000; i++) send(out, 'a', Policy.DROP_OLDEST, [], i & 0xff);
      const taken = out.hold.blocksTaken;
      const held = out.hold.length;
      for (let i = 0; i < 100_000; i++) send(out, 'b', Policy.DROP_OLDEST, [], i & 0xff);
      expect(out.hold.length).toBe(held);
      // Slabs leave at the head and come back at the tail (through the pool): a few per
      // slab's worth of messages, never one per message.
      expect(out.hold.blocksTaken - taken).toBeLessThan((100_000 * HELD) / out.hold.slabBytes + 100_000 / 1024 + 4);
      expect(out.hold.blocks).toBeLessThanOrEqual(Math.ceil((64 * 1024) / out.hold.slabBytes) + 3);
    });

    it('a message the link alone leaves no room for is dropped as newest, even with nothing held', () => {
      const { out, owner } = outbound({ highWater: 1000, maxBytes: 150 });
      const sub = lossCounters(4, Policy.DROP_OLDEST);
      send(out, 'a', Policy.DROP_OLDEST, [sub]); // into the link: 100 bytes
      const x = msg('x', 30);
      out.hold.push(x, 0, x.length, 0, Policy.DROP_OLDEST, [], null); // force the held path
      expect(send(out, 'a', Policy.DROP_OLDEST, [sub])).toBe(0);
      expect(owner.drops.newest).toBe(1);
      expect(sub.dropped).toBe(1);
    });
  });

  describe('conflate', () => {
    it('a held message is replaced in place by a newer one on its subject, keeping its queue position', async () => {
      const { out, owner, consumer } = outbound({ maxBytes: 1 << 20 });
      const px = lossCounters(5, Policy.CONFLATE);
      send(out, 'px', Policy.CONFLATE, [px], 0); // into the link
      send(out, 'px', Policy.CONFLATE, [px], 1);
      send(out, 'other', Policy.CONFLATE, [], 2);
      send(out, 'px', Policy.CONFLATE, [px], 3);
      send(out, 'px', Policy.CONFLATE, [px], 4);
      expect(out.hold.length).toBe(2);
      expect(px.conflated).toBe(2);
      expect(px.unreportedConflated).toBe(2);
      expect(out.stats.conflated).toBe(2);
      expect(owner.drops).toEqual({ oldest: 0, newest: 0, conflated: 2 });
      const got = await drainAll(out, consumer);
      expect(got[1]).toEqual({ op: 'LOSS', sid: 5, policy: Policy.CONFLATE, dropped: 0, conflated: 2 });
      expect(got.map((f) => f.op === 'MSG' && [f.subject, f.fill])).toEqual([['px', 0], false, ['px', 4], ['other', 2]]);
    });

    it('a newer message that fits the held span overwrites it in place; a larger one takes the tail, bytes corrected', () => {
      const { out } = outbound({ maxBytes: 1 << 20 });
      send(out, 'px', Policy.CONFLATE, []);
      send(out, 'px', Policy.CONFLATE, [], 1);
      send(out, 'other', Policy.CONFLATE, [], 5);
      send(out, 'px', Policy.CONFLATE, [], 2);
      expect(heldFills(out)).toEqual([2, 5]);
      const slightlyBigger = msg('px', 120, 3); // within the 128-byte span of a conflatable 100-byte frame
      out.deliver(slightlyBigger, 0, slightlyBigger.length, 0, 'px', [], Policy.CONFLATE, null);
      expect(heldFills(out)).toEqual([3, 5]);
      expect(out.hold.bytes).toBe(220);
      const bigger = msg('px', 160, 7);
      out.deliver(bigger, 0, bigger.length, 0, 'px', [], Policy.CONFLATE, null);
      expect(out.hold.length).toBe(2);
      expect(heldFills(out)).toEqual([5, 7]);
      expect(out.hold.toFrames().map((f) => f.length)).toEqual([100, 160]);
      expect(out.hold.bytes).toBe(260);
      expect(out.stats.conflated).toBe(3);
    });

    it('the loss of a replaced message is charged to the subscriptions it was for, and the new one is for its own', () => {
      const { out } = outbound({ maxBytes: 1 << 20 });
      const first = lossCounters(1, Policy.CONFLATE);
      const second = lossCounters(2, Policy.CONFLATE);
      send(out, 'px', Policy.CONFLATE, []);
      send(out, 'px', Policy.CONFLATE, [first]);
      send(out, 'px', Policy.CONFLATE, [second]);
      expect(first.conflated).toBe(1);
      expect(second.conflated).toBe(0);
      expect(out.hold.subsOf(out.hold.first)).toEqual([second]);
    });

    it('at the bound, a message on a new subject behaves as drop-oldest', () => {
      const { out, owner } = outbound({ maxBytes: 100 + 2 * HELD_C });
      for (const s of ['a', 'b', 'c', 'd']) send(out, s, Policy.CONFLATE, []);
      expect(out.hold.length).toBe(2);
      expect(owner.drops.oldest).toBe(1);
      expect(out.hold.conflatable('b')).toBe(-1);
      expect(out.hold.conflatable('d')).toBeGreaterThanOrEqual(0);
    });
  });

  describe('disconnect', () => {
    it('past the high-water mark, holds off the link and calls the consumer slow when one more would pass the bound', () => {
      const { out, owner, link } = outbound();
      for (let i = 0; i < 3; i++) send(out, 'a', Policy.DISCONNECT, []);
      expect(out.hold.length).toBe(2);
      expect(link.pendingBytes).toBe(100);
      expect(owner.slow).toEqual([]);
      expect(send(out, 'a', Policy.DISCONNECT, [])).toBe(0);
      expect(owner.slow).toEqual([`more than ${BOUND} bytes pending`]);
    });

    it('one message that carries a keeping-up link past the whole bound at once makes it a slow consumer', () => {
      const { out, owner } = outbound({ highWater: 1000, maxBytes: 50 });
      send(out, 'a', Policy.DISCONNECT, []);
      expect(owner.slow).toEqual(['more than 50 bytes pending']);
    });

    it('behind held messages, it holds too, and past the bound refuses the message and calls the consumer slow', () => {
      const { out, owner } = outbound({ maxMsgs: 3 });
      send(out, 'a', Policy.DROP_OLDEST, []);
      send(out, 'a', Policy.DROP_OLDEST, []); // held
      expect(send(out, 'a', Policy.DISCONNECT, [])).toBe(100);
      expect(out.hold.length).toBe(2);
      expect(send(out, 'a', Policy.DISCONNECT, [])).toBe(0);
      expect(owner.slow).toEqual([`more than ${BOUND} bytes or 3 messages pending`]);
    });
  });

  describe('block', () => {
    it('keeps every message, pauses the publisher, and releases it once the consumer has drained', async () => {
      const { out, owner, consumer } = outbound();
      const pub = new Publisher();
      for (let i = 0; i < 4; i++) expect(send(out, 'a', Policy.BLOCK, [], i, pub)).toBe(100);
      expect(pub.blockedBy.has(out)).toBe(true);
      expect(owner.slow).toEqual([]);
      expect(out.hold.length).toBe(3);
      expect((await drainAll(out, consumer)).map((f) => f.fill)).toEqual([0, 1, 2, 3]);
      expect(pub.blockedBy.has(out)).toBe(true); // until the pump that finds everything written
      out.pump();
      expect(pub.blockedBy.size).toBe(0);
    });

    it('past twice the bound with publishers paused, the consumer is slow after all', () => {
      const { out, owner } = outbound();
      const pub = new Publisher();
      // The link takes 100 bytes; then held messages up to twice the bound.
      const fit = Math.floor((2 * BOUND - 100) / HELD);
      for (let i = 0; i <= fit; i++) expect(send(out, 'a', Policy.BLOCK, [], i, pub)).toBe(100);
      expect(owner.slow).toEqual([]);
      expect(send(out, 'a', Policy.BLOCK, [], 9, pub)).toBe(0);
      expect(owner.slow).toEqual([`more than ${2 * BOUND} bytes pending with publishers blocked`]);
    });
  });

  describe('loss reports', () => {
    it('pump sends one LOSS per subscription with losses, ahead of the held messages, then forgets what it reported', async () => {
      const { out, consumer } = outbound({ maxBytes: 100 + HELD });
      const a = lossCounters(7, Policy.DROP_OLDEST);
      const b = lossCounters(8, Policy.DROP_OLDEST);
      send(out, 'a', Policy.DROP_OLDEST, [a, b], 0);
      send(out, 'a', Policy.DROP_OLDEST, [a, b], 1);
      send(out, 'a', Policy.DROP_OLDEST, [a], 2);
      send(out, 'a', Policy.DROP_OLDEST, [a], 3);
      expect([a.dropped, b.dropped]).toEqual([2, 1]);
      const got = await drainAll(out, consumer);
      expect(got.map((f) => f.op)).toEqual(['MSG', 'LOSS', 'LOSS', 'MSG']);
      expect(got.slice(1, 3)).toEqual([
        { op: 'LOSS', sid: 7, policy: Policy.DROP_OLDEST, dropped: 2, conflated: 0 },
        { op: 'LOSS', sid: 8, policy: Policy.DROP_OLDEST, dropped: 1, conflated: 0 },
      ]);
      expect([a.unreportedDropped, b.unreportedDropped]).toEqual([0, 0]);
      expect([a.dropped, b.dropped]).toEqual([2, 1]); // totals stay
      out.pump();
      expect(await consumer.read()).toEqual([]);
    });

    it('pump does nothing once the link is closed', async () => {
      const { out, link } = outbound();
      send(out, 'a', Policy.DROP_OLDEST, []);
      send(out, 'a', Policy.DROP_OLDEST, []);
      link.destroy();
      out.pump();
      expect(out.hold.length).toBe(1);
    });
  });

  describe('delivery rate limit', () => {
    it('holds what is over the rate and sends it when the limiter admits it again, on its own timer', () => {
      const clock = new FakeClock(1000);
      const limiter = new Limiter({ msgsPerSec: 10, burstMsgs: 1, action: 'refuse' }, clock.now());
      const { out, link } = outbound({ highWater: 1 << 20, maxBytes: 1 << 20, limiter, clock });
      send(out, 'a', Policy.DROP_OLDEST, [], 0);
      send(out, 'a', Policy.DROP_OLDEST, [], 1);
      expect(link.pendingBytes).toBe(100);
      expect(out.hold.length).toBe(1);
      expect(clock.pending).toBe(1);
      clock.advance(99);
      expect(out.hold.length).toBe(1);
      clock.advance(1);
      expect(out.hold.length).toBe(0);
      expect(link.pendingBytes).toBe(200);
      expect(clock.pending).toBe(0);
    });

    it('a pump the limiter refuses puts the message back at the head and waits again', () => {
      const clock = new FakeClock(0);
      const limiter = new Limiter({ msgsPerSec: 10, burstMsgs: 1, action: 'refuse' }, clock.now());
      const { out, link } = outbound({ highWater: 1 << 20, maxBytes: 1 << 20, limiter, clock });
      for (let i = 0; i < 3; i++) send(out, 'a', Policy.DROP_OLDEST, [], i);
      expect(out.hold.length).toBe(2);
      out.pump(); // early: refused
      expect(heldFills(out)).toEqual([1, 2]);
      clock.advance(100);
      expect(out.hold.length).toBe(1);
      clock.advance(100);
      expect(out.hold.length).toBe(0);
      expect(link.pendingBytes).toBe(300);
    });
  });

  it('close releases what it held, the publishers it paused and its timer', () => {
    const clock = new FakeClock(0);
    const limiter = new Limiter({ msgsPerSec: 1, burstMsgs: 1, action: 'refuse' }, clock.now());
    const { out } = outbound({ maxBytes: 1 << 20, limiter, clock });
    const pub = new Publisher();
    send(out, 'a', Policy.BLOCK, [], 0, pub); // into the link
    send(out, 'a', Policy.BLOCK, [], 1, pub); // held, and the publisher is paused
    send(out, 'a', Policy.DROP_OLDEST, [], 2); // held, and the rate-limit pump timer set
    expect(pub.blockedBy.has(out)).toBe(true);
    expect(out.hold.length).toBe(2);
    expect(clock.pending).toBe(1);
    out.close();
    expect(out.hold.length).toBe(0);
    expect(pub.blockedBy.size).toBe(0);
    expect(clock.pending).toBe(0);
  });
});
