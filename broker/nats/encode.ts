/**
 * The NATS client protocol, server -> client: INFO, MSG, HMSG, PING, PONG, +OK, -ERR.
 * Like transports/protocol/encode.ts for the hopbus frames, every writer puts its bytes
 * into a caller's buffer at an offset and returns how many it wrote, with an exact
 * `...Size` beside it, so a link encodes straight into its write buffer. Subjects,
 * replies and sids are short and almost always ASCII: they are written with byte loops
 * (Buffer#write costs more in call overhead than it saves below ~100 bytes), and
 * numbers with a digit loop instead of toString().
 *
 * Fan-out (formatted once per distinct subject and sid layout): a MSG line
 * differs between subscribers only in its sid. MsgTemplate formats everything else
 * once per message (the op and subject before the sid; reply, sizes and CR LF after
 * it) and writes each copy as head + that subscription's sid bytes + rest + payload +
 * CR LF: copies only, no formatting, no allocation, and no copy of the payload into
 * the template (it is read from the caller's buffer, valid for the synchronous fan-out).
 *
 * INFO and -ERR allocate: they are written once per connection or once per error.
 */
import { copyBytes } from '../../transports/intern.js';

const CR = 13;
const LF = 10;
const SP = 32;

/** The INFO fields hopbus implements and so may advertise (no jetstream, no cluster URLs). */
export interface NatsInfo {
  server_id: string;
  server_name: string;
  /** A real semver: clients gate features on it (nats.js: headers from 2.2.0, no_responders from 2.2.0). */
  version: string;
  proto: 1;
  headers: true;
  max_payload: number;
  client_id: number;
  host: string;
  port: number;
  client_ip?: string;
  /** Only once authentication is implemented and configured. */
  auth_required?: boolean;
  /** The nonce an nkey client signs; only with auth_required. */
  nonce?: string;
  /** host:port of the other brokers' NATS listeners (config cluster.peers, nats:// ones): NATS clients add them to their server list. */
  connect_urls?: string[];
  /** TLS (broker option `tls`): the client must start it after this INFO (required), may (available), and must present a certificate (verify). */
  tls_required?: boolean;
  tls_available?: boolean;
  tls_verify?: boolean;
}

/** `INFO {json}\r\n`. The field order is nats-server's, which some clients' tests print. */
export function infoLine(info: NatsInfo): Buffer {
  return Buffer.from(`INFO ${JSON.stringify(info)}\r\n`, 'utf8');
}

export const PING_LINE = Buffer.from('PING\r\n', 'latin1');
export const PONG_LINE = Buffer.from('PONG\r\n', 'latin1');
export const OK_LINE = Buffer.from('+OK\r\n', 'latin1');

export function writePing(buf: Buffer, off: number): number {
  return writeBytes(buf, off, PING_LINE, 0, 6);
}

export function writePong(buf: Buffer, off: number): number {
  return writeBytes(buf, off, PONG_LINE, 0, 6);
}

export function writeOk(buf: Buffer, off: number): number {
  return writeBytes(buf, off, OK_LINE, 0, 5);
}

/** `-ERR '<text>'\r\n` (texts: errors.ts). */
export function errLine(text: string): Buffer {
  return Buffer.from(`-ERR '${text}'\r\n`, 'utf8');
}

/** Byte length of `s` in UTF-8, without Buffer.byteLength's call for the usual ASCII subject. */
export function utf8Length(s: string): number {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) >= 0x80) return Buffer.byteLength(s, 'utf8');
  return s.length;
}

/** Writes `s` as UTF-8 at `off` (a byte loop while it is ASCII); returns the bytes written. */
export function writeString(buf: Buffer, off: number, s: string): number {
  const n = s.length;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x80) return i + buf.write(s.slice(i), off + i, 'utf8');
    buf[off + i] = c;
  }
  return n;
}

/** Number of decimal digits of a non-negative integer. */
export function digits(n: number): number {
  let d = 1;
  while (n >= 10) {
    n = Math.floor(n / 10);
    d++;
  }
  return d;
}

