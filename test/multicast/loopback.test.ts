import { expect, it } from 'vitest';
import { connect, MaxPayloadError, OptionsError, TimeoutError, type Msg, type MulticastLossEvent, type MulticastSourceEvent } from '../../client/index.js';
import { SubjectError } from '../../topics/index.js';
import { FakeClock } from '../../runtime/clock.js';
import fs from 'node:fs';
import os from 'node:os';
import { AUTO_DATAGRAM_MAX, MulticastEndpoint, autoDatagramBytes, type EndpointHandler, type SourceEvent } from '../../transports/multicast/endpoint.js';
import { put } from '../transports/multicast-sender.js';
import { channelOf, describeMulticast, until, urlOf, useBuses } from './helpers.js';

const FILE = 1;

/** The name of the interface that has 127.0.0.1 ('lo' on Linux). */
function loopbackName(): string {
  const hit = Object.entries(os.networkInterfaces()).find(([, addrs]) => addrs?.some((x) => x.address === '127.0.0.1'));
  if (hit === undefined) throw new Error('no interface has 127.0.0.1');
  return hit[0];
}
const w = useBuses();
const url = urlOf(FILE, 0);
const more = [channelOf(FILE, 1).key, channelOf(FILE, 2).key, channelOf(FILE, 3).key];

