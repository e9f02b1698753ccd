/**
 * The broker as seen on the wire: a raw socket writes frames by the documented
 * layout (transports/protocol/) and reads what the broker answers.
 */
import { describe, expect, it } from 'vitest';
import {
  ERR,
  FLAG_FATAL,
  FLAG_NO_RESPONDERS,
  FLAG_REQUEST,
  OP,
  bareFrame,
  connectFrame,
  pubFrame,
  subFrame,
  unsubFrame,
  useWorld,
  type RawClient,
} from '../kit/index.js';

const w = useWorld();

async function rawSession(opts: Parameters<typeof w.broker>[0] = {}): Promise<{ raw: RawClient; b: Awaited<ReturnType<typeof w.broker>> }> {
  const b = await w.broker(opts);
  const raw = await w.raw(b);
  await raw.handshake({ name: 'raw' });
  return { b, raw };
}

describe('handshake', () => {
  it('CONNECT is answered with INFO carrying the server limits', async () => {
    const b = await w.broker({ maxPayload: 2048 });
    const raw = await w.raw(b);
    const info = await raw.handshake({ name: 'raw', lang: 'hand', version: '0', verbose: false });
    expect(info).toMatchObject({ serverId: b.broker.serverId, proto: 1, maxPayload: 2048 });
    expect(raw.isClosed).toBe(false);
  });

  it('a first frame other than CONNECT is refused with a fatal ERR NOT_CONNECTED', async () => {
    const b = await w.broker();
    const raw = await w.raw(b);
    raw.send(pubFrame('x', 'too early'));
    await raw.closed;
    expect(raw.errors().map((e) => [e.code, e.flags & FLAG_FATAL])).toEqual([[ERR.NOT_CONNECTED, FLAG_FATAL]]);
  });

  it('an unsupported protocol version is refused with a fatal ERR VERSION', async () => {
    const b = await w.broker();
    const raw = await w.raw(b);
    raw.send(connectFrame({}, 99));
    await raw.closed;
    expect(raw.errors().map((e) => e.code)).toEqual([ERR.VERSION]);
    expect(raw.frames.some((f) => f.op === OP.INFO)).toBe(false);
  });

  it('an unknown CONNECT option or one of the wrong type is refused with a fatal ERR naming it', async () => {
    const b = await w.broker();
    const r1 = await w.raw(b);
    r1.send(connectFrame({ password: 'x' }));
    await r1.closed;
    expect(r1.errors()[0]!.text).toMatch(/password/);
    const r2 = await w.raw(b);
    r2.send(connectFrame({ verbose: 'yes' }));
    await r2.closed;
    expect(r2.errors()[0]!.text).toMatch(/verbose/);
  });

  it('CONNECT options that are not a msgpack map are refused', async () => {
    const b = await w.broker();
    const raw = await w.raw(b);
    const frame = Buffer.alloc(9);
    frame.writeUInt32LE(9, 0);
    frame[4] = OP.CONNECT;
    frame.writeUInt16LE(1, 6);
    frame[8] = 0x2a; // msgpack positive fixint 42
    raw.send(frame);
    await raw.closed;
    expect(raw.errors()[0]!.code).toBe(ERR.PROTOCOL);
  });
});