/** Writes a non-negative integer in decimal; returns the digits written. */
export function writeUint(buf: Buffer, off: number, n: number): number {
  const d = digits(n);
  for (let i = off + d - 1; i >= off; i--) {
    buf[i] = 48 + (n % 10);
    n = Math.floor(n / 10);
  }
  return d;
}

/** `MSG ` or, for a message with headers, `HMSG `. */
function writeOp(buf: Buffer, off: number, headers: boolean): number {
  let p = off;
  if (headers) buf[p++] = 0x48; // H
  buf[p++] = 0x4d; // M
  buf[p++] = 0x53; // S
  buf[p++] = 0x47; // G
  buf[p++] = SP;
  return p - off;
}

function writeBytes(buf: Buffer, off: number, src: Uint8Array, srcOff: number, len: number): number {
  for (let i = 0; i < len; i++) buf[off + i] = src[srcOff + i]!;
  return len;
}

/** The sid bytes a subscription keeps from its SUB (or makes once from a number) for MSG lines. */
export function sidBytes(sid: number | string): Buffer {
  return Buffer.from(String(sid), 'latin1');
}

/**
 * Exact size of `MSG subject sid [reply] size\r\n<payload>\r\n`, or with hdrLen > 0 of
 * `HMSG subject sid [reply] hdrLen total\r\n<headers><payload>\r\n`. Lengths are bytes.
 */
export function msgSize(subjectLen: number, sidLen: number, replyLen: number, hdrLen: number, payloadLen: number): number {
  const total = hdrLen + payloadLen;
  const line =
    hdrLen > 0
      ? 5 + subjectLen + 1 + sidLen + (replyLen > 0 ? 1 + replyLen : 0) + 1 + digits(hdrLen) + 1 + digits(total) + 2
      : 4 + subjectLen + 1 + sidLen + (replyLen > 0 ? 1 + replyLen : 0) + 1 + digits(total) + 2;
  return line + total + 2;
}

/**
 * Writes one MSG (hdrLen 0) or HMSG for one subscriber; returns the bytes written
 * (msgSize). For many subscribers of one message, MsgTemplate.
 */
export function writeMsg(
  buf: Buffer,
  off: number,
  subject: string,
  sid: Uint8Array,
  reply: string,
  hdr: Buffer | null,
  hdrOff: number,
  hdrLen: number,
  payload: Buffer,
  payloadOff: number,
  payloadLen: number,
): number {
  let p = off + writeOp(buf, off, hdrLen > 0);
  p += writeString(buf, p, subject);
  buf[p++] = SP;
  p += writeBytes(buf, p, sid, 0, sid.length);
  p += writeSizes(buf, p, reply, hdrLen, hdrLen + payloadLen);
  if (hdrLen > 0) {
    copyBytes(hdr!, hdrOff, buf, p, hdrLen);
    p += hdrLen;
  }
  copyBytes(payload, payloadOff, buf, p, payloadLen);
  p += payloadLen;
  buf[p++] = CR;
  buf[p++] = LF;
  return p - off;
}

/** ` [reply] [hdrLen] total\r\n`: everything after the sid on the control line. */
function writeSizes(buf: Buffer, off: number, reply: string, hdrLen: number, total: number): number {
  let p = off;
  buf[p++] = SP;
  if (reply !== '') {
    p += writeString(buf, p, reply);
    buf[p++] = SP;
  }
  if (hdrLen > 0) {
    p += writeUint(buf, p, hdrLen);
    buf[p++] = SP;
  }
  p += writeUint(buf, p, total);
  buf[p++] = CR;
  buf[p++] = LF;
  return p - off;
}

/** Longest subject plus reply the template is sized for at first; it grows past it. */
const TEMPLATE_START = 512;

/**
 * One message formatted once for all its NATS subscribers. prepare() per message,
 * then size(sidLen)/write() per subscriber. Not safe to keep across messages: the
 * payload and headers are read from the caller's buffers when write() runs.
 */
