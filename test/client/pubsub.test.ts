import { describe, expect, it } from 'vitest';
import type { Msg } from '../../client/index.js';
import { sessionOf, until, useWorld } from '../kit/index.js';

const w = useWorld();

/** Publishes each subject and returns the subjects `pattern` received, after a barrier. */
async function delivered(pattern: string, subjects: string[]): Promise<string[]> {
  const b = await w.broker();
  const bus = await w.connect(b.url);
  const got: string[] = [];
  bus.subscribe(pattern, (m) => got.push(m.subject));
  for (const s of subjects) bus.publish(s, 'x');
  // One connection publishes and subscribes: its flush's PONG is queued after
  // every MSG the broker routed back to it.
  await bus.flush();
  return got;
}

describe('subject matching', () => {
  it('a literal subscription receives exactly its subject', async () => {
    expect(await delivered('md.AAPL.bid', ['md.AAPL.bid', 'md.AAPL.ask', 'md.AAPL', 'md.AAPL.bid.x', 'md.MSFT.bid'])).toEqual(['md.AAPL.bid']);
  });

  it('"*" matches exactly one token', async () => {
    expect(await delivered('md.*.bid', ['md.AAPL.bid', 'md.bid', 'md.A.B.bid', 'md.MSFT.bid', 'md.AAPL.ask'])).toEqual(['md.AAPL.bid', 'md.MSFT.bid']);
  });

  it('">" matches one or more trailing tokens, so "a.>" does not match "a"', async () => {
    expect(await delivered('a.>', ['a', 'a.b', 'a.b.c.d', 'b.a', 'ab.c'])).toEqual(['a.b', 'a.b.c.d']);
  });

  it('a lone ">" matches every subject', async () => {
    expect(await delivered('>', ['a', 'a.b', 'x.y.z'])).toEqual(['a', 'a.b', 'x.y.z']);
  });

  it('subjects are case sensitive and may hold any non-space UTF-8', async () => {
    expect(await delivered('prix.*', ['prix.été', 'Prix.été', 'prix.日本'])).toEqual(['prix.été', 'prix.日本']);
  });
});

describe('fan-out', () => {
  it('several subscriptions of one connection matching one message each get it, and the connection receives it once', async () => {
    const b = await w.broker();
    const sub = await w.connect(b.url, { name: 'multi' });
    const pub = await w.connect(b.url, { name: 'pub' });
    const got: Record<string, string[]> = { exact: [], star: [], tail: [], all: [] };
    sub.subscribe('a.b.c', (m) => got.exact!.push(m.string()));
    sub.subscribe('a.*.c', (m) => got.star!.push(m.string()));
    sub.subscribe('a.>', (m) => got.tail!.push(m.string()));
    sub.subscribe('>', (m) => got.all!.push(m.string()));
    await sub.flush();
    const outBefore = b.broker.counters.msgsOut;

    pub.publish('a.b.c', 'one');
    await pub.flush();
    await sub.flush();

    expect(got).toEqual({ exact: ['one'], star: ['one'], tail: ['one'], all: ['one'] });
    expect(sessionOf(b, 'multi').stats.msgsOut).toBe(1);
    expect(b.broker.counters.msgsOut - outBefore).toBe(1);
    expect(sub.stats.msgsIn).toBe(1);
  });

  it('the same Msg object is shared by the matching subscriptions of a connection', async () => {
    const b = await w.broker();
    const bus = await w.connect(b.url);
    const seen: Msg[] = [];
    bus.subscribe('s.x', (m) => seen.push(m));
    bus.subscribe('s.*', (m) => seen.push(m));
    bus.publish('s.x', { v: 1 });
    await bus.flush();
    expect(seen).toHaveLength(2);
    expect(seen[0]).toBe(seen[1]);
  });

  it('two connections subscribed to a subject each receive every message', async () => {
    const b = await w.broker();
    const s1 = await w.connect(b.url, { name: 's1' });
    const s2 = await w.connect(b.url, { name: 's2' });
    const pub = await w.connect(b.url);
    const got1: string[] = [];
    const got2: string[] = [];
    s1.subscribe('news', (m) => got1.push(m.string()));
    s2.subscribe('news', (m) => got2.push(m.string()));
    await Promise.all([s1.flush(), s2.flush()]);
    pub.publish('news', 'a');
    pub.publish('news', 'b');
    await pub.flush();
    await Promise.all([s1.flush(), s2.flush()]);
    expect(got1).toEqual(['a', 'b']);
    expect(got2).toEqual(['a', 'b']);
    expect(sessionOf(b, 's1').stats.msgsOut).toBe(2);
    expect(sessionOf(b, 's2').stats.msgsOut).toBe(2);
  });

  it('a message nobody subscribes to is counted as unrouted and goes nowhere', async () => {
    const b = await w.broker();
    const bus = await w.connect(b.url);
    const got: string[] = [];
    bus.subscribe('other', (m) => got.push(m.subject));
    bus.publish('nobody.listens', 'x');
    await bus.flush();
    expect(b.broker.counters.unrouted).toBe(1);
    expect(b.broker.counters.msgsIn).toBe(1);
    expect(got).toEqual([]);
  });
});

