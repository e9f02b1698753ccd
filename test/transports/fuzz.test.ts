/**
 * Hostile peers against a real broker on loopback. Raw sockets send garbage, mutated,
 * truncated and out-of-order frames; each must be refused (fatal ERR, then close) or
 * at least closed, and released by the broker. Meanwhile two healthy SDK clients on the
 * same broker stream sequence numbers to each other; the last test checks that not one
 * message was lost or reordered.
 */
import net from 'node:net';
import fc from 'fast-check';
import { Packr, Unpackr } from 'msgpackr';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBroker, type StartedBroker } from '../../broker/index.js';
import { connectBroker as connect, type Bus } from '../../client/index.js';
import {
  DIRECT_HEADER,
  DirectKind,
  ErrCode,
  FLAG_FATAL,
  FLAG_REQUEST,
  MsgView,
  Op,
  PROTOCOL_VERSION,
  type ProtocolError,
  maxFrameFor,
  writeDirect,
} from '../../transports/protocol/index.js';
import { MAX_CONNECT_FRAME } from '../../broker/handshake.js';
import { FrameReader } from '../../transports/reader.js';
import { FakeClock } from '../../runtime/clock.js';
import { RawClient, bareFrame as bare, connectFrame, pubFrame, subFrame, unsubFrame, until } from '../kit/index.js';

const MAX_PAYLOAD = 4096;
const MAX_HEADERS = 1024;
const MAX_FRAME = maxFrameFor({ maxPayload: MAX_PAYLOAD, maxHeaders: MAX_HEADERS });
/** Bound on how long any one hostile connection may stay open. */
const ATTACK_MS = 5000;

const packr = new Packr({ useRecords: false });
// Same options as the broker's (broker/session.ts), so the model below decodes CONNECT exactly as it does.
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true });

// --- a model of the broker's reaction -----------------------------------------------------

interface Prediction {
  /** ok: nothing fatal; session: the session refuses a frame; decoder: the bytes are not frames. */
  kind: 'ok' | 'session' | 'decoder';
  code?: number;
  /** The handshake succeeded (INFO is owed). */
  connected: boolean;
  /** PINGs the broker answers (before anything fatal). */
  pings: number;
}

/**
 * What the broker must do with `bytes` from a new connection, per docs/PROTOCOL.md:
 * the first fatal problem decides the ERR code. Non-fatal errors (bad subject, duplicate
 * sid, ...) are not modelled: they only add non-fatal ERRs.
 */
function predict(bytes: Buffer): Prediction {
  // Before CONNECT the broker takes a CONNECT-sized frame only (broker/handshake.ts MAX_CONNECT_FRAME).
  const reader = new FrameReader(MAX_CONNECT_FRAME);
  const view = new MsgView();
  let connected = false;
  let pings = 0;
  let fatal: number | null = null;
  const onFrame = (buf: Buffer, off: number, len: number): void => {
    if (fatal !== null) return;
    const op = buf[off + 4]!;
    if (!connected) {
      if (op !== Op.CONNECT) return void (fatal = ErrCode.NOT_CONNECTED);
      if (buf.readUInt16LE(off + 6) !== PROTOCOL_VERSION) return void (fatal = ErrCode.VERSION);
      let opts: unknown;
      try {
        opts = len > 8 ? unpackr.unpack(buf.subarray(off + 8, off + len)) : {};
      } catch {
        return void (fatal = ErrCode.PROTOCOL);
      }
      if (opts === null || typeof opts !== 'object' || Array.isArray(opts)) return void (fatal = ErrCode.PROTOCOL);
      const types: Record<string, string> = { name: 'string', lang: 'string', version: 'string', verbose: 'boolean', timestamps: 'boolean' };
      for (const [k, v] of Object.entries(opts)) if (types[k] === undefined || typeof v !== types[k]) return void (fatal = ErrCode.PROTOCOL);
      connected = true;
      reader.maxFrame = MAX_FRAME;
      return;
    }
    switch (op) {
      case Op.PUB: {
        const v = view.parse(buf, off, len);
        if (v.payloadLen > MAX_PAYLOAD || v.headersLen > MAX_HEADERS) fatal = ErrCode.MAX_PAYLOAD;
        return;
      }
      case Op.SUB:
        if (buf.readUInt32LE(off + 8) === 0) fatal = ErrCode.BAD_SID;
        return;
      case Op.PING:
        pings++;
        return;
      case Op.UNSUB:
      case Op.PONG:
      case Op.ERR:
        return;
      default:
        fatal = ErrCode.PROTOCOL; // CONNECT again, INFO, MSG, OK: not sent by clients
    }
  };
  try {
    reader.push(bytes, { onFrame });
  } catch (err) {
    if (fatal === null) return { kind: 'decoder', code: ErrCode[(err as ProtocolError).code], connected, pings };
  }
  return fatal === null ? { kind: 'ok', connected, pings } : { kind: 'session', code: fatal, connected, pings };
}

