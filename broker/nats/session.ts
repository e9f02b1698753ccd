/**
 * One NATS client connection on the broker's router: the NATS client protocol's
 * `Subscriber` and `Publisher` (broker/subscription.ts), a sibling of the hopbus
 * Session (broker/session.ts) over the same SessionHost, with the same outbound
 * policies (broker/policy.ts Outbound), publisher gate, liveness and counters.
 *
 * Inbound: chunks from the NatsLink go through a NatsParser; each PUB/HPUB is written
 * as a hopbus PUB frame into a scratch buffer owned by this session (reused, grown
 * geometrically; the one copy the codec adds) and handed to Router.publish. NATS
 * headers become hopbus headers (headers.ts); the payload is RAW (NATS has no kinds).
 *
 * Outbound: the router gives every receiver the same hopbus MSG frame. The first NATS
 * session that receives a message formats it once (MsgTemplate: everything of the MSG
 * line but the sid), for all NATS sessions of that router, keyed on Router.fanouts; each
 * subscription's copy is head + its sid + rest + payload, written into one shared
 * scratch buffer that is reused as is while the next receiver's sid has the same bytes
 * (the usual "1", "2", ... of every client). That copy goes through this session's
 * Outbound like a hopbus frame, so maxPending, the high-water mark, the write deadline
 * and every slow-consumer policy apply unchanged. NATS has no loss report, so drops
 * are counted per connection and broker-wide (not in per-subscription LOSS frames).
 *
 * Threading: the broker's thread. Must not import broker.ts (it gets a SessionHost).
 */
import {
  ErrCode,
  FLAG_NO_RESPONDERS,
  FLAG_REQUEST,
  MsgView,
  Op,
  PayloadKind,
  type Policy,
  msgSize as hopbusMsgSize,
  writeMsgHeader,
} from '../../transports/protocol/index.js';
import { copyBytes } from '../../transports/intern.js';
import type { Link, LinkHandler } from '../../transports/link.js';
import type { Timer } from '../../runtime/clock.js';
import { VERSION } from '../../transports/protocol/version.js';
import { queueNameProblem } from '../../topics/queue.js';
import type { FlowStats, PublisherGate } from '../gate.js';
import type { SessionHost } from '../host.js';
import type { LossCounters, Outbound, OutboundOwner, OutboundPublisher } from '../policy.js';
import { applyUserLimits, sessionGate, sessionMetrics, sessionOutbound } from '../sessionkit.js';
import type { ClientLatency } from '../report.js';
import type { Router } from '../router.js';
import { Subscription, type Publisher, type Subscriber } from '../subscription.js';
import { MsgTemplate, OK_LINE, PING_LINE, PONG_LINE, errLine, infoLine, type NatsInfo } from './encode.js';
import {
  ERR_AUTH_TIMEOUT,
  ERR_AUTH_VIOLATION,
  ERR_BAD_CLIENT_PROTOCOL,
  ERR_INVALID_PUBLISH_SUBJECT,
  ERR_INVALID_SUBJECT,
  ERR_MAX_PAYLOAD,
  ERR_MAX_SUBSCRIPTIONS,
  ERR_NO_RESPONDERS_REQUIRES_HEADERS,
  ERR_SLOW_CONSUMER,
  ERR_STALE_CONNECTION,
  ERR_UNKNOWN_OP,
  errSubscribePermission,
} from './errors.js';
import { hopbusToNatsHeaders, natsToHopbusHeaders } from './headers.js';
import { admit } from '../auth/admit.js';
import { newNonce, type Access, type Identity } from '../auth/index.js';
import { NatsParser, type NatsHandler } from './parser.js';

const enum State {
  OPEN,
  CLOSED,
}

/** What a NATS client said in CONNECT that the broker keeps (monitoring shows name, lang, version). */
export interface NatsConnectInfo {
  verbose: boolean;
  pedantic: boolean;
  echo: boolean;
  headers: boolean;
  noResponders: boolean;
  name: string;
  lang: string;
  version: string;
  protocol: number;
}

/** A NATS subscription: a router Subscription that also keeps its sid as the client wrote it, for MSG lines. */
export class NatsSub extends Subscription {
  /** Messages delivered to it so far: NATS's UNSUB max counts them (broker/router.ts counts only from the UNSUB on). */
  count = 0;
  constructor(
    session: Subscriber,
    sid: number,
    pattern: string,
    queue: string,
    policy: Policy,
    /** The sid token from SUB, as bytes. */
    readonly sidBytes: Buffer,
    readonly sidText: string,
  ) {
    super(session, sid, pattern, queue, policy);
  }
}

