/**
 * The multicast datagram format. docs/PROTOCOL.md ("Multicast datagrams") describes
 * it byte by byte; keep the two in step. Messages inside DATA datagrams are MSG
 * frames of transports/protocol/, unchanged: one codec for every transport.
 *
 * Every datagram starts with the same 20-byte header (integers little-endian):
 *
 *   0   u8   'H' (0x48)          magic: anything else is not hopbus and is ignored
 *   1   u8   'M' (0x4d)
 *   2   u8   version             1
 *   3   u8   type                DATA 1, HEARTBEAT 2, NAK 3, UNAVAILABLE 4, STATUS 5, SLOW 6
 *   4   u32  session             the source's session id (random, non-zero)
 *   8   u32  seq                 per (session, channel) datagram sequence (see each type)
 *  12   u32  aux                 DATA: message sequence of its first message;
 *                                HEARTBEAT: the next message sequence;
 *                                NAK, UNAVAILABLE: number of datagrams from seq;
 *                                STATUS, SLOW: the receiver's id (its own session id)
 *  16   u8   flags               DATA: RETRANSMIT 0x01, FRAGMENT 0x02; HEARTBEAT: BYE 0x04;
 *                                DATA and HEARTBEAT: FLOW 0x08 (the source wants STATUS);
 *                                STATUS: LEAVE 0x04
 *  17   u8   reserved            0
 *  18   u16  count               DATA: MSG frames in the datagram (1 for a fragment)
 *  20   ...  body                DATA: frames back to back, or a fragment (below)
 *
 *   DATA fragment body: 20 u32 total frame length | 24 u32 offset of this piece | 28 bytes
 *   HEARTBEAT body:     20 u32 oldest seq the source can still retransmit | 24 u32 ms until the next heartbeat at most
 *   NAK body:           20 u8[4] channel group (IPv4, network order) | 24 u16 channel port | 26 u16 more ranges (n)
 *                       | 28 n x (u32 first seq, u32 count): a coalesced NAK; header seq/aux are the first range
 *   STATUS body:        20 u8[4] channel group | 24 u16 channel port | 26 u8 body version (1) | 27 u8 reserved
 *                       | 28 u32 the receiver's window in bytes; header seq = its consumed position
 *   SLOW body:          20 u8[4] channel group | 24 u16 channel port | 26 u16 reserved | 28 u32 drops so far;
 *                       header seq = the receiver's position when it was dropped
 *
 * STATUS (receiver to source) and SLOW (source to receiver) travel unicast, between the
 * endpoints' unicast sockets. They came after the first four types without a new header
 * version: a peer that predates them ignores both (it takes only NAKs on its unicast
 * socket) and the FLOW flag (unknown flag bits are ignored), so an old receiver is simply
 * not part of a new source's window, and an old source gets no STATUS. A STATUS body
 * carries its own version byte; a source reads the fields of the versions it knows and
 * ignores bytes after them.
 *
 * Sequence numbers are unsigned 32-bit and compared in serial-number arithmetic
 * (`(a - b) | 0`), so they may wrap.
 */

export const MAGIC0 = 0x48;
export const MAGIC1 = 0x4d;
export const WIRE_VERSION = 1;
export const HEADER = 20;
export const FRAG_HEADER = HEADER + 8;
export const HEARTBEAT_SIZE = HEADER + 8;
export const NAK_SIZE = HEADER + 8;
export const UNAVAILABLE_SIZE = HEADER;
export const STATUS_SIZE = HEADER + 12;
export const SLOW_SIZE = HEADER + 12;
export const STATUS_VERSION = 1;

export const enum DType {
  DATA = 1,
  HEARTBEAT = 2,
  NAK = 3,
  UNAVAILABLE = 4,
  STATUS = 5,
  SLOW = 6,
}

export const F_RETRANSMIT = 0x01;
export const F_FRAGMENT = 0x02;
export const F_BYE = 0x04;
export const F_FLOW = 0x08;
export const F_LEAVE = 0x04;

/** Serial-number difference a - b of two u32 sequence numbers, as a signed 32-bit int. */
export function seqDiff(a: number, b: number): number {
  return (a - b) | 0;
}

export function seqAdd(a: number, n: number): number {
  return (a + n) >>> 0;
}

export function writeHeader(buf: Buffer, off: number, type: DType, session: number, seq: number, aux: number, flags: number, count: number): void {
  buf[off] = MAGIC0;
  buf[off + 1] = MAGIC1;
  buf[off + 2] = WIRE_VERSION;
  buf[off + 3] = type;
  buf.writeUInt32LE(session, off + 4);
  buf.writeUInt32LE(seq >>> 0, off + 8);
  buf.writeUInt32LE(aux >>> 0, off + 12);
  buf[off + 16] = flags;
  buf[off + 17] = 0;
  buf.writeUInt16LE(count, off + 18);
}

/** The datagram's type if it is a well-formed hopbus datagram header, else 0. */
export function datagramType(buf: Buffer): number {
  if (buf.length < HEADER || buf[0] !== MAGIC0 || buf[1] !== MAGIC1 || buf[2] !== WIRE_VERSION) return 0;
  const t = buf[3]!;
  switch (t) {
    case DType.DATA:
      return t;
    case DType.HEARTBEAT:
      return buf.length >= HEARTBEAT_SIZE ? t : 0;
    case DType.NAK:
      return buf.length >= NAK_SIZE ? t : 0;
    case DType.UNAVAILABLE:
      return t;
    case DType.STATUS:
      return buf.length >= STATUS_SIZE && buf[26]! >= 1 ? t : 0;
    case DType.SLOW:
      return buf.length >= SLOW_SIZE ? t : 0;
    default:
      return 0;
  }
}

/** IPv4 dotted quad to its 4 bytes, written at off. */
export function writeIpv4(buf: Buffer, off: number, ip: string): void {
  const p = ip.split('.');
  for (let i = 0; i < 4; i++) buf[off + i] = Number(p[i]);
}

export function readIpv4(buf: Buffer, off: number): string {
  return `${buf[off]}.${buf[off + 1]}.${buf[off + 2]}.${buf[off + 3]}`;
}

/** True for a dotted-quad IPv4 multicast address (224.0.0.0/4). */
export function isIpv4Multicast(ip: string): boolean {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(ip);
  if (m === null) return false;
  const n = m.slice(1).map(Number);
  return n.every((x) => x <= 255) && n[0]! >= 224 && n[0]! <= 239;
}

export function isIpv4(ip: string): boolean {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(ip);
  return m !== null && m.slice(1).every((x) => Number(x) <= 255);
}
