import { describe, expect, it } from 'vitest';
import { ConnectionError, MaxPayloadError, OptionsError, PendingLimitError, ServerError, SubjectError, connect } from '../../client/index.js';
import { Bus } from '../../client/bus.js';
import { ERR, FLAG_FATAL, OP, pubFrame, until, useWorld } from '../kit/index.js';

const w = useWorld();

const BAD_SUBJECTS = ['', 'a..b', '.a', 'a.', 'a b', 'a\tb', 'a.*', 'a.>', '>', '*', 'a*', 'b>.c'];
const BAD_PATTERNS = ['', 'a..b', '.a', 'a.', 'a b', 'a.>.b', '>.a', 'a*', 'a.b*', 'a.>b'];

describe('invalid subjects and patterns', () => {
  it('publish throws SubjectError synchronously for every invalid subject, and sends nothing', async () => {
    const b = await w.broker();
    const bus = await w.connect(b.url);
    for (const s of BAD_SUBJECTS) {
      expect(() => bus.publish(s, 'x'), JSON.stringify(s)).toThrow(SubjectError);
    }
    expect(() => bus.publish('ok', 'x', { reply: 'bad..reply' })).toThrow(SubjectError);
    expect(() => bus.publish('ok', 'x', { reply: 'a.*' })).toThrow(SubjectError);
    expect(bus.stats.msgsOut).toBe(0);
    await bus.flush();
    expect(b.broker.counters.msgsIn).toBe(0);
  });

  it('a SubjectError carries code BAD_SUBJECT and the refused subject', async () => {
    const b = await w.broker();
    const bus = await w.connect(b.url);
    let err: unknown;
    try {
      bus.publish('a..b');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(SubjectError);
    expect((err as SubjectError).code).toBe('BAD_SUBJECT');
    expect((err as SubjectError).subject).toBe('a..b');
  });

  it('subscribe throws SubjectError synchronously for every invalid pattern, and registers nothing', async () => {
    const b = await w.broker();
    const bus = await w.connect(b.url, { name: 'c' });
    for (const p of BAD_PATTERNS) {
      expect(() => bus.subscribe(p, () => {}), JSON.stringify(p)).toThrow(SubjectError);
    }
    await bus.flush();
    expect([...b.broker.sessions][0]!.subs.size).toBe(0);
  });

  it('subscribe accepts wildcard patterns that are valid', async () => {
    const b = await w.broker();
    const bus = await w.connect(b.url);
    for (const p of ['*', '>', 'a.*', 'a.>', '*.b.*', 'a.*.>']) expect(() => bus.subscribe(p, () => {})).not.toThrow();
  });

  it('request throws SubjectError synchronously for an invalid subject', async () => {
    const b = await w.broker();
    const bus = await w.connect(b.url);
    for (const s of ['a..b', 'a.*', 'a.>', '']) {
      expect(() => void bus.request(s, 'x').catch(() => {}), JSON.stringify(s)).toThrow(SubjectError);
    }
  });

  it('request with an invalid subject fails with SubjectError and sends nothing', async () => {
    const b = await w.broker();
    const bus = await w.connect(b.url);
    expect(() => bus.request('a.*', 'x')).toThrow(SubjectError);
    expect(bus.stats.msgsOut).toBe(0);
  });

  it('an invalid queue group name is refused with OptionsError', async () => {
    const b = await w.broker();
    const bus = await w.connect(b.url);
    for (const q of ['', 'a.b', 'a b', '*', 'q>']) {
      expect(() => bus.subscribe('s', () => {}, { queue: q }), JSON.stringify(q)).toThrow(OptionsError);
    }
  });
});

describe('unknown and invalid options', () => {
  it('connect with an unknown option rejects with OptionsError naming it', async () => {
    const b = await w.broker();
    const err = await connect(b.url, { nmae: 'typo' } as never).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OptionsError);
    expect((err as OptionsError).code).toBe('BAD_OPTIONS');
    expect((err as Error).message).toMatch(/nmae/);
    expect(b.broker.counters.connectionsTotal).toBe(0);
  });

  it('connect with an option of the wrong type or a negative number rejects with OptionsError', async () => {
    const b = await w.broker();
    await expect(connect(b.url, { reconnect: 'yes' } as never)).rejects.toBeInstanceOf(OptionsError);
    await expect(connect(b.url, { timeoutMs: -1 })).rejects.toBeInstanceOf(OptionsError);
    await expect(connect(b.url, { pingIntervalMs: Number.NaN })).rejects.toBeInstanceOf(OptionsError);
  });

  it('connect with an unsupported transport or no server rejects with OptionsError', async () => {
    // ws:// is dialable now (transports/ws); a transport nobody registered is not.
    await expect(connect({ transport: 'carrier-pigeon' as never })).rejects.toBeInstanceOf(OptionsError);
    await expect(connect([])).rejects.toBeInstanceOf(OptionsError);
  });

  it('subscribe with an unknown option or a bad max throws OptionsError', async () => {
    const b = await w.broker();
    const bus = await w.connect(b.url);
    expect(() => bus.subscribe('s', () => {}, { qeueu: 'g' } as never)).toThrow(OptionsError);
    expect(() => bus.subscribe('s', { maxx: 3 } as never)).toThrow(OptionsError);
    expect(() => bus.subscribe('s', () => {}, { max: -1 })).toThrow(OptionsError);
    expect(() => bus.subscribe('s', () => {}, { max: 1.5 })).toThrow(OptionsError);
    expect(() => bus.subscribe('s', { maxPending: 0 })).toThrow(OptionsError);
  });

  it('publish with an unknown option or a non-string header throws OptionsError and sends nothing', async () => {
    const b = await w.broker();
    const bus = await w.connect(b.url);
    expect(() => bus.publish('s', 'x', { replyTo: 'r' } as never)).toThrow(OptionsError);
    expect(() => bus.publish('s', 'x', { headers: { n: 1 } } as never)).toThrow(OptionsError);
    expect(bus.stats.msgsOut).toBe(0);
  });

  it('new Bus with bad options throws OptionsError synchronously', () => {
    expect(() => new Bus('tcp://127.0.0.1:1', { bogus: true } as never)).toThrow(OptionsError);
  });
});