/** NATS has no per-subscription loss frame: Outbound counts drops on the connection only. */
const NO_LOSS_COUNTERS: readonly LossCounters[] = [];

/** The no-responders status block nats-server 2.2 sends: `NATS/1.0 503`, no further headers. */
const NO_RESPONDERS_BLOCK = Buffer.from('NATS/1.0 503\r\n\r\n', 'latin1');
const EMPTY = Buffer.alloc(0);

/**
 * The message being fanned out, formatted for NATS once for every NATS session of its
 * router (see the top of this file). Module state is fine: the broker's thread only,
 * and keyed on (router, fanout), so two brokers in one process do not mix.
 */
class Fanout {
  router: Router | null = null;
  fanout = -1;
  /** The frame is a no-responders status (FLAG_NO_RESPONDERS). */
  noResponders = false;
  /** The frame carries hopbus headers that map to a NATS block (hdr non-null). */
  hdr: Buffer | null = null;
  /** Formatted with headers (HMSG) and without (MSG), for clients that did not ask for headers; each prepared when first needed. */
  readonly withHdr = new MsgTemplate();
  readonly plain = new MsgTemplate();
  withHdrReady = false;
  plainReady = false;
  reply = '';
  subject = '';
  buf: Buffer = EMPTY;
  payloadOff = 0;
  payloadLen = 0;
  /** The copy in `out`: which template and sid bytes it was written for. */
  out = Buffer.allocUnsafe(64 * 1024);
  outLen = 0;
  outTemplate: MsgTemplate | null = null;
  outSid: Buffer = EMPTY;
  readonly view = new MsgView();

  begin(router: Router, buf: Buffer, off: number, len: number, subject: string): void {
    this.router = router;
    this.fanout = router.fanouts;
    const v = this.view.parse(buf, off, len);
    this.noResponders = (v.flags & FLAG_NO_RESPONDERS) !== 0;
    this.subject = subject;
    this.reply = v.reply();
    this.buf = buf;
    this.payloadOff = v.payloadOff;
    this.payloadLen = v.payloadLen;
    this.hdr = v.headersLen > 0 ? hopbusToNatsHeaders(buf, v.headersOff, v.headersLen) : null;
    this.withHdrReady = this.plainReady = false;
    this.outTemplate = null;
  }

  /** The template for a receiver that does (or does not) read headers. */
  template(headers: boolean): MsgTemplate {
    if (this.noResponders) {
      if (!this.withHdrReady) {
        this.withHdr.prepare(this.subject, '', NO_RESPONDERS_BLOCK, 0, NO_RESPONDERS_BLOCK.length, EMPTY, 0, 0);
        this.withHdrReady = true;
      }
      return this.withHdr;
    }
    if (headers && this.hdr !== null) {
      if (!this.withHdrReady) {
        this.withHdr.prepare(this.subject, this.reply, this.hdr, 0, this.hdr.length, this.buf, this.payloadOff, this.payloadLen);
        this.withHdrReady = true;
      }
      return this.withHdr;
    }
    if (!this.plainReady) {
      this.plain.prepare(this.subject, this.reply, null, 0, 0, this.buf, this.payloadOff, this.payloadLen);
      this.plainReady = true;
    }
    return this.plain;
  }

  /** The copy of this message for one sid, in `out` (written only when the last one differs). */
  copyFor(t: MsgTemplate, sid: Buffer): number {
    if (this.outTemplate === t && this.outSid.equals(sid)) return this.outLen;
    const n = t.size(sid.length);
    if (n > this.out.length) this.out = Buffer.allocUnsafe(Math.max(n, 2 * this.out.length));
    this.outLen = t.write(this.out, 0, sid);
    this.outTemplate = t;
    this.outSid = sid;
    return this.outLen;
  }
}

const current = new Fanout();

export interface NatsSessionStats {
  msgsIn: number;
  bytesIn: number;
  msgsOut: number;
  bytesOut: number;
  /** Messages not routed: an invalid subject, over a limit, or refused by a rate limit. */
  refused: number;
}

