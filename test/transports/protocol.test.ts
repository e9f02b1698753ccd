import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { Packr, Unpackr } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import {
  ERR_NAMES,
  ErrCode,
  FLAG_FATAL,
  FLAG_NO_RESPONDERS,
  FLAG_REQUEST,
  FLAG_TS,
  FRAME_PREFIX,
  MSG_HEADER,
  MsgView,
  OK_SIZE,
  OP_NAMES,
  Op,
  PING_SIZE,
  PROTOCOL_VERSION,
  ProtocolError,
  TS_BLOCK,
  UNSUB_SIZE,
  CHALLENGE_MAX_NONCE,
  PROOF_SIZE,
  checkFrame,
  encodeChallenge,
  encodeErr,
  encodeProof,
  encodeHandshake,
  isKnownOp,
  maxFrameFor,
  msgSize,
  subSize,
  writeBare,
  writeMsgHeader,
  writeOk,
  writeSub,
  writeUnsub,
} from '../../transports/protocol/index.js';
import { FrameReader } from '../../transports/reader.js';

const packr = new Packr({ useRecords: false });
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true });

interface MsgFields {
  op: number;
  flags: number;
  kind: number;
  sid: number;
  subject: string;
  reply: string;
  headers: Uint8Array;
  payload: Uint8Array;
  sentAt?: bigint;
  brokerAt?: bigint;
}

/** Encodes a PUB/MSG exactly as the SDK does (client/bus.ts writePub), at `off` of a larger buffer. */
function writeMsg(buf: Buffer, off: number, m: MsgFields): number {
  const s = Buffer.byteLength(m.subject);
  const r = Buffer.byteLength(m.reply);
  const ts = (m.flags & FLAG_TS) !== 0;
  const total = msgSize(s, r, m.headers.length, m.payload.length, ts);
  let at = writeMsgHeader(buf, off, total, m.op, m.flags, m.kind, m.sid, s, r, m.headers.length);
  if (ts) {
    buf.writeBigUInt64LE(m.sentAt ?? 0n, at);
    buf.writeBigUInt64LE(m.brokerAt ?? 0n, at + 8);
    at += TS_BLOCK;
  }
  at += buf.write(m.subject, at, s, 'utf8');
  at += buf.write(m.reply, at, r, 'utf8');
  buf.set(m.headers, at);
  at += m.headers.length;
  buf.set(m.payload, at);
  at += m.payload.length;
  expect(at - off).toBe(total);
  return total;
}

function encodeMsg(m: MsgFields): Buffer {
  const s = Buffer.byteLength(m.subject);
  const r = Buffer.byteLength(m.reply);
  const buf = Buffer.alloc(msgSize(s, r, m.headers.length, m.payload.length, (m.flags & FLAG_TS) !== 0));
  writeMsg(buf, 0, m);
  return buf;
}

/** The one frame of `bytes`, through the incremental reader (so every encoder output is also reader input). */
function readOne(bytes: Buffer): Buffer {
  const frames: Buffer[] = [];
  new FrameReader(1 << 24).push(bytes, { onFrame: (b, o, l) => frames.push(b.subarray(o, o + l)) });
  expect(frames).toHaveLength(1);
  return frames[0]!;
}

function sub(buf: Buffer) {
  const p = buf.readUInt16LE(12);
  const q = buf.readUInt16LE(14);
  return {
    len: buf.readUInt32LE(0),
    op: buf[4],
    flags: buf[5],
    reserved: buf.readUInt16LE(6),
    sid: buf.readUInt32LE(8),
    pattern: buf.toString('utf8', 16, 16 + p),
    queue: buf.toString('utf8', 16 + p, 16 + p + q),
  };
}

// A non-empty subject of arbitrary UTF-8 (the codec does not validate subjects: the broker does).
const anySubject = fc.string({ unit: 'binary', minLength: 1, maxLength: 64 });
const anyBytes = (max: number) => fc.uint8Array({ maxLength: max });
const u32 = fc.integer({ min: 0, max: 0xffffffff });
const u64 = fc.bigInt({ min: 0n, max: (1n << 64n) - 1n });

