import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  ErrCode,
  FLAG_TS,
  Op,
  ProtocolError,
  encodeErr,
  encodeHandshake,
  msgSize,
  subSize,
  writeBare,
  writeMsgHeader,
  writeOk,
  writeSub,
  writeUnsub,
} from '../../transports/protocol/index.js';
import { FrameReader, type FrameSink } from '../../transports/reader.js';

// --- frames -------------------------------------------------------------------------

function pub(subject: string, payload: Uint8Array | string, opts: { reply?: string; headers?: Uint8Array; ts?: boolean; op?: number } = {}): Buffer {
  const p = typeof payload === 'string' ? Buffer.from(payload) : Buffer.from(payload);
  const s = Buffer.byteLength(subject);
  const r = Buffer.byteLength(opts.reply ?? '');
  const h = opts.headers?.length ?? 0;
  const total = msgSize(s, r, h, p.length, opts.ts ?? false);
  const buf = Buffer.alloc(total);
  let at = writeMsgHeader(buf, 0, total, opts.op ?? Op.PUB, opts.ts ? FLAG_TS : 0, 0, 0, s, r, h);
  if (opts.ts) {
    buf.writeBigUInt64LE(123n, at);
    at += 16;
  }
  at += buf.write(subject, at);
  at += buf.write(opts.reply ?? '', at);
  if (opts.headers) at += Buffer.from(opts.headers).copy(buf, at);
  p.copy(buf, at);
  return buf;
}

function subFrame(sid: number, pattern: string, queue?: string): Buffer {
  const buf = Buffer.alloc(subSize(Buffer.byteLength(pattern), queue ? Buffer.byteLength(queue) : 0));
  writeSub(buf, 0, sid, pattern, queue);
  return buf;
}

function bare(op: Op.PING | Op.PONG): Buffer {
  const b = Buffer.alloc(6);
  writeBare(b, 0, op);
  return b;
}

function unsub(sid: number, max: number): Buffer {
  const b = Buffer.alloc(16);
  writeUnsub(b, 0, sid, max);
  return b;
}

function ok(ref: number): Buffer {
  const b = Buffer.alloc(12);
  writeOk(b, 0, ref);
  return b;
}

/** A frame of `len` bytes with op `op`, the rest zero (so it may be invalid on purpose). */
function raw(len: number, op: number, declared = len): Buffer {
  const b = Buffer.alloc(len);
  b.writeUInt32LE(declared, 0);
  b[4] = op;
  return b;
}

/** One of every op, with every optional PUB/MSG part. */
const SAMPLES: Buffer[] = [
  encodeHandshake(Op.CONNECT, Buffer.from([0x80])),
  encodeHandshake(Op.INFO, Buffer.from([0x81, 0xa1, 0x61, 0x01])),
  pub('md.EURUSD.bid', '1.0712'),
  pub('a.b', Buffer.alloc(300, 7), { reply: '_INBOX.x.1', headers: Buffer.from([0x80]), ts: true, op: Op.MSG }),
  subFrame(1, 'md.*.bid'),
  subFrame(2, 'orders.>', 'workers'),
  unsub(1, 10),
  bare(Op.PING),
  bare(Op.PONG),
  ok(2),
  encodeErr(ErrCode.BAD_SUBJECT, 'invalid subject "a..b"', 3, false),
];

const frameArb: fc.Arbitrary<Buffer> = fc.oneof(
  fc
    .record({
      subject: fc.string({ unit: 'binary', minLength: 1, maxLength: 30 }),
      payload: fc.uint8Array({ maxLength: 400 }),
      reply: fc.string({ unit: 'binary', maxLength: 20 }),
      headers: fc.uint8Array({ maxLength: 20 }),
      ts: fc.boolean(),
    })
    .map((m) => pub(m.subject, m.payload, m)),
  fc
    .tuple(fc.nat(), fc.string({ unit: 'binary', minLength: 1, maxLength: 20 }), fc.option(fc.string({ minLength: 1, maxLength: 8 }), { nil: undefined }))
    .map(([sid, p, q]) => subFrame(sid, p, q)),
  fc.tuple(fc.nat(), fc.nat()).map(([sid, max]) => unsub(sid, max)),
  fc.constantFrom(Op.PING, Op.PONG).map((op) => bare(op)),
  fc.nat().map((r) => ok(r)),
  fc.tuple(fc.integer({ min: 1, max: 13 }), fc.string({ maxLength: 60 })).map(([c, t]) => encodeErr(c, t)),
  fc.uint8Array({ maxLength: 50 }).map((b) => encodeHandshake(Op.CONNECT, b)),
);