/** One NATS client connection (see the top of this file). */
export class NatsSession implements LinkHandler, NatsHandler, OutboundOwner, OutboundPublisher, Subscriber, Publisher {
  readonly kind = 'nats';
  state = State.OPEN;
  readonly client: NatsConnectInfo = {
    verbose: false,
    pedantic: false,
    echo: true,
    headers: false,
    noResponders: false,
    name: '',
    lang: '',
    version: '',
    protocol: 0,
  };
  /** Subscriptions by the sid token the client chose. */
  readonly subs = new Map<string, NatsSub>();
  /** Keepalive state, kept by broker/liveness.ts. */
  pingsOut = 0;
  pingSentAt = 0;
  /**
   * The read deadline (broker/liveness.ts) watches the link's partial hopbus frame; a
   * NATS link never runs the frame reader, so it has none (its parser bounds a control
   * line at 4 KiB and a payload at max_payload instead).
   */
  partialSeen = 0;
  partialSeenAt = 0;
  rttMs = -1;
  report: ClientLatency | null = null;
  readonly stats: NatsSessionStats = { msgsIn: 0, bytesIn: 0, msgsOut: 0, bytesOut: 0, refused: 0 };
  readonly connectedAt = Date.now();
  readonly done: Promise<void>;
  private resolveDone!: () => void;
  readonly out: Outbound;
  readonly gate: PublisherGate;
  /** CONNECT echo: false (read by the router for queue groups, and by deliver()). */
  noEcho = false;
  /** NATS connections never join the shm direct plane. */
  readonly direct = null;
  /** Who it authenticated as (broker/auth/), from its first CONNECT on. */
  identity: Identity | null = null;
  /** Its permissions and limits; null when it has none to check. */
  access: Access | null = null;
  /** The nonce sent in INFO for an nkey to sign, or null (no nkeys configured). */
  private nonce: string | null = null;
  private readonly parser: NatsParser;
  private readonly router: Router;
  private handshakeTimer: Timer | null;
  private closeReason = '';
  /** Sids of subscriptions whose SUB token is not a number (never sent by the official clients). */
  private nextSid = -1;
  /** Where each inbound message is written as a hopbus PUB frame; reused, grown on demand. */
  private scratch = Buffer.allocUnsafe(16 * 1024);

  constructor(
    readonly id: number,
    readonly link: Link,
    private readonly host: SessionHost,
  ) {
    this.router = host.router;
    this.done = new Promise((resolve) => (this.resolveDone = resolve));
    this.out = sessionOutbound(this, host);
    this.gate = sessionGate(this, host);
    this.parser = new NatsParser(this, { maxPayload: host.options.maxPayload });
    this.handshakeTimer = host.liveness.expectConnect(this);
  }

  get name(): string {
    return this.client.name;
  }

  get lang(): string {
    return this.client.lang;
  }

  get open(): boolean {
    return this.state === State.OPEN;
  }

  get flow(): FlowStats {
    return this.gate.flow;
  }

  /** INFO, the first thing a NATS client reads: `host` and `port` are the listener's. */
  greet(host: string, port: number): void {
    const o = this.host.options;
    const info: NatsInfo = {
      server_id: this.host.serverId,
      server_name: o.name,
      version: VERSION,
      proto: 1,
      headers: true,
      max_payload: o.maxPayload,
      client_id: this.id,
      host,
      port,
    };
    const auth = o.auth;
    if (auth.required) info.auth_required = true;
    const peers = o.cluster?.peers.filter((u) => u.startsWith('nats://')).map((u) => new URL(u).host) ?? [];
    if (peers.length > 0) info.connect_urls = peers;
    if (o.tls) {
      if (o.tls.required) info.tls_required = true;
      else info.tls_available = true;
      if (o.tls.verify) info.tls_verify = true;
    }
    if (auth.wantsNonce) info.nonce = this.nonce = newNonce();
    const remote = this.link.remote;
    const colon = remote.lastIndexOf(':');
    if (colon > 0) info.client_ip = remote.slice(0, colon);
    const line = infoLine(info);
    this.link.send(line, 0, line.length);
  }

  /** Refused before INFO (too many connections): the -ERR, then close. */
  refuse(text: string, detail: string): void {
    this.fatalText(text, detail);
  }

  // --- inbound: LinkHandler (chunks) and NatsHandler (the parser's calls) -------------