const msgArb: fc.Arbitrary<MsgFields> = fc.record({
  op: fc.constantFrom(Op.PUB, Op.MSG),
  flags: fc.subarray([FLAG_TS, FLAG_REQUEST, FLAG_NO_RESPONDERS]).map((fs) => fs.reduce((a, f) => a | f, 0)),
  kind: fc.integer({ min: 0, max: 2 }),
  sid: u32,
  subject: anySubject,
  reply: fc.string({ unit: 'binary', maxLength: 64 }),
  headers: anyBytes(64),
  payload: anyBytes(512),
  sentAt: u64,
  brokerAt: u64,
});

describe('frame constants', () => {
  it('op codes, names and the known-op test agree for all 256 op bytes', () => {
    const ops: Record<string, number> = {
      CONNECT: 0x01,
      INFO: 0x02,
      CHALLENGE: 0x03,
      PROOF: 0x04,
      PUB: 0x10,
      MSG: 0x11,
      SUB: 0x20,
      UNSUB: 0x21,
      PING: 0x30,
      PONG: 0x31,
      OK: 0x40,
      ERR: 0x41,
      LOSS: 0x42,
      IMAGE: 0x43,
      DIRECT: 0x50,
    };
    expect(OP_NAMES).toEqual(Object.fromEntries(Object.entries(ops).map(([k, v]) => [v, k])));
    for (let b = 0; b < 256; b++) expect(isKnownOp(b)).toBe(Object.values(ops).includes(b));
  });

  it('every error code has its name, and codes are 1..15 without gaps', () => {
    expect(Object.values(ErrCode).sort((a, b) => a - b)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]);
    for (const [name, code] of Object.entries(ErrCode)) expect(ERR_NAMES[code]).toBe(name);
  });

  it('fixed sizes match the layouts', () => {
    expect([FRAME_PREFIX, MSG_HEADER, TS_BLOCK, UNSUB_SIZE, OK_SIZE, PING_SIZE, PROTOCOL_VERSION]).toEqual([6, 20, 16, 16, 12, 6, 1]);
    expect(msgSize(3, 2, 5, 7, false)).toBe(20 + 3 + 2 + 5 + 7);
    expect(msgSize(3, 2, 5, 7, true)).toBe(20 + 16 + 3 + 2 + 5 + 7);
    expect(subSize(4, 0)).toBe(16 + 4);
    expect(subSize(4, 3)).toBe(16 + 4 + 3);
  });

  it('maxFrameFor leaves room for a maximal PUB: payload and headers at their limits, subject and reply at the u16 maximum, timestamps', () => {
    for (const [maxPayload, maxHeaders] of [
      [1, 0],
      [1024 * 1024, 64 * 1024],
      [64 * 1024 * 1024, 1024 * 1024],
    ] as const) {
      expect(maxFrameFor({ maxPayload, maxHeaders })).toBeGreaterThanOrEqual(msgSize(65535, 65535, maxHeaders, maxPayload, true));
    }
  });
});