// --- helpers ------------------------------------------------------------------------

/** Collects emitted frames as views (not copies), plus copies made at emission time. */
class Collect implements FrameSink {
  views: Buffer[] = [];
  copies: Buffer[] = [];
  onFrame(buf: Buffer, off: number, len: number): void {
    this.views.push(buf.subarray(off, off + len));
    this.copies.push(Buffer.from(buf.subarray(off, off + len)));
  }
}

/** Pushes `bytes` cut at the given offsets (sorted, inside the buffer). */
function pushCuts(reader: FrameReader, bytes: Buffer, cuts: number[], sink: FrameSink): void {
  let prev = 0;
  for (const c of [...cuts, bytes.length]) {
    reader.push(bytes.subarray(prev, c), sink);
    prev = c;
  }
}

function protocolError(fn: () => void): ProtocolError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ProtocolError);
    return err as ProtocolError;
  }
  throw new Error('expected a ProtocolError, nothing was thrown');
}

const MAX = 1 << 20;

// --- tests --------------------------------------------------------------------------

describe('FrameReader: splitting', () => {
  it('one frame split at every possible byte boundary comes out once, whole', () => {
    for (const f of SAMPLES) {
      for (let i = 1; i < f.length; i++) {
        const r = new FrameReader(MAX);
        const sink = new Collect();
        r.push(f.subarray(0, i), sink);
        expect(sink.copies).toHaveLength(0);
        expect(r.buffered).toBe(i);
        r.push(f.subarray(i), sink);
        expect(sink.copies).toEqual([f]);
        expect(r.buffered).toBe(0);
      }
    }
  });

  it('one frame fed one byte at a time comes out once, whole', () => {
    for (const f of SAMPLES) {
      const r = new FrameReader(MAX);
      const sink = new Collect();
      for (let i = 0; i < f.length; i++) {
        expect(sink.copies).toHaveLength(0);
        r.push(f.subarray(i, i + 1), sink);
      }
      expect(sink.copies).toEqual([f]);
    }
  });

  it('a length prefix split over 2, 3 or 4 chunks is reassembled', () => {
    const f = SAMPLES[3]!;
    const cutsList = [[1], [2], [3], [4], [1, 2], [1, 3], [2, 3], [1, 2, 3], [1, 2, 3, 4], [3, 4, 5]];
    for (const cuts of cutsList) {
      const r = new FrameReader(MAX);
      const sink = new Collect();
      // A whole frame first, so the split prefix starts mid-chunk.
      const bytes = Buffer.concat([bare(Op.PING), f, bare(Op.PONG)]);
      pushCuts(
        r,
        bytes,
        cuts.map((c) => c + 6),
        sink,
      );
      expect(sink.copies).toEqual([bare(Op.PING), f, bare(Op.PONG)]);
    }
  });

  it('many frames in one chunk come out in order, in place (views of the chunk, no copy)', () => {
    const frames = Array.from({ length: 1000 }, (_, i) =>
      i % 3 === 0 ? pub(`s.${i}`, `payload ${i}`) : i % 3 === 1 ? subFrame(i + 1, `p.${i}`) : bare(Op.PING),
    );
    const chunk = Buffer.concat(frames);
    const r = new FrameReader(MAX);
    const seen: { buf: Buffer; off: number; len: number }[] = [];
    r.push(chunk, { onFrame: (buf, off, len) => seen.push({ buf, off, len }) });
    expect(seen).toHaveLength(1000);
    let off = 0;
    for (let i = 0; i < frames.length; i++) {
      expect(seen[i]!.buf).toBe(chunk);
      expect(seen[i]!.off).toBe(off);
      expect(seen[i]!.len).toBe(frames[i]!.length);
      off += frames[i]!.length;
    }
    expect(r.buffered).toBe(0);
  });

  it('a range of a buffer reads like that subarray: frames in place at their offsets, a partial frame at the end carried over', () => {
    const frames = [pub('a.b', 'one'), pub('c.d', 'two'), pub('e.f', 'three')];
    const all = Buffer.concat([Buffer.from('junk'), ...frames, Buffer.from('tail')]);
    const r = new FrameReader(MAX);
    const seen: { buf: Buffer; off: number; len: number }[] = [];
    const sink: FrameSink = { onFrame: (buf, off, len) => seen.push({ buf, off, len }) };
    // The first two frames and 5 bytes of the third.
    const end = 4 + frames[0]!.length + frames[1]!.length + 5;
    expect(r.push(all, sink, 4, end)).toBe(end);
    expect(seen.map((x) => [x.buf === all, x.off, x.len])).toEqual([
      [true, 4, frames[0]!.length],
      [true, 4 + frames[0]!.length, frames[1]!.length],
    ]);
    expect(r.buffered).toBe(5);
    r.push(frames[2]!.subarray(5), sink);
    expect(Buffer.from(seen[2]!.buf.subarray(seen[2]!.off, seen[2]!.off + seen[2]!.len))).toEqual(frames[2]);
  });

  it('any chunking of any frame sequence yields the same frames in the same order', () => {
    fc.assert(
      fc.property(fc.array(frameArb, { minLength: 1, maxLength: 30 }), fc.array(fc.nat(), { maxLength: 40 }), (frames, rawCuts) => {
        const bytes = Buffer.concat(frames);
        const cuts = [...new Set(rawCuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
        const r = new FrameReader(MAX);
        const sink = new Collect();
        pushCuts(r, bytes, cuts, sink);
        expect(sink.copies).toEqual(frames);
        expect(r.buffered).toBe(0);
        // Views handed out earlier were not disturbed by later pushes.
        expect(sink.views).toEqual(sink.copies);
      }),
      { numRuns: 300 },
    );
  });

  it('empty chunks are harmless anywhere', () => {
    const r = new FrameReader(MAX);
    const sink = new Collect();
    const f = SAMPLES[2]!;
    r.push(Buffer.alloc(0), sink);
    r.push(f.subarray(0, 2), sink);
    r.push(Buffer.alloc(0), sink);
    r.push(f.subarray(2, 10), sink);
    r.push(Buffer.alloc(0), sink);
    r.push(f.subarray(10), sink);
    expect(sink.copies).toEqual([f]);
  });

  it('bytes handed out stay intact after later pushes, including frames assembled across chunks', () => {
    const frames = SAMPLES.concat(SAMPLES);
    const bytes = Buffer.concat(frames);
    const r = new FrameReader(MAX);
    const sink = new Collect();
    // Cut every 5 bytes: most frames are assembled, many prefixes are split.
    for (let i = 0; i < bytes.length; i += 5) r.push(Buffer.from(bytes.subarray(i, i + 5)), sink);
    expect(sink.copies).toEqual(frames);
    // Push a lot more through the same reader, then look at the first views again.
    const more = Buffer.concat(SAMPLES);
    for (let k = 0; k < 50; k++) {
      for (let i = 0; i < more.length; i += 3) r.push(Buffer.from(more.subarray(i, i + 3)), { onFrame: () => {} });
    }
    expect(sink.views).toEqual(sink.copies);
  });
});

describe('FrameReader: limits and refusals', () => {
  it('a frame of exactly maxFrame bytes is accepted', () => {
    const body = Buffer.alloc(100 - 20 - 1, 1);
    const f = pub('x', body);
    expect(f.length).toBe(100);
    const sink = new Collect();
    new FrameReader(100).push(f, sink);
    expect(sink.copies).toEqual([f]);
  });

  it('an oversized length is refused (FRAME_TOO_LARGE) as soon as its 4 bytes are in, before any body', () => {
    const prefix = Buffer.alloc(4);
    prefix.writeUInt32LE(101, 0);
    const e1 = protocolError(() => new FrameReader(100).push(prefix, new Collect()));
    expect(e1.code).toBe('FRAME_TOO_LARGE');
    expect(e1.message).toBe('frame of 101 bytes exceeds the limit of 100 bytes');

    // Split prefix: the refusal comes with the 4th byte.
    const r = new FrameReader(100);
    const huge = Buffer.alloc(4);
    huge.writeUInt32LE(0xffffffff, 0);
    r.push(huge.subarray(0, 3), new Collect());
    expect(r.buffered).toBe(3);
    expect(protocolError(() => r.push(huge.subarray(3), new Collect())).code).toBe('FRAME_TOO_LARGE');

    // After whole frames in the same chunk: those are delivered first.
    const sink = new Collect();
    const e3 = protocolError(() => new FrameReader(100).push(Buffer.concat([bare(Op.PING), huge]), sink));
    expect(e3.code).toBe('FRAME_TOO_LARGE');
    expect(sink.copies).toEqual([bare(Op.PING)]);
  });

  it('maxFrame can be changed between pushes (the broker raises it after the handshake)', () => {
    const r = new FrameReader(10);
    const f = pub('x', 'hello');
    expect(() => r.push(f, new Collect())).toThrow(ProtocolError);
    const r2 = new FrameReader(10);
    r2.maxFrame = f.length;
    const sink = new Collect();
    r2.push(f, sink);
    expect(sink.copies).toEqual([f]);
  });

  it.each([0, 1, 4, 5])('a length of %i (< 6) is a PROTOCOL error, even split', (len) => {
    const prefix = Buffer.alloc(6);
    prefix.writeUInt32LE(len, 0);
    prefix[4] = Op.PING;
    const e = protocolError(() => new FrameReader(MAX).push(prefix, new Collect()));
    expect(e.code).toBe('PROTOCOL');
    expect(e.message).toBe(`frame length ${len} is shorter than the 6-byte frame prefix`);
    const r = new FrameReader(MAX);
    r.push(prefix.subarray(0, 1), new Collect());
    expect(protocolError(() => r.push(prefix.subarray(1), new Collect())).code).toBe('PROTOCOL');
  });

  it.each(['00', '05', '12', '22', '32', '44', '99', 'ff'])('unknown op 0x%s is UNKNOWN_OP once its frame is complete', (hex) => {
    const op = parseInt(hex, 16);
    const f = raw(10, op);
    const r = new FrameReader(MAX);
    r.push(f.subarray(0, 9), new Collect());
    const e = protocolError(() => r.push(f.subarray(9), new Collect()));
    expect(e.code).toBe('UNKNOWN_OP');
    expect(e.message).toBe(`unknown op 0x${hex}`);
  });

  it('truncated or garbled fields are PROTOCOL errors', () => {
    const garbled: Buffer[] = [
      raw(19, Op.PUB), // shorter than the PUB header
      (() => {
        const b = pub('a', 'xyz');
        b.writeUInt16LE(9, 12);
        return b;
      })(), // subject overruns
      (() => {
        const b = pub('a', 'xyz');
        b[5] = FLAG_TS;
        return b;
      })(), // TS flag without the block
      (() => {
        const b = pub('a', 'xyz');
        b[6] = 9;
        return b;
      })(), // payload kind
      (() => {
        const b = pub('a', 'xyz');
        b.writeUInt16LE(0, 12);
        return b;
      })(), // empty subject
      (() => {
        const b = subFrame(1, 'a.b');
        b.writeUInt16LE(2, 12);
        return b;
      })(), // SUB lengths
      raw(7, Op.PING),
      raw(17, Op.UNSUB),
      raw(10, Op.OK),
      raw(11, Op.ERR),
      raw(7, Op.CONNECT),
    ];
    for (const f of garbled) {
      const sink = new Collect();
      const e = protocolError(() => new FrameReader(MAX).push(Buffer.concat([bare(Op.PONG), f]), sink));
      expect(e.code).toBe('PROTOCOL');
      expect(sink.copies).toEqual([bare(Op.PONG)]);
    }
  });

  it('after an error the reader refuses every further push, even of valid frames', () => {
    const r = new FrameReader(MAX);
    protocolError(() => r.push(raw(6, 0x99), new Collect()));
    const sink = new Collect();
    const e = protocolError(() => r.push(bare(Op.PING), sink));
    expect(e.code).toBe('PROTOCOL');
    expect(e.message).toBe('frame reader used after a protocol error');
    expect(sink.copies).toHaveLength(0);
    expect(() => r.push(Buffer.alloc(0), sink)).toThrow(ProtocolError);
  });

  it('an error thrown by the sink also stops the reader', () => {
    const r = new FrameReader(MAX);
    expect(() =>
      r.push(Buffer.concat([bare(Op.PING), bare(Op.PING)]), {
        onFrame: () => {
          throw new Error('sink failed');
        },
      }),
    ).toThrow('sink failed');
    expect(() => r.push(bare(Op.PING), new Collect())).toThrow('frame reader used after a protocol error');
  });
});