  onFrame(buf: Buffer, off: number, len: number): void {
    if (this.state !== State.OPEN) return;
    this.parser.parse(off === 0 && len === buf.length ? buf : buf.subarray(off, off + len));
  }

  onConnect(json: string): void {
    let o: Record<string, unknown>;
    try {
      const parsed: unknown = JSON.parse(json);
      if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new TypeError('not an object');
      o = parsed as Record<string, unknown>;
    } catch {
      // nats-server closes without an -ERR when CONNECT is not JSON.
      return this.fatalText('', `CONNECT is not a JSON object: ${json.slice(0, 64)}`);
    }
    const c = this.client;
    const protocol = typeof o.protocol === 'number' ? o.protocol : 0;
    if (protocol !== 0 && protocol !== 1) return this.fatalText(ERR_BAD_CLIENT_PROTOCOL, `CONNECT protocol ${protocol}`);
    const headers = o.headers === true;
    const noResponders = o.no_responders === true;
    if (noResponders && !headers) return this.fatalText(ERR_NO_RESPONDERS_REQUIRES_HEADERS, 'CONNECT no_responders without headers');
    c.verbose = o.verbose === true;
    c.pedantic = o.pedantic === true;
    c.echo = o.echo !== false;
    this.noEcho = !c.echo;
    c.headers = headers;
    c.noResponders = noResponders;
    c.protocol = protocol;
    if (typeof o.name === 'string') c.name = o.name;
    if (typeof o.lang === 'string') c.lang = o.lang;
    if (typeof o.version === 'string') c.version = o.version;
    const first = this.identity === null;
    if (first) {
      const str = (v: unknown) => (typeof v === 'string' ? v : undefined);
      const creds = { user: str(o.user), pass: str(o.pass), token: str(o.auth_token), nkey: str(o.nkey), sig: str(o.sig) };
      const admitted = admit(this.host, creds, this.link, this.id, this.nonce, 'nats');
      if (typeof admitted === 'string') return this.fatalText(ERR_AUTH_VIOLATION, `authentication failed: ${admitted}`);
      this.identity = admitted.identity;
      this.access = admitted.access;
      // INFO went out before CONNECT, so a user's lower limits are not told: they apply all the same.
      applyUserLimits(this.out, this.gate, this.host, admitted.identity.limits);
    }
    this.parser.headers = headers;
    this.host.liveness.connected(this.handshakeTimer);
    this.handshakeTimer = null;
    if (c.verbose) this.sendLine(OK_LINE);
    if (first)
      this.host.log.info({ cid: this.id, client: c.name, lang: c.lang, version: c.version, protocol: 'nats', remote: this.link.remote }, 'client connected');
  }

  onPub(buf: Buffer, so: number, sl: number, ro: number, rl: number, ho: number, hl: number, po: number, pl: number): void {
    if (this.identity === null && this.unauthenticated()) return;
    let hdr: Buffer | null = null;
    if (hl > 0) {
      hdr = natsToHopbusHeaders(buf, ho, hl);
      // A block that is not NATS/1.0: nats-server routes it as is; hopbus receivers would not read it, so it is refused.
      if (hdr === null) return this.fatalText(ERR_UNKNOWN_OP, 'HPUB header block does not start with NATS/1.0');
    }
    const h = hdr === null ? 0 : hdr.length;
    // A NATS client that may hear no-responders asks for it; hopbus's router answers at once.
    const flags = rl > 0 && this.client.noResponders ? FLAG_REQUEST : 0;
    const total = hopbusMsgSize(sl, rl, h, pl, false);
    if (total > this.scratch.length) this.scratch = Buffer.allocUnsafe(Math.max(total, 2 * this.scratch.length));
    const f = this.scratch;
    let at = writeMsgHeader(f, 0, total, Op.PUB, flags, PayloadKind.RAW, 0, sl, rl, h);
    copyBytes(buf, so, f, at, sl);
    at += sl;
    if (rl > 0) {
      copyBytes(buf, ro, f, at, rl);
      at += rl;
    }
    if (hdr !== null) {
      hdr.copy(f, at);
      at += h;
    }
    copyBytes(buf, po, f, at, pl);
    this.stats.msgsIn++;
    this.stats.bytesIn += hl + pl;
    if (this.router.publish(this, f, 0, total) && this.client.verbose && this.state === State.OPEN) this.sendLine(OK_LINE);
  }