// --- the broker, the healthy stream, and hostile connections ---------------------------

let b: StartedBroker;
let port: number;
let pubBus: Bus;
let subBus: Bus;
let pump: NodeJS.Timeout | null = null;
let published = 0;
const received: number[] = [];
const healthyTrouble: string[] = [];
const openSockets = new Set<net.Socket>();

beforeAll(async () => {
  b = await startBroker({ host: '127.0.0.1', port: 0, logLevel: 'silent', maxPayload: MAX_PAYLOAD, maxHeaders: MAX_HEADERS });
  port = Number(new URL(b.url).port);
  subBus = await connect(b.url, { name: 'healthy-sub', reconnect: false });
  pubBus = await connect(b.url, { name: 'healthy-pub', reconnect: false });
  for (const [name, bus] of [
    ['sub', subBus],
    ['pub', pubBus],
  ] as const) {
    bus.on('error', (err: Error) => healthyTrouble.push(`${name} error: ${err.message}`));
    bus.on('disconnect', (err) => healthyTrouble.push(`${name} disconnected: ${err?.message}`));
  }
  subBus.subscribe('health.stream', (m) => received.push(Number(m.string())));
  await subBus.flush();
  // A steady stream: 5 messages every 2 ms for the whole file.
  pump = setInterval(() => {
    for (let k = 0; k < 5; k++) pubBus.publish('health.stream', String(published++));
  }, 2);
});

afterAll(async () => {
  if (pump) clearInterval(pump);
  for (const s of openSockets) s.destroy();
  await Promise.allSettled([pubBus?.close(), subBus?.close()]);
  await b?.close();
});

/** Healthy sessions: the two SDK clients. */
const BASELINE_SESSIONS = 2;

/** The healthy subscriber is still receiving: more messages arrive after this call. */
async function streamStillFlowing(): Promise<void> {
  const n = received.length;
  await until(() => received.length > n + 20, 'the healthy stream to keep flowing', ATTACK_MS);
}

interface Frame {
  op: number;
  flags: number;
  code: number;
  text: string;
}

interface Outcome {
  /** Frames the broker sent, in order. */
  frames: Frame[];
  /** The broker's bytes did not parse as frames (must never happen). */
  malformed: string | null;
  closed: boolean;
  socketError: string | null;
}

/**
 * Opens a raw connection, writes `bytes`, then either waits for the broker to close it
 * ('wait'), half-closes and waits ('end'), or hangs up at once ('destroy').
 */
async function attack(bytes: Buffer, after: 'wait' | 'end' | 'destroy' = 'wait'): Promise<Outcome> {
  const sessionsBefore = b.broker.sessions.size;
  const socket = net.connect({ host: '127.0.0.1', port, allowHalfOpen: true });
  openSockets.add(socket);
  const chunks: Buffer[] = [];
  let socketError: string | null = null;
  socket.on('data', (d) => chunks.push(d));
  socket.on('error', (e: NodeJS.ErrnoException) => (socketError = e.code ?? e.message));
  socket.on('end', () => socket.end());
  const closed = new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), ATTACK_MS);
    socket.once('close', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
  await new Promise<void>((resolve) => socket.once('connect', resolve).once('error', () => resolve()));
  socket.write(bytes);
  if (after === 'end') socket.end();
  if (after === 'destroy') socket.destroy();
  const wasClosed = await closed;
  socket.destroy();
  openSockets.delete(socket);

  const frames: Frame[] = [];
  let malformed: string | null = null;
  try {
    new FrameReader(1 << 26).push(Buffer.concat(chunks), {
      onFrame: (buf, off, len) => {
        const op = buf[off + 4]!;
        frames.push({
          op,
          flags: buf[off + 5]!,
          code: op === Op.ERR ? buf.readUInt16LE(off + 6) : 0,
          text: op === Op.ERR ? buf.toString('utf8', off + 12, off + len) : '',
        });
      },
    });
  } catch (err) {
    malformed = (err as Error).message;
  }
  // The broker releases the session too (it may notice the close a moment after us).
  await until(() => b.broker.sessions.size === sessionsBefore, 'the broker to release the hostile session', ATTACK_MS);
  return { frames, malformed, closed: wasClosed, socketError };
}

