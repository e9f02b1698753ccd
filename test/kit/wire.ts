/**
 * The raw wire client: tests that speak frames to the broker by hand, for the cases the
 * SDK would never produce (frames out of order, bad versions, oversized payloads, peers
 * that stop answering). The frames are built here byte by byte from docs/PROTOCOL.md, an
 * independent reading of the layout the broker decodes (transports/protocol/).
 */
import net from 'node:net';
import { Packr, Unpackr } from 'msgpackr';
import { until } from './wait.js';

const packr = new Packr({ useRecords: false });
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true });

// Wire constants, restated from docs/PROTOCOL.md (transports/protocol/ holds the code) so the raw client is an
// independent reading of the documented layout.
export const OP = {
  CONNECT: 0x01,
  INFO: 0x02,
  CHALLENGE: 0x03,
  PROOF: 0x04,
  PUB: 0x10,
  MSG: 0x11,
  SUB: 0x20,
  UNSUB: 0x21,
  PING: 0x30,
  PONG: 0x31,
  OK: 0x40,
  ERR: 0x41,
} as const;
export const ERR = {
  PROTOCOL: 1,
  UNKNOWN_OP: 2,
  FRAME_TOO_LARGE: 3,
  MAX_PAYLOAD: 4,
  BAD_SUBJECT: 5,
  MAX_SUBSCRIPTIONS: 6,
  SLOW_CONSUMER: 7,
  VERSION: 8,
  NOT_CONNECTED: 9,
  STALE_CONNECTION: 10,
  BAD_SID: 11,
} as const;
export const FLAG_FATAL = 0x01;
export const FLAG_REQUEST = 0x02;
export const FLAG_NO_RESPONDERS = 0x04;

export interface Frame {
  op: number;
  flags: number;
  /** ERR: code; MSG: payload kind. */
  code: number;
  /** MSG: sid; ERR/OK: ref. */
  sid: number;
  subject: string;
  reply: string;
  /** ERR: text; MSG: payload as UTF-8 (only when keepPayloads). */
  text: string;
  info?: Record<string, unknown>;
  /** CHALLENGE: the nonce bytes. */
  nonce?: Buffer;
}

/** PROOF: the 64-byte signature of a CHALLENGE's nonce (any bytes, for hostile peers; the frame is 8 + their length). */
export function proofFrame(sig: Uint8Array): Buffer {
  const f = Buffer.alloc(8 + sig.length);
  f.writeUInt32LE(f.length, 0);
  f[4] = OP.PROOF;
  f.set(sig, 8);
  return f;
}

/** CONNECT with `opts` packed as the broker reads them (any value, for hostile peers), or `opts` as the body bytes themselves. */
export function connectFrame(opts: unknown = {}, version = 1): Buffer {
  const body = opts instanceof Uint8Array ? Buffer.from(opts) : packr.pack(opts);
  const buf = Buffer.alloc(8 + body.length);
  buf.writeUInt32LE(buf.length, 0);
  buf[4] = OP.CONNECT;
  buf.writeUInt16LE(version, 6);
  body.copy(buf, 8);
  return buf;
}

export function subFrame(sid: number, pattern: string, queue: string | undefined = ''): Buffer {
  const p = Buffer.from(pattern);
  const q = Buffer.from(queue);
  const buf = Buffer.alloc(16 + p.length + q.length);
  buf.writeUInt32LE(buf.length, 0);
  buf[4] = OP.SUB;
  buf.writeUInt32LE(sid, 8);
  buf.writeUInt16LE(p.length, 12);
  buf.writeUInt16LE(q.length, 14);
  p.copy(buf, 16);
  q.copy(buf, 16 + p.length);
  return buf;
}

export function unsubFrame(sid: number, max = 0): Buffer {
  const buf = Buffer.alloc(16);
  buf.writeUInt32LE(16, 0);
  buf[4] = OP.UNSUB;
  buf.writeUInt32LE(sid, 8);
  buf.writeUInt32LE(max, 12);
  return buf;
}

export interface PubOptions {
  reply?: string;
  headers?: Uint8Array;
  /** The header's sid field (0 for a PUB; a hostile peer may set it). */
  sid?: number;
  flags?: number;
  /** The payload kind (byte 6); by default 1 (string) for a string payload, else 0. */
  kind?: number;
}

export function pubFrame(subject: string, payload: Uint8Array | string = '', o: PubOptions = {}): Buffer {
  const s = Buffer.from(subject);
  const r = Buffer.from(o.reply ?? '');
  const h = o.headers ? Buffer.from(o.headers) : Buffer.alloc(0);
  const p = Buffer.from(payload);
  const buf = Buffer.alloc(20 + s.length + r.length + h.length + p.length);
  buf.writeUInt32LE(buf.length, 0);
  buf[4] = OP.PUB;
  buf[5] = o.flags ?? 0;
  buf[6] = o.kind ?? (typeof payload === 'string' ? 1 : 0);
  buf.writeUInt32LE(o.sid ?? 0, 8);
  buf.writeUInt16LE(s.length, 12);
  buf.writeUInt16LE(r.length, 14);
  buf.writeUInt32LE(h.length, 16);
  s.copy(buf, 20);
  r.copy(buf, 20 + s.length);
  h.copy(buf, 20 + s.length + r.length);
  p.copy(buf, 20 + s.length + r.length + h.length);
  return buf;
}