  onSub(buf: Buffer, so: number, sl: number, qo: number, ql: number, io: number, il: number, sidNum: number): void {
    if (this.identity === null && this.unauthenticated()) return;
    const sidText = buf.toString('latin1', io, io + il);
    const pattern = buf.toString('utf8', so, so + sl);
    const queue = ql > 0 ? buf.toString('utf8', qo, qo + ql) : '';
    // A SUB with a sid in use: nats-server keeps the first and ignores it.
    if (this.subs.has(sidText)) return this.okIfVerbose();
    if (this.subs.size >= (this.access?.maxSubscriptions ?? this.host.options.maxSubscriptions)) return this.errorText(ERR_MAX_SUBSCRIPTIONS);
    if (ql > 0 && queueNameProblem(queue) !== null) return this.errorText(ERR_INVALID_SUBJECT);
    if (this.access !== null && this.access.subscribeRefusal(pattern, queue) !== null) return this.errorText(errSubscribePermission(pattern, queue));
    const sid = sidNum >= 0 ? sidNum : this.nextSid--;
    const sub = new NatsSub(this, sid, pattern, queue, this.host.defaultPolicy, Buffer.from(sidText, 'latin1'), sidText);
    try {
      this.router.subscribe(sub);
    } catch {
      return this.errorText(ERR_INVALID_SUBJECT);
    }
    this.subs.set(sidText, sub);
    this.okIfVerbose();
  }

  onUnsub(buf: Buffer, io: number, il: number, _sid: number, max: number): void {
    if (this.identity === null && this.unauthenticated()) return;
    const sub = this.subs.get(buf.toString('latin1', io, io + il));
    if (sub !== undefined) {
      // NATS counts max from the subscription's start: what it has had already counts.
      if (max > 0 && sub.count < max) this.router.limit(sub, max - sub.count);
      else this.removeSub(sub);
    }
    this.okIfVerbose();
  }

  onPing(): void {
    if (this.identity === null && this.unauthenticated()) return;
    this.sendLine(PONG_LINE);
  }

  /** An op before CONNECT where authentication is required: closed with Authorization Violation, as nats-server does. True when it was. */
  private unauthenticated(): boolean {
    if (!this.host.options.auth.required) return false;
    this.host.counters.authFailures++;
    this.fatalText(ERR_AUTH_VIOLATION, 'an operation before CONNECT on a broker that requires authentication');
    return true;
  }

  onPong(): void {
    this.host.liveness.pong(this);
  }

  onError(text: string, detail: string): void {
    this.fatalText(text, detail, true);
  }

  removeSub(sub: Subscription): void {
    const s = sub as NatsSub;
    if (this.subs.get(s.sidText) !== s) return;
    this.subs.delete(s.sidText);
    this.router.unsubscribe(s);
  }

  // --- outbound ------------------------------------------------------------------------

  /**
   * One message from the router: a MSG (or HMSG) per subscription of this connection
   * it matched (NATS sends one per sid), formatted once per fanout (see the top).
   */
  deliver(buf: Buffer, off: number, len: number, _sid: number, subject: string, subs: readonly Subscription[], policy: Policy, from: Publisher | null): void {
    if (from === this && this.noEcho) return;
    const f = current;
    const router = this.router;
    if (f.fanout !== router.fanouts || f.router !== router) f.begin(router, buf, off, len, subject);
    // No-responders statuses go only to clients that asked for them (nats-server sends them only then).
    if (f.noResponders && !this.client.noResponders) return;
    // allow_responses: a request received opens its reply subject to this connection.
    if (this.access !== null && this.access.grantsResponses && f.reply !== '') this.access.noteRequest(f.reply);
    const t = f.template(this.client.headers);
    for (let i = 0; i < subs.length; i++) {
      const sub = subs[i] as NatsSub;
      const n = f.copyFor(t, sub.sidBytes);
      sub.count++;
      if (this.out.deliver(f.out, 0, n, 0, subject, NO_LOSS_COUNTERS, policy, from) > 0) {
        this.stats.msgsOut++;
        this.stats.bytesOut += n;
      }
      if (this.state !== State.OPEN) return;
    }
  }

  onDrain(): void {
    if (this.state === State.OPEN) this.out.drained();
  }

  /** @internal OutboundOwner */
  slowConsumer(reason: string): void {
    this.host.counters.slowConsumers++;
    this.fatalText(ERR_SLOW_CONSUMER, `slow consumer: ${reason}`);
  }