const fatalErrs = (o: Outcome) => o.frames.filter((f) => f.op === Op.ERR && f.flags & FLAG_FATAL);

/** The peer got exactly one fatal ERR with `code`, as its last frame, and was closed. */
function expectRefused(o: Outcome, code: number): Frame {
  expect(o.malformed).toBeNull();
  expect(o.closed).toBe(true);
  const fatal = fatalErrs(o);
  expect(fatal.map((f) => f.code)).toEqual([code]);
  expect(o.frames.at(-1)).toBe(fatal[0]);
  return fatal[0]!;
}

/** The invariants every hostile connection must meet, checked against the model. */
function expectAsPredicted(bytes: Buffer, o: Outcome): void {
  const p = predict(bytes);
  const where = `prediction ${JSON.stringify(p)}, frames ${JSON.stringify(o.frames.map((f) => [f.op, f.flags, f.code, f.text]))}`;
  expect(o.closed, where).toBe(true);
  expect(o.malformed, where).toBeNull();
  const allowed = [Op.INFO, Op.MSG, Op.PING, Op.PONG, Op.OK, Op.ERR];
  for (const f of o.frames) expect(allowed, where).toContain(f.op);
  const fatal = fatalErrs(o);
  expect(fatal.length, where).toBeLessThanOrEqual(1);
  if (fatal.length === 1) expect(o.frames.at(-1), `a fatal ERR is the last frame; ${where}`).toBe(fatal[0]);
  switch (p.kind) {
    case 'session':
    case 'decoder':
      expect(
        fatal.map((f) => f.code),
        where,
      ).toEqual([p.code]);
      if (p.connected) expect(o.frames[0]?.op, where).toBe(Op.INFO);
      else expect(o.frames, where).toEqual([fatal[0]]);
      break;
    case 'ok':
      expect(fatal, where).toEqual([]);
      if (p.connected) expect(o.frames[0]?.op, where).toBe(Op.INFO);
      else expect(o.frames, where).toEqual([]);
      expect(o.frames.filter((f) => f.op === Op.PONG).length, where).toBe(p.pings);
      break;
  }
}

// --- generators ------------------------------------------------------------------------

const token = fc.stringMatching(/^[a-z0-9]{1,6}$/);
const connectArb = fc
  .record(
    {
      name: fc.string({ maxLength: 12 }),
      lang: fc.constantFrom('c', 'go', 'rust'),
      version: fc.constant('1.0.0'),
      timestamps: fc.boolean(),
      verbose: fc.boolean(),
    },
    { requiredKeys: [] },
  )
  .map((o) => connectFrame(o));
const pubArb = fc
  .record({
    subject: token.map((t) => `fz.${t}`),
    reply: fc.option(
      token.map((t) => `fz.r.${t}`),
      { nil: undefined },
    ),
    // Mostly small; sometimes straddling the payload and headers limits.
    payload: fc.oneof(
      { weight: 8, arbitrary: fc.uint8Array({ maxLength: 64 }) },
      { weight: 1, arbitrary: fc.integer({ min: MAX_PAYLOAD - 4, max: MAX_PAYLOAD + 4 }).map((n) => new Uint8Array(n)) },
    ),
    headers: fc.oneof(
      { weight: 8, arbitrary: fc.uint8Array({ maxLength: 8 }) },
      { weight: 1, arbitrary: fc.integer({ min: MAX_HEADERS - 4, max: MAX_HEADERS + 4 }).map((n) => new Uint8Array(n)) },
    ),
    request: fc.boolean(),
  })
  .map((m) => pubFrame(m.subject, m.payload, { reply: m.reply, headers: m.headers, flags: m.request ? FLAG_REQUEST : 0, kind: 1 }));
