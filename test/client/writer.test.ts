/**
 * client/writer.ts: the one frame layout both clients write, read back with the
 * decoder the broker uses (MsgView).
 */
import { describe, expect, it } from 'vitest';
import { FrameWriter, type WriteTarget } from '../../client/writer.js';
import { encodeHeaders, unpackr } from '../../client/codec.js';
import { MaxPayloadError, SubjectError } from '../../client/index.js';
import { FLAG_REQUEST, FLAG_TS, MSG_HEADER, MsgView, Op, PayloadKind } from '../../transports/protocol/index.js';
import { readU64 } from '../../runtime/clock.js';

/** A write target over one growing buffer, as a link's reserve/commit is. */
class Sink implements WriteTarget {
  buf = Buffer.alloc(1 << 16);
  used = 0;
  frames: [number, number][] = [];
  get writeOffset(): number {
    return this.used;
  }
  reserve(n: number): Buffer {
    expect(this.used + n).toBeLessThanOrEqual(this.buf.length);
    return this.buf;
  }
  commit(n: number): void {
    this.frames.push([this.used, n]);
    this.used += n;
  }
  view(i: number): MsgView {
    const [off, len] = this.frames[i]!;
    expect(this.buf.readUInt32LE(off)).toBe(len);
    return new MsgView().parse(this.buf, off, len);
  }
}

function write(
  wr: FrameWriter,
  sink: WriteTarget,
  subject: string,
  data: unknown,
  o: { reply?: string; headers?: Buffer | null; flags?: number; ts?: boolean; op?: Op.PUB | Op.MSG; sid?: number } = {},
): number {
  wr.subject(subject);
  wr.payload(data, Infinity);
  const total = wr.size(o.reply ?? '', o.headers ?? null, o.flags ?? 0, o.ts ?? false);
  wr.spec.op = o.op ?? Op.PUB;
  wr.spec.sid = o.sid ?? 0;
  wr.spec.sentAt = 0;
  wr.spec.brokerAt = 0;
  wr.spec.weight = 0;
  wr.encode(sink);
  wr.done();
  return total;
}

describe('FrameWriter', () => {
  it('writes a PUB with an ASCII subject, reply, headers and a small raw payload that the decoder reads back', () => {
    const wr = new FrameWriter();
    const sink = new Sink();
    const headers = encodeHeaders({ k: 'v' }, 1024);
    const total = write(wr, sink, 'md.EURUSD', new Uint8Array([1, 2, 3]), { reply: '_INBOX.x.1', headers, flags: FLAG_REQUEST, sid: 7 });
    const v = sink.view(0);
    expect(sink.frames[0]![1]).toBe(total);
    expect(v.op).toBe(Op.PUB);
    expect(v.sid).toBe(7);
    expect(v.flags).toBe(FLAG_REQUEST);
    expect(v.subject()).toBe('md.EURUSD');
    expect(v.reply()).toBe('_INBOX.x.1');
    expect(unpackr.unpack(v.buf.subarray(v.headersOff, v.headersOff + v.headersLen))).toEqual({ k: 'v' });
    expect(v.kind).toBe(PayloadKind.RAW);
    expect([...v.buf.subarray(v.payloadOff, v.payloadOff + v.payloadLen)]).toEqual([1, 2, 3]);
  });

  it('writes non-ASCII subjects, UTF-8 text, msgpack values and payloads over the byte-loop size', () => {
    const wr = new FrameWriter();
    const sink = new Sink();
    const big = Buffer.alloc(1000, 7);
    write(wr, sink, 'prix.café', 'héllo');
    write(wr, sink, 'a.b', { px: 1.5 });
    write(wr, sink, 'a.c', big);
    const [t, m, b] = [sink.view(0), sink.view(1), sink.view(2)];
    expect(t.subject()).toBe('prix.café');
    expect(t.kind).toBe(PayloadKind.UTF8);
    expect(t.buf.toString('utf8', t.payloadOff, t.payloadOff + t.payloadLen)).toBe('héllo');
    expect(m.kind).toBe(PayloadKind.MSGPACK);
    expect(unpackr.unpack(m.buf.subarray(m.payloadOff, m.payloadOff + m.payloadLen))).toEqual({ px: 1.5 });
    expect(Buffer.compare(b.buf.subarray(b.payloadOff, b.payloadOff + b.payloadLen), big)).toBe(0);
    // done() let go of the string; a raw payload after a text one is written as bytes.
    expect(wr.spec.p.text).toBe('');
  });

  it('stamps a timestamped frame with the send and broker times, and its sample weight', () => {
    const wr = new FrameWriter();
    const sink = new Sink();
    wr.subject('t');
    wr.payload('x', Infinity);
    wr.size('', null, 0, true);
    Object.assign(wr.spec, { op: Op.MSG, sid: 0, sentAt: 123_456_789_012_345, brokerAt: 42, weight: 16 });
    wr.encode(sink);
    const v = sink.view(0);
    expect(v.flags & FLAG_TS).toBe(FLAG_TS);
    expect(v.op).toBe(Op.MSG);
    expect(v.buf[sink.frames[0]![0] + 7]).toBe(16);
    expect(readU64(v.buf, v.tsOff)).toBe(123_456_789_012_345);
    expect(readU64(v.buf, v.tsOff + 8)).toBe(42);
    expect(v.tsOff).toBe(sink.frames[0]![0] + MSG_HEADER);
  });

  it('encodes one spec into several targets (direct peers and the broker) with the same bytes', () => {
    const wr = new FrameWriter();
    const a = new Sink();
    const b = new Sink();
    wr.subject('fan.out');
    wr.payload('same', Infinity);
    const total = wr.size('', null, 0, false);
    wr.encode(a);
    wr.encode(b);
    wr.done();
    expect(Buffer.compare(a.buf.subarray(0, total), b.buf.subarray(0, total))).toBe(0);
  });

  it('refuses an invalid subject and an oversized payload before anything is written', () => {
    const wr = new FrameWriter();
    expect(() => wr.subject('bad..subject')).toThrow(SubjectError);
    expect(() => wr.payload('x'.repeat(11), 10)).toThrow(MaxPayloadError);
    expect(wr.spec.p.text).toBe('');
  });

  it('remembers validated subjects with their length, negated when not ASCII', () => {
    const wr = new FrameWriter();
    expect(wr.subjectMeta('abc')).toBe(3);
    expect(wr.subjectMeta('é')).toBe(-2);
    expect(wr.subjectMeta('abc')).toBe(3);
  });
});