describe('maximum payload', () => {
  it('the client learns maxPayload from the server', async () => {
    const b = await w.broker({ maxPayload: 1024 });
    const bus = await w.connect(b.url);
    expect(bus.info!.maxPayload).toBe(1024);
  });

  it('a payload over the server maxPayload throws MaxPayloadError and nothing is sent', async () => {
    const b = await w.broker({ maxPayload: 1024 });
    const bus = await w.connect(b.url);
    const got: number[] = [];
    bus.subscribe('big', (m) => got.push(m.data.length));
    let err: unknown;
    try {
      bus.publish('big', new Uint8Array(1025));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(MaxPayloadError);
    expect((err as MaxPayloadError).code).toBe('MAX_PAYLOAD');
    expect((err as MaxPayloadError).size).toBe(1025);
    expect((err as MaxPayloadError).limit).toBe(1024);
    // UTF-8 bytes count, not characters: 513 × "é" is 1026 bytes.
    expect(() => bus.publish('big', 'é'.repeat(513))).toThrow(MaxPayloadError);
    // msgpack-encoded size counts for objects.
    expect(() => bus.publish('big', { blob: new Uint8Array(1020) })).toThrow(MaxPayloadError);
    expect(bus.stats.msgsOut).toBe(0);
    // A payload of exactly the limit goes through, and only it was sent.
    bus.publish('big', new Uint8Array(1024));
    await bus.flush();
    expect(got).toEqual([1024]);
    expect(b.broker.counters.msgsIn).toBe(1);
    expect(bus.connected).toBe(true);
  });

  it('a request with a payload over maxPayload rejects with MaxPayloadError', async () => {
    const b = await w.broker({ maxPayload: 1024 });
    const bus = await w.connect(b.url);
    bus.subscribe('svc', (m) => m.respond('ok'));
    await expect(bus.request('svc', new Uint8Array(2000))).rejects.toBeInstanceOf(MaxPayloadError);
    expect((await bus.request('svc', new Uint8Array(10))).string()).toBe('ok');
  });

  it('a raw client publishing an oversized payload gets ERR MAX_PAYLOAD and is closed, while other clients keep working', async () => {
    const b = await w.broker({ maxPayload: 1024 });
    const sub = await w.connect(b.url);
    const got: string[] = [];
    sub.subscribe('x', (m) => got.push(m.string()));
    await sub.flush();
    const raw = await w.raw(b);
    await raw.handshake();
    raw.send(pubFrame('x', 'fits'), pubFrame('x', Buffer.alloc(2000, 0x61)), pubFrame('x', 'after'));
    await raw.closed;
    const errs = raw.errors();
    expect(errs).toHaveLength(1);
    expect(errs[0]!.code).toBe(ERR.MAX_PAYLOAD);
    expect(errs[0]!.flags & FLAG_FATAL).toBe(FLAG_FATAL);
    expect(errs[0]!.text).toMatch(/1024/);
    // The other client is unaffected and got only the message that fit.
    const pub = await w.connect(b.url);
    pub.publish('x', 'still working');
    await pub.flush();
    await sub.flush();
    expect(got).toEqual(['fits', 'still working']);
    expect(sub.connected).toBe(true);
    expect(raw.frames.some((f) => f.op === OP.MSG)).toBe(false);
  });
});

describe('maximum headers and pending bytes', () => {
  it('headers over the server maxHeaders throw MaxPayloadError and nothing is sent', async () => {
    const b = await w.broker({ maxHeaders: 64 });
    const bus = await w.connect(b.url);
    expect(bus.info!.maxHeaders).toBe(64);
    expect(() => bus.publish('h', 'x', { headers: { big: 'v'.repeat(100) } })).toThrow(MaxPayloadError);
    expect(bus.stats.msgsOut).toBe(0);
    bus.publish('h', 'x', { headers: { small: 'v' } });
    await bus.flush();
    expect(b.broker.counters.msgsIn).toBe(1);
  });

  it('publishing faster than the socket drains throws PendingLimitError beyond maxPendingBytes; after flush() publishing works again', async () => {
    const b = await w.broker();
    const bus = await w.connect(b.url, { maxPendingBytes: 16 * 1024 });
    const got: number[] = [];
    bus.subscribe('p', (m) => got.push(m.data.length));
    await bus.flush();
    let accepted = 0;
    let err: unknown;
    for (let i = 0; i < 1000 && err === undefined; i++) {
      try {
        bus.publish('p', new Uint8Array(1000));
        accepted++;
      } catch (e) {
        err = e;
      }
    }
    expect(err).toBeInstanceOf(PendingLimitError);
    expect(accepted).toBeGreaterThan(0);
    expect(accepted).toBeLessThan(1000);
    await bus.flush();
    bus.publish('p', new Uint8Array(1000));
    await bus.flush();
    expect(got).toHaveLength(accepted + 1);
  });
});

describe('maximum subscriptions', () => {
  it('a subscription over maxSubscriptions is refused: the error reaches bus.on("error") as ServerError MAX_SUBSCRIPTIONS and that subscription is closed', async () => {
    const b = await w.broker({ maxSubscriptions: 2 });
    const bus = await w.connect(b.url);
    const errors: Error[] = [];
    bus.on('error', (e) => errors.push(e));
    const got: string[] = [];
    const s1 = bus.subscribe('a', (m) => got.push(`a:${m.string()}`));
    const s2 = bus.subscribe('b', (m) => got.push(`b:${m.string()}`));
    const s3 = bus.subscribe('c', (m) => got.push(`c:${m.string()}`));
    await bus.flush();
    await s3.closed;
    expect(errors).toHaveLength(1);
    const err = errors[0] as ServerError;
    expect(err).toBeInstanceOf(ServerError);
    expect(err.serverCode).toBe('MAX_SUBSCRIPTIONS');
    expect(err.sid).toBe(s3.sid);
    expect(err.fatal).toBe(false);
    expect(s3.isClosedNow).toBe(true);
    expect(s1.isClosedNow || s2.isClosedNow).toBe(false);
    // The connection and the accepted subscriptions keep working.
    for (const s of ['a', 'b', 'c']) bus.publish(s, '1');
    await bus.flush();
    expect(got).toEqual(['a:1', 'b:1']);
    expect(bus.connected).toBe(true);
  });

  it("the caller that made the subscription learns of the refusal: its ready promise rejects with the ServerError, the accepted ones' resolve", async () => {
    const b = await w.broker({ maxSubscriptions: 2 });
    const bus = await w.connect(b.url);
    bus.on('error', () => {});
    const subs = ['a', 'b', 'c'].map((p) => bus.subscribe(p, () => {}));
    const outcomes = await Promise.all(
      subs.map((s) =>
        s.ready.then(
          () => 'accepted',
          (e: unknown) => e,
        ),
      ),
    );
    expect(outcomes.slice(0, 2)).toEqual(['accepted', 'accepted']);
    const err = outcomes[2] as ServerError;
    expect(err).toBeInstanceOf(ServerError);
    expect(err.code).toBe('MAX_SUBSCRIPTIONS');
    expect(err.sid).toBe(subs[2]!.sid);
    // Asked again, or only after the refusal arrived: the same answer, without another round trip.
    await expect(subs[2]!.ready).rejects.toBe(err);
    const late = bus.subscribe('d', () => {});
    await bus.flush();
    await expect(late.ready).rejects.toBeInstanceOf(ServerError);
  });

  it('iterating a refused subscription throws the server error', async () => {
    const b = await w.broker({ maxSubscriptions: 1 });
    const bus = await w.connect(b.url);
    bus.on('error', () => {});
    bus.subscribe('a', () => {});
    const refused = bus.subscribe('b');
    await bus.flush();
    const loop = (async () => {
      for await (const _ of refused) {
        /* nothing arrives */
      }
    })();
    await expect(loop).rejects.toBeInstanceOf(ServerError);
  });

  it('a for await loop already waiting when the server refuses the subscription throws the server error', async () => {
    const b = await w.broker({ maxSubscriptions: 1 });
    const bus = await w.connect(b.url);
    bus.on('error', () => {});
    bus.subscribe('a', () => {});
    const refused = bus.subscribe('b');
    const loop = (async () => {
      for await (const _ of refused) {
        /* nothing arrives */
      }
      return 'ended without an error';
    })();
    await bus.flush();
    await expect(loop).rejects.toBeInstanceOf(ServerError);
  });

  it('after unsubscribing, a new subscription fits again', async () => {
    const b = await w.broker({ maxSubscriptions: 1 });
    const bus = await w.connect(b.url);
    const errors: Error[] = [];
    bus.on('error', (e) => errors.push(e));
    bus.subscribe('a', () => {}).unsubscribe();
    const s = bus.subscribe('b', () => {});
    await bus.flush();
    expect(errors).toEqual([]);
    expect(s.isClosedNow).toBe(false);
  });
});

describe('connection errors', () => {
  it('a ConnectionError names the servers it could not reach', async () => {
    const err = await connect('tcp://127.0.0.1:1', { timeoutMs: 2000 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConnectionError);
    expect((err as ConnectionError).code).toBe('CONNECTION');
    expect((err as Error).message).toMatch(/127\.0\.0\.1:1/);
  });

  it('errors without an error listener do not crash the process', async () => {
    const b = await w.broker({ maxSubscriptions: 1 });
    const bus = await w.connect(b.url);
    const warnings: Error[] = [];
    const onWarning = (e: Error) => warnings.push(e);
    process.on('warning', onWarning);
    try {
      bus.subscribe('a', () => {});
      bus.subscribe('b', () => {});
      await bus.flush();
      await until(() => warnings.length > 0, 'the process warning');
      expect(warnings[0]).toBeInstanceOf(ServerError);
    } finally {
      process.off('warning', onWarning);
    }
  });
});