/** A frame with no body (PING, PONG), or `len` bytes of zeros after the op for a malformed one. */
export function bareFrame(op: number, len = 6): Buffer {
  const buf = Buffer.alloc(len);
  buf.writeUInt32LE(len, 0);
  buf[4] = op;
  return buf;
}

/**
 * A client that writes and parses frames itself. Frames received are recorded in
 * `frames` (MSG payloads only when keepPayloads, so floods stay cheap).
 */
export class RawClient {
  readonly frames: Frame[] = [];
  msgCount = 0;
  isClosed = false;
  /** Answer the broker's PINGs with PONG (off: a peer that went silent). */
  answerPings = false;
  keepPayloads = true;
  private pending: Buffer = Buffer.alloc(0);
  readonly closed: Promise<void>;

  constructor(readonly socket: net.Socket) {
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', () => {
      /* a reset is one way of being closed; `closed` reports it */
    });
    this.closed = new Promise((resolve) => {
      socket.on('close', () => {
        this.isClosed = true;
        resolve();
      });
    });
  }

  static dial(target: { port: number } | { path: string }): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const socket = 'path' in target ? net.connect({ path: target.path }) : net.connect({ host: '127.0.0.1', port: target.port });
      socket.once('error', reject);
      socket.once('connect', () => {
        socket.off('error', reject);
        resolve(new RawClient(socket));
      });
    });
  }

  send(...frames: Buffer[]): void {
    for (const f of frames) this.socket.write(f);
  }

  count(op: number): number {
    return this.frames.filter((f) => f.op === op).length;
  }

  errors(): Frame[] {
    return this.frames.filter((f) => f.op === OP.ERR);
  }

  /** Sends CONNECT and waits for INFO. */
  async handshake(opts: Record<string, unknown> = {}): Promise<Record<string, unknown>> {
    this.send(connectFrame(opts));
    await until(() => this.frames.some((f) => f.op === OP.INFO) || this.isClosed, 'INFO from the broker');
    const info = this.frames.find((f) => f.op === OP.INFO);
    if (!info) throw new Error(`no INFO; got ${JSON.stringify(this.frames)}`);
    return info.info!;
  }

  /** PING, then wait for the PONG: everything sent before has been processed. */
  async roundTrip(): Promise<void> {
    const before = this.count(OP.PONG);
    this.send(bareFrame(OP.PING));
    await until(() => this.count(OP.PONG) > before || this.isClosed, 'PONG from the broker');
    if (this.count(OP.PONG) <= before) throw new Error('connection closed before PONG');
  }

  private onData(chunk: Buffer): void {
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    let pos = 0;
    const buf = this.pending;
    while (buf.length - pos >= 4) {
      const len = buf.readUInt32LE(pos);
      if (buf.length - pos < len) break;
      this.onFrame(buf, pos, len);
      pos += len;
    }
    this.pending = pos === buf.length ? Buffer.alloc(0) : Buffer.from(buf.subarray(pos));
  }

  private onFrame(buf: Buffer, off: number, len: number): void {
    const op = buf[off + 4]!;
    const flags = buf[off + 5]!;
    const f: Frame = { op, flags, code: 0, sid: 0, subject: '', reply: '', text: '' };
    if (op === OP.MSG) {
      this.msgCount++;
      f.code = buf[off + 6]!;
      f.sid = buf.readUInt32LE(off + 8);
      const s = buf.readUInt16LE(off + 12);
      const r = buf.readUInt16LE(off + 14);
      const h = buf.readUInt32LE(off + 16);
      let p = off + 20 + (flags & 0x01 ? 16 : 0);
      f.subject = buf.toString('utf8', p, p + s);
      f.reply = buf.toString('utf8', p + s, p + s + r);
      p += s + r + h;
      if (!this.keepPayloads) return;
      f.text = buf.toString('utf8', p, off + len);
    } else if (op === OP.ERR) {
      f.code = buf.readUInt16LE(off + 6);
      f.sid = buf.readUInt32LE(off + 8);
      f.text = buf.toString('utf8', off + 12, off + len);
    } else if (op === OP.OK) {
      f.sid = buf.readUInt32LE(off + 8);
    } else if (op === OP.INFO) {
      f.info = unpackr.unpack(buf.subarray(off + 8, off + len)) as Record<string, unknown>;
    } else if (op === OP.CHALLENGE) {
      f.nonce = Buffer.from(buf.subarray(off + 8, off + len));
    } else if (op === OP.PING && this.answerPings) {
      this.send(bareFrame(OP.PONG));
    }
    this.frames.push(f);
  }
}
