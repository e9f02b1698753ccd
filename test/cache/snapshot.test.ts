/**
 * Snapshot subscriptions against a real broker: the cached value of every matching
 * subject first (msg.snapshot, msg.seq), then live messages, snapshotDone with the
 * count, over TCP, a Unix socket, inproc and WebSocket; bus.last; tombstones; a
 * subscriber that asks for a snapshot of nothing.
 */
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { startBroker } from '../../broker/index.js';
import { connectBroker, type Bus, type Msg, type Subscription } from '../../client/index.js';
import { FakeClock } from '../../runtime/clock.js';
import { FLAG_SEQ, Op } from '../../transports/protocol/index.js';
import { sessionOf, subFrame, until, useWorld } from '../kit/index.js';

const world = useWorld();

const CACHE = [{ pattern: 'md.>', maxSubjects: 1000, maxBytes: 1 << 20 }];

interface Seen {
  subject: string;
  value: unknown;
  seq: number | undefined;
  snapshot: boolean;
}

function record(into: Seen[]): (m: Msg) => void {
  return (m) => into.push({ subject: m.subject, value: m.value, seq: m.seq, snapshot: m.snapshot });
}

async function roundTrip(pub: Bus, sub: Bus): Promise<void> {
  await pub.flush();
  await sub.flush();
}

