/**
 * Flow control through the client API over loopback multicast: back-pressure on
 * publish (PendingLimitError, pendingBytes, flush()), STATUS and SLOW on the wire as
 * docs/PROTOCOL.md gives them (from and to a raw socket), a receiver that stalls or
 * leaves, the 'slow' and 'receiver-slow' events, and the flowControl option.
 */
import dgram from 'node:dgram';
import { expect, it } from 'vitest';
import type { MulticastSlowEvent } from '../../client/multicast.js';
import { PendingLimitError } from '../../client/errors.js';
import { DType, HEADER, SLOW_SIZE, STATUS_SIZE, readIpv4, writeHeader, writeIpv4 } from '../../transports/multicast/wire.js';
import { tick } from '../kit/index.js';
import { channelOf, describeMulticast, until, urlOf, useBuses } from './helpers.js';

const FILE = 5;
const w = useBuses();
const url = urlOf(FILE, 0);
const chan = channelOf(FILE, 0);

/** A STATUS, byte by byte: receiver `id` has consumed up to `pos` on the channel of `source`, window `windowBytes`. */
function status(source: number, id: number, pos: number, windowBytes: number, leave = false): Buffer {
  const b = Buffer.alloc(STATUS_SIZE);
  writeHeader(b, 0, DType.STATUS, source, pos, id, leave ? 0x04 : 0, 0);
  writeIpv4(b, HEADER, chan.group);
  b.writeUInt16LE(chan.port, HEADER + 4);
  b[HEADER + 6] = 1; // body version
  b.writeUInt32LE(windowBytes, HEADER + 8);
  return b;
}

/** A raw UDP socket on 127.0.0.1 that keeps what it receives. */
async function rawSocket(): Promise<{ sock: dgram.Socket; got: Buffer[]; send(b: Buffer, to: string): Promise<void> }> {
  const sock = dgram.createSocket('udp4');
  const got: Buffer[] = [];
  sock.on('message', (m) => got.push(m));
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
  return {
    sock,
    got,
    send: (b, to) => {
      const [host, port] = to.split(':');
      return new Promise<void>((r) => sock.send(b, Number(port), host, () => r()));
    },
  };
}