  /** @internal OutboundOwner */
  countDrops(oldest: number, newest: number, conflated: number): void {
    const c = this.host.counters;
    c.droppedOldest += oldest;
    c.droppedNewest += newest;
    c.conflated += conflated;
  }

  hasPolicy(p: Policy): boolean {
    for (const sub of this.subs.values()) if (sub.policy === p) return true;
    return false;
  }

  block(by: object): void {
    this.gate.block(by);
  }

  unblock(by: object): void {
    this.gate.unblock(by);
  }

  /** Liveness: keepalive PINGs (and PONGs) in NATS's words. */
  sendBare(op: Op.PING | Op.PONG): void {
    this.sendLine(op === Op.PING ? PING_LINE : PONG_LINE);
  }

  private sendLine(line: Buffer): void {
    this.link.send(line, 0, line.length);
  }

  private okIfVerbose(): void {
    if (this.client.verbose) this.sendLine(OK_LINE);
  }

  /** A non-fatal -ERR: the connection stays up. */
  private errorText(text: string): void {
    const l = errLine(text);
    this.link.send(l, 0, l.length);
  }

  metrics() {
    const { id, link, connectedAt, stats, out, gate, rttMs } = this;
    return {
      ...sessionMetrics({ id, name: this.client.name, link, connectedAt, subscriptions: this.subs.size, stats, out, gate, rttMs }),
      protocol: 'nats' as const,
      lang: this.client.lang,
      version: this.client.version,
    };
  }

  // --- errors and closing --------------------------------------------------------------

  /**
   * Publisher/GateOwner: a non-fatal error from the router or a publisher gate. NATS
   * has a word for few of them, and a client may close on an -ERR it does not know, so
   * only what nats-server would send is sent; everything else is counted.
   */
  error(code: number, text: string): void {
    this.stats.refused++;
    // A permission refusal (broker/auth/access.ts) is already in nats-server's words.
    if (code === ErrCode.AUTH) return this.errorText(text);
    if (code === ErrCode.BAD_SUBJECT && this.client.pedantic) this.errorText(ERR_INVALID_PUBLISH_SUBJECT);
  }

  /** Publisher/Live: a fatal error in hopbus's codes, told in nats-server's words. */
  fatal(code: number, text: string): void {
    this.fatalText(natsText(code), text, code !== ErrCode.SLOW_CONSUMER && code !== ErrCode.STALE_CONNECTION);
  }

  /** Sends `-ERR '<text>'` (none when text is ''), then closes after flushing; the broker serves on. */
  private fatalText(text: string, detail: string, protocolError = false): void {
    if (this.state === State.CLOSED) return;
    this.parser.stop();
    if (protocolError) this.host.counters.protocolErrors++;
    this.closeReason = detail;
    this.host.log.warn({ cid: this.id, client: this.client.name, remote: this.link.remote, protocol: 'nats', err: text, reason: detail }, 'closing connection');
    if (!this.link.closed) {
      if (text !== '') this.errorText(text);
      this.link.close();
    }
    this.teardown();
  }

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
    this.host.log.info(
      { cid: this.id, client: this.client.name, remote: this.link.remote, protocol: 'nats', reason: this.closeReason, ...this.stats },
      'client disconnected',
    );
    this.host.detach(this);
    this.resolveDone();
  }

  private teardown(): void {
    this.state = State.CLOSED;
    if (this.identity !== null) this.identity.connections--;
    this.identity = null;
    this.parser.stop();
    this.out.close();
    this.gate.close();
    this.host.liveness.connected(this.handshakeTimer);
    this.handshakeTimer = null;
    this.router.unsubscribeAll(this.subs.values(), () => {});
    this.subs.clear();
  }
}

/** The -ERR text nats-server sends for what hopbus's liveness, gate and router call a fatal error. */
function natsText(code: number): string {
  switch (code) {
    case ErrCode.STALE_CONNECTION:
      return ERR_STALE_CONNECTION;
    case ErrCode.SLOW_CONSUMER:
      return ERR_SLOW_CONSUMER;
    case ErrCode.MAX_PAYLOAD:
      return ERR_MAX_PAYLOAD;
    case ErrCode.PROTOCOL:
      // The handshake timeout: no CONNECT in time.
      return ERR_AUTH_TIMEOUT;
    default:
      return ERR_UNKNOWN_OP;
  }
}