describe('publish and subscribe on the wire', () => {
  it('a PUB matching a SUB of the same connection comes back as MSG with sid 0, the subject, the reply and the payload', async () => {
    const { raw } = await rawSession();
    raw.send(subFrame(5, 'w.*'), pubFrame('w.x', 'hi', { reply: 'back.here' }));
    await raw.roundTrip();
    const msgs = raw.frames.filter((f) => f.op === OP.MSG);
    expect(msgs).toHaveLength(1);
    expect(msgs[0]).toMatchObject({ sid: 0, subject: 'w.x', reply: 'back.here', text: 'hi', code: 1 });
  });

  it('a queue delivery carries the sid of the chosen subscription', async () => {
    const { raw } = await rawSession();
    raw.send(subFrame(9, 'q', 'grp'), pubFrame('q', 'one'));
    await raw.roundTrip();
    expect(raw.frames.filter((f) => f.op === OP.MSG).map((f) => f.sid)).toEqual([9]);
  });

  it('PING is answered with PONG', async () => {
    const { raw } = await rawSession();
    await raw.roundTrip();
    expect(raw.count(OP.PONG)).toBe(1);
  });

  it('in verbose mode SUB, UNSUB and PUB are acknowledged with OK', async () => {
    const b = await w.broker();
    const raw = await w.raw(b);
    await raw.handshake({ verbose: true });
    raw.send(subFrame(3, 'v'), pubFrame('v', 'x'), unsubFrame(3));
    await raw.roundTrip();
    expect(raw.frames.filter((f) => f.op === OP.OK).map((f) => f.sid)).toEqual([3, 0, 3]);
  });

  it('in verbose mode a refused PUB is answered with ERR only, not also with OK', async () => {
    const b = await w.broker();
    const raw = await w.raw(b);
    await raw.handshake({ verbose: true });
    raw.send(pubFrame('a..b', 'x'));
    await raw.roundTrip();
    expect(raw.frames.filter((f) => f.op === OP.ERR || f.op === OP.OK).map((f) => f.op)).toEqual([OP.ERR]);
  });

  it('an invalid publish subject is refused with a non-fatal ERR BAD_SUBJECT and the connection stays up', async () => {
    const { raw } = await rawSession();
    raw.send(subFrame(1, '>'), pubFrame('a..b', 'x'), pubFrame('ok', 'y'));
    await raw.roundTrip();
    const errs = raw.errors();
    expect(errs.map((e) => [e.code, e.flags & FLAG_FATAL])).toEqual([[ERR.BAD_SUBJECT, 0]]);
    expect(raw.frames.filter((f) => f.op === OP.MSG).map((f) => f.subject)).toEqual(['ok']);
  });

  it('an invalid subscription pattern is refused with a non-fatal ERR BAD_SUBJECT naming its sid', async () => {
    const { raw } = await rawSession();
    raw.send(subFrame(4, 'a.>.b'), subFrame(6, 'fine'), pubFrame('fine', 'x'));
    await raw.roundTrip();
    expect(raw.errors().map((e) => [e.code, e.sid])).toEqual([[ERR.BAD_SUBJECT, 4]]);
    expect(raw.msgCount).toBe(1);
  });

  it('a duplicate sid is refused with ERR BAD_SID; sid 0 is fatal', async () => {
    const { b, raw } = await rawSession();
    raw.send(subFrame(1, 'a'), subFrame(1, 'b'));
    await raw.roundTrip();
    expect(raw.errors().map((e) => [e.code, e.sid, e.flags & FLAG_FATAL])).toEqual([[ERR.BAD_SID, 1, 0]]);
    const r2 = await w.raw(b);
    await r2.handshake();
    r2.send(subFrame(0, 'a'));
    await r2.closed;
    expect(r2.errors().map((e) => [e.code, e.flags & FLAG_FATAL])).toEqual([[ERR.BAD_SID, FLAG_FATAL]]);
  });

  it('an invalid queue group name is refused with ERR BAD_SUBJECT', async () => {
    const { raw } = await rawSession();
    raw.send(subFrame(2, 'a', 'x.y'));
    await raw.roundTrip();
    expect(raw.errors().map((e) => [e.code, e.sid])).toEqual([[ERR.BAD_SUBJECT, 2]]);
  });

  it('UNSUB with max 0 ends a subscription at once; an unknown sid is not an error', async () => {
    const { raw } = await rawSession();
    raw.send(subFrame(1, 'u'), pubFrame('u', '1'), unsubFrame(1), pubFrame('u', '2'), unsubFrame(77));
    await raw.roundTrip();
    expect(raw.frames.filter((f) => f.op === OP.MSG).map((f) => f.text)).toEqual(['1']);
    expect(raw.errors()).toEqual([]);
  });

  it('UNSUB with max N ends a subscription after N more messages', async () => {
    const { raw } = await rawSession();
    raw.send(subFrame(1, 'u'), pubFrame('u', '1'), pubFrame('u', '2'), unsubFrame(1, 2));
    for (let i = 3; i <= 9; i++) raw.send(pubFrame('u', String(i)));
    await raw.roundTrip();
    expect(raw.frames.filter((f) => f.op === OP.MSG).map((f) => f.text)).toEqual(['1', '2', '3', '4']);
  });

  it('a second UNSUB with max N also counts N more from its arrival', async () => {
    const { raw } = await rawSession();
    raw.send(subFrame(1, 'u'), unsubFrame(1, 5), pubFrame('u', '1'), pubFrame('u', '2'), unsubFrame(1, 3));
    for (let i = 3; i <= 9; i++) raw.send(pubFrame('u', String(i)));
    await raw.roundTrip();
    expect(raw.frames.filter((f) => f.op === OP.MSG).map((f) => f.text)).toEqual(['1', '2', '3', '4', '5']);
  });
});

