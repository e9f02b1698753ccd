/**
 * Flow control on a FakeClock, with no socket: the window of a source's receivers
 * (FlowWindow: min and max, receivers that join, leave, fall silent or stall), a
 * ChannelSender that holds datagrams the window does not allow yet, and a receiver's
 * stream that reports its position and hears that it was dropped. Nothing waits on the
 * wall clock: time moves when the test says so.
 */
import { describe, expect, it } from 'vitest';
import { FakeClock } from '../../runtime/clock.js';
import { FlowWindow, type FlowHost, type FlowOptions, type FlowReceiver } from '../../transports/multicast/flow.js';
import { ChannelSender, RepairBudget, type SenderHost } from '../../transports/multicast/source.js';
import { RecvStream, type ReceiveCounters, type StreamHost } from '../../transports/multicast/receiver.js';
import { parseChannel } from '../../transports/multicast/endpoint.js';
import { DType, F_FLOW, HEADER, seqAdd } from '../../transports/multicast/wire.js';
import { Op, msgSize, writeMsgHeader } from '../../transports/protocol/index.js';

const BUDGET = 1000;
const ADDR = parseChannel('239.9.9.9:9999');

/** A FlowWindow whose tail the test moves, recording what it asks of its host. */
function windowOf(o: Partial<FlowOptions> = {}) {
  const clock = new FakeClock();
  const log = { dropped: [] as number[] };
  const host = {
    tail: 1,
    releases: 0,
    told: [] as { id: number; drops: number }[],
    release() {
      this.releases++;
    },
    tellSlow(r: FlowReceiver) {
      this.told.push({ id: r.id, drops: r.drops });
    },
    dropped(r: FlowReceiver) {
      log.dropped.push(r.id);
    },
  };
  const f = new FlowWindow(
    { mode: 'min', maxWindow: 100, budget: BUDGET, slowReceiverMs: 400, receiverTimeoutMs: 2000, maxReceivers: 8, ...o },
    host satisfies FlowHost,
    clock,
  );
  /** A STATUS from receiver id at position pos, advertising `window` datagrams. */
  const status = (id: number, pos: number, window = 50, leave = false) => f.onStatus(id, '10.0.0.1', 1000 + id, pos, window * BUDGET, leave);
  return { f, clock, host, log, status };
}

