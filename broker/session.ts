import { Packr, Unpackr } from 'msgpackr';
import {
  ErrCode, Op, OP_NAMES, OK_SIZE, PING_SIZE, PROTOCOL_VERSION, type ProtocolError,
  encodeErr, encodeHandshake, writeBare, writeOk,
} from '../transports/frame.js';
import { copyBytes } from '../transports/intern.js';
import type { Link, LinkHandler } from '../transports/link.js';
import type { Broker } from './broker.js';
import { Subscription } from './route.js';
import { queueNameProblem } from '../topics/queue.js';

const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true });
const packr = new Packr({ useRecords: false });

/** ERR codes that mean the peer broke the protocol (counted in protocolErrors). */
const PROTOCOL_CODES = new Set<number>([
  ErrCode.PROTOCOL, ErrCode.UNKNOWN_OP, ErrCode.FRAME_TOO_LARGE, ErrCode.MAX_PAYLOAD, ErrCode.VERSION, ErrCode.NOT_CONNECTED, ErrCode.BAD_SID,
]);

const enum State {
  HANDSHAKE,
  OPEN,
  CLOSED,
}

/** CONNECT options a client may send, and their types. Anything else is refused. */
const CONNECT_KEYS: Record<string, 'string' | 'boolean'> = {
  name: 'string',
  lang: 'string',
  version: 'string',
  verbose: 'boolean',
  timestamps: 'boolean',
};

export interface SessionStats {
  msgsIn: number;
  bytesIn: number;
  msgsOut: number;
  bytesOut: number;
}

/**
 * One client connection, over any transport. Owns its subscriptions and its
 * keepalive state; the broker owns routing. Used only on the broker's thread.
 */
export class Session implements LinkHandler {
  name = '';
  lang = '';
  verbose = false;
  state = State.HANDSHAKE;
  readonly subs = new Map<number, Subscription>();
  /** PINGs sent and not answered yet. */
  pingsOut = 0;
  readonly stats: SessionStats = { msgsIn: 0, bytesIn: 0, msgsOut: 0, bytesOut: 0 };
  readonly connectedAt = Date.now();
  private handshakeTimer: NodeJS.Timeout | null = null;
  /** Why the session ended, for the disconnect log line. */
  private closeReason = '';
  /** Resolves once the link has closed for good. */
  readonly done: Promise<void>;
  private resolveDone!: () => void;

  constructor(
    readonly id: number,
    readonly link: Link,
    private readonly broker: Broker,
  ) {
    this.done = new Promise((resolve) => (this.resolveDone = resolve));
    const ms = broker.options.handshakeTimeoutMs;
    if (ms > 0) {
      this.handshakeTimer = setTimeout(() => {
        this.fatal(ErrCode.PROTOCOL, `no CONNECT within ${ms} ms of connecting`);
      }, ms);
      this.handshakeTimer.unref();
    }
  }

  get open(): boolean {
    return this.state === State.OPEN;
  }

  // --- inbound -------------------------------------------------------------------

  onFrame(buf: Buffer, off: number, len: number): void {
    if (this.state !== State.OPEN) {
      if (this.state === State.HANDSHAKE) this.onHandshake(buf, off, len);
      return;
    }
    const op = buf[off + 4]!;
    switch (op) {
      case Op.PUB:
        this.stats.msgsIn++;
        this.stats.bytesIn += len;
        if (this.broker.publish(this, buf, off, len) && this.verbose && this.state === State.OPEN) this.ok(0);
        return;
      case Op.SUB:
        this.onSub(buf, off);
        return;
      case Op.UNSUB:
        this.onUnsub(buf.readUInt32LE(off + 8), buf.readUInt32LE(off + 12));
        return;
      case Op.PING:
        this.sendBare(Op.PONG);
        return;
      case Op.PONG:
        this.pingsOut = 0;
        return;
      case Op.ERR:
        this.broker.log.warn({ cid: this.id, client: this.name, code: buf.readUInt16LE(off + 6), text: buf.toString('utf8', off + 12, off + len) }, 'client reported an error');
        return;
      default:
        this.fatal(ErrCode.PROTOCOL, `op ${OP_NAMES[op]} is not sent by clients`);
    }
  }

