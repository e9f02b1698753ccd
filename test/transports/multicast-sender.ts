/**
 * A multicast ChannelSender with no socket: its datagrams are captured in `out`, for the
 * wire-format and repair suites.
 */
import type { Clock } from '../../runtime/clock.js';
import { Op, msgSize, writeMsgHeader } from '../../transports/protocol/index.js';
import { ChannelSender, type SenderHost } from '../../transports/multicast/source.js';
import { parseChannel } from '../../transports/multicast/endpoint.js';

/** A sender whose datagrams are captured instead of sent. */
export function capture(
  budget = 1400,
  slots = 16,
  repair: { repairHoldoffMs?: number; repairBytesPerSec?: number; heartbeatMinMs?: number; heartbeatMaxMs?: number } = {},
  clock?: Clock,
): { s: ChannelSender; out: Buffer[] } {
  const out: Buffer[] = [];
  const host: SenderHost = {
    session: 0x1a2b3c4d,
    transmit: (b, off, len) => out.push(Buffer.from(b.subarray(off, off + len))),
    committed: () => {},
    testDrop: null,
  };
  const s = new ChannelSender(
    0,
    parseChannel('239.1.2.3:7500'),
    host,
    {
      budget,
      slots,
      heartbeatMinMs: repair.heartbeatMinMs ?? 5,
      heartbeatMaxMs: repair.heartbeatMaxMs ?? 1000,
      repairHoldoffMs: repair.repairHoldoffMs ?? 5,
      repairBytesPerSec: repair.repairBytesPerSec ?? 0,
    },
    clock,
  );
  return { s, out };
}

export function put(s: ChannelSender, subject: string, value: string): void {
  const total = msgSize(Buffer.byteLength(subject), 0, 0, Buffer.byteLength(value), false);
  const b = s.reserve(total);
  let at = writeMsgHeader(b, s.writeOffset, total, Op.MSG, 0, 1, 0, Buffer.byteLength(subject), 0, 0);
  at += b.write(subject, at);
  b.write(value, at);
  s.commit(total);
}