describe('PUB / MSG round trip', () => {
  it('MsgView.parse gives back every field the encoder wrote, at any offset of a shared buffer', () => {
    const view = new MsgView();
    fc.assert(
      fc.property(msgArb, fc.nat(40), (m, pad) => {
        const s = Buffer.byteLength(m.subject);
        const r = Buffer.byteLength(m.reply);
        const ts = (m.flags & FLAG_TS) !== 0;
        const size = msgSize(s, r, m.headers.length, m.payload.length, ts);
        const buf = Buffer.alloc(pad + size + 7, 0xee);
        const n = writeMsg(buf, pad, m);
        expect(n).toBe(size);
        expect(buf.readUInt32LE(pad)).toBe(size);
        expect(buf[pad + 7]).toBe(0); // reserved
        expect(checkFrame(buf, pad, n)).toBeNull();

        const v = view.parse(buf, pad, n);
        expect([v.off, v.len, v.op, v.flags, v.kind, v.sid]).toEqual([pad, size, m.op, m.flags, m.kind, m.sid]);
        expect(v.subject()).toBe(Buffer.from(m.subject).toString('utf8'));
        expect(v.reply()).toBe(Buffer.from(m.reply).toString('utf8'));
        expect(v.subjectLen).toBe(s);
        expect(v.replyLen).toBe(r);
        expect(Buffer.from(buf.subarray(v.headersOff, v.headersOff + v.headersLen))).toEqual(Buffer.from(m.headers));
        expect(Buffer.from(buf.subarray(v.payloadOff, v.payloadOff + v.payloadLen))).toEqual(Buffer.from(m.payload));
        expect(v.payloadOff + v.payloadLen).toBe(pad + size);
        if (ts) {
          expect(v.tsOff).toBe(pad + MSG_HEADER);
          expect(v.subjectOff).toBe(pad + MSG_HEADER + TS_BLOCK);
          expect(buf.readBigUInt64LE(v.tsOff)).toBe(m.sentAt);
          expect(buf.readBigUInt64LE(v.tsOff + 8)).toBe(m.brokerAt);
        } else {
          expect(v.tsOff).toBe(-1);
          expect(v.subjectOff).toBe(pad + MSG_HEADER);
        }
        // The bytes around the frame are untouched.
        expect(buf.subarray(0, pad).every((b) => b === 0xee)).toBe(true);
        expect(buf.subarray(pad + size).every((b) => b === 0xee)).toBe(true);
      }),
      { numRuns: 300 },
    );
  });

  it('an empty reply reads as "", and a reused view forgets the previous frame', () => {
    const view = new MsgView();
    const withTs = encodeMsg({
      op: Op.PUB,
      flags: FLAG_TS,
      kind: 1,
      sid: 0,
      subject: 'a.b',
      reply: 'r',
      headers: new Uint8Array(2),
      payload: Buffer.from('x'),
      sentAt: 5n,
      brokerAt: 6n,
    });
    const plain = encodeMsg({ op: Op.MSG, flags: 0, kind: 0, sid: 9, subject: 'c', reply: '', headers: new Uint8Array(0), payload: new Uint8Array(0) });
    view.parse(withTs, 0, withTs.length);
    const v = view.parse(plain, 0, plain.length);
    expect(v.tsOff).toBe(-1);
    expect(v.reply()).toBe('');
    expect(v.headersLen).toBe(0);
    expect(v.payloadLen).toBe(0);
    expect(v.subject()).toBe('c');
    expect(v.sid).toBe(9);
  });

  it('every encoded PUB/MSG also passes the incremental reader unchanged', () => {
    fc.assert(
      fc.property(msgArb, (m) => {
        const bytes = encodeMsg(m);
        expect(Buffer.from(readOne(bytes))).toEqual(bytes);
      }),
      { numRuns: 100 },
    );
  });
});