describe('FlowWindow: how far ahead of its receivers a source may go', () => {
  it('with no receiver the window is open; the first STATUS bounds it at position + window', () => {
    const { f, status } = windowOf();
    expect(f.bounded).toBe(false);
    status(1, 1, 50);
    expect(f.bounded).toBe(true);
    expect(f.limit).toBe(51);
  });

  it("min: the slowest receiver's position + window is the limit; its progress opens the window", () => {
    const { f, host, status } = windowOf({ mode: 'min' });
    host.tail = 40;
    status(1, 35, 50); // room 45
    status(2, 10, 50); // room 20
    expect(f.limit).toBe(60);
    const before = host.releases;
    status(2, 30, 50);
    expect(f.limit).toBe(80);
    expect(host.releases).toBe(before + 1);
  });

  it("max: the fastest receiver's position + window is the limit", () => {
    const { f, host, status } = windowOf({ mode: 'max' });
    host.tail = 40;
    status(1, 35, 50);
    status(2, 10, 50);
    expect(f.limit).toBe(85);
  });

  it('a window advertised in bytes becomes datagrams, capped by maxWindow; a position ahead of the tail counts as the tail', () => {
    const { f, host, status } = windowOf({ maxWindow: 30 });
    host.tail = 10;
    status(1, 500, 50); // 50 datagrams advertised, 30 allowed; position clamped to 10
    expect(f.limit).toBe(40);
    expect(f.receiver(1)!.pos).toBe(10);
  });

  it('positions only move forward: an older STATUS arriving late does not close the window again', () => {
    const { f, host, status } = windowOf();
    host.tail = 30;
    status(1, 25);
    status(1, 20);
    expect(f.receiver(1)!.pos).toBe(25);
    expect(f.limit).toBe(75);
  });

  it('sequence numbers wrap at 2^32: the window is computed in serial-number arithmetic', () => {
    const { f, host, status } = windowOf();
    host.tail = seqAdd(0xffff_fff0, 20); // 4 after the wrap
    status(1, 0xffff_fffa, 50); // 10 behind
    expect(f.limit).toBe(seqAdd(0xffff_fffa, 50));
  });

  it('a receiver that leaves (LEAVE) is forgotten at once; the last one leaving opens the window', () => {
    const { f, host, status } = windowOf();
    host.tail = 40;
    status(1, 35);
    status(2, 5);
    expect(f.limit).toBe(55);
    status(2, 5, 50, true);
    expect(f.limit).toBe(85);
    expect(f.stats.receiverLeaves).toBe(1);
    const r = host.releases;
    status(1, 35, 50, true);
    expect(f.bounded).toBe(false);
    expect(host.releases).toBe(r + 1);
  });

  it('a receiver silent for receiverTimeoutMs is forgotten (it died), and the window is open again', () => {
    const { f, clock, host, status } = windowOf({ receiverTimeoutMs: 2000, slowReceiverMs: 10_000 });
    host.tail = 5;
    status(1, 5);
    clock.advance(1999);
    expect(f.snapshot().receivers).toBe(1);
    clock.advance(600); // the tick runs every min(slow, timeout)/4 = 500 ms
    expect(f.snapshot().receivers).toBe(0);
    expect(f.stats.receiverTimeouts).toBe(1);
    expect(f.bounded).toBe(false);
  });

  it('a receiver whose full window is not consumed within slowReceiverMs is dropped, told, and no longer paces the source', () => {
    const { f, clock, host, log, status } = windowOf({ slowReceiverMs: 400 });
    host.tail = 10;
    status(1, 10, 50);
    status(2, 10, 50);
    // The source sends up to the limit; receiver 2 keeps up, receiver 1 stops.
    host.tail = 60;
    status(2, 60, 50);
    f.blocked(); // the sender holds a datagram it may not send
    expect(f.limit).toBe(60);
    clock.advance(399);
    expect(log.dropped).toEqual([]);
    // Receiver 2 stays healthy: it reports while the window stays shut by receiver 1.
    status(2, 60, 50);
    clock.advance(200);
    expect(log.dropped).toEqual([1]);
    expect(host.told).toEqual([{ id: 1, drops: 1 }]);
    expect(f.stats.slowDrops).toBe(1);
    expect(f.receiver(1)!.slow).toBe(true);
    expect(f.limit).toBe(110); // receiver 2's window alone
  });

  it('a dropped receiver is told again on its later STATUS while behind, and rejoins once within half a window of the tail', () => {
    const { f, clock, host, status } = windowOf({ slowReceiverMs: 400 });
    host.tail = 60;
    status(1, 10, 50);
    status(2, 60, 50);
    f.blocked();
    clock.advance(600);
    expect(host.told.length).toBe(1);
    clock.advance(100); // at least slowReceiverMs / 4 since it was told
    status(1, 12, 50); // woke up, still far behind
    expect(host.told).toEqual([
      { id: 1, drops: 1 },
      { id: 1, drops: 1 },
    ]);
    expect(f.receiver(1)!.slow).toBe(true);
    host.tail = 100;
    status(1, 80, 50); // 20 behind: within half its window
    expect(f.receiver(1)!.slow).toBe(false);
    status(2, 100, 50);
    expect(f.limit).toBe(130); // paced by it again: 80 + 50, not 100 + 50
  });

  it('the slowest receiver of a source at full speed is not dropped: it consumes each full window well within the deadline', () => {
    const { f, clock, host, log, status } = windowOf({ slowReceiverMs: 400 });
    host.tail = 1;
    status(1, 1, 50);
    status(2, 1, 50);
    // 100 rounds of 100 ms: the source fills the window, receiver 1 consumes it 90 ms later.
    for (let round = 0; round < 100; round++) {
      host.tail = f.limit;
      f.blocked();
      clock.advance(90);
      status(2, host.tail, 50);
      status(1, host.tail, 50);
      clock.advance(10);
    }
    expect(log.dropped).toEqual([]);
    expect(f.stats.slowDrops).toBe(0);
  });

  it('a receiver that goes silent while the source is idle is marked once the source fills its window, then dropped', () => {
    const { f, clock, host, log, status } = windowOf({ slowReceiverMs: 400, receiverTimeoutMs: 60_000 });
    host.tail = 10;
    status(1, 10, 50);
    clock.advance(5000); // idle, silent: not slow, nothing waits for it
    expect(log.dropped).toEqual([]);
    host.tail = 60; // the source sends a full window, the receiver never answers
    f.blocked();
    clock.advance(500);
    expect(log.dropped).toEqual([1]);
    expect(f.bounded).toBe(false);
  });

  it('status from more than maxReceivers receivers is counted and ignored', () => {
    const { f, status } = windowOf({ maxReceivers: 2 });
    status(1, 1);
    status(2, 1);
    status(3, 1);
    expect(f.snapshot().receivers).toBe(2);
    expect(f.stats.untracked).toBe(1);
  });
});