const subArb = fc
  .record({
    sid: fc.integer({ min: 1, max: 4 }),
    pattern: fc.constantFrom('fz.*', 'fz.>', 'fz.a'),
    queue: fc.option(fc.constantFrom('q1', 'q2'), { nil: undefined }),
  })
  .map((s) => subFrame(s.sid, s.pattern, s.queue));
const otherArb = fc.oneof(
  fc.tuple(fc.integer({ min: 0, max: 4 }), fc.integer({ min: 0, max: 3 })).map(([sid, max]) => unsubFrame(sid, max)),
  fc.constant(bare(Op.PING)),
  fc.constant(bare(Op.PONG)),
);
/** A well-formed conversation: CONNECT, then a few client frames. */
const sessionArb = fc.tuple(connectArb, fc.array(fc.oneof(pubArb, subArb, otherArb), { maxLength: 8 })).map(([c, rest]) => Buffer.concat([c, ...rest]));
/** The same, with 1 to 3 bytes overwritten at random positions. */
const mutatedArb = fc.tuple(sessionArb, fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 3 })).map(([bytes, muts]) => {
  const out = Buffer.from(bytes);
  for (const [pos, v] of muts) out[pos % out.length] = v;
  return out;
});
/** Random bytes: fully random, or behind a plausible small length prefix. */
const randomArb = fc.oneof(
  fc.uint8Array({ minLength: 1, maxLength: 300 }).map((a) => Buffer.from(a)),
  fc.tuple(fc.integer({ min: 0, max: 64 }), fc.uint8Array({ minLength: 2, maxLength: 200 })).map(([len, rest]) => {
    const f = Buffer.alloc(4 + rest.length);
    f.writeUInt32LE(len, 0);
    f.set(rest, 4);
    return f;
  }),
);

// Runs per property. FUZZ_SCALE=20 npx vitest run test/transports/fuzz.test.ts digs 20 times deeper.
const SCALE = Number(process.env.FUZZ_SCALE ?? 1);
const RUNS = { random: Math.ceil(60 * SCALE), mutated: Math.ceil(200 * SCALE), truncated: Math.ceil(60 * SCALE) };

// --- tests -----------------------------------------------------------------------------