describe('SUB, UNSUB, PING, PONG, OK, ERR, CONNECT, INFO round trips', () => {
  it('SUB carries sid, pattern and optional queue, with UTF-8 byte lengths', () => {
    fc.assert(
      fc.property(
        u32,
        fc.string({ unit: 'binary', minLength: 1, maxLength: 40 }),
        fc.option(fc.string({ unit: 'binary', minLength: 1, maxLength: 20 }), { nil: undefined }),
        fc.nat(9),
        (sid, pattern, queue, pad) => {
          const p = Buffer.byteLength(pattern);
          const q = queue === undefined ? 0 : Buffer.byteLength(queue);
          const buf = Buffer.alloc(pad + subSize(p, q));
          const n = writeSub(buf, pad, sid, pattern, queue);
          expect(n).toBe(16 + p + q);
          const f = readOne(buf.subarray(pad));
          expect(checkFrame(f, 0, n)).toBeNull();
          expect(sub(f)).toEqual({
            len: n,
            op: Op.SUB,
            flags: 0,
            reserved: 0,
            sid,
            pattern: Buffer.from(pattern).toString(),
            queue: queue === undefined ? '' : Buffer.from(queue).toString(),
          });
        },
      ),
      { numRuns: 200 },
    );
  });

  it('UNSUB is 16 bytes: sid and max', () => {
    const buf = Buffer.alloc(3 + UNSUB_SIZE);
    expect(writeUnsub(buf, 3, 0xfffffffe, 12345)).toBe(16);
    const f = readOne(buf.subarray(3));
    expect([f.readUInt32LE(0), f[4], f[5], f.readUInt16LE(6), f.readUInt32LE(8), f.readUInt32LE(12)]).toEqual([16, Op.UNSUB, 0, 0, 0xfffffffe, 12345]);
    expect(checkFrame(f, 0, 16)).toBeNull();
  });

  it('PING and PONG are the bare 6-byte prefix', () => {
    for (const op of [Op.PING, Op.PONG]) {
      const buf = Buffer.alloc(8, 0xff);
      expect(writeBare(buf, 2, op)).toBe(6);
      expect(buf.subarray(2)).toEqual(Buffer.from([6, 0, 0, 0, op, 0]));
      expect(checkFrame(readOne(buf.subarray(2)), 0, 6)).toBeNull();
    }
  });

  it('OK is 12 bytes carrying the acknowledged sid', () => {
    const buf = Buffer.alloc(OK_SIZE);
    expect(writeOk(buf, 0, 77)).toBe(12);
    expect(buf).toEqual(Buffer.from([12, 0, 0, 0, Op.OK, 0, 0, 0, 77, 0, 0, 0]));
    expect(checkFrame(readOne(buf), 0, 12)).toBeNull();
  });

  it('ERR carries code, ref, the fatal flag and UTF-8 text filling the rest of the frame', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xffff }), u32, fc.boolean(), fc.string({ unit: 'binary', maxLength: 100 }), (code, ref, fatal, text) => {
        const f = readOne(encodeErr(code, text, ref, fatal));
        expect(checkFrame(f, 0, f.length)).toBeNull();
        expect(f.length).toBe(12 + Buffer.byteLength(text));
        expect(f[4]).toBe(Op.ERR);
        expect(f[5]).toBe(fatal ? FLAG_FATAL : 0);
        expect(f.readUInt16LE(6)).toBe(code);
        expect(f.readUInt32LE(8)).toBe(ref);
        expect(f.toString('utf8', 12)).toBe(Buffer.from(text).toString());
      }),
      { numRuns: 200 },
    );
    // Defaults: ref 0, not fatal.
    const d = encodeErr(ErrCode.BAD_SUBJECT, 'x');
    expect([d[5], d.readUInt32LE(8)]).toEqual([0, 0]);
  });

  it('CONNECT and INFO carry the protocol version and a msgpack map', () => {
    const connect = { name: 'svc', lang: 'c', version: '1.2.3', verbose: false, timestamps: true };
    const info = {
      serverId: 'ab',
      serverName: 'hopbus',
      version: '0.1.0',
      proto: 1,
      clientId: 7,
      maxPayload: 1 << 20,
      maxHeaders: 65536,
      maxSubscriptions: 65536,
      maxPending: 1 << 26,
      pingIntervalMs: 30000,
    };
    for (const [op, body] of [
      [Op.CONNECT, connect],
      [Op.INFO, info],
    ] as const) {
      const f = readOne(encodeHandshake(op, packr.pack(body)));
      expect(checkFrame(f, 0, f.length)).toBeNull();
      expect(f.readUInt32LE(0)).toBe(f.length);
      expect([f[4], f[5], f.readUInt16LE(6)]).toEqual([op, 0, PROTOCOL_VERSION]);
      expect(unpackr.unpack(f.subarray(8))).toEqual(body);
    }
    // An empty body is a valid (8-byte) frame.
    expect(encodeHandshake(Op.CONNECT, new Uint8Array(0))).toEqual(Buffer.from([8, 0, 0, 0, 1, 0, 1, 0]));
  });

  it('CHALLENGE carries its nonce, PROOF exactly 64 signature bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: CHALLENGE_MAX_NONCE }), fc.uint8Array({ minLength: 64, maxLength: 64 }), (nonce, sig) => {
        const c = readOne(encodeChallenge(nonce));
        expect(checkFrame(c, 0, c.length)).toBeNull();
        expect([c.readUInt32LE(0), c[4], c[5], c.readUInt16LE(6)]).toEqual([8 + nonce.length, Op.CHALLENGE, 0, 0]);
        expect(new Uint8Array(c.subarray(8))).toEqual(nonce);
        const p = readOne(encodeProof(sig));
        expect(checkFrame(p, 0, p.length)).toBeNull();
        expect([p.length, p[4], p[5], p.readUInt16LE(6)]).toEqual([PROOF_SIZE, Op.PROOF, 0, 0]);
        expect(new Uint8Array(p.subarray(8))).toEqual(sig);
      }),
    );
    expect(() => encodeProof(new Uint8Array(63))).toThrow(/an Ed25519 signature is 64 bytes, got 63/);
  });
});