  private onHandshake(buf: Buffer, off: number, len: number): void {
    const op = buf[off + 4]!;
    if (op !== Op.CONNECT) {
      this.fatal(ErrCode.NOT_CONNECTED, `expected CONNECT as the first frame, got ${OP_NAMES[op]}`);
      return;
    }
    const version = buf.readUInt16LE(off + 6);
    if (version !== PROTOCOL_VERSION) {
      this.fatal(ErrCode.VERSION, `protocol version ${version} is not supported; this broker speaks version ${PROTOCOL_VERSION}`);
      return;
    }
    let opts: unknown;
    try {
      opts = len > 8 ? unpackr.unpack(buf.subarray(off + 8, off + len)) : {};
    } catch (err) {
      this.fatal(ErrCode.PROTOCOL, `CONNECT options are not valid msgpack: ${(err as Error).message}`);
      return;
    }
    if (opts === null || typeof opts !== 'object' || Object.getPrototypeOf(opts) !== Object.prototype) {
      this.fatal(ErrCode.PROTOCOL, 'CONNECT options must be a msgpack map');
      return;
    }
    for (const [k, v] of Object.entries(opts)) {
      const type = CONNECT_KEYS[k];
      if (type === undefined) {
        this.fatal(ErrCode.PROTOCOL, `unknown CONNECT option "${k}"; known: ${Object.keys(CONNECT_KEYS).join(', ')}`);
        return;
      }
      if (typeof v !== type) {
        this.fatal(ErrCode.PROTOCOL, `CONNECT option "${k}" must be a ${type}`);
        return;
      }
    }
    const o = opts as { name?: string; lang?: string; verbose?: boolean };
    this.name = (o.name ?? '').slice(0, 256);
    this.lang = (o.lang ?? '').slice(0, 64);
    this.verbose = o.verbose === true;
    if (this.handshakeTimer) clearTimeout(this.handshakeTimer);
    this.handshakeTimer = null;
    this.state = State.OPEN;
    const info = this.broker.info(this.id);
    const frame = encodeHandshake(Op.INFO, packr.pack(info));
    this.link.send(frame, 0, frame.length);
    this.broker.log.info({ cid: this.id, client: this.name, lang: this.lang, transport: this.link.transport, remote: this.link.remote }, 'client connected');
  }

  private onSub(buf: Buffer, off: number): void {
    const sid = buf.readUInt32LE(off + 8);
    const p = buf.readUInt16LE(off + 12);
    const q = buf.readUInt16LE(off + 14);
    const pattern = buf.toString('utf8', off + 16, off + 16 + p);
    const queue = q === 0 ? '' : buf.toString('utf8', off + 16 + p, off + 16 + p + q);
    if (sid === 0) return this.fatal(ErrCode.BAD_SID, 'subscription id 0 is reserved');
    if (this.subs.has(sid)) return this.error(ErrCode.BAD_SID, `subscription id ${sid} is already in use on this connection`, sid);
    if (this.subs.size >= this.broker.options.maxSubscriptions) {
      return this.error(ErrCode.MAX_SUBSCRIPTIONS, `maximum subscriptions exceeded: this connection already holds ${this.subs.size} (limit ${this.broker.options.maxSubscriptions})`, sid);
    }
    const badQueue = q > 0 ? queueNameProblem(queue) : null;
    if (badQueue !== null) return this.error(ErrCode.BAD_SUBJECT, `invalid queue group: ${badQueue}`, sid);
    const sub = new Subscription(this, sid, pattern, queue);
    try {
      this.broker.tree.insert(pattern, sub);
    } catch (err) {
      return this.error(ErrCode.BAD_SUBJECT, (err as Error).message, sid);
    }
    this.subs.set(sid, sub);
    if (this.verbose) this.ok(sid);
  }