describeMulticast('multicast flow control through the client API', () => {
  it('a publish beyond maxHeldBytes throws PendingLimitError (nothing is sent or lost); flush() resolves once the window let everything out', async () => {
    // The kernel's smallest receive buffer: b's window is about one datagram. a's hold is as
    // small as it can be: its largest message (small maxPayload and maxHeaders), about 100 datagrams.
    const a = await w.open(url, { maxHeldBytes: 1400, maxPayload: 1024, maxHeaders: 256 });
    const b = await w.open(url, { recvBufferBytes: 1 });
    const got: number[] = [];
    b.subscribe('win.x', (m) => got.push(parseInt(m.string(), 10)));
    await b.flush();
    a.publish('win.x', '0');
    await until(() => got.length === 1 && a.stats.receivers === 1, 'b in the window');
    let refused = 0;
    const payload = 'x'.repeat(300); // four messages a datagram
    for (let i = 1; i < 2000; i++) {
      try {
        a.publish('win.x', `${i} ${payload}`);
      } catch (err) {
        expect(err).toBeInstanceOf(PendingLimitError);
        expect((err as Error).message).toMatch(/maxHeldBytes/);
        refused++;
        expect(a.pendingBytes).toBeGreaterThan(0);
        await a.flush();
        a.publish('win.x', `${i} ${payload}`); // room again
      }
    }
    await a.flush();
    expect(a.pendingBytes).toBe(0);
    expect(refused).toBeGreaterThan(0);
    await until(() => got.length === 2000, 'all 2,000 at b');
    expect(got).toEqual([...Array(2000).keys()]);
    expect(b.stats.lostMessages).toBe(0);
    expect(a.stats.windowFull).toBeGreaterThan(0);
    expect(b.stats.statusSent).toBeGreaterThan(0);
  });

  it('a receiver that reports once and then stalls is dropped after slowReceiverMs: receiver-slow at the source, SLOW on the wire to it, and what waited leaves', async () => {
    const a = await w.open(url, { slowReceiverMs: 50 });
    const slows: { receiver: string; channel: string }[] = [];
    a.on('receiver-slow', (e) => slows.push(e));
    a.publish('stall.x', 'first'); // the channel's sender exists from here: seq 1 sent
    await a.flush();
    const raw = await rawSocket();
    try {
      // Consumed nothing after seq 1, room for two datagrams.
      await raw.send(status(a.session, 0x1234abcd, 2, 2 * 1400), a.address);
      await until(() => a.stats.receivers === 1, 'the raw receiver in the window');
      for (let i = 0; i < 10; i++) {
        a.publish('stall.x', String(i));
        await tick();
      }
      expect(a.pendingBytes).toBeGreaterThan(0); // the window (seqs 2, 3) is full
      await a.flush(); // resolves once the stalled receiver is dropped
      expect(a.pendingBytes).toBe(0);
      expect(slows).toEqual([{ receiver: `127.0.0.1:${raw.sock.address().port}/1234abcd`, channel: chan.key }]);
      expect(a.stats.slowReceivers).toBe(1);
      await until(() => raw.got.some((d) => d[3] === DType.SLOW), 'the SLOW datagram');
      const slow = raw.got.find((d) => d[3] === DType.SLOW)!;
      expect(slow.length).toBe(SLOW_SIZE);
      expect(slow.readUInt32LE(4)).toBe(a.session);
      expect(slow.readUInt32LE(8)).toBe(2); // its position when dropped
      expect(slow.readUInt32LE(12)).toBe(0x1234abcd);
      expect(`${readIpv4(slow, HEADER)}:${slow.readUInt16LE(HEADER + 4)}`).toBe(chan.key);
      expect(slow.readUInt32LE(HEADER + 8)).toBe(1); // dropped once
    } finally {
      raw.sock.close();
    }
  });

  it('a receiver that closes says LEAVE: the source forgets it at once and its window opens', async () => {
    const a = await w.open(url);
    const b = await w.open(url);
    let n = 0;
    b.subscribe('leave.x', () => n++);
    await b.flush();
    a.publish('leave.x', '1');
    await until(() => n === 1 && a.stats.receivers === 1, 'b in the window');
    await b.close();
    await until(() => a.stats.receiverLeaves === 1, 'the LEAVE');
    expect(a.stats.receivers).toBe(0);
  });

  it("a source's SLOW reaches the receiver as one 'slow' event per drop, with the source, channel and position", async () => {
    const a = await w.open(url);
    const b = await w.open(url);
    const events: MulticastSlowEvent[] = [];
    b.on('slow', (e) => events.push(e));
    b.subscribe('told.x', () => {});
    await b.flush();
    a.publish('told.x', '1');
    await until(() => a.stats.receivers === 1, 'b in the window');
    const raw = await rawSocket();
    try {
      const slow = (drops: number) => {
        const d = Buffer.alloc(SLOW_SIZE);
        writeHeader(d, 0, DType.SLOW, a.session, 77, b.session, 0, 0);
        writeIpv4(d, HEADER, chan.group);
        d.writeUInt16LE(chan.port, HEADER + 4);
        d.writeUInt32LE(drops, HEADER + 8);
        return d;
      };
      await raw.send(slow(1), b.address);
      await raw.send(slow(1), b.address); // a copy: told already
      await raw.send(slow(2), b.address);
      await until(() => events.length === 2, 'two slow events');
      expect(events[0]).toMatchObject({ channel: chan.key, position: 77 });
      expect(events[0]!.source).toMatch(/\/[0-9a-f]{8}$/);
      expect(b.stats.slowDrops).toBe(2);
    } finally {
      raw.sock.close();
    }
  });

  it("flowControl 'none' sends at once whatever the receivers, and sets no FLOW: receivers send no STATUS", async () => {
    const a = await w.open(url, { flowControl: 'none' });
    const b = await w.open(url);
    let n = 0;
    b.subscribe('none.x', () => n++);
    await b.flush();
    for (let i = 0; i < 50; i++) a.publish('none.x', String(i));
    await until(() => n === 50, 'fifty messages');
    expect(b.stats.statusSent).toBe(0);
    expect(a.stats.receivers).toBe(0);
  });

  it('flowControl per channel, by "group:port" or index, and clear refusals of bad values', async () => {
    const c1 = channelOf(FILE, 1);
    const a = await w.open(url, { channels: [c1.key], rules: [{ prefix: 'one', channel: 1 }], flowControl: { default: 'none', [c1.key]: 'max' } });
    const b = await w.open(url, { channels: [c1.key], rules: [{ prefix: 'one', channel: 1 }] });
    let n = 0;
    b.subscribe('one.x', () => n++);
    b.subscribe('zero.x', () => n++);
    await b.flush();
    a.publish('one.x', '1');
    a.publish('zero.x', '0');
    await until(() => n === 2 && a.stats.receivers === 1, 'b in the window of channel 1 only');
    await expect(w.open(url, { flowControl: 'fast' as never })).rejects.toThrow(/flowControl must be one of min, max, none/);
    await expect(w.open(url, { flowControl: { '239.0.0.1:1': 'min' } })).rejects.toThrow(/not in the channel list/);
  });
});
