import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { Op, msgSize } from '../../transports/protocol/index.js';
import { parseChannel } from '../../transports/multicast/endpoint.js';
import { resolveChannels } from '../../transports/multicast/config.js';
import { capture, put } from './multicast-sender.js';
import { HEADER, datagramType, isIpv4Multicast, seqAdd, seqDiff } from '../../transports/multicast/wire.js';

const doc = fs.readFileSync(new URL('../../docs/PROTOCOL.md', import.meta.url), 'utf8');

describe('multicast datagram format', () => {
  it('the DATA dump of docs/PROTOCOL.md is exactly what the source produces', () => {
    const block = /<!-- mcast-data-example:begin -->\s*```text\n([\s\S]*?)```/.exec(doc);
    expect(block, 'the DATA example block of docs/PROTOCOL.md').not.toBeNull();
    const hex = block![1]!
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l) => l.split('|')[0]!.trim().split(/\s+/).slice(1).join(''))
      .join('');
    const { s, out } = capture();
    put(s, 'md.EURUSD.bid', '1.0712');
    put(s, 'md.EURUSD.ask', '1.0714');
    s.flush();
    // The two hello heartbeats go first.
    expect(out.map((d) => d[3])).toEqual([2, 2, 1]);
    expect(out[2]!.toString('hex')).toBe(hex);
  });

  it('packs frames up to the budget and numbers datagrams and messages', () => {
    const { s, out } = capture(200);
    for (let i = 0; i < 10; i++) put(s, 'a.b', 'x'.repeat(30)); // 54-byte frames: 3 per 200-byte datagram
    s.flush();
    const data = out.filter((d) => d[3] === 1);
    expect(data.map((d) => d.readUInt16LE(18))).toEqual([3, 3, 3, 1]);
    expect(data.map((d) => d.readUInt32LE(8))).toEqual([1, 2, 3, 4]);
    expect(data.map((d) => d.readUInt32LE(12))).toEqual([1, 4, 7, 10]);
    expect(data.every((d) => d.length <= 200)).toBe(true);
  });

  it('fragments a frame larger than a datagram into consecutive pieces with total and offset', () => {
    const { s, out } = capture(200);
    put(s, 'big', 'y'.repeat(500));
    const frags = out.filter((d) => d[3] === 1);
    const total = msgSize(3, 0, 0, 500, false);
    expect(frags.every((d) => d[16] === 0x02 && d.readUInt32LE(HEADER) === total && d.readUInt32LE(12) === 1)).toBe(true);
    expect(frags.map((d) => d.readUInt32LE(HEADER + 4))).toEqual([0, 172, 344, 516]); // 523 bytes in 172-byte pieces
    const joined = Buffer.concat(frags.map((d) => d.subarray(HEADER + 8)));
    expect(joined.length).toBe(total);
    expect(joined[4]).toBe(Op.MSG);
  });

  it('answers a NAK from its ring, flagged RETRANSMIT, and says UNAVAILABLE for what left it', () => {
    const { s, out } = capture(200, 16);
    for (let i = 0; i < 40; i++) {
      put(s, 'a', String(i));
      s.flush();
    }
    out.length = 0;
    s.onNak(38, 2, 1000);
    expect(out.map((d) => [d[3], d.readUInt32LE(8), d[16]])).toEqual([
      [1, 38, 1],
      [1, 39, 1],
    ]);
    out.length = 0;
    s.onNak(38, 1, 1001); // within the hold-off: not again
    expect(out).toEqual([]);
    s.onNak(2, 3, 2000);
    expect(out.map((d) => [d[3], d.readUInt32LE(8), d.readUInt32LE(12)])).toEqual([[4, 2, 3]]);
    expect(s.oldestRetained).toBe(26);
  });

  it('reads headers defensively, compares sequence numbers across the wrap, and parses addresses', () => {
    expect(datagramType(Buffer.from('HM\x01\x01' + '\0'.repeat(16), 'latin1'))).toBe(1);
    expect(datagramType(Buffer.from('HM\x02\x01' + '\0'.repeat(16), 'latin1'))).toBe(0); // version
    expect(datagramType(Buffer.from('HM\x01\x02' + '\0'.repeat(16), 'latin1'))).toBe(0); // short heartbeat
    expect(datagramType(Buffer.from('XM\x01\x01' + '\0'.repeat(16), 'latin1'))).toBe(0);
    expect(seqDiff(2, 0xffffffff)).toBe(3);
    expect(seqAdd(0xffffffff, 2)).toBe(1);
    expect(isIpv4Multicast('239.1.2.3')).toBe(true);
    expect(isIpv4Multicast('10.1.2.3')).toBe(false);
    expect(() => parseChannel('239.1.2.3')).toThrow(/group:port/);
    const r = resolveChannels('udp://239.1.2.3:7500?iface=10.0.0.1&ttl=3', {
      channels: ['239.1.2.4:7500'],
      rules: [{ prefix: 'md', channel: '239.1.2.4:7500' }],
    });
    expect(r).toMatchObject({ iface: '10.0.0.1', ttl: 3, map: { count: 2, rules: [{ prefix: 'md', channel: 1 }] } });
  });
});