describe('checkFrame refusals', () => {
  function msgFrame(patch: (b: Buffer) => void, m: Partial<MsgFields> = {}): Buffer {
    const b = encodeMsg({ op: Op.PUB, flags: 0, kind: 0, sid: 0, subject: 'a.b', reply: 'r', headers: new Uint8Array(3), payload: Buffer.from('xy'), ...m });
    patch(b);
    return b;
  }
  function frame(len: number, op: number, fill: (b: Buffer) => void = () => {}): Buffer {
    const b = Buffer.alloc(len);
    b.writeUInt32LE(len, 0);
    b[4] = op;
    fill(b);
    return b;
  }
  const check = (b: Buffer) => checkFrame(b, 0, b.length);

  it.each([
    ['PUB', Op.PUB],
    ['MSG', Op.MSG],
  ])('a %s shorter than its 20-byte header', (_name, op) => {
    expect(check(frame(19, op))).toBe(`${OP_NAMES[op]} frame of 19 bytes is shorter than its 20-byte header`);
  });

  it('a payload kind above 2', () => {
    expect(check(msgFrame((b) => (b[6] = 3)))).toBe('unknown payload kind 3');
    expect(check(msgFrame((b) => (b[6] = 255)))).toBe('unknown payload kind 255');
  });

  it('an empty subject', () => {
    expect(check(msgFrame((b) => b.writeUInt16LE(0, 12)))).toBe('empty subject');
  });

  it('subject, reply, headers and timestamp lengths that overrun the frame', () => {
    // 20 + 3 + 1 + 3 + 2 = 29 bytes; each field grown by one byte too many.
    expect(check(msgFrame((b) => b.writeUInt16LE(7, 12)))).toBe('PUB field lengths (31 bytes) overrun the frame (29 bytes)');
    expect(check(msgFrame((b) => b.writeUInt16LE(4, 14)))).toBe('PUB field lengths (30 bytes) overrun the frame (29 bytes)');
    expect(check(msgFrame((b) => b.writeUInt32LE(0xffffffff, 16)))).toMatch(/^PUB field lengths \(\d+ bytes\) overrun the frame \(29 bytes\)$/);
    // Setting FLAG_TS on a frame without the 16-byte block.
    expect(check(msgFrame((b) => (b[5] = FLAG_TS)))).toBe('PUB field lengths (43 bytes) overrun the frame (29 bytes)');
    expect(check(msgFrame((b) => (b[4] = Op.MSG)))).toBeNull();
    // Exactly filling the frame (empty payload) is fine.
    expect(check(msgFrame((b) => b.writeUInt32LE(5, 16)))).toBeNull();
  });

  it('SUB shorter than 16 bytes, with an empty pattern, or with lengths not filling the frame exactly', () => {
    expect(check(frame(15, Op.SUB))).toBe('SUB frame of 15 bytes is shorter than its 16-byte header');
    const ok = Buffer.alloc(subSize(3, 2));
    writeSub(ok, 0, 1, 'a.b', 'qq');
    expect(check(ok)).toBeNull();
    const empty = Buffer.from(ok);
    empty.writeUInt16LE(0, 12);
    expect(check(empty)).toBe('empty subscription pattern');
    const long = Buffer.from(ok);
    long.writeUInt16LE(4, 12);
    expect(check(long)).toBe('SUB field lengths (22 bytes) do not match the frame (21 bytes)');
    const short = Buffer.from(ok);
    short.writeUInt16LE(1, 14);
    expect(check(short)).toBe('SUB field lengths (20 bytes) do not match the frame (21 bytes)');
  });

  it('UNSUB, PING, PONG and OK of the wrong size', () => {
    expect(check(frame(15, Op.UNSUB))).toBe('UNSUB frame must be 16 bytes, got 15');
    expect(check(frame(17, Op.UNSUB))).toBe('UNSUB frame must be 16 bytes, got 17');
    expect(check(frame(7, Op.PING))).toBe('PING frame must be 6 bytes, got 7');
    expect(check(frame(8, Op.PONG))).toBe('PONG frame must be 6 bytes, got 8');
    expect(check(frame(11, Op.OK))).toBe('OK frame must be 12 bytes, got 11');
    expect(check(frame(13, Op.OK))).toBe('OK frame must be 12 bytes, got 13');
  });

  it('CHALLENGE with no nonce or one over 64 bytes; PROOF of another size than 72', () => {
    expect(check(frame(8, Op.CHALLENGE))).toBe('CHALLENGE nonce must be 1 to 64 bytes, got 0');
    expect(check(frame(9, Op.CHALLENGE))).toBeNull();
    expect(check(frame(72, Op.CHALLENGE))).toBeNull();
    expect(check(frame(73, Op.CHALLENGE))).toBe('CHALLENGE nonce must be 1 to 64 bytes, got 65');
    expect(check(frame(71, Op.PROOF))).toBe('PROOF frame must be 72 bytes, got 71');
    expect(check(frame(72, Op.PROOF))).toBeNull();
  });

  it('ERR shorter than 12 bytes; CONNECT and INFO shorter than 8', () => {
    expect(check(frame(11, Op.ERR))).toBe('ERR frame of 11 bytes is shorter than its 12-byte header');
    expect(check(frame(12, Op.ERR))).toBeNull();
    expect(check(frame(7, Op.CONNECT))).toBe('CONNECT frame of 7 bytes is shorter than its 8-byte header');
    expect(check(frame(7, Op.INFO))).toBe('INFO frame of 7 bytes is shorter than its 8-byte header');
  });

  it('unknown ops are left to the caller (null), which reports them as UNKNOWN_OP', () => {
    expect(check(frame(6, 0x99))).toBeNull();
    expect(() => readOne(frame(6, 0x99))).toThrow(ProtocolError);
  });

  it('the reader turns every refusal into a ProtocolError with code PROTOCOL and the same reason', () => {
    const bad = frame(7, Op.PING);
    let caught: unknown;
    try {
      new FrameReader(1024).push(bad, { onFrame: () => {} });
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(ProtocolError);
    expect((caught as ProtocolError).code).toBe('PROTOCOL');
    expect((caught as ProtocolError).message).toBe(check(bad));
  });
});

describe('docs/PROTOCOL.md', () => {
  const doc = readFileSync(new URL('../../docs/PROTOCOL.md', import.meta.url), 'utf8');

  it('its op table lists exactly the ops of the code, with their codes', () => {
    const rows = [...doc.matchAll(/^\| `0x([0-9a-f]{2})` \| ([A-Z]+) \|/gm)].map((m) => [parseInt(m[1]!, 16), m[2]]);
    expect(Object.fromEntries(rows)).toEqual(OP_NAMES);
  });

  it('its error table lists exactly the error codes of the code', () => {
    const rows = [...doc.matchAll(/^\| (\d+) \| `([A-Z_]+)` \|/gm)].map((m) => [m[2], Number(m[1])]);
    expect(Object.fromEntries(rows)).toEqual(ErrCode);
  });

  it("its flag values are the code's", () => {
    expect(doc).toContain(`| \`FLAG_TS\` | \`0x0${FLAG_TS}\` |`);
    expect(doc).toContain(`| \`FLAG_REQUEST\` | \`0x0${FLAG_REQUEST}\` |`);
    expect(doc).toContain(`| \`FLAG_NO_RESPONDERS\` | \`0x0${FLAG_NO_RESPONDERS}\` |`);
    expect(doc).toContain(`\`FLAG_FATAL\` \`0x0${FLAG_FATAL}\``);
  });

  it("its CHALLENGE and PROOF sizes are the code's", () => {
    expect(doc).toContain(`| \`0x03\` | CHALLENGE | broker → client | 8 + nonce (1 to ${CHALLENGE_MAX_NONCE}) |`);
    expect(doc).toContain(`| \`0x04\` | PROOF | client → broker | ${PROOF_SIZE} |`);
  });

  it('its default max frame is maxFrameFor() of the default limits', () => {
    const n = maxFrameFor({ maxPayload: 1024 * 1024, maxHeaders: 64 * 1024 });
    expect(doc).toContain(`= **${n}** bytes with the defaults`);
  });

  it('its PUB hex dump is exactly what the encoder produces', () => {
    const block = /<!-- pub-example:begin -->\s*```text\n([\s\S]*?)```/.exec(doc);
    expect(block, 'the PUB example block of docs/PROTOCOL.md').not.toBeNull();
    // Lines look like "0000  22 00 00 00 10 00 01 00  00 00 00 00 0d 00 00 00  |\"...............|":
    // an offset, 16 bytes in two groups of 8, the bytes as ASCII.
    const hex = block![1]!
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l) => l.split('|')[0]!.trim().split(/\s+/).slice(1).join(''))
      .join('');
    const expected = encodeMsg({
      op: Op.PUB,
      flags: 0,
      kind: 1,
      sid: 0,
      subject: 'md.EURUSD.bid',
      reply: '',
      headers: new Uint8Array(0),
      payload: Buffer.from('1.0712'),
    });
    expect(hex).toBe(expected.toString('hex'));
  });
});