describe('snapshot subscriptions', () => {
  it('deliver the cached value of each matching subject, then live messages with the next sequence', async () => {
    const b = await world.broker({ cache: CACHE });
    const pub = await world.connect(b.url);
    for (let i = 0; i < 3; i++) for (const s of ['md.A', 'md.B', 'md.C']) pub.publish(s, `${s}:${i}`);
    pub.publish('other.X', 'not cached');
    await pub.flush();
    const bus = await world.connect(b.url);
    const seen: Seen[] = [];
    const sub = bus.subscribe('md.*', record(seen), { snapshot: true });
    expect(await sub.snapshotDone).toBe(3);
    expect(seen.map((s) => [s.subject, s.value, s.seq, s.snapshot]).sort()).toEqual([
      ['md.A', 'md.A:2', 3, true],
      ['md.B', 'md.B:2', 3, true],
      ['md.C', 'md.C:2', 3, true],
    ]);
    pub.publish('md.B', 'live');
    await until(() => seen.length === 4, 'the live message');
    expect(seen[3]).toEqual({ subject: 'md.B', value: 'live', seq: 4, snapshot: false });
  });

  it('an image of nothing: snapshotDone is 0 and live messages follow', async () => {
    const b = await world.broker({ cache: CACHE });
    const bus = await world.connect(b.url);
    const seen: Seen[] = [];
    const sub = bus.subscribe('md.none.>', record(seen), { snapshot: true });
    expect(await sub.snapshotDone).toBe(0);
    bus.publish('md.none.x', 1);
    await until(() => seen.length === 1, 'the live message');
    expect(seen[0]).toMatchObject({ snapshot: false, seq: 1 });
  });

  it('a snapshot of subjects no cache pattern covers is empty, and the broker without a cache serves it too', async () => {
    const b = await world.broker();
    const bus = await world.connect(b.url);
    const sub = bus.subscribe('md.>', () => undefined, { snapshot: true });
    expect(await sub.snapshotDone).toBe(0);
    expect(await bus.last('md.A')).toBeUndefined();
  });

  it('a plain subscription on the same connection is unaffected: no cached values, one copy of each live message', async () => {
    const b = await world.broker({ cache: CACHE });
    const pub = await world.connect(b.url);
    pub.publish('md.A', 'old');
    await pub.flush();
    const bus = await world.connect(b.url);
    const plain: Seen[] = [];
    const snap: Seen[] = [];
    bus.subscribe('md.>', record(plain));
    await bus.flush();
    const sub = bus.subscribe('md.A', record(snap), { snapshot: true });
    await sub.snapshotDone;
    pub.publish('md.A', 'new');
    await until(() => snap.length === 2 && plain.length === 1, 'the live message on both');
    await roundTrip(pub, bus);
    expect(plain).toEqual([{ subject: 'md.A', value: 'new', seq: 2, snapshot: false }]);
    expect(snap).toEqual([
      { subject: 'md.A', value: 'old', seq: 1, snapshot: true },
      { subject: 'md.A', value: 'new', seq: 2, snapshot: false },
    ]);
  });

  it('a tombstone (header Hopbus-Delete) removes the value: it is delivered live, then neither snapshots nor last() have it', async () => {
    const b = await world.broker({ cache: CACHE });
    const pub = await world.connect(b.url);
    pub.publish('md.A', 'a');
    pub.publish('md.B', 'b');
    await pub.flush();
    expect(await pub.last('md.A')).toBe('a');
    const live: Seen[] = [];
    pub.subscribe('md.A', record(live));
    await pub.flush();
    pub.publish('md.A', undefined, { headers: { 'Hopbus-Delete': '1' } });
    await until(() => live.length === 1, 'the tombstone, live');
    expect(await pub.last('md.A')).toBeUndefined();
    const bus = await world.connect(b.url);
    const seen: Seen[] = [];
    expect(await bus.subscribe('md.*', record(seen), { snapshot: true }).snapshotDone).toBe(1);
    expect(seen.map((s) => s.subject)).toEqual(['md.B']);
    expect(b.broker.cache.stats()).toMatchObject({ subjects: 1, deletes: 1 });
  });

  it('last() gives the newest value decoded by its kind, or undefined; msgpack and raw payloads keep their kind', async () => {
    const b = await world.broker({ cache: CACHE });
    const bus = await world.connect(b.url);
    bus.publish('md.obj', { bid: 1.07, ask: 1.08 });
    bus.publish('md.raw', new Uint8Array([1, 2, 3]));
    await bus.flush();
    expect(await bus.last('md.obj')).toEqual({ bid: 1.07, ask: 1.08 });
    expect(Buffer.from((await bus.last('md.raw')) as Uint8Array)).toEqual(Buffer.from([1, 2, 3]));
    expect(await bus.last('md.nothing')).toBeUndefined();
    expect(await bus.last('elsewhere.x')).toBeUndefined();
    await expect(bus.last('md.*')).rejects.toThrow(/wildcards are not allowed/);
    const st = b.broker.cache.stats();
    expect(st.hits).toBeGreaterThanOrEqual(2);
    expect(st.misses).toBe(2);
  });

  it('a second image on a connection waits for the first, and includes a subject first published meanwhile', async () => {
    const b = await world.broker({ cache: [{ pattern: 'md.>', maxSubjects: 20_000, maxBytes: 16 << 20 }], highWaterBytes: 512 });
    const pub = await world.connect(b.url);
    for (let i = 0; i < 10_000; i++) pub.publish(`md.a.S${i}`, i);
    await pub.flush();
    const bus = await world.connect(b.url);
    const first = bus.subscribe('md.a.>', () => undefined, { snapshot: true });
    const seen: Seen[] = [];
    const second = bus.subscribe('md.b.>', record(seen), { snapshot: true });
    await bus.flush();
    // Both images pending: the first is on its way, the second has not begun.
    expect(b.broker.cache.stats().imagesPending).toBe(2);
    pub.publish('md.b.NEW', 'first value');
    await pub.flush();
    expect(b.broker.cache.stats().imagesPending).toBeGreaterThan(0);
    expect(await first.snapshotDone).toBe(10_000);
    expect(await second.snapshotDone).toBe(1);
    expect(seen).toEqual([{ subject: 'md.b.NEW', value: 'first value', seq: 1, snapshot: true }]);
  });

  it('unsubscribed while its image is on its way: the image stops, snapshotDone resolves with what came', async () => {
    const b = await world.broker({ cache: [{ pattern: 'md.>', maxSubjects: 10_000, maxBytes: 16 << 20 }], highWaterBytes: 1024 });
    const pub = await world.connect(b.url);
    for (let i = 0; i < 5000; i++) pub.publish(`md.S${i}`, i);
    await pub.flush();
    const bus = await world.connect(b.url);
    let n = 0;
    // Unsubscribed at its first cached value: the rest is not delivered.
    const sub: Subscription = bus.subscribe(
      'md.>',
      () => {
        if (n++ === 0) sub.unsubscribe();
      },
      { snapshot: true },
    );
    const done = await sub.snapshotDone;
    expect(done).toBe(1);
    expect(n).toBe(1);
    await bus.flush();
    expect(b.broker.cache.stats()).toMatchObject({ snapshots: 1, imagesPending: 0 });
  });

  it('after a reconnect the subscription gets a fresh image, then live messages again', async () => {
    const b = await world.broker({ cache: CACHE });
    const pub = await world.connect(b.url);
    pub.publish('md.A', 'a1');
    await pub.flush();
    const bus = await world.connect(b.url, { name: 'joiner', reconnectDelayMs: 10, reconnectJitterMs: 0 });
    const seen: Seen[] = [];
    const sub = bus.subscribe('md.A', record(seen), { snapshot: true });
    expect(await sub.snapshotDone).toBe(1);
    const reconnected = new Promise((r) => bus.once('reconnect', r));
    sessionOf(b, 'joiner').link.destroy();
    await reconnected;
    await until(() => seen.length === 2, 'the second image');
    pub.publish('md.A', 'a2');
    await until(() => seen.length === 3, 'the live message');
    expect(seen).toEqual([
      { subject: 'md.A', value: 'a1', seq: 1, snapshot: true },
      { subject: 'md.A', value: 'a1', seq: 1, snapshot: true },
      { subject: 'md.A', value: 'a2', seq: 2, snapshot: false },
    ]);
  });

  it("ttlMs runs on the broker's clock: on a fake one, a value is gone once it is older than ttlMs", async () => {
    const clock = new FakeClock();
    const b = await startBroker(
      { host: '127.0.0.1', port: 0, logLevel: 'silent', cache: [{ pattern: 'md.>', maxSubjects: 10, maxBytes: 1 << 20, ttlMs: 5000 }] },
      undefined,
      clock,
    );
    try {
      const bus = world.track(await connectBroker(b.url));
      bus.publish('md.A', 'a');
      await bus.flush();
      clock.advance(4999);
      expect(await bus.last('md.A')).toBe('a');
      clock.advance(1);
      expect(await bus.last('md.A')).toBeUndefined();
      expect(await bus.subscribe('md.>', () => undefined, { snapshot: true }).snapshotDone).toBe(0);
      expect(b.broker.cache.stats().expirations).toBe(1);
      await bus.close();
    } finally {
      await b.close();
    }
  });

  it('a connection that never asked for a snapshot gets cached subjects in the old layout: no sequence block, msg.seq undefined', async () => {
    const b = await world.broker({ cache: CACHE });
    const raw = await world.raw(b);
    await raw.handshake({ name: 'old-client' });
    raw.send(subFrame(1, 'md.A'));
    const bus = await world.connect(b.url);
    const seen: Seen[] = [];
    bus.subscribe('md.A', record(seen));
    await raw.roundTrip();
    await bus.flush();
    bus.publish('md.A', 'plain');
    await until(() => raw.msgCount === 1 && seen.length === 1, 'the message on both');
    const msg = raw.frames.find((f) => f.op === Op.MSG)!;
    // The raw client parses the version-1 layout: subject and payload land where it expects them.
    expect(msg).toMatchObject({ subject: 'md.A', text: 'plain' });
    expect(msg.flags & FLAG_SEQ).toBe(0);
    expect(seen[0]).toEqual({ subject: 'md.A', value: 'plain', seq: undefined, snapshot: false });
  });

  it("a plain subscription's snapshotDone is 0 at once", async () => {
    const b = await world.broker({ cache: CACHE });
    const bus = await world.connect(b.url);
    const sub = bus.subscribe('md.>', () => undefined);
    expect(await sub.snapshotDone).toBe(0);
  });
});