describe('hostile peers against a real broker; a healthy stream flows throughout', () => {
  it('the healthy stream is flowing before any attack', async () => {
    await streamStillFlowing();
  });

  it("(a) random bytes: the predicted fatal ERR (the decoder's code, or NOT_CONNECTED...), then close and release", async () => {
    await fc.assert(
      fc.asyncProperty(randomArb, async (bytes) => {
        expectAsPredicted(bytes, await attack(bytes, 'end'));
      }),
      { numRuns: RUNS.random, interruptAfterTimeLimit: 60_000 },
    );
    await streamStillFlowing();
  });

  it('(b) valid frames mutated at random positions: refused with the predicted fatal ERR, or served and closed', async () => {
    await fc.assert(
      fc.asyncProperty(mutatedArb, async (bytes) => {
        expectAsPredicted(bytes, await attack(bytes, 'end'));
      }),
      { numRuns: RUNS.mutated, interruptAfterTimeLimit: 60_000 },
    );
    await streamStillFlowing();
  });

  it('(b) unmutated conversations are served: INFO first, a PONG per PING, no fatal ERR unless a limit is crossed', async () => {
    await fc.assert(
      fc.asyncProperty(sessionArb, async (bytes) => {
        const p = predict(bytes);
        expect(p.kind === 'ok' || (p.kind === 'session' && p.code === ErrCode.MAX_PAYLOAD)).toBe(true);
        expectAsPredicted(bytes, await attack(bytes, 'end'));
      }),
      { numRuns: 40, interruptAfterTimeLimit: 60_000 },
    );
  });

  it('(c) truncated conversations, then a hang-up: the broker releases the connection and serves everyone else', async () => {
    await fc.assert(
      fc.asyncProperty(sessionArb, fc.nat(), fc.constantFrom('end', 'destroy') as fc.Arbitrary<'end' | 'destroy'>, async (whole, cut, how) => {
        const bytes = whole.subarray(0, 1 + (cut % (whole.length - 1)));
        const o = await attack(bytes, how);
        expect(o.closed).toBe(true);
        // Hung up half way: nothing fatal to report, and what was complete was answered.
        if (how === 'end') expectAsPredicted(bytes, o);
      }),
      { numRuns: RUNS.truncated, interruptAfterTimeLimit: 60_000 },
    );
    await streamStillFlowing();
  });

  it('(d) an oversized length prefix: fatal ERR FRAME_TOO_LARGE and close, without waiting for the body', async () => {
    const prefix = Buffer.alloc(6);
    prefix.writeUInt32LE(MAX_FRAME + 1, 0);
    prefix[4] = Op.PUB;
    // Only the prefix is sent, and the socket is left open: the broker must not wait for the rest.
    const o = await attack(Buffer.concat([connectFrame({ name: 'big' }), prefix]), 'wait');
    const f = expectRefused(o, ErrCode.FRAME_TOO_LARGE);
    expect(f.text).toBe(`frame of ${MAX_FRAME + 1} bytes exceeds the limit of ${MAX_FRAME} bytes`);
    expect(o.frames.map((x) => x.op)).toEqual([Op.INFO, Op.ERR]);
    // The same before CONNECT.
    expectRefused(await attack(Buffer.from([0xff, 0xff, 0xff, 0xff]), 'wait'), ErrCode.FRAME_TOO_LARGE);
    await streamStillFlowing();
  });

  it('(e) an unknown op: fatal ERR UNKNOWN_OP, then close', async () => {
    const f = expectRefused(await attack(Buffer.concat([connectFrame(), bare(0x99)]), 'wait'), ErrCode.UNKNOWN_OP);
    expect(f.text).toBe('unknown op 0x99');
    expectRefused(await attack(bare(0x00), 'wait'), ErrCode.UNKNOWN_OP);
    await streamStillFlowing();
  });

  it('garbled frames (a 7-byte PING, a length below 6, overrunning PUB fields): fatal ERR PROTOCOL, then close', async () => {
    const ping = expectRefused(await attack(Buffer.concat([connectFrame(), bare(Op.PING, 7)]), 'wait'), ErrCode.PROTOCOL);
    expect(ping.text).toBe('PING frame must be 6 bytes, got 7');
    const short = expectRefused(await attack(Buffer.concat([connectFrame(), Buffer.from([5, 0, 0, 0, Op.PING])]), 'wait'), ErrCode.PROTOCOL);
    expect(short.text).toBe('frame length 5 is shorter than the 6-byte frame prefix');
    const overrun = pubFrame('a', 'xyz');
    overrun.writeUInt16LE(200, 12);
    const pub = expectRefused(await attack(Buffer.concat([connectFrame(), overrun]), 'wait'), ErrCode.PROTOCOL);
    expect(pub.text).toMatch(/^PUB field lengths \(\d+ bytes\) overrun the frame \(24 bytes\)$/);
    await streamStillFlowing();
  });

  it('protocol violations are counted in broker.counters.protocolErrors', async () => {
    const before = b.broker.counters.protocolErrors;
    await attack(Buffer.concat([connectFrame(), bare(0x99)]), 'wait');
    await attack(pubFrame('a', 'x'), 'wait');
    await attack(connectFrame({}, 7), 'wait');
    expect(b.broker.counters.protocolErrors).toBe(before + 3);
  });

  it('verbose: OK for accepted PUBs, none after a fatal ERR', async () => {
    const o = await attack(
      Buffer.concat([connectFrame({ verbose: true }), pubFrame('a', 'x'), pubFrame('a', Buffer.alloc(MAX_PAYLOAD + 1)), pubFrame('a', 'y')]),
      'wait',
    );
    expectRefused(o, ErrCode.MAX_PAYLOAD);
    expect(o.frames.map((f) => f.op)).toEqual([Op.INFO, Op.OK, Op.ERR]);
  });

  it('(f) a PUB before CONNECT: fatal ERR NOT_CONNECTED, then close', async () => {
    const f = expectRefused(await attack(pubFrame('health.stream', 'x'), 'wait'), ErrCode.NOT_CONNECTED);
    expect(f.text).toBe('expected CONNECT as the first frame, got PUB');
    // A PING is no better.
    expectRefused(await attack(bare(Op.PING), 'wait'), ErrCode.NOT_CONNECTED);
    await streamStillFlowing();
  });

  it('(g) a protocol version the broker does not speak: fatal ERR VERSION, then close', async () => {
    for (const v of [0, 2, 0xffff]) {
      const f = expectRefused(await attack(connectFrame({ name: 'v' }, v), 'wait'), ErrCode.VERSION);
      expect(f.text).toBe(`protocol version ${v} is not supported; this broker speaks version 1`);
    }
    await streamStillFlowing();
  });

  it('(h) an unknown CONNECT option, a mistyped one, a non-map or invalid msgpack: fatal ERR PROTOCOL, then close', async () => {
    const unknown = expectRefused(await attack(connectFrame({ name: 'x', tokn: 'secret' }), 'wait'), ErrCode.PROTOCOL);
    expect(unknown.text).toBe(
      'unknown CONNECT option "tokn"; known: name, lang, version, verbose, timestamps, publishRate, direct, user, pass, token, nkey, resume',
    );
    const typed = expectRefused(await attack(connectFrame({ verbose: 'yes' }), 'wait'), ErrCode.PROTOCOL);
    expect(typed.text).toBe('CONNECT option "verbose" must be a boolean');
    const list = expectRefused(await attack(connectFrame(['name', 'x']), 'wait'), ErrCode.PROTOCOL);
    expect(list.text).toBe('CONNECT options must be a msgpack map');
    const junk = expectRefused(await attack(connectFrame(Buffer.from([0xa5, 0x61])), 'wait'), ErrCode.PROTOCOL); // str of 5, 1 byte
    expect(junk.text).toMatch(/^CONNECT options are not valid msgpack: /);
    const trailing = expectRefused(await attack(connectFrame(Buffer.from([0x80, 0x00])), 'wait'), ErrCode.PROTOCOL); // a map, then a stray byte
    expect(trailing.text).toMatch(/^CONNECT options are not valid msgpack: /);
    // An empty body is an empty map: accepted.
    const ok = await attack(Buffer.concat([connectFrame(Buffer.alloc(0)), bare(Op.PING)]), 'end');
    expect(ok.frames.map((f) => f.op)).toEqual([Op.INFO, Op.PONG]);
    await streamStillFlowing();
  });

  it('(h2) a TCP client asking for direct delivery is served as usual; DIRECT frames from it: fatal ERR PROTOCOL, then close', async () => {
    const asked = await attack(Buffer.concat([connectFrame({ direct: true }), bare(Op.PING)]), 'end');
    expect(asked.frames.map((f) => f.op)).toEqual([Op.INFO, Op.PONG]);
    const d = Buffer.alloc(DIRECT_HEADER);
    writeDirect(d, 0, DirectKind.WANT, 0, 1, 0);
    const refused = expectRefused(await attack(Buffer.concat([connectFrame({ direct: true }), d]), 'wait'), ErrCode.PROTOCOL);
    expect(refused.text).toBe('DIRECT frames are for connections that asked for direct delivery');
    await streamStillFlowing();
  });

  it('frames only the broker sends, a second CONNECT, or SUB with sid 0: fatal ERR, then close', async () => {
    for (const op of [Op.MSG, Op.INFO, Op.OK, Op.CONNECT]) {
      const frame =
        op === Op.MSG
          ? (() => {
              const m = pubFrame('a', 'x');
              m[4] = Op.MSG;
              return m;
            })()
          : op === Op.OK
            ? bare(Op.OK, 12)
            : op === Op.INFO
              ? bare(Op.INFO, 8)
              : connectFrame();
      const f = expectRefused(await attack(Buffer.concat([connectFrame(), frame]), 'wait'), ErrCode.PROTOCOL);
      expect(f.text).toMatch(/^op (MSG|INFO|OK|CONNECT) is not sent by clients$/);
    }
    expectRefused(await attack(Buffer.concat([connectFrame(), subFrame(0, 'a')]), 'wait'), ErrCode.BAD_SID);
    await streamStillFlowing();
  });

  it('a PUB over the payload or headers limit: fatal ERR MAX_PAYLOAD, then close', async () => {
    const big = expectRefused(await attack(Buffer.concat([connectFrame(), pubFrame('a', Buffer.alloc(MAX_PAYLOAD + 1))]), 'wait'), ErrCode.MAX_PAYLOAD);
    expect(big.text).toBe(`maximum payload exceeded: ${MAX_PAYLOAD + 1} bytes, the limit is ${MAX_PAYLOAD}`);
    const hdr = expectRefused(
      await attack(Buffer.concat([connectFrame(), pubFrame('a', 'x', { headers: Buffer.alloc(MAX_HEADERS + 1) })]), 'wait'),
      ErrCode.MAX_PAYLOAD,
    );
    expect(hdr.text).toBe(`maximum headers size exceeded: ${MAX_HEADERS + 1} bytes, the limit is ${MAX_HEADERS}`);
    // Exactly at the limits is fine (headers: a valid map { a: 'xx...' } of exactly MAX_HEADERS bytes).
    const fullHeaders = Buffer.alloc(MAX_HEADERS, 0x78);
    Buffer.from([0x81, 0xa1, 0x61, 0xda]).copy(fullHeaders);
    fullHeaders.writeUInt16BE(MAX_HEADERS - 6, 4);
    const atLimit = await attack(Buffer.concat([connectFrame(), pubFrame('a', Buffer.alloc(MAX_PAYLOAD), { headers: fullHeaders }), bare(Op.PING)]), 'end');
    expect(atLimit.frames.map((f) => f.op)).toEqual([Op.INFO, Op.PONG]);
  });

  it('non-fatal errors leave the connection up: bad subjects, duplicate sid, bad queue name', async () => {
    const o = await attack(
      Buffer.concat([
        connectFrame(),
        pubFrame('a..b', 'x'),
        pubFrame('a', 'x', { reply: 'r.*' }),
        subFrame(1, 'a.>'),
        subFrame(1, 'b'),
        subFrame(2, 'a.>.c'),
        subFrame(3, 'a', 'q.x'),
        bare(Op.PING),
      ]),
      'end',
    );
    expect(o.frames.map((f) => [f.op, f.flags, f.code])).toEqual([
      [Op.INFO, 0, 0],
      [Op.ERR, 0, ErrCode.BAD_SUBJECT],
      [Op.ERR, 0, ErrCode.BAD_SUBJECT],
      [Op.ERR, 0, ErrCode.BAD_SID],
      [Op.ERR, 0, ErrCode.BAD_SUBJECT],
      [Op.ERR, 0, ErrCode.BAD_SUBJECT],
      [Op.PONG, 0, 0],
    ]);
  });

  it('the health check has only ever seen its own subject', () => {
    expect(healthyTrouble).toEqual([]);
  });
});

