import dgram from 'node:dgram';
import { expect, it } from 'vitest';
import type { MulticastLossEvent, MulticastSourceEvent } from '../../client/index.js';
import { startNode } from '../../bench/procs.js';
import { DType, HEADER, NAK_SIZE, writeHeader, writeIpv4 } from '../../transports/multicast/wire.js';
import { tick } from '../kit/index.js';
import { channelOf, describeMulticast, until, urlOf, useBuses } from './helpers.js';

const FILE = 2;
const w = useBuses();
const url = urlOf(FILE, 0);

/** Sends `count` messages on `subject`, each in its own datagram (an idle publisher sends each at once). */
async function oneByOne(bus: { publish(s: string, d: string): void }, subject: string, from: number, count: number): Promise<void> {
  for (let i = from; i < from + count; i++) {
    bus.publish(subject, String(i));
    await tick();
  }
}

describeMulticast('multicast loss repair', () => {
  it('datagrams dropped at the source (test hook) are NAKed, resent and delivered in order, with no loss reported', async () => {
    const drop = new Set([3, 5, 6, 20]);
    const a = await w.open(url, { testDrop: (seq, _ch, re) => !re && drop.has(seq) });
    const b = await w.open(url);
    const got: number[] = [];
    const losses: MulticastLossEvent[] = [];
    b.on('loss', (e) => losses.push(e));
    b.subscribe('rep.x', (m) => got.push(Number(m.string())));
    await b.flush();
    await oneByOne(a, 'rep.x', 0, 30);
    await until(() => got.length === 30, 'all 30 messages');
    expect(got).toEqual([...Array(30).keys()]);
    expect(losses).toEqual([]);
    expect(a.stats.testDropped).toBe(4);
    expect(a.stats.retransmits).toBeGreaterThanOrEqual(4);
    expect(b.stats.naksSent).toBeGreaterThanOrEqual(1);
    expect(b.stats.outOfOrder).toBeGreaterThan(0);
    expect(b.stats.gapsRepaired).toBeGreaterThanOrEqual(1); // gaps repaired together count once
  });

  it('a receiver already listening when a source starts repairs the loss of its very first datagram (the source says hello first)', async () => {
    const b = await w.open(url);
    const got: number[] = [];
    b.subscribe('first.x', (m) => got.push(Number(m.string())));
    await b.flush();
    const a = await w.open(url, { testDrop: (seq, _ch, re) => !re && seq === 1 });
    await oneByOne(a, 'first.x', 0, 5);
    await until(() => got.length === 5, 'all five, the first repaired');
    expect(got).toEqual([0, 1, 2, 3, 4]);
    expect(a.stats.retransmits).toBe(1);
  });

  it('tail loss: the last datagram of a burst is lost; the next heartbeat reveals it and it is repaired', async () => {
    const a = await w.open(url, { heartbeatMinMs: 5, testDrop: (seq, _ch, re) => !re && seq === 10 });
    const b = await w.open(url);
    const got: number[] = [];
    b.subscribe('tail.x', (m) => got.push(Number(m.string())));
    await b.flush();
    await oneByOne(a, 'tail.x', 0, 10);
    await until(() => got.length === 10, 'the lost tail, repaired');
    expect(got).toEqual([...Array(10).keys()]);
    expect(a.stats.heartbeatsOut).toBeGreaterThan(0);
  });

  it('a gap that cannot be repaired reaches the subscriber as a counted loss event, and delivery goes on after it', async () => {
    // seq 4 never arrives, not even resent: after nakMaxRetries NAK rounds it is declared lost.
    const a = await w.open(url, { testDrop: (seq) => seq === 4 });
    const b = await w.open(url, { nakRetryMs: 2, nakMaxRetries: 3 });
    const got: number[] = [];
    const losses: MulticastLossEvent[] = [];
    b.on('loss', (e) => losses.push(e));
    const sub = b.subscribe('gap.x', (m) => got.push(Number(m.string())));
    await b.flush();
    await oneByOne(a, 'gap.x', 0, 10);
    await until(() => got.length === 9 && losses.length === 1, 'nine messages and one loss event');
    expect(got).toEqual([0, 1, 2, 4, 5, 6, 7, 8, 9]);
    const e = losses[0]!;
    expect(e).toMatchObject({ subscription: sub, subject: 'gap.x', dropped: 1, conflated: 0, policy: 'gap', datagrams: 1, channel: channelOf(FILE, 0).key });
    expect(e.reason).toMatch(/not repaired after 3 NAKs/);
    expect(sub.dropped).toBe(1);
    expect(b.stats.lostMessages).toBe(1);
    expect(b.stats.naksSent).toBeGreaterThanOrEqual(3);
  });

  it('the loss count is in messages: a lost datagram that packed 40 messages counts 40', async () => {
    let first = true;
    const a = await w.open(url, { testDrop: (seq, _ch) => seq === 3 && (first || true) });
    const b = await w.open(url, { nakRetryMs: 2, nakMaxRetries: 2 });
    const losses: MulticastLossEvent[] = [];
    b.on('loss', (e) => losses.push(e));
    let n = 0;
    b.subscribe('cnt.x', () => n++);
    await b.flush();
    a.publish('cnt.x', 'a'); // seq 1, alone
    await tick(); // the run of code ends: the next publish is alone again
    a.publish('cnt.x', 'b'); // seq 2, alone
    for (let i = 0; i < 40; i++) a.publish('cnt.x', 'c'); // seq 3: packed
    await tick();
    a.publish('cnt.x', 'd');
    first = false;
    await until(() => losses.length === 1 && n === 3, 'loss event');
    expect(losses[0]!.dropped).toBe(40);
  });

  it("datagrams out of the source's retransmission buffer are declared lost at once (UNAVAILABLE or heartbeat), not NAKed forever", async () => {
    // A 16-datagram ring without flow control: seq 2 is overwritten long before the receiver's late NAK.
    const a = await w.open(url, { flowControl: 'none', retransmitBufferBytes: 16 * 1400, testDrop: (seq, _ch, re) => !re && seq === 2 });
    const b = await w.open(url, { nakBackoffMs: 60, nakRetryMs: 500, nakMaxRetries: 10 });
    const losses: MulticastLossEvent[] = [];
    b.on('loss', (e) => losses.push(e));
    let n = 0;
    b.subscribe('ring.x', () => n++);
    await b.flush();
    await oneByOne(a, 'ring.x', 0, 40);
    await until(() => losses.length === 1 && n === 39, 'the loss, quickly');
    expect(losses[0]!.reason).toMatch(/retransmission buffer/);
    expect(losses[0]!.dropped).toBe(1);
  });

  it('with flow control the same late NAK is repaired: the window keeps the source from overwriting what a live receiver still needs', async () => {
    // A 128-slot ring: the hold is the largest message (small maxPayload and maxHeaders: 97
    // datagrams), the window 29 datagrams. Without flow control seq 2 would be overwritten at seq 130.
    const a = await w.open(url, {
      retransmitBufferBytes: 4 * 1400,
      maxHeldBytes: 1400,
      maxPayload: 1024,
      maxHeaders: 256,
      testDrop: (seq, _ch, re) => !re && seq === 2,
    });
    const b = await w.open(url, { nakBackoffMs: 60, nakRetryMs: 500, nakMaxRetries: 10 });
    const losses: MulticastLossEvent[] = [];
    b.on('loss', (e) => losses.push(e));
    const got: number[] = [];
    b.subscribe('ring.y', (m) => got.push(Number(m.string())));
    await b.flush();
    let waited = 0;
    for (let i = 0; i < 200; i++) {
      // Datagrams wait for the window while seq 2 is missing at b: flush() resolves once they left.
      if (a.pendingBytes > 0) {
        waited++;
        await a.flush();
      }
      a.publish('ring.y', String(i));
      await tick();
    }
    await a.flush();
    expect(waited).toBeGreaterThan(0);
    await until(() => got.length === 200, 'all 200, the gap repaired');
    expect(got).toEqual([...Array(200).keys()]);
    expect(losses).toEqual([]);
    expect(a.stats.windowFull).toBeGreaterThan(0);
    expect(a.stats.retransmits).toBeGreaterThanOrEqual(1);
  });

  it('the source limits repair bandwidth: a receiver that needs more than repairBytesPerSec gets loss events, not a storm', async () => {
    const drop = new Set([3, 4, 5, 6, 7, 8, 9, 10]);
    // About two small datagrams' worth of repair budget per second.
    const a = await w.open(url, { repairBytesPerSec: 120, testDrop: (seq, _ch, re) => !re && drop.has(seq) });
    const b = await w.open(url, { nakRetryMs: 2, nakMaxRetries: 2 });
    const losses: MulticastLossEvent[] = [];
    b.on('loss', (e) => losses.push(e));
    let n = 0;
    b.subscribe('thr.x', () => n++);
    await b.flush();
    await oneByOne(a, 'thr.x', 0, 12);
    await until(() => n + losses.reduce((s, l) => s + l.dropped, 0) === 12, 'every message delivered or reported lost');
    expect(a.stats.repairsThrottled).toBeGreaterThan(0);
    expect(a.stats.retransmits).toBeLessThan(8);
    expect(losses.length).toBeGreaterThan(0);
  });

  it('duplicates (a datagram resent though it arrived) are dropped and counted, never delivered twice', async () => {
    const a = await w.open(url, { repairHoldoffMs: 0 });
    const b = await w.open(url);
    const got: string[] = [];
    b.subscribe('dup.x', (m) => got.push(m.string()));
    await b.flush();
    await oneByOne(a, 'dup.x', 0, 3);
    await until(() => got.length === 3, 'three messages');
    // A NAK, byte by byte as docs/PROTOCOL.md gives it, from a raw socket: resend seqs 1..3 twice.
    const c = channelOf(FILE, 0);
    const nak = Buffer.alloc(NAK_SIZE);
    writeHeader(nak, 0, DType.NAK, a.session, 1, 3, 0, 0);
    writeIpv4(nak, HEADER, c.group);
    nak.writeUInt16LE(c.port, HEADER + 4);
    const raw = dgram.createSocket('udp4');
    try {
      const [host, port] = a.address.split(':');
      for (let i = 0; i < 2; i++) await new Promise<void>((r) => raw.send(nak, Number(port), host, () => r()));
      await until(() => b.stats.duplicates >= 6, 'six duplicates counted');
      // A last message after the resends: once it is in, every resend before it was seen.
      a.publish('dup.x', 'last');
      await until(() => got.at(-1) === 'last', 'the last message');
      expect(got).toEqual(['0', '1', '2', 'last']);
      expect(a.stats.naksReceived).toBe(2);
      expect(a.stats.retransmits).toBe(6);
    } finally {
      raw.close();
    }
  });

  it('a coalesced NAK (more ranges after the body) is answered range by range, and counted as one NAK', async () => {
    const a = await w.open(url, { repairHoldoffMs: 0 });
    const b = await w.open(url);
    const got: string[] = [];
    b.subscribe('coal.x', (m) => got.push(m.string()));
    await b.flush();
    await oneByOne(a, 'coal.x', 0, 5);
    await until(() => got.length === 5, 'five messages');
    const c = channelOf(FILE, 0);
    const nak = Buffer.alloc(NAK_SIZE + 16);
    writeHeader(nak, 0, DType.NAK, a.session, 1, 1, 0, 0); // seq 1
    writeIpv4(nak, HEADER, c.group);
    nak.writeUInt16LE(c.port, HEADER + 4);
    nak.writeUInt16LE(2, HEADER + 6); // two more ranges: seq 3, and seqs 4..5
    nak.writeUInt32LE(3, NAK_SIZE);
    nak.writeUInt32LE(1, NAK_SIZE + 4);
    nak.writeUInt32LE(4, NAK_SIZE + 8);
    nak.writeUInt32LE(2, NAK_SIZE + 12);
    const raw = dgram.createSocket('udp4');
    try {
      const [host, port] = a.address.split(':');
      await new Promise<void>((r) => raw.send(nak, Number(port), host, () => r()));
      await until(() => a.stats.retransmits === 4, 'four datagrams resent');
      expect(a.stats.naksReceived).toBe(1);
    } finally {
      raw.close();
    }
  });

  it('suppression: a receiver whose gap is filled by a repair someone else asked for never sends its own NAK', async () => {
    const a = await w.open(url, { testDrop: (seq, _ch, re) => !re && seq === 5 });
    // One receiver NAKs at once; three would wait up to 5 s before their first NAK.
    const eager = await w.open(url, { nakBackoffMs: 0 });
    const patient = [];
    for (let i = 0; i < 3; i++) patient.push(await w.open(url, { nakBackoffMs: 5000 }));
    const all = [eager, ...patient];
    const counts = all.map(() => 0);
    all.forEach((r, i) => r.subscribe('sup.x', () => counts[i]!++));
    for (const r of all) await r.flush();
    await oneByOne(a, 'sup.x', 0, 10);
    await until(() => counts.every((c) => c === 10), 'every receiver repaired');
    expect(eager.stats.naksSent).toBeGreaterThanOrEqual(1);
    expect(patient.map((r) => r.stats.naksSent)).toEqual([0, 0, 0]);
    expect(patient.every((r) => r.stats.gapsRepaired === 1)).toBe(true);
    expect(a.stats.retransmits).toBeLessThanOrEqual(eager.stats.naksSent);
  });

  it('a source that dies (no goodbye) is declared gone after the timeout, and its unrepairable tail is reported lost', async () => {
    const b = await w.open(url, { sourceTimeoutMs: 300, nakRetryMs: 50, nakMaxRetries: 20 });
    const gone: MulticastSourceEvent[] = [];
    const losses: MulticastLossEvent[] = [];
    b.on('source-gone', (e) => gone.push(e));
    b.on('loss', (e) => losses.push(e));
    let n = 0;
    b.subscribe('die.x', () => n++);
    await b.flush();
    // Each message alone (slice 1, 1000/s): seq = message + 1. The last datagram is never sent, nor resent.
    const src = await startNode(
      'dist/bench/mcast-peer.js',
      [
        'pub',
        url,
        'die.x',
        '20',
        JSON.stringify({ rate: 1000, slice: 1, heartbeatMinMs: 5, heartbeatMaxMs: 20, dropSeqs: [20], dropAlways: true, exitAfterMs: 60 }),
      ],
      /^READY/,
      10_000,
      { stdin: true },
    );
    src.child.stdin!.on('error', () => {}); // it exits on its own
    try {
      src.child.stdin!.write('go\n');
      await until(() => gone.length === 1, 'source-gone', 5000);
      expect(gone[0]!.reason).toBe('timeout');
      expect(n).toBe(19);
      expect(losses).toHaveLength(1);
      expect(losses[0]!.dropped).toBe(1);
      expect(losses[0]!.reason).toMatch(/stopped heartbeating/);
    } finally {
      await src.stop();
    }
  });
});