describe('snapshot subscriptions over every stream transport', () => {
  const kinds = ['tcp', 'unix', 'inproc', 'ws'] as const;
  for (const kind of kinds) {
    it(`${kind}: image then live`, async () => {
      const dir = world.tmpdir();
      const b = await world.broker({ cache: CACHE, ...(kind === 'unix' ? { unix: path.join(dir, 'b.sock') } : {}), ...(kind === 'ws' ? { httpPort: 0 } : {}) });
      const url =
        kind === 'tcp' ? b.url : kind === 'unix' ? `unix://${path.join(dir, 'b.sock')}` : kind === 'ws' ? `ws://127.0.0.1:${b.broker.httpPort}/bus` : null;
      const pub = await world.connect(b.url);
      for (let i = 0; i < 50; i++) pub.publish(`md.S${i % 10}`, i);
      await pub.flush();
      const bus = url === null ? world.track(await connectBroker(b.endpoint('inproc'))) : await world.connect(url);
      const seen: Seen[] = [];
      const sub = bus.subscribe('md.>', record(seen), { snapshot: true });
      expect(await sub.snapshotDone).toBe(10);
      expect(seen.every((s) => s.snapshot && s.seq === 5)).toBe(true);
      pub.publish('md.S3', 'live');
      await until(() => seen.length === 11, 'the live message');
      expect(seen[10]).toEqual({ subject: 'md.S3', value: 'live', seq: 6, snapshot: false });
    });
  }
});