describeMulticast('multicast over loopback', () => {
  it('connect("udp://...") gives a brokerless client: what one bus publishes another receives, in order', async () => {
    const a = await connect(url as `udp://${string}`, { lingerMs: 0 });
    const b = await w.open(url);
    try {
      const got: string[] = [];
      b.subscribe('md.*.bid', (m) => got.push(`${m.subject}=${m.string()}`));
      await b.flush();
      for (let i = 0; i < 500; i++) a.publish(`md.S${i % 7}.bid`, String(i));
      a.publish('md.S1.ask', 'not for b');
      await until(() => got.length === 500, '500 messages');
      expect(got[0]).toBe('md.S0.bid=0');
      expect(got.map((g) => Number(g.split('=')[1]))).toEqual([...Array(500).keys()]);
      // A last message on the same channel: once it is in, md.S1.ask (sent before it) was seen and not delivered.
      a.publish('md.fence.bid', 'fence');
      await until(() => got.at(-1) === 'md.fence.bid=fence', 'the fence');
      expect(got).toHaveLength(501);
    } finally {
      await a.close();
    }
  });

  it('payload kinds, headers, reply subjects and timestamps survive the trip (the MSG frame is the same codec)', async () => {
    const a = await w.open(url, { timestamps: true });
    const b = await w.open(url);
    const got: Msg[] = [];
    b.subscribe('k.>', (m) => got.push(m));
    await b.flush();
    a.publish('k.raw', new Uint8Array([1, 2, 3]));
    a.publish('k.text', 'héllo');
    a.publish('k.obj', { px: 1.5, q: [1, 2] }, { headers: { src: 'test' }, reply: 'k.back' });
    await until(() => got.length === 3, '3 messages');
    expect([...(got[0]!.value as Uint8Array)]).toEqual([1, 2, 3]);
    expect(got[1]!.value).toBe('héllo');
    expect(got[2]!.value).toEqual({ px: 1.5, q: [1, 2] });
    expect(got[2]!.headers).toEqual({ src: 'test' });
    expect(got[2]!.reply).toBe('k.back');
    expect(typeof got[0]!.sentAt).toBe('bigint');
  });

  it('a bus receives its own messages, as a broker connection does', async () => {
    const a = await w.open(url);
    const got: string[] = [];
    a.subscribe('self.x', (m) => got.push(m.string()));
    await a.flush();
    a.publish('self.x', 'me');
    await until(() => got.length === 1, 'own message');
    expect(got).toEqual(['me']);
  });

  it('an idle publisher sends each message alone at once; a burst is packed into datagrams up to the budget', async () => {
    const a = await w.open(url);
    const before = a.stats.datagramsOut;
    a.publish('pack.one', 'x');
    expect(a.stats.datagramsOut).toBe(before + 1); // synchronously, no timer
    await Promise.resolve(); // the run of code ends (a microtask): the publisher is idle again
    const b0 = a.stats.datagramsOut;
    for (let i = 0; i < 1000; i++) a.publish('pack.many', 'y'.repeat(10));
    await Promise.resolve(); // the last partial datagram leaves at the end of the run
    const used = a.stats.datagramsOut - b0;
    // 1000 frames of 39 bytes: the first alone, the rest packed into full datagrams (20 bytes of header each).
    const packed = 1 + Math.ceil((999 * 39) / (a.stats.datagramBytes - 20));
    expect(used).toBeGreaterThanOrEqual(packed);
    expect(used).toBeLessThanOrEqual(packed + 1);
  });

  it("datagramBytes 'auto' (the default) is 100 bytes under the interface's MTU, at most 16 KiB; a number is taken as given", async () => {
    const mtu = Number(fs.readFileSync(`/sys/class/net/${loopbackName()}/mtu`, 'utf8'));
    const a = await w.open(url);
    expect(a.stats.datagramBytes).toBe(Math.min(AUTO_DATAGRAM_MAX, mtu - 100));
    expect(autoDatagramBytes('127.0.0.1')).toBe(a.stats.datagramBytes);
    const b = await w.open(url, { datagramBytes: 1400 });
    expect(b.stats.datagramBytes).toBe(1400);
    // Never more than the buffers the other options bound.
    const c = await w.open(url, { datagramBytes: 'auto', maxHeldBytes: 3000 });
    expect(c.stats.datagramBytes).toBe(Math.min(3000, a.stats.datagramBytes));
    // An address no interface has: the MTU is unknown, 1,400 (under Ethernet's 1,500).
    expect(autoDatagramBytes('192.0.2.77')).toBe(1400);
  });

  it('subjects map onto channels: a subscription joins only the groups it needs and receives only its subjects', async () => {
    const opts = {
      channels: more,
      rules: [
        { prefix: 'md.fx', channel: 1 },
        { prefix: 'news', channel: more[1]! },
      ],
    };
    const a = await w.open(url, opts);
    const b = await w.open(url, opts);
    const c = await w.open(url, opts);
    const fx: string[] = [];
    const all: string[] = [];
    b.subscribe('md.fx.*', (m) => fx.push(m.subject));
    c.subscribe('>', (m) => all.push(m.subject));
    await b.flush();
    await c.flush();
    const joined = (bus: typeof b) => bus.channels.map((_, i) => (bus as unknown as { ep: { isJoined(i: number): boolean } }).ep.isJoined(i));
    expect(joined(b)).toEqual([false, true, false, false]);
    expect(joined(c)).toEqual([true, true, true, true]);
    const subjects = ['md.fx.EURUSD', 'md.eq.IBM', 'news.x', 'orders.a.new', 'md.fx.GBPUSD'];
    for (const s of subjects) a.publish(s, 'x');
    await until(() => all.length === 5 && fx.length === 2, 'deliveries');
    expect(fx).toEqual(['md.fx.EURUSD', 'md.fx.GBPUSD']);
    expect([...all].sort()).toEqual([...subjects].sort());
    expect(b.map.channelOf('md.fx.EURUSD')).toBe(1);
    expect(b.map.channelOf('news.x')).toBe(2);
  });

  it('unsubscribing the last subscription of a channel leaves its group; max counts locally', async () => {
    const a = await w.open(url);
    const b = await w.open(url);
    const got: number[] = [];
    const sub = b.subscribe('u.x', (m) => got.push(Number(m.string())), { max: 3 });
    await b.flush();
    for (let i = 0; i < 10; i++) a.publish('u.x', String(i));
    await until(() => sub.isClosedNow, 'auto-unsubscribe');
    // All ten reached b (delivered or not): nothing is still on its way to the closed subscription.
    await until(() => b.stats.msgsIn === 10, 'all ten messages at b');
    expect(got).toEqual([0, 1, 2]);
    expect((b as unknown as { ep: { isJoined(i: number): boolean } }).ep.isJoined(0)).toBe(false);
  });

  it('fragmentation: a message larger than a datagram is cut and reassembled, up to maxPayload; above it, MaxPayloadError and nothing is sent', async () => {
    const a = await w.open(url, { maxPayload: 300_000 });
    const b = await w.open(url, { maxPayload: 300_000 });
    const got: Buffer[] = [];
    b.subscribe('big.>', (m) => got.push(Buffer.from(m.data)));
    await b.flush();
    const big = Buffer.alloc(300_000);
    for (let i = 0; i < big.length; i++) big[i] = (i * 7) & 0xff;
    a.publish('big.one', big);
    a.publish('big.small', 'after');
    const dg = a.stats.datagramBytes;
    a.publish('big.two', big.subarray(0, dg)); // just over one datagram
    await until(() => got.length === 3, 'reassembled messages');
    expect(got[0]!.equals(big)).toBe(true);
    expect(got[1]!.toString()).toBe('after');
    expect(got[2]!.equals(big.subarray(0, dg))).toBe(true);
    expect(a.stats.fragmentsOut).toBeGreaterThan(300_000 / dg);
    const out = a.stats.datagramsOut;
    expect(() => a.publish('big.three', Buffer.alloc(300_001))).toThrow(MaxPayloadError);
    expect(a.stats.datagramsOut).toBe(out);
  });

  it('request/reply works over pure multicast; a request nobody answers times out (no broker to say "no responders")', async () => {
    const a = await w.open(url);
    const b = await w.open(url);
    b.subscribe('svc.echo', (m) => m.respond(`re:${m.string()}`));
    await b.flush();
    const r = await a.request('svc.echo', 'hi', { timeoutMs: 2000 });
    expect(r.string()).toBe('re:hi');
    await expect(a.request('svc.nobody', 'x', { timeoutMs: 100 })).rejects.toBeInstanceOf(TimeoutError);
  });

  it('refuses what multicast cannot do, with a clear error: queue groups, the block policy, bad URLs and options', async () => {
    const a = await w.open(url);
    expect(() => a.subscribe('q.x', () => {}, { queue: 'workers' })).toThrow(/queue groups need a broker/);
    expect(() => a.subscribe('q.x', () => {}, { policy: 'block' })).toThrow(/cannot pause a multicast source/);
    expect(() => a.publish('bad..subject', 'x')).toThrow(SubjectError);
    await expect(connect('udp://10.1.2.3:5000' as `udp://${string}`)).rejects.toThrow(OptionsError);
    await expect(connect(url as `udp://${string}`, { bogus: 1 } as never)).rejects.toThrow(/unknown multicast connect option "bogus"/);
    await expect(connect(`${url}&foo=1` as `udp://${string}`)).rejects.toThrow(/unknown parameter "foo"/);
    await expect(connect(url as `udp://${string}`, { rules: [{ prefix: 'a', channel: '239.1.1.1:1' }] })).rejects.toThrow(/not in the channel list/);
    await expect(connect(url as `udp://${string}`, { publishRate: { msgsPerSec: 10 } } as never)).rejects.toThrow(/enforced by a broker/);
    await expect(connect(url as `udp://${string}`, { heartbeatMinMs: -1 })).rejects.toThrow(/non-negative number/);
    await expect(connect(url as `udp://${string}`, { datagramBytes: 100 })).rejects.toThrow(OptionsError);
  });

  it('accepts (and ignores) the options of a broker connection, so the same code runs with a tcp:// or udp:// URL', async () => {
    const a = await w.open(url, { name: 'x', reconnect: false, pingIntervalMs: 1000, maxPingsOut: 2, verbose: false, timeoutMs: 1000 });
    const got: string[] = [];
    a.subscribe('same.code', (m) => got.push(m.string()));
    await a.flush();
    a.publish('same.code', 'ok');
    await until(() => got.length === 1, 'message');
  });

  it('two sources on one group: each source is its own sequence, both delivered in order', async () => {
    const a = await w.open(url);
    const c = await w.open(url);
    const b = await w.open(url);
    const got = new Map<string, number[]>();
    b.subscribe('two.*', (m) => {
      const l = got.get(m.subject) ?? [];
      l.push(Number(m.string()));
      got.set(m.subject, l);
    });
    const news: MulticastSourceEvent[] = [];
    b.on('source-new', (e) => news.push(e));
    await b.flush();
    for (let i = 0; i < 300; i++) {
      a.publish('two.a', String(i));
      c.publish('two.c', String(i));
    }
    await until(() => (got.get('two.a')?.length ?? 0) === 300 && (got.get('two.c')?.length ?? 0) === 300, 'both streams');
    expect(got.get('two.a')).toEqual([...Array(300).keys()]);
    expect(got.get('two.c')).toEqual([...Array(300).keys()]);
    expect(new Set(news.map((n) => n.source)).size).toBe(2);
    expect(a.session).not.toBe(c.session);
  });

  it('a late joiner gets what is sent from when it joins, with no loss reported for the history', async () => {
    const a = await w.open(url);
    for (let i = 0; i < 200; i++) a.publish('late.x', String(i));
    await a.flush(); // the history has left, before b exists
    const b = await w.open(url);
    const got: number[] = [];
    const losses: MulticastLossEvent[] = [];
    b.on('loss', (e) => losses.push(e));
    b.subscribe('late.x', (m) => got.push(Number(m.string())));
    await b.flush();
    for (let i = 200; i < 300; i++) a.publish('late.x', String(i));
    await until(() => got.length === 100, 'messages after joining');
    expect(got).toEqual([...Array(100).keys()].map((i) => i + 200));
    // No gap was ever seen (a loss is only reported for a gap that repair could not fill).
    expect(b.stats.outOfOrder).toBe(0);
    expect(b.stats.naksSent).toBe(0);
    expect(losses).toEqual([]);
  });

  it('a source that closes says goodbye: receivers report it gone at once (reason "bye")', async () => {
    const a = await w.open(url);
    const b = await w.open(url);
    const gone: MulticastSourceEvent[] = [];
    b.on('source-gone', (e) => gone.push(e));
    b.subscribe('bye.x', () => {});
    await b.flush();
    a.publish('bye.x', '1');
    await until(() => b.stats.msgsIn === 1, 'first message');
    await a.close();
    await until(() => gone.length === 1, 'source-gone');
    expect(gone[0]!.reason).toBe('bye');
    expect(gone[0]!.source).toContain(a.session.toString(16).padStart(8, '0'));
  });

  it('an idle source heartbeats with back-off, so a silent but live source is not declared gone, and a dead one is (FakeClocks, real sockets)', async () => {
    // Each endpoint on its own fake clock: time passes for a source only when the test says
    // so, and the heartbeats it sends then cross real loopback multicast to the receiver.
    const ca = new FakeClock(0);
    const cb = new FakeClock(0);
    const ch = channelOf(FILE, 5);
    const gone: SourceEvent[] = [];
    const handler = (onSourceGone: (e: SourceEvent) => void): EndpointHandler => ({ onFrame: () => {}, onLoss: () => {}, onSourceGone });
    const a = new MulticastEndpoint(
      [ch],
      { heartbeatMinMs: 5, heartbeatMaxMs: 40 },
      handler(() => {}),
      ca,
    );
    const b = new MulticastEndpoint(
      [ch],
      { sourceTimeoutMs: 300 },
      handler((e) => gone.push(e)),
      cb,
    );
    try {
      await a.open();
      await b.open();
      await b.join(0);
      const sent = (): number => a.stats().datagramsOut + a.stats().heartbeatsOut;
      put(a.sender(0), 'hb.x', '1');
      await until(() => b.stats().datagramsIn === sent(), 'b hears the datagram and the hello heartbeats');
      // 2 s of idle time, in 5 ms steps; after each step, b has heard all a sent before its clock moves on.
      for (let t = 0; t < 2000; t += 5) {
        ca.advance(5);
        await until(() => b.stats().datagramsIn === sent(), `b hears what a sent by ${t + 5} ms`);
        cb.advance(5);
      }
      expect(gone).toEqual([]);
      // Back-off: at 5, 15, 35, then every 40 ms (75, 115, ..., 1995), after the 2 hello heartbeats.
      expect(a.stats().heartbeatsOut).toBe(2 + 3 + 49);
      // a falls silent (its clock stops): b gives it sourceTimeoutMs from the last heartbeat it heard (at 1990).
      cb.advance(290);
      expect(gone).toEqual([]);
      cb.advance(100);
      expect(gone.map((e) => e.reason)).toEqual(['timeout']);
      expect(gone[0]!.source.session).toBe(a.session);
    } finally {
      await a.close();
      await b.close();
    }
  });
});