describe('payloads', () => {
  async function roundTrip(data: unknown): Promise<Msg> {
    const b = await w.broker();
    const bus = await w.connect(b.url);
    let got: Msg | undefined;
    bus.subscribe('p', (m) => (got = m));
    bus.publish('p', data);
    await bus.flush();
    expect(got).toBeDefined();
    return got!;
  }

  it('a Uint8Array travels as raw bytes and is received as the same bytes', async () => {
    const bytes = new Uint8Array([0, 1, 2, 254, 255, 0x41]);
    const m = await roundTrip(bytes);
    expect(m.kind).toBe(0);
    expect(m.value).toBeInstanceOf(Uint8Array);
    expect([...(m.value as Uint8Array)]).toEqual([...bytes]);
    expect([...m.data]).toEqual([...bytes]);
  });

  it('a string travels as UTF-8 and is received as the same string', async () => {
    const m = await roundTrip('héllo, 世界 🚀');
    expect(m.kind).toBe(1);
    expect(m.value).toBe('héllo, 世界 🚀');
    expect(m.string()).toBe('héllo, 世界 🚀');
    expect(m.data.length).toBe(Buffer.byteLength('héllo, 世界 🚀'));
  });

  it('an object travels as msgpack: nested values, arrays, numbers, booleans, null, Dates and bytes survive', async () => {
    const when = new Date('2024-03-01T12:34:56.789Z');
    const value = {
      px: 1.0712,
      qty: 1_000_000,
      big: -(2 ** 40),
      ok: true,
      none: null,
      tags: ['a', 'b', { deep: [1, [2, [3]]] }],
      nested: { a: { b: { c: 'd' } } },
      when,
      blob: new Uint8Array([9, 8, 7]),
    };
    const m = await roundTrip(value);
    expect(m.kind).toBe(2);
    const got = m.value as typeof value;
    expect(got.when).toBeInstanceOf(Date);
    expect(got.when.getTime()).toBe(when.getTime());
    expect([...got.blob]).toEqual([9, 8, 7]);
    expect({ ...got, when: undefined, blob: undefined }).toEqual({ ...value, when: undefined, blob: undefined });
  });

  it('an array and a number are objects too and survive msgpack', async () => {
    expect((await roundTrip([1, 'two', 3.5])).value).toEqual([1, 'two', 3.5]);
    expect((await roundTrip(42)).value).toBe(42);
  });

  it('no data is an empty raw payload', async () => {
    const m = await roundTrip(undefined);
    expect(m.data.length).toBe(0);
    expect(m.kind).toBe(0);
  });

  it('an object of about 1 MB, within the default 1 MiB limit, arrives intact', async () => {
    const blob = new Uint8Array(1_000_000);
    for (let i = 0; i < blob.length; i++) blob[i] = (i * 31) & 0xff;
    const m = await roundTrip({ name: 'big', blob });
    const got = m.value as { name: string; blob: Uint8Array };
    expect(got.name).toBe('big');
    expect(Buffer.compare(Buffer.from(got.blob), Buffer.from(blob))).toBe(0);
  });

  it('a raw payload of exactly the default maxPayload (1 MiB) arrives intact', async () => {
    const blob = new Uint8Array(1024 * 1024).fill(7);
    blob[0] = 1;
    blob[blob.length - 1] = 2;
    const m = await roundTrip(blob);
    expect(m.data.length).toBe(blob.length);
    expect(Buffer.compare(Buffer.from(m.data), Buffer.from(blob))).toBe(0);
  });
});