describe('forged fields are not forwarded', () => {
  it('a raw PUB with a non-zero sid field is still delivered as a broadcast', async () => {
    const bus = await connect(b.url, { name: 'sid-check', reconnect: false });
    try {
      const got: string[] = [];
      bus.subscribe('sid.target', (m) => got.push(`target:${m.string()}`));
      const other = bus.subscribe('sid.other', (m) => got.push(`other:${m.string()}`));
      await bus.flush();
      // The raw peer's PONG comes after its PUB was routed; the bus's flush then comes after the MSG.
      const o = await attack(Buffer.concat([connectFrame(), pubFrame('sid.target', 'hello', { sid: other.sid }), bare(Op.PING)]), 'end');
      expect(o.frames.map((f) => f.op)).toEqual([Op.INFO, Op.PONG]);
      await bus.flush();
      expect(got).toEqual(['target:hello']);
    } finally {
      await bus.close();
    }
  });

  it('a CONNECT whose body is a msgpack value other than a map is refused', async () => {
    // Half-close after writing, so the accepted CONNECT ends the connection at once instead of at the bound.
    const date = expectRefused(await attack(connectFrame(packr.pack(new Date(0))), 'end'), ErrCode.PROTOCOL);
    expect(date.text).toBe('CONNECT options must be a msgpack map');
    expectRefused(await attack(connectFrame(Buffer.from([0xc1])), 'end'), ErrCode.PROTOCOL);
  });

  it('a publisher cannot forge the no-responders status flag', async () => {
    const bus = await connect(b.url, { name: 'flag-check', reconnect: false });
    try {
      const got: boolean[] = [];
      bus.subscribe('flag.target', (m) => got.push(m.noResponders));
      await bus.flush();
      const o = await attack(Buffer.concat([connectFrame(), pubFrame('flag.target', 'real data', { flags: 0x04 }), bare(Op.PING)]), 'end');
      expect(o.frames.map((f) => f.op)).toEqual([Op.INFO, Op.PONG]);
      await bus.flush();
      expect(got).toEqual([false]);
    } finally {
      await bus.close();
    }
  });
});