/** A flow-controlled ChannelSender whose datagrams are captured. */
function flowSender(o: { slots?: number; maxHeld?: number; maxWindow?: number } = {}) {
  const clock = new FakeClock();
  const out: Buffer[] = [];
  let releases = 0;
  const host: SenderHost = {
    session: 0x0badcafe,
    transmit: (b, off, len) => out.push(Buffer.from(b.subarray(off, off + len))),
    committed: () => {},
    testDrop: null,
    released: () => releases++,
  };
  const slots = o.slots ?? 32;
  const maxHeld = o.maxHeld ?? 8;
  const s = new ChannelSender(
    0,
    ADDR,
    host,
    {
      budget: BUDGET,
      slots,
      heartbeatMinMs: 5,
      heartbeatMaxMs: 1000,
      repairHoldoffMs: 0,
      repairBytesPerSec: 0,
      maxHeld,
      flow: { mode: 'min', maxWindow: o.maxWindow ?? slots - 2 - maxHeld, budget: BUDGET, slowReceiverMs: 400, receiverTimeoutMs: 5000, maxReceivers: 8 },
    },
    clock,
  );
  const one = (i: number) => {
    const v = `m${i}`;
    const total = msgSize(3, 0, 0, v.length, false);
    const b = s.reserve(total);
    let at = writeMsgHeader(b, s.writeOffset, total, Op.MSG, 0, 1, 0, 3, 0, 0);
    at += b.write('f.x', at);
    b.write(v, at);
    s.commit(total);
    s.flush();
  };
  const data = () => out.filter((d) => d[3] === DType.DATA && (d[16]! & 0x01) === 0).map((d) => d.readUInt32LE(8));
  return { s, out, clock, one, data, releases: () => releases };
}