export class MsgTemplate {
  /** `MSG subject ` or `HMSG subject `. */
  private head = Buffer.allocUnsafe(TEMPLATE_START);
  private headLen = 0;
  /** ` [reply] [hdrLen] total\r\n`. */
  private rest = Buffer.allocUnsafe(TEMPLATE_START);
  private restLen = 0;
  private hdr: Buffer = PING_LINE;
  private hdrOff = 0;
  private hdrLen = 0;
  private payload: Buffer = PING_LINE;
  private payloadOff = 0;
  private payloadLen = 0;

  prepare(subject: string, reply: string, hdr: Buffer | null, hdrOff: number, hdrLen: number, payload: Buffer, payloadOff: number, payloadLen: number): void {
    const s = utf8Length(subject);
    const r = utf8Length(reply);
    if (s + 6 > this.head.length) this.head = Buffer.allocUnsafe(s + 6 + TEMPLATE_START);
    if (r + 32 > this.rest.length) this.rest = Buffer.allocUnsafe(r + 32 + TEMPLATE_START);
    const head = this.head;
    let p = writeOp(head, 0, hdrLen > 0);
    p += writeString(head, p, subject);
    head[p++] = SP;
    this.headLen = p;
    this.restLen = writeSizes(this.rest, 0, reply, hdrLen, hdrLen + payloadLen);
    this.hdr = hdr ?? PING_LINE;
    this.hdrOff = hdrOff;
    this.hdrLen = hdrLen;
    this.payload = payload;
    this.payloadOff = payloadOff;
    this.payloadLen = payloadLen;
  }

  /** Bytes of the copy for a sid of `sidLen` bytes. */
  size(sidLen: number): number {
    return this.headLen + sidLen + this.restLen + this.hdrLen + this.payloadLen + 2;
  }

  /** Writes the copy for one subscription's sid bytes; returns size(sidLen). */
  write(buf: Buffer, off: number, sid: Uint8Array, sidOff = 0, sidLen = sid.length): number {
    let p = off;
    p += writeBytes(buf, p, this.head, 0, this.headLen);
    p += writeBytes(buf, p, sid, sidOff, sidLen);
    p += writeBytes(buf, p, this.rest, 0, this.restLen);
    if (this.hdrLen > 0) {
      copyBytes(this.hdr, this.hdrOff, buf, p, this.hdrLen);
      p += this.hdrLen;
    }
    copyBytes(this.payload, this.payloadOff, buf, p, this.payloadLen);
    p += this.payloadLen;
    buf[p++] = CR;
    buf[p++] = LF;
    return p - off;
  }
}

/** The header block nats-server sends with a no-responders answer, before the subject. */
const NO_RESPONDERS_HEAD = 'NATS/1.0 503\r\nNats-Subject: ';

/**
 * Size of the no-responders answer nats-server sends a requester (client.go,
 * processInboundClientMsg): `HMSG <reply> <sid> <h> <h>\r\nNATS/1.0 503\r\nNats-Subject:
 * <subject>\r\n\r\n\r\n`, h = 32 + the subject's bytes, no body.
 */
export function noRespondersSize(replyLen: number, sidLen: number, subjectLen: number): number {
  const h = 32 + subjectLen;
  return 5 + replyLen + 1 + sidLen + 1 + digits(h) + 1 + digits(h) + 2 + h + 2;
}

/** Writes that answer; returns noRespondersSize(...). Only for a connection that sent no_responders (and so headers). */
export function writeNoResponders(buf: Buffer, off: number, reply: string, sid: Uint8Array, subject: string): number {
  const s = utf8Length(subject);
  const h = 32 + s;
  let p = off + writeOp(buf, off, true);
  p += writeString(buf, p, reply);
  buf[p++] = SP;
  p += writeBytes(buf, p, sid, 0, sid.length);
  buf[p++] = SP;
  p += writeUint(buf, p, h);
  buf[p++] = SP;
  p += writeUint(buf, p, h);
  buf[p++] = CR;
  buf[p++] = LF;
  p += writeString(buf, p, NO_RESPONDERS_HEAD);
  p += writeString(buf, p, subject);
  buf[p++] = CR;
  buf[p++] = LF;
  buf[p++] = CR;
  buf[p++] = LF;
  buf[p++] = CR;
  buf[p++] = LF;
  return p - off;
}