describe('received messages', () => {
  it('a message keeps its payload after many later messages have arrived', async () => {
    const b = await w.broker();
    const bus = await w.connect(b.url);
    const kept: Msg[] = [];
    bus.subscribe('keep', (m) => kept.push(m));
    for (let i = 0; i < 5000; i++) bus.publish('keep', `message number ${i}`);
    await bus.flush();
    expect(kept).toHaveLength(5000);
    expect(kept.every((m, i) => m.string() === `message number ${i}`)).toBe(true);
  });

  it('a verbose connection works the same (the broker OKs are absorbed)', async () => {
    const b = await w.broker();
    const bus = await w.connect(b.url, { verbose: true });
    const got: string[] = [];
    bus.subscribe('v', (m) => got.push(m.string()));
    bus.publish('v', 'x');
    await bus.flush();
    expect(got).toEqual(['x']);
  });
});

describe('headers', () => {
  it('string headers travel beside the payload', async () => {
    const b = await w.broker();
    const bus = await w.connect(b.url);
    const got: Msg[] = [];
    bus.subscribe('h', (m) => got.push(m));
    bus.publish('h', 'with', { headers: { 'X-Trace': 'abc-123', unicode: 'é' } });
    bus.publish('h', 'without');
    await bus.flush();
    expect(got[0]!.headers).toEqual({ 'X-Trace': 'abc-123', unicode: 'é' });
    expect(got[0]!.string()).toBe('with');
    expect(got[1]!.headers).toBeUndefined();
    expect(got[1]!.string()).toBe('without');
  });
});

describe('timestamps', () => {
  it('with timestamps on, a message carries the publisher send time and a later broker receive time', async () => {
    const b = await w.broker();
    const bus = await w.connect(b.url, { timestamps: true });
    let got: Msg | undefined;
    bus.subscribe('ts', (m) => (got = m));
    bus.publish('ts', 'x');
    await bus.flush();
    expect(typeof got!.sentAt).toBe('bigint');
    expect(typeof got!.brokerAt).toBe('bigint');
    expect(got!.brokerAt! >= got!.sentAt!).toBe(true);
    expect(got!.string()).toBe('x');
  });

  it('without timestamps a message has none', async () => {
    const b = await w.broker();
    const bus = await w.connect(b.url);
    let got: Msg | undefined;
    bus.subscribe('ts', (m) => (got = m));
    bus.publish('ts', 'x');
    await bus.flush();
    expect(got!.sentAt).toBeUndefined();
    expect(got!.brokerAt).toBeUndefined();
  });
});

describe('ordering', () => {
  it('100,000 messages from one publisher arrive in order, none lost, none duplicated', async () => {
    const b = await w.broker();
    const sub = await w.connect(b.url);
    const pub = await w.connect(b.url);
    const N = 100_000;
    let next = 0;
    let outOfOrder = -1;
    sub.subscribe('seq', (m) => {
      const seq = Buffer.from(m.data).readUInt32LE(0);
      if (seq !== next && outOfOrder < 0) outOfOrder = seq;
      next = seq + 1;
    });
    await sub.flush();
    const buf = Buffer.alloc(8);
    for (let i = 0; i < N; i++) {
      buf.writeUInt32LE(i, 0);
      pub.publish('seq', buf);
      if (i % 10_000 === 9_999) await pub.flush();
    }
    await pub.flush();
    await until(() => next >= N, `all ${N} messages (got up to ${next})`, 20_000);
    await sub.flush();
    expect(outOfOrder).toBe(-1);
    expect(next).toBe(N);
    expect(sub.stats.msgsIn).toBe(N);
  });
});
