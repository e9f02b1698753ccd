import dgram from 'node:dgram';
import { expect, it } from 'vitest';
import { DType, HEADER, STATUS_SIZE, writeHeader, writeIpv4 } from '../../transports/multicast/wire.js';
import { ConfigError, resolveOptions } from '../../broker/index.js';
import { useWorld } from '../kit/index.js';
import { channelOf, collect, describeMulticast, fence, until, urlOf, useBuses } from './helpers.js';

const FILE = 3;
const world = useWorld();
const w = useBuses();
const url = urlOf(FILE, 0);
const ch1 = channelOf(FILE, 1).key;
const mc = (extra: Record<string, unknown> = {}) => ({ multicast: { url, channels: [ch1], lingerMs: 0, ...extra } });

describeMulticast('broker bridge to multicast', () => {
  it("both ways, exactly once each, no loops: TCP -> multicast, multicast -> TCP, and each side's own copy", async () => {
    const b = await world.broker(mc());
    const tcp = await world.connect(b.url, { name: 'tcp' });
    const m = await w.open(url, { channels: [ch1] });
    const atTcp = collect();
    const atMc = collect();
    tcp.subscribe('px.>', atTcp.on);
    m.subscribe('px.>', atMc.on);
    await tcp.flush();
    await m.flush();
    for (let i = 0; i < 50; i++) tcp.publish(`px.t${i % 3}`, `tcp${i}`);
    for (let i = 0; i < 50; i++) m.publish(`px.m${i % 3}`, `mc${i}`);
    await until(() => atTcp.list.length >= 100 && atMc.list.length >= 100, '100 messages on each side');
    // Anything extra (a loop, a duplicate) would arrive before a fence each way.
    const subjects = [0, 1, 2].flatMap((k) => [`px.t${k}`, `px.m${k}`]);
    await fence(m, subjects, atTcp, atMc);
    await fence(tcp, subjects, atTcp, atMc);
    expect(atTcp.list).toHaveLength(100);
    expect(atMc.list).toHaveLength(100);
    expect(new Set(atTcp.list).size).toBe(100);
    expect(new Set(atMc.list).size).toBe(100);
    // Order per publisher and subject is kept across the bridge (subjects on different channels may interleave).
    for (const k of [0, 1, 2]) {
      expect(atMc.list.filter((x) => x.startsWith(`px.t${k}=`))).toEqual([...Array(50).keys()].filter((i) => i % 3 === k).map((i) => `px.t${k}=tcp${i}`));
      expect(atTcp.list.filter((x) => x.startsWith(`px.m${k}=`))).toEqual([...Array(50).keys()].filter((i) => i % 3 === k).map((i) => `px.m${k}=mc${i}`));
    }
    const s = b.broker.bridge!.stats();
    // Plus the fences: one marker per subject each way.
    expect(s.exported).toBe(50 + subjects.length);
    expect(s.imported).toBe(50 + subjects.length);
  });

  it('two brokers on the same channels: a message crosses to the other broker once and never comes back', async () => {
    const b1 = await world.broker(mc());
    const b2 = await world.broker(mc());
    const c1 = await world.connect(b1.url);
    const c2 = await world.connect(b2.url);
    const at1 = collect();
    const at2 = collect();
    c1.subscribe('two.>', at1.on);
    c2.subscribe('two.>', at2.on);
    await c1.flush();
    await c2.flush();
    for (let i = 0; i < 20; i++) c1.publish('two.a', String(i));
    for (let i = 0; i < 20; i++) c2.publish('two.b', String(i));
    await until(() => at1.list.length >= 40 && at2.list.length >= 40, '40 at each');
    await fence(c1, ['two.a'], at1, at2);
    await fence(c2, ['two.b'], at1, at2);
    expect(at1.list).toHaveLength(40);
    expect(at2.list).toHaveLength(40);
    // Plus one fence each.
    expect(b1.broker.bridge!.stats().exported).toBe(20 + 1);
    expect(b2.broker.bridge!.stats().exported).toBe(20 + 1);
  });

  it('export and import patterns choose what crosses; the bridge joins only the channels its imports need', async () => {
    const b = await world.broker(mc({ export: ['out.>'], import: ['in.>'], rules: [{ prefix: 'in', channel: ch1 }] }));
    const tcp = await world.connect(b.url);
    const m = await w.open(url, { channels: [ch1], rules: [{ prefix: 'in', channel: ch1 }] });
    const atTcp = collect();
    const atMc = collect();
    tcp.subscribe('>', atTcp.on);
    m.subscribe('out.>', atMc.on);
    m.subscribe('private.>', atMc.on);
    await tcp.flush();
    await m.flush();
    expect(b.broker.bridge!.describe().joined).toEqual([ch1]);
    tcp.publish('out.x', '1');
    tcp.publish('private.x', 'local only');
    m.publish('in.y', '2');
    m.publish('out.z', 'not imported'); // not in the bridge's imports (m hears its own copy)
    await until(() => atMc.list.length >= 2 && atTcp.list.length >= 3, 'deliveries');
    // in.> is imported (on ch1, the one channel the bridge joined), out.> exported.
    await fence(m, ['in.fence'], atTcp);
    await fence(tcp, ['out.fence'], atMc);
    expect(atMc.list.sort()).toEqual(['out.x=1', 'out.z=not imported']);
    expect(atTcp.list.sort()).toEqual(['in.y=2', 'out.x=1', 'private.x=local only']);
  });

  it('request/reply across the bridge: a TCP client asks, a multicast responder answers', async () => {
    const b = await world.broker(mc());
    const tcp = await world.connect(b.url);
    const m = await w.open(url, { channels: [ch1] });
    m.subscribe('svc.mc', (msg) => msg.respond(`mc says ${msg.string()}`));
    await m.flush();
    const r = await tcp.request('svc.mc', 'hi', { timeoutMs: 2000 });
    expect(r.string()).toBe('mc says hi');
  });

  it('queue groups at the broker share what comes in from multicast', async () => {
    const b = await world.broker(mc());
    const q1 = await world.connect(b.url);
    const q2 = await world.connect(b.url);
    let n1 = 0;
    let n2 = 0;
    q1.subscribe('work.x', () => n1++, { queue: 'w' });
    q2.subscribe('work.x', () => n2++, { queue: 'w' });
    await q1.flush();
    await q2.flush();
    const m = await w.open(url, { channels: [ch1] });
    for (let i = 0; i < 20; i++) m.publish('work.x', String(i));
    await until(() => n1 + n2 === 20, 'twenty jobs');
    expect(n1).toBe(10);
    expect(n2).toBe(10);
  });

  it("exports wait for the multicast receivers' window; once the hold is full they are dropped and counted, never blocking the broker", async () => {
    // A receiver (a raw socket) that reports once, with room for one datagram, and never again.
    const b = await world.broker(mc({ maxHeldBytes: 1400, slowReceiverMs: 60_000, receiverTimeoutMs: 60_000 }));
    const tcp = await world.connect(b.url);
    const at = collect();
    tcp.subscribe('held.>', at.on);
    tcp.publish('held.x', 'first'); // the bridge's sender for this channel exists from here
    await tcp.flush();
    const probe = await w.open(url, { channels: [ch1] });
    const chan = probe.channels[probe.map.channelOf('held.x')]!;
    const { session, address } = b.broker.bridge!.describe();
    const st = Buffer.alloc(STATUS_SIZE);
    writeHeader(st, 0, DType.STATUS, session, 2, 0x5eed, 0, 0);
    writeIpv4(st, HEADER, chan.group);
    st.writeUInt16LE(chan.port, HEADER + 4);
    st[HEADER + 6] = 1;
    st.writeUInt32LE(1400, HEADER + 8);
    const raw = dgram.createSocket('udp4');
    try {
      const [host, port] = address.split(':');
      await new Promise<void>((r) => raw.send(st, Number(port), host, () => r()));
      await until(() => b.broker.bridge!.stats().receivers === 1, 'the raw receiver in the window');
      const payload = 'p'.repeat(300);
      for (let i = 0; i < 4000; i++) tcp.publish('held.x', `${i} ${payload}`);
      await tcp.flush();
      // The broker's own subscriber got everything; multicast took what its hold could keep.
      await until(() => at.list.length === 4001, 'all 4,001 at the TCP subscriber');
      const s = b.broker.bridge!.stats();
      expect(s.exportDropped).toBeGreaterThan(0);
      expect(s.exported + s.exportDropped).toBe(4001);
      expect(s.heldDatagrams).toBeGreaterThan(0);
    } finally {
      raw.close();
    }
  });

  it('refuses a bad multicast configuration by name', () => {
    expect(() => resolveOptions({ multicast: { url: 'tcp://1.2.3.4:5' } })).toThrow(ConfigError);
    expect(() => resolveOptions({ multicast: { url: 'udp://10.0.0.1:5000' } })).toThrow(/multicast group/);
    expect(() => resolveOptions({ multicast: { url, export: ['a..b'] } })).toThrow(/export must be an array of subject patterns/);
    expect(() => resolveOptions({ multicast: { url, bogus: 1 } as never })).toThrow(/unknown multicast option "bogus"/);
    expect(resolveOptions({ multicast: { url } }).multicast).toEqual({ url });
  });
});