describe('the healthy stream', () => {
  it('lost nothing and kept its order through every attack', async () => {
    clearInterval(pump!);
    pump = null;
    await pubBus.flush();
    await until(() => received.length >= published, `all ${published} messages`, 15_000);
    expect(published).toBeGreaterThan(1000);
    expect(received.length).toBe(published);
    let outOfOrder = -1;
    for (let i = 0; i < received.length; i++) {
      if (received[i] !== i) {
        outOfOrder = i;
        break;
      }
    }
    expect(outOfOrder, `first position where the sequence broke (got ${received[outOfOrder]})`).toBe(-1);
    expect(healthyTrouble).toEqual([]);
    await until(() => b.broker.sessions.size === BASELINE_SESSIONS, 'only the healthy sessions to remain', ATTACK_MS);
  });
});

describe('broker timers against silent peers (on a FakeClock, over real sockets)', () => {
  it('no CONNECT within handshakeTimeoutMs: fatal ERR PROTOCOL, then close', async () => {
    const clock = new FakeClock();
    const t = await startBroker({ host: '127.0.0.1', port: 0, logLevel: 'silent', handshakeTimeoutMs: 100 }, undefined, clock);
    try {
      const silent = await RawClient.dial({ port: Number(new URL(t.url).port) });
      await until(() => t.broker.sessions.size === 1, 'the broker to accept the connection');
      clock.advance(100);
      await silent.closed;
      expect(silent.frames.map((f) => [f.op, f.flags, f.code, f.text])).toEqual([
        [Op.ERR, FLAG_FATAL, ErrCode.PROTOCOL, 'no CONNECT within 100 ms of connecting'],
      ]);
    } finally {
      await t.close();
    }
  });

  it('a peer that never answers PING gets maxPingsOut PINGs, then fatal ERR STALE_CONNECTION; one that answers stays', async () => {
    const clock = new FakeClock();
    const t = await startBroker({ host: '127.0.0.1', port: 0, logLevel: 'silent', pingIntervalMs: 40, maxPingsOut: 3 }, undefined, clock);
    const tport = Number(new URL(t.url).port);
    const answering = await RawClient.dial({ port: tport });
    const silent = await RawClient.dial({ port: tport });
    try {
      answering.answerPings = true;
      await answering.handshake({ name: 'answers' });
      await silent.handshake({ name: 'silent' });
      for (let i = 1; i <= 3; i++) {
        clock.advance(40);
        await until(() => silent.count(Op.PING) === i && answering.count(Op.PING) === i, `keepalive PING ${i}`);
        // The answering peer's PONG is read before the broker answers this PING: the interval is settled.
        await answering.roundTrip();
      }
      clock.advance(40);
      await silent.closed;
      expect(silent.frames.map((f) => f.op)).toEqual([Op.INFO, Op.PING, Op.PING, Op.PING, Op.ERR]);
      expect(silent.errors().map((f) => [f.flags, f.code, f.text])).toEqual([[FLAG_FATAL, ErrCode.STALE_CONNECTION, 'stale connection: 3 PINGs unanswered']]);
      for (let i = 4; i <= 6; i++) {
        if (i > 4) clock.advance(40);
        await until(() => answering.count(Op.PING) === i, `keepalive PING ${i} to the answering peer`);
        await answering.roundTrip();
      }
      expect(answering.isClosed).toBe(false);
      expect(answering.errors()).toEqual([]);
    } finally {
      answering.socket.destroy();
      silent.socket.destroy();
      await t.close();
    }
  });
});