  private onUnsub(sid: number, max: number): void {
    const sub = this.subs.get(sid);
    // Unknown sids are not an error: the subscription may have auto-expired meanwhile.
    if (sub === undefined) {
      if (this.verbose) this.ok(sid);
      return;
    }
    if (max > 0) {
      // "After N more messages": counted from now. Re-insert so cached routes see the limit.
      this.broker.tree.remove(sub.pattern, sub);
      sub.max = sub.delivered + max;
      this.broker.tree.insert(sub.pattern, sub);
    } else {
      this.removeSub(sub);
    }
    if (this.verbose) this.ok(sid);
  }

  removeSub(sub: Subscription): void {
    if (this.subs.delete(sub.sid)) this.broker.tree.remove(sub.pattern, sub);
  }

  // --- outbound ------------------------------------------------------------------

  /**
   * Queues one MSG frame (the same bytes for every receiving session). `sid` patches
   * the frame's subscription-id field in this session's copy only (queue deliveries).
   */
  deliver(buf: Buffer, off: number, len: number, sid: number): void {
    const link = this.link;
    const out = link.reserve(len);
    const at = link.writeOffset;
    copyBytes(buf, off, out, at, len);
    if (sid !== 0) out.writeUInt32LE(sid, at + 8);
    link.commit(len);
    this.stats.msgsOut++;
    this.stats.bytesOut += len;
    if (link.pendingBytes > this.broker.options.maxPending) this.slowConsumer();
  }

  private slowConsumer(): void {
    this.broker.counters.slowConsumers++;
    this.fatal(ErrCode.SLOW_CONSUMER, `slow consumer: more than ${this.broker.options.maxPending} bytes pending towards this connection; it was closed`);
  }

  sendBare(op: Op.PING | Op.PONG): void {
    const out = this.link.reserve(PING_SIZE);
    writeBare(out, this.link.writeOffset, op);
    this.link.commit(PING_SIZE);
  }

  private ok(ref: number): void {
    const out = this.link.reserve(OK_SIZE);
    writeOk(out, this.link.writeOffset, ref);
    this.link.commit(OK_SIZE);
  }

  /** A non-fatal error: the connection stays up. */
  error(code: number, text: string, ref = 0): void {
    const f = encodeErr(code, text, ref, false);
    this.link.send(f, 0, f.length);
  }

  /** The peer sent bytes that are not a frame: tell it why, then close. */
  onProtocolError(err: ProtocolError): void {
    this.fatal(err.code, err.message);
  }

  /** Sends ERR, then closes the connection after flushing it; the broker serves on. */
  fatal(code: number, text: string): void {
    if (this.state === State.CLOSED) return;
    if (PROTOCOL_CODES.has(code)) this.broker.counters.protocolErrors++;
    this.closeReason = text;
    this.broker.log.warn({ cid: this.id, client: this.name, remote: this.link.remote, code, reason: text }, 'closing connection');
    if (!this.link.closed) {
      const f = encodeErr(code, text, 0, true);
      this.link.send(f, 0, f.length);
      this.link.close();
    }
    this.teardown();
  }

  /** Closes gracefully (broker shutdown): flush what is pending, then close. */
  shutdown(): void {
    if (this.state === State.CLOSED) return;
    this.closeReason = 'broker shutting down';
    this.link.close();
    this.teardown();
  }

  onClose(err: Error | null): void {
    if (this.state !== State.CLOSED) {
      this.closeReason = err ? err.message : 'closed by client';
      this.teardown();
    }
    this.broker.log.info(
      { cid: this.id, client: this.name, remote: this.link.remote, reason: this.closeReason, ...this.stats },
      'client disconnected',
    );
    this.broker.detach(this);
    this.resolveDone();
  }

  /** Frees subscriptions at once so no further message is routed here. */
  private teardown(): void {
    this.state = State.CLOSED;
    if (this.handshakeTimer) clearTimeout(this.handshakeTimer);
    this.handshakeTimer = null;
    for (const sub of this.subs.values()) this.broker.tree.remove(sub.pattern, sub);
    this.subs.clear();
  }
}