describe('ChannelSender with flow control: datagrams wait in the ring for the window', () => {
  it('marks its datagrams FLOW; without receivers everything leaves at once', () => {
    const { s, out, one, data } = flowSender();
    for (let i = 0; i < 5; i++) one(i);
    expect(data()).toEqual([1, 2, 3, 4, 5]);
    expect(out.filter((d) => d[3] === DType.DATA).every((d) => (d[16]! & F_FLOW) !== 0)).toBe(true);
    expect(s.held).toBe(0);
  });

  it('holds what is beyond the window, announces only what was sent, and releases in order when a STATUS opens it', () => {
    const { s, out, one, data, clock, releases } = flowSender();
    s.flow!.onStatus(7, '10.0.0.7', 7000, 1, 3 * BUDGET, false); // window of 3 datagrams from seq 1
    for (let i = 0; i < 6; i++) one(i);
    expect(data()).toEqual([1, 2, 3]);
    expect(s.held).toBe(3);
    expect(s.heldBytes).toBeGreaterThan(0);
    expect(s.stats.windowFull).toBe(1);
    // A NAK for a held datagram is not answered: it was never sent, it leaves in turn.
    s.onNak(4, 2, clock.now());
    expect(s.stats.retransmits).toBe(0);
    // The idle heartbeat announces seq 3 as the last one sent.
    out.length = 0;
    clock.advance(10);
    const hb = out.find((d) => d[3] === DType.HEARTBEAT)!;
    expect(hb.readUInt32LE(8)).toBe(3);
    expect(hb[16]! & F_FLOW).toBe(F_FLOW);
    s.flow!.onStatus(7, '10.0.0.7', 7000, 3, 3 * BUDGET, false);
    expect(data()).toEqual([4, 5]);
    expect(s.held).toBe(1);
    expect(releases()).toBeGreaterThan(0);
    s.flow!.onStatus(7, '10.0.0.7', 7000, 6, 3 * BUDGET, false);
    expect(data()).toEqual([4, 5, 6]);
    expect(s.held).toBe(0);
    expect(s.heldBytes).toBe(0);
  });

  it('room() refuses a frame once maxHeld datagrams wait (nothing is written); close() sends what waits', () => {
    const { s, one, data } = flowSender({ maxHeld: 4 });
    s.flow!.onStatus(7, '10.0.0.7', 7000, 1, 1 * BUDGET, false);
    one(0); // seq 1 leaves
    for (let i = 1; i <= 4; i++) {
      expect(s.room(40)).toBe(true);
      one(i);
    }
    expect(s.held).toBe(4);
    expect(s.room(40)).toBe(false);
    expect(s.room(5000)).toBe(false); // a fragmented frame needs several
    s.close();
    expect(data()).toEqual([1, 2, 3, 4, 5]);
  });

  it('a receiver that stalls is dropped after slowReceiverMs and what waited for it leaves', () => {
    const { s, clock, one, data } = flowSender();
    s.flow!.onStatus(7, '10.0.0.7', 7000, 1, 2 * BUDGET, false);
    for (let i = 0; i < 4; i++) one(i);
    expect(data()).toEqual([1, 2]);
    clock.advance(600);
    expect(s.stats.slowReceivers).toBe(1);
    expect(data()).toEqual([1, 2, 3, 4]);
  });
});

describe('the per-receiver repair budget', () => {
  it('is a token bucket of bytes per second, one second as burst', () => {
    const b = new RepairBudget(1000);
    expect(b.take(600, 10_000)).toBe(true);
    expect(b.take(600, 10_000)).toBe(false);
    expect(b.take(600, 10_200)).toBe(true); // 400 left + 200 refilled
    expect(new RepairBudget(0).take(1e9, 0)).toBe(true); // 0: no limit
  });

  it("a NAK over the receiver's budget is not answered (counted), while the channel's budget is untouched", () => {
    const { s, one } = flowSender();
    for (let i = 0; i < 5; i++) one(i);
    const who = new RepairBudget(1); // next to nothing
    who.take(1, 10_000);
    s.onNak(2, 3, 10_000, who);
    expect(s.stats.retransmits).toBe(0);
    expect(s.stats.repairsThrottledReceiver).toBe(3);
    s.onNak(2, 3, 10_000, null);
    expect(s.stats.retransmits).toBe(3);
  });
});