describe('requests without responders', () => {
  it('a PUB flagged as a request to a subject nobody subscribes to gets an empty MSG flagged NO_RESPONDERS on its reply subject', async () => {
    const { raw } = await rawSession();
    raw.send(subFrame(1, 'inbox.*'), pubFrame('nobody', 'q', { reply: 'inbox.1', flags: FLAG_REQUEST }));
    await raw.roundTrip();
    const msgs = raw.frames.filter((f) => f.op === OP.MSG);
    expect(msgs).toHaveLength(1);
    expect(msgs[0]!.subject).toBe('inbox.1');
    expect(msgs[0]!.flags & FLAG_NO_RESPONDERS).toBe(FLAG_NO_RESPONDERS);
    expect(msgs[0]!.text).toBe('');
  });

  it('a plain PUB (no request flag) to nobody gets no answer', async () => {
    const { raw } = await rawSession();
    raw.send(subFrame(1, 'inbox.*'), pubFrame('nobody', 'q', { reply: 'inbox.1' }));
    await raw.roundTrip();
    expect(raw.msgCount).toBe(0);
  });
});

describe('protocol violations', () => {
  it('a PUB with a payload over maxPayload gets a fatal ERR MAX_PAYLOAD and the connection is closed', async () => {
    const { raw } = await rawSession({ maxPayload: 1024 });
    raw.send(pubFrame('x', Buffer.alloc(1025)));
    await raw.closed;
    expect(raw.errors().map((e) => [e.code, e.flags & FLAG_FATAL])).toEqual([[ERR.MAX_PAYLOAD, FLAG_FATAL]]);
  });

  it('a frame op that clients never send (INFO) is fatal', async () => {
    const { raw } = await rawSession();
    raw.send(connectFrame({}).fill(OP.INFO, 4, 5));
    await raw.closed;
    expect(raw.errors().map((e) => e.code)).toEqual([ERR.PROTOCOL]);
  });

  it('a malformed frame closes the connection, and other clients keep working', async () => {
    const { b, raw } = await rawSession();
    const bus = await w.connect(b.url);
    const bad = pubFrame('x', 'y');
    bad.writeUInt16LE(200, 12); // subject length overruns the frame
    raw.send(bad);
    await raw.closed;
    const got: string[] = [];
    bus.subscribe('ok', (m) => got.push(m.string()));
    bus.publish('ok', 'fine');
    await bus.flush();
    expect(got).toEqual(['fine']);
  });

  it('an unknown op gets a fatal ERR UNKNOWN_OP before the connection closes', async () => {
    const { raw } = await rawSession();
    const f = bareFrame(0x7f);
    raw.send(f);
    await raw.closed;
    expect(raw.errors().map((e) => [e.code, e.flags & FLAG_FATAL])).toEqual([[ERR.UNKNOWN_OP, FLAG_FATAL]]);
  });

  it('a frame larger than the broker accepts gets a fatal ERR FRAME_TOO_LARGE before the connection closes', async () => {
    const { raw } = await rawSession({ maxPayload: 1024 });
    const head = Buffer.alloc(8);
    head.writeUInt32LE(64 * 1024 * 1024, 0);
    head[4] = OP.PUB;
    raw.send(head);
    await raw.closed;
    expect(raw.errors().map((e) => e.code)).toEqual([ERR.FRAME_TOO_LARGE]);
  });

  it('connections closed for a protocol violation are counted in protocolErrors', async () => {
    const { b, raw } = await rawSession({ maxPayload: 1024 });
    raw.send(pubFrame('x', Buffer.alloc(2000)));
    await raw.closed;
    const r2 = await w.raw(b);
    r2.send(pubFrame('x', 'before connect'));
    await r2.closed;
    expect(b.broker.counters.protocolErrors).toBe(2);
  });
});
