/**
 * The source's side of loss repair, with time given as a number (ChannelSender.onNak
 * takes `now`): what a NAK is answered with, the holdoff that keeps one lost datagram
 * from being resent once per receiver asking, and the byte budget for repairs. No socket,
 * no timer, no waiting.
 */
import { describe, expect, it } from 'vitest';
import { DType, F_RETRANSMIT } from '../../transports/multicast/wire.js';
import { capture, put } from './multicast-sender.js';

/** A sender whose datagrams are captured, with `n` one-message datagrams (seq 1..n) already sent. */
function sent(n: number, o: { slots?: number; repairHoldoffMs?: number; repairBytesPerSec?: number } = {}) {
  const { s, out } = capture(1400, o.slots ?? 16, { repairHoldoffMs: o.repairHoldoffMs ?? 0, repairBytesPerSec: o.repairBytesPerSec ?? 0 });
  for (let i = 0; i < n; i++) {
    put(s, 'r.x', `m${i}`);
    s.flush();
  }
  const data = out.filter((d) => d[3] === DType.DATA);
  expect(data.map((d) => d.readUInt32LE(8))).toEqual([...Array(n).keys()].map((i) => i + 1));
  const size = data[0]?.length ?? 0;
  out.length = 0; // what follows is the answer to NAKs only
  return { s, out, size };
}

const seqs = (out: Buffer[], type: number) => out.filter((d) => d[3] === type).map((d) => d.readUInt32LE(8));

describe('answering NAKs (ChannelSender.onNak, time as a number)', () => {
  it('resends the datagrams asked for, from the ring, marked as retransmissions', () => {
    const { s, out } = sent(5);
    s.onNak(2, 3, 10_000);
    expect(seqs(out, DType.DATA)).toEqual([2, 3, 4]);
    expect(out.every((d) => (d[16]! & F_RETRANSMIT) !== 0)).toBe(true);
    expect(s.stats.retransmits).toBe(3);
    expect(s.stats.naksReceived).toBe(1);
  });

  it('does not resend past what was sent', () => {
    const { s, out } = sent(3);
    s.onNak(2, 10, 10_000);
    expect(seqs(out, DType.DATA)).toEqual([2, 3]);
  });

  it('the same datagram is resent at most once per repairHoldoffMs, however many receivers ask', () => {
    const { s, out } = sent(3, { repairHoldoffMs: 50 });
    s.onNak(2, 1, 10_000);
    s.onNak(2, 1, 10_010);
    s.onNak(2, 1, 10_049);
    expect(seqs(out, DType.DATA)).toEqual([2]);
    expect(s.stats.repairsSuppressed).toBe(2);
    s.onNak(2, 1, 10_050);
    expect(seqs(out, DType.DATA)).toEqual([2, 2]);
    // The holdoff is per datagram: another one asked for meanwhile is resent at once.
    s.onNak(3, 1, 10_051);
    expect(seqs(out, DType.DATA)).toEqual([2, 2, 3]);
  });

  it('repairBytesPerSec caps the bytes resent, and the budget refills with time', () => {
    const { s, out, size } = sent(10);
    // A budget of two datagrams per second, full at the start.
    const t = sent(10, { repairBytesPerSec: 2 * size });
    t.s.onNak(1, 10, 1_000);
    expect(seqs(t.out, DType.DATA)).toEqual([1, 2]);
    expect(t.s.stats.repairsThrottled).toBe(8);
    // Half a second later: one datagram's worth.
    t.out.length = 0;
    t.s.onNak(3, 8, 1_500);
    expect(seqs(t.out, DType.DATA)).toEqual([3]);
    // The budget never holds more than a second's worth, however long the pause.
    t.out.length = 0;
    t.s.onNak(4, 7, 60_000);
    expect(seqs(t.out, DType.DATA)).toEqual([4, 5]);
    // Without a budget, everything asked for is resent.
    s.onNak(1, 10, 1_000);
    expect(seqs(out, DType.DATA)).toHaveLength(10);
  });

  it('datagrams no longer in the ring are answered with one UNAVAILABLE naming the range', () => {
    const { s, out } = sent(20, { slots: 8 });
    const oldest = s.oldestRetained;
    expect(oldest).toBe(20 - 8 + 2); // the ring keeps slots - 1 datagrams
    s.onNak(oldest - 3, 5, 10_000);
    const unavailable = out.filter((d) => d[3] === DType.UNAVAILABLE);
    expect(unavailable).toHaveLength(1);
    expect(unavailable[0]!.readUInt32LE(8)).toBe(oldest - 3); // first
    expect(unavailable[0]!.readUInt32LE(12)).toBe(3); // count
    expect(s.stats.unavailable).toBe(3);
    expect(seqs(out, DType.DATA)).toEqual([oldest, oldest + 1]);
  });

  it("one NAK asks for at most a ring's worth of datagrams", () => {
    const { s, out } = sent(20, { slots: 8 });
    s.onNak(1, 1000, 10_000);
    expect(out.filter((d) => d[3] === DType.UNAVAILABLE).map((d) => d.readUInt32LE(12))).toEqual([8]);
    expect(seqs(out, DType.DATA)).toEqual([]);
  });
});