/** A receiving stream with a host that records its STATUS reports and SLOW notices. */
function streamOf(statusEvery = 4) {
  const clock = new FakeClock();
  const reports: { next: number; leave: boolean }[] = [];
  const naks: Buffer[] = [];
  const slows: number[] = [];
  const counters: ReceiveCounters = {
    datagramsIn: 0,
    duplicates: 0,
    outOfOrder: 0,
    naksSent: 0,
    gapsRepaired: 0,
    lostDatagrams: 0,
    lostMessages: 0,
    badDatagrams: 0,
    statusSent: 0,
    slowDrops: 0,
  };
  const host: StreamHost = {
    ro: { nakBackoffMs: 2, nakRetryMs: 10, nakMaxRetries: 3, maxReorder: 64, maxMessageBytes: 1 << 20 },
    clock,
    deliverFrame: () => {},
    lost: () => {},
    repaired: () => {},
    sendNak: (b) => naks.push(Buffer.from(b)),
    sendStatus: (st, leave) => {
      reports.push({ next: st.next, leave });
      st.reported = st.next;
      st.statusEvery = statusEvery;
    },
    slow: (_st, pos) => slows.push(pos),
    counters,
  };
  const st = new RecvStream(host, 0, ADDR, 0x0badcafe, '10.0.0.1', 5000);
  /** An empty DATA datagram (no frames) with seq and FLOW. */
  const dg = (seq: number, flags = F_FLOW) => {
    const d = Buffer.alloc(HEADER);
    d[0] = 0x48;
    d[1] = 0x4d;
    d[2] = 1;
    d[3] = DType.DATA;
    d.writeUInt32LE(0x0badcafe, 4);
    d.writeUInt32LE(seq, 8);
    d.writeUInt32LE(seq, 12);
    d[16] = flags;
    return d;
  };
  return { st, reports, slows, dg, naks, clock };
}

describe('RecvStream: what a receiver reports to a flow-controlled source', () => {
  it('nothing to a source without FLOW', () => {
    const { st, reports, dg } = streamOf();
    for (let s = 1; s <= 20; s++) st.onData(dg(s, 0));
    expect(reports).toEqual([]);
  });

  it('a STATUS at once on the first FLOW datagram, then one per statusEvery datagrams delivered', () => {
    const { st, reports, dg } = streamOf(4);
    for (let s = 1; s <= 10; s++) st.onData(dg(s));
    expect(reports.map((r) => r.next)).toEqual([1, 5, 9]);
  });

  it('the position reported stops at a gap: what is held out of order is not consumed', () => {
    const { st, reports, dg } = streamOf(2);
    st.onData(dg(1));
    st.onData(dg(2));
    for (let s = 4; s <= 9; s++) st.onData(dg(s)); // seq 3 missing
    expect(reports.map((r) => r.next)).toEqual([1, 3]);
    st.onData(dg(3)); // repaired: everything up to 9 is consumed
    expect(reports.at(-1)!.next).toBe(10);
  });

  it('NAKs are coalesced: every missing range of a round in one datagram, the first in the header', () => {
    const { st, dg, naks, clock } = streamOf();
    for (const s of [1, 3, 5, 6, 9]) st.onData(dg(s)); // 2, 4, 7-8 missing
    clock.advance(3); // past the NAK back-off
    expect(naks.length).toBe(1);
    const n = naks[0]!;
    expect(n[3]).toBe(DType.NAK);
    expect([n.readUInt32LE(8), n.readUInt32LE(12)]).toEqual([2, 1]);
    expect(n.readUInt16LE(HEADER + 6)).toBe(2); // more ranges
    expect([n.readUInt32LE(28), n.readUInt32LE(32), n.readUInt32LE(36), n.readUInt32LE(40)]).toEqual([4, 1, 7, 2]);
    expect(n.length).toBe(28 + 16);
  });

  it('SLOW is told once per drop, whatever the number of copies the source sends', () => {
    const { st, slows } = streamOf();
    st.onSlow(1, 40);
    st.onSlow(1, 40);
    st.onSlow(2, 90);
    expect(slows).toEqual([40, 90]);
  });
});
