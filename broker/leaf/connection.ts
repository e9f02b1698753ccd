/**
 * broker/leaf/connection.ts: one TCP connection from this broker to a hub's leafnode
 * port, speaking the leafnode protocol as a solicited (spoke) leaf of nats-server does:
 *
 *   hub -> INFO {..., "nonce", "headers", "leafnode_urls", "tls_required"}  (parser.ts reads the hub)
 *   (TLS: the leaf starts the handshake on the same socket; all that follows is encrypted)
 *   leaf -> CONNECT {"version", "server_id", "name", "headers", credentials}  (no "lang":
 *           that is how the hub tells a leaf from a client that dialled the wrong port)
 *   leaf -> LS+ for all local interest, and LS+ $LDS.<id> (loop detection), then PING
 *   both -> LS+/LS- as interest changes, LMSG/HMSG messages, PING/PONG, -ERR
 *
 * To the router it is a `RemoteSubscriber` and a `Publisher` (broker/subscription.ts):
 * the hub's interest (LS+) is held as router Subscriptions of this connection, inside the
 * remote's `export` bounds, so local publishes reach it only where the hub asked; the
 * hub's messages (LMSG/HMSG) go through `Router.routeRemote` to local subscribers only.
 *
 * Out: each message is formatted as LMSG (or HMSG when it carries headers or a payload
 * kind) into a scratch buffer and queued through an Outbound (broker/policy.ts) with the
 * remote's policy and bound, like any subscriber: a slow hub costs dropped and counted
 * messages (or, with `disconnect`, this connection), never a stall of local traffic.
 *
 * hopbus's payload kinds (utf8, msgpack) have no NATS field: they cross as a header
 * `Hopbus-Kind: 1|2`, taken off again by the hopbus broker at the other end; NATS clients
 * see it as an ordinary header. Raw payloads cross as they are.
 *
 * Threading: the broker's thread.
 */
import { FLAG_NO_RESPONDERS, MsgView, Op, PayloadKind, type Policy, msgSize as hopbusMsgSize, writeMsgHeader } from '../../transports/protocol/index.js';
import { SubjectCache, copyBytes } from '../../transports/intern.js';
import type tls from 'node:tls';
import type { Link, LinkHandler } from '../../transports/link.js';
import { tlsReason, tlsTrouble } from '../../transports/tls.js';
import type { Timer } from '../../runtime/clock.js';
import { isValidSubject } from '../../topics/index.js';
import { VERSION } from '../../transports/protocol/version.js';
import type { FlowStats, PublisherGate } from '../gate.js';
import type { SessionHost } from '../host.js';
import type { LossCounters, Outbound, OutboundOwner, OutboundPublisher } from '../policy.js';
import { Outbound as OutboundQueue } from '../policy.js';
import { sessionGate } from '../sessionkit.js';
import type { ClientLatency } from '../report.js';
import { Subscription, type Publisher, type RemoteSubscriber } from '../subscription.js';
import { PING_LINE, PONG_LINE, errLine, utf8Length, writeString, writeUint } from '../nats/encode.js';
import { formatNatsHeaders, hopbusToNatsHeaders, natsToHopbusHeaders, parseNatsHeaders } from '../nats/headers.js';
import { LeafParser, type LeafHandler } from './parser.js';
import type { Bounds } from './bounds.js';
import type { LeafTls } from './secrets.js';

/** The header that carries a hopbus payload kind across NATS. */
export const KIND_HEADER = 'Hopbus-Kind';
const KIND_BLOCKS: readonly Buffer[] = [
  Buffer.alloc(0),
  Buffer.from(`NATS/1.0\r\n${KIND_HEADER}: 1\r\n\r\n`, 'latin1'),
  Buffer.from(`NATS/1.0\r\n${KIND_HEADER}: 2\r\n\r\n`, 'latin1'),
];
const KIND_BYTES = Buffer.from(KIND_HEADER, 'latin1');

/** The LDS prefix nats-server uses for loop detection (leafnode.go leafNodeLoopDetectionSubjectPrefix). */
export const LDS_PREFIX = '$LDS.';

const NO_LOSS: readonly LossCounters[] = [];
/** Reply subjects held open for an answer at once (see LeafConnection.responses). */
const MAX_RESPONSES = 4096;
const CRLF = Buffer.from('\r\n', 'latin1');

/** What the connection needs of its remote (broker/leaf/uplink.ts). */
export interface ConnectionOwner {
  readonly host: SessionHost;
  readonly name: string;
  readonly imports: Bounds;
  readonly exports: Bounds;
  readonly policy: Policy;
  readonly maxPending: number;
  /** This broker's loop-detection subject, the same on every uplink. */
  readonly lds: string;
  /** TLS to the hub (the remote's `tls`, or a `tls://` URL), or null for plain TCP. */
  readonly tls: LeafTls | null;
  /** CONNECT's credential fields for the hub's nonce (user/pass/auth_token, or nkey+sig, jwt+sig). */
  credentials(nonce: string): Record<string, string>;
  /** The local interest to announce: key ('subject' or 'subject queue') -> count. */
  readonly interest: ReadonlyMap<string, number>;
  readonly stats: UplinkStats;
  /** INFO and CONNECT went through, the first PONG came back. */
  established(c: LeafConnection): void;
  /** The hub's INFO named leafnode URLs (the cluster's): dial them too. */
  learned(urls: readonly string[]): void;
  /** This broker's own $LDS came back through this hub: another uplink of ours reaches the same cluster. */
  loop(c: LeafConnection): void;
  /** Closed for good (reason for the log and monitoring; loop: the hub said it found a loop). */
  closed(c: LeafConnection, reason: string, loop: boolean): void;
}

export interface UplinkStats {
  msgsIn: number;
  bytesIn: number;
  msgsOut: number;
  bytesOut: number;
  /** Messages the outbound policy dropped (the hub was behind). */
  dropped: number;
  /** Messages from the hub outside the `import` bounds, or not readable (bad subject, bad header block): not routed. */
  refused: number;
  /** Times a loop was detected on this remote. */
  loops: number;
  /** Connections established. */
  connects: number;
}

/** A link that can move onto TLS after a plain-text greeting (broker/nats/listener.ts NatsLink). */
interface SecurableLink extends Link {
  secureClient(o: tls.ConnectionOptions, timeoutMs: number, then: () => void, failed: (err: Error) => void): void;
}

const enum State {
  INFO, // waiting for the hub's INFO
  TLS, // INFO read, the TLS handshake running
  CONNECTING, // CONNECT sent, waiting for the PONG of the first PING
  OPEN,
  CLOSED,
}

/** One connection to a hub (see the top of this file). */
export class LeafConnection implements LinkHandler, LeafHandler, OutboundOwner, OutboundPublisher, RemoteSubscriber, Publisher {
  readonly remote = true as const;
  readonly direct = null;
  report: ClientLatency | null = null;
  readonly out: Outbound;
  readonly gate: PublisherGate;
  /** The hub's INFO, once read. */
  hub: Record<string, unknown> | null = null;
  /** The hub's interest as held in the router: key -> the Subscriptions it became. */
  readonly remoteInterest = new Map<string, Subscription[]>();
  /**
   * Reply subjects of requests from the hub that the `export` bounds would keep in: each
   * a one-shot router Subscription (max 1), so the first answer goes back to the
   * requester whatever the bounds (as nats-server's allow_responses). Bounded; the oldest
   * goes first.
   */
  private readonly responses = new Map<string, Subscription>();
  /**
   * The other way: reply subjects of local requests sent to the hub that the `import`
   * bounds would keep out, announced (LS+) until their first answer comes in (LS-).
   * Bounded like `responses`.
   */
  private readonly awaited = new Set<string>();
  readonly connectedAt = Date.now();
  rttMs = -1;
  /** Order of establishment among this broker's uplinks (the younger of two looped ones gives way). */
  seq = 0;
  private state = State.INFO;
  private headers = false;
  private readonly parser: LeafParser;
  private nextSid = 1;
  private pingsOut = 0;
  private pingSentAt = 0;
  private pingTimer: Timer | null = null;
  private infoTimer: Timer | null;
  private readonly view = new MsgView();
  private readonly subjects = new SubjectCache(4096);
  /** Where each outbound LMSG/HMSG and each inbound PUB frame is written; reused, grown on demand. */
  private outScratch = Buffer.allocUnsafe(16 * 1024);
  private inScratch = Buffer.allocUnsafe(16 * 1024);
  private closeReason = '';
  private loopSaid = false;
  /** Resolves once the link has closed and the owner was told. */
  readonly done: Promise<void>;
  private resolveDone!: () => void;

  constructor(
    readonly id: number,
    readonly link: Link,
    readonly url: string,
    private readonly owner: ConnectionOwner,
  ) {
    const host = owner.host;
    this.done = new Promise((resolve) => (this.resolveDone = resolve));
    this.out = new OutboundQueue(this, Math.min(host.options.highWaterBytes, owner.maxPending), owner.maxPending, 0, null, host.clock);
    this.gate = sessionGate(this, host);
    this.parser = new LeafParser(this, host.options.maxPayload + host.options.maxHeaders);
    this.infoTimer = host.clock.timeout(
      () => this.fatal(0, `no INFO from the hub within ${host.options.handshakeTimeoutMs} ms`),
      host.options.handshakeTimeoutMs,
    );
  }

  get open(): boolean {
    return this.state !== State.CLOSED;
  }

  get isOpen(): boolean {
    return this.state === State.OPEN;
  }

  get flow(): FlowStats {
    return this.gate.flow;
  }

  // --- inbound ---------------------------------------------------------------------------

  onFrame(buf: Buffer, off: number, len: number): void {
    if (this.state === State.CLOSED) return;
    this.parser.parse(off === 0 && len === buf.length ? buf : buf.subarray(off, off + len));
  }

  onInfo(json: string): void {
    let info: Record<string, unknown>;
    try {
      const v: unknown = JSON.parse(json);
      if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new TypeError('not an object');
      info = v as Record<string, unknown>;
    } catch {
      return this.fatal(0, `the hub's INFO is not a JSON object: ${json.slice(0, 64)}`);
    }
    if (Array.isArray(info.leafnode_urls)) this.owner.learned(info.leafnode_urls.filter((u): u is string => typeof u === 'string'));
    if (this.state !== State.INFO) return; // an async INFO: only the URLs matter
    // A leafnode port's INFO names the connection (client_id) and the cluster's leafnode URLs (nats-server checks the same).
    if (typeof info.client_id !== 'number' || !Array.isArray(info.leafnode_urls))
      return this.fatal(0, `${this.url} is not a leafnode port (its INFO has no client_id or leafnode_urls: a client or route port?)`);
    this.owner.host.clock.clear(this.infoTimer);
    this.infoTimer = null;
    this.hub = info;
    this.headers = info.headers === true;
    const secured = this.link.transport === 'tls'; // handshake first (uplink.ts)
    const hubTls = info.tls_required === true;
    const tlsOwn = this.owner.tls;
    if (!secured && hubTls && tlsOwn === null)
      return this.fatal(
        0,
        `${this.url} requires TLS (its INFO says tls_required): give the remote a "tls" option (its "ca", if the hub's CA is not the system's) or a tls:// URL`,
      );
    if (!secured && !hubTls && tlsOwn !== null)
      return this.fatal(
        0,
        `the remote wants TLS, but ${this.url} does not offer it (its INFO has no tls_required): a leafnode port without TLS, or the wrong port?`,
      );
    if (secured || tlsOwn === null) return this.connect(info);
    const link = this.link as Partial<SecurableLink>;
    if (typeof link.secureClient !== 'function') return this.fatal(0, `${this.url} requires TLS, which this link cannot carry`);
    this.state = State.TLS;
    const host = new URL(this.url).hostname.replace(/^\[|\]$/g, '');
    link.secureClient(
      tlsOwn.connectOptions(host),
      this.owner.host.options.handshakeTimeoutMs,
      () => {
        if (this.state === State.TLS) this.connect(info);
      },
      (err) => this.fatal(0, tlsFailure(this.url, err), false),
    );
  }

  /** CONNECT, the local interest and the first PING, once INFO is read (and TLS is up where wanted). */
  private connect(info: Record<string, unknown>): void {
    const o = this.owner.host.options;
    const connect: Record<string, unknown> = {
      version: VERSION,
      tls_required: this.link.transport === 'tls',
      server_id: this.owner.host.serverId,
      // Unique per broker and remote: a hub replaces a leaf connection whose name it already has.
      name: `${o.name}-${this.owner.host.serverId}-${this.owner.name}`,
      headers: true,
      ...this.owner.credentials(typeof info.nonce === 'string' ? info.nonce : ''),
    };
    this.sendText(`CONNECT ${JSON.stringify(connect)}\r\n`);
    let subs = `LS+ ${this.owner.lds}\r\n`;
    for (const [key, n] of this.owner.interest) subs += subLine(key, n);
    this.sendText(subs);
    this.state = State.CONNECTING;
    this.ping();
  }

  onPing(): void {
    this.send(PONG_LINE);
  }

  onPong(): void {
    this.pingsOut = 0;
    this.rttMs = this.owner.host.clock.now() - this.pingSentAt;
    if (this.state === State.CONNECTING) {
      this.state = State.OPEN;
      this.owner.stats.connects++;
      const every = this.owner.host.options.pingIntervalMs;
      if (every > 0) this.pingTimer = this.owner.host.clock.interval(this.keepalive, every);
      this.owner.established(this);
    }
  }

  onErr(text: string): void {
    this.owner.host.log.warn({ leaf: this.owner.name, url: this.url, err: text }, 'leafnode hub sent -ERR');
    // Every -ERR a hub sends a solicited leaf is followed by its close, but a permissions violation.
    if (/loop detected/i.test(text)) {
      this.loopSaid = true;
      this.owner.stats.loops++;
    }
    if (!/permissions violation/i.test(text)) this.fatal(0, `the hub said: ${text}`, false);
  }

  onSub(subject: string, queue: string, _weight: number): void {
    if (this.state === State.CLOSED) return;
    const key = queue === '' ? subject : `${subject} ${queue}`;
    // A queue's LS+ again: a weight update. The hub picks among its members itself.
    if (this.remoteInterest.has(key)) return;
    if (subject === this.owner.lds) {
      this.owner.stats.loops++;
      this.owner.loop(this);
      return;
    }
    if (subject.startsWith(LDS_PREFIX)) return;
    const subs: Subscription[] = [];
    for (const p of this.owner.exports.clip(subject)) {
      const sub = new Subscription(this, this.nextSid++, p, queue, this.owner.policy);
      try {
        this.owner.host.router.subscribe(sub);
      } catch {
        continue; // not a valid pattern: nothing to route to
      }
      subs.push(sub);
    }
    this.remoteInterest.set(key, subs);
  }

  onUnsub(subject: string, queue: string): void {
    const key = queue === '' ? subject : `${subject} ${queue}`;
    const subs = this.remoteInterest.get(key);
    if (subs === undefined) return;
    this.remoteInterest.delete(key);
    for (const sub of subs) this.owner.host.router.unsubscribe(sub);
  }

  onMsg(buf: Buffer, so: number, sl: number, ro: number, rl: number, queues: string[] | null, bodyOff: number, hdrLen: number, size: number): void {
    const st = this.owner.stats;
    st.msgsIn++;
    st.bytesIn += size;
    let subject = this.subjects.lookup(buf, so, sl);
    if (subject === null) {
      subject = buf.toString('utf8', so, so + sl);
      if (!isValidSubject(subject) || (!this.owner.imports.allows(subject) && !this.answered(subject))) {
        st.refused++;
        return;
      }
      this.subjects.store(buf, so, sl, subject);
    }
    if (rl > 0) {
      const reply = buf.toString('utf8', ro, ro + rl);
      if (!isValidSubject(reply)) {
        st.refused++;
        return;
      }
      if (!this.owner.exports.allows(reply)) this.allowResponse(reply);
    }
    let kind = PayloadKind.RAW;
    let hdr: Buffer | null = null;
    if (hdrLen > 0) {
      if (hdrLen === KIND_BLOCKS[1]!.length && equalBytes(buf, bodyOff, KIND_BLOCKS[1]!)) kind = PayloadKind.UTF8;
      else if (hdrLen === KIND_BLOCKS[2]!.length && equalBytes(buf, bodyOff, KIND_BLOCKS[2]!)) kind = PayloadKind.MSGPACK;
      else if (buf.indexOf(KIND_BYTES, bodyOff) >= 0 && buf.indexOf(KIND_BYTES, bodyOff) < bodyOff + hdrLen) {
        const h = parseNatsHeaders(buf, bodyOff, hdrLen);
        if (h === null) {
          st.refused++;
          return;
        }
        const k = Number(h[KIND_HEADER]);
        if (k === PayloadKind.UTF8 || k === PayloadKind.MSGPACK) kind = k;
        delete h[KIND_HEADER];
        if (Object.keys(h).length > 0) {
          const block = formatNatsHeaders(h);
          hdr = natsToHopbusHeaders(block, 0, block.length);
        }
      } else {
        hdr = natsToHopbusHeaders(buf, bodyOff, hdrLen);
        if (hdr === null) {
          st.refused++;
          return;
        }
      }
    }
    const h = hdr === null ? 0 : hdr.length;
    const pl = size - hdrLen;
    const total = hopbusMsgSize(sl, rl, h, pl, false);
    if (total > this.inScratch.length) this.inScratch = Buffer.allocUnsafe(Math.max(total, 2 * this.inScratch.length));
    const f = this.inScratch;
    let at = writeMsgHeader(f, 0, total, Op.PUB, 0, kind, 0, sl, rl, h);
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
    copyBytes(buf, bodyOff + hdrLen, f, at, pl);
    this.owner.host.router.routeRemote(this, f, 0, total, subject, queues);
  }

  /** Opens `reply` for one answer back to the hub (see `responses`). */
  private allowResponse(reply: string): void {
    if (this.responses.has(reply)) return;
    if (this.responses.size >= MAX_RESPONSES) {
      const [oldest, sub] = this.responses.entries().next().value as [string, Subscription];
      this.responses.delete(oldest);
      this.owner.host.router.unsubscribe(sub);
    }
    const sub = new Subscription(this, this.nextSid++, reply, '', this.owner.policy);
    sub.max = 1;
    this.owner.host.router.subscribe(sub);
    this.responses.set(reply, sub);
  }

  /** A reply subject announced for a local request (see `awaited`): its answer is let in, once. */
  private answered(subject: string): boolean {
    if (!this.awaited.delete(subject)) return false;
    this.sendText(subLine(subject, 0));
    return true;
  }

  /** Announces `reply` for the answer to a local request (see `awaited`). */
  private awaitReply(reply: string): void {
    if (this.awaited.has(reply)) return;
    if (this.awaited.size >= MAX_RESPONSES) {
      const oldest = this.awaited.values().next().value as string;
      this.awaited.delete(oldest);
      this.sendText(subLine(oldest, 0));
    }
    this.awaited.add(reply);
    this.sendText(subLine(reply, 1));
  }

  onError(detail: string): void {
    this.owner.host.counters.protocolErrors++;
    this.fatal(0, `protocol error from the hub: ${detail}`);
  }

  // --- outbound --------------------------------------------------------------------------

  /** Subscriber: never called (the router hands an uplink messages through deliverRemote). */
  deliver(): void {}

  removeSub(sub: Subscription): void {
    if (this.responses.get(sub.pattern) === sub) this.responses.delete(sub.pattern);
    this.owner.host.router.unsubscribe(sub);
  }

  /** One local message for the hub: LMSG or HMSG, with the queue groups it should pick members of. */
  deliverRemote(buf: Buffer, off: number, len: number, subject: string, queues: readonly string[], from: Publisher | null): void {
    // From CONNECT on (the hub's interest arrives before the PONG that establishes the connection).
    if (this.state !== State.OPEN && this.state !== State.CONNECTING) return;
    const v = this.view.parse(buf, off, len);
    if (v.flags & FLAG_NO_RESPONDERS) return; // the broker's answer to a local requester
    // A request whose answer the import bounds would keep out: its reply subject is announced first.
    if (v.replyLen > 0 && !this.owner.imports.allPass) {
      const reply = v.reply();
      if (!this.owner.imports.allows(reply)) this.awaitReply(reply);
    }
    let hdr: Buffer | null = null;
    if (this.headers) {
      if (v.headersLen > 0) {
        hdr = hopbusToNatsHeaders(buf, v.headersOff, v.headersLen);
        if (hdr !== null && v.kind !== PayloadKind.RAW) hdr = withKind(hdr, v.kind);
      } else if (v.kind === PayloadKind.UTF8 || v.kind === PayloadKind.MSGPACK) hdr = KIND_BLOCKS[v.kind]!;
    }
    const hl = hdr === null ? 0 : hdr.length;
    const size = hl + v.payloadLen;
    const sl = utf8Length(subject);
    let n = 6 + sl + 2 * 10 + 4 + v.replyLen + 2 + size + 2;
    for (let i = 0; i < queues.length; i++) n += 1 + 3 * queues[i]!.length;
    if (n > this.outScratch.length) this.outScratch = Buffer.allocUnsafe(Math.max(n, 2 * this.outScratch.length));
    const o = this.outScratch;
    let p = 0;
    o[p++] = hl > 0 ? 0x48 /* H */ : 0x4c; /* L */
    o[p++] = 0x4d; // M
    o[p++] = 0x53; // S
    o[p++] = 0x47; // G
    o[p++] = 0x20;
    p += writeString(o, p, subject);
    o[p++] = 0x20;
    if (queues.length > 0) {
      if (v.replyLen > 0) {
        o[p++] = 0x2b; // +
        o[p++] = 0x20;
        copyBytes(buf, v.replyOff, o, p, v.replyLen);
        p += v.replyLen;
      } else o[p++] = 0x7c; // |
      o[p++] = 0x20;
      for (let i = 0; i < queues.length; i++) {
        p += writeString(o, p, queues[i]!);
        o[p++] = 0x20;
      }
    } else if (v.replyLen > 0) {
      copyBytes(buf, v.replyOff, o, p, v.replyLen);
      p += v.replyLen;
      o[p++] = 0x20;
    }
    if (hl > 0) {
      p += writeUint(o, p, hl);
      o[p++] = 0x20;
    }
    p += writeUint(o, p, size);
    o[p++] = 13;
    o[p++] = 10;
    if (hl > 0) {
      hdr!.copy(o, p);
      p += hl;
    }
    copyBytes(buf, v.payloadOff, o, p, v.payloadLen);
    p += v.payloadLen;
    o[p++] = 13;
    o[p++] = 10;
    if (this.out.deliver(o, 0, p, 0, subject, NO_LOSS, this.owner.policy, from) > 0) {
      this.owner.stats.msgsOut++;
      this.owner.stats.bytesOut += size;
    }
  }

  /** An interest change to announce (uplink.ts keeps the counts). */
  announce(key: string, n: number): void {
    if (this.state === State.OPEN || this.state === State.CONNECTING) this.sendText(subLine(key, n));
  }

  onDrain(): void {
    if (this.state !== State.CLOSED) this.out.drained();
  }

  /** @internal OutboundOwner: the hub is behind past the bound with the `disconnect` policy. */
  slowConsumer(reason: string): void {
    this.owner.host.counters.slowConsumers++;
    this.fatal(0, `the hub is a slow consumer: ${reason}`);
  }

  /** @internal OutboundOwner */
  countDrops(oldest: number, newest: number, conflated: number): void {
    const c = this.owner.host.counters;
    c.droppedOldest += oldest;
    c.droppedNewest += newest;
    c.conflated += conflated;
    this.owner.stats.dropped += oldest + newest + conflated;
  }

  block(by: object): void {
    this.gate.block(by);
  }

  unblock(by: object): void {
    this.gate.unblock(by);
  }

  /** Publisher: a refusal by the router or a gate. Nothing to tell the hub; counted. */
  error(_code: number, _text: string): void {
    this.owner.stats.refused++;
  }

  fatal(_code: number, text: string, tell = true): void {
    if (this.state === State.CLOSED) return;
    this.closeReason = text;
    if (tell && !this.link.closed && (this.state === State.CONNECTING || this.state === State.OPEN)) {
      const l = errLine(text.slice(0, 200).replace(/'/g, '"'));
      this.link.send(l, 0, l.length);
    }
    this.link.close();
    this.teardown();
  }

  /** Closes because this broker reaches the hub's cluster through another uplink: the hub is told, as nats-server tells it. */
  loopDetected(delayMs: number): void {
    this.loopSaid = true;
    this.fatal(0, `Loop detected for leafnode account="$G". Delaying attempt to reconnect for ${Math.round(delayMs / 1000)}s`);
  }

  shutdown(): void {
    if (this.state === State.CLOSED) return;
    this.closeReason = 'broker shutting down';
    this.link.close();
    this.teardown();
  }

  onClose(err: Error | null): void {
    if (this.state !== State.CLOSED) {
      // A TLS 1.3 hub refuses a client certificate after the handshake: the alert comes as the link's error.
      this.closeReason = err === null ? 'closed by the hub' : this.link.transport === 'tls' && isTlsError(err) ? tlsFailure(this.url, err) : err.message;
      this.teardown();
    }
    this.owner.closed(this, this.closeReason, this.loopSaid);
    this.resolveDone();
  }

  private teardown(): void {
    this.state = State.CLOSED;
    this.parser.stop();
    const clock = this.owner.host.clock;
    clock.clear(this.infoTimer);
    clock.clear(this.pingTimer);
    this.infoTimer = this.pingTimer = null;
    this.out.close();
    this.gate.close();
    const all: Subscription[] = [...this.responses.values()];
    for (const subs of this.remoteInterest.values()) all.push(...subs);
    this.remoteInterest.clear();
    this.responses.clear();
    this.owner.host.router.unsubscribeAll(all, () => {});
  }

  private readonly keepalive = (): void => {
    if (this.state !== State.OPEN) return;
    if (this.pingsOut >= this.owner.host.options.maxPingsOut) return this.fatal(0, 'Stale Connection');
    this.ping();
  };

  private ping(): void {
    this.pingsOut++;
    this.pingSentAt = this.owner.host.clock.now();
    this.send(PING_LINE);
  }

  private send(b: Buffer): void {
    if (!this.link.closed) this.link.send(b, 0, b.length);
  }

  private sendText(s: string): void {
    const b = Buffer.from(s, 'utf8');
    this.send(b);
  }

  get reason(): string {
    return this.closeReason;
  }
}

/** `LS+ key[ weight]` for a count above 0 (a queue key carries its weight), else `LS- key`. */
export function subLine(key: string, n: number): string {
  if (n <= 0) return `LS- ${key}\r\n`;
  return key.includes(' ') ? `LS+ ${key} ${n}\r\n` : `LS+ ${key}\r\n`;
}

/** A NATS header block with the kind header added before its closing CR LF. */
function withKind(block: Buffer, kind: number): Buffer {
  return Buffer.concat([block.subarray(0, block.length - 2), Buffer.from(`${KIND_HEADER}: ${kind}\r\n`, 'latin1'), CRLF]);
}

function equalBytes(buf: Buffer, off: number, b: Buffer): boolean {
  for (let i = 0; i < b.length; i++) if (buf[off + i] !== b[i]) return false;
  return true;
}

/** A node:tls or OpenSSL error (not a refused or timed-out connect). */
export function isTlsError(err: NodeJS.ErrnoException): boolean {
  return tlsTrouble(err) !== null || /^ERR_TLS_|^ERR_SSL_/.test(err.code ?? '') || /SSL routines|alert/i.test(err.message);
}

/** Why a TLS handshake with a hub failed: OpenSSL's reason, and what to change where the fix is the remote's. */
export function tlsFailure(url: string, err: NodeJS.ErrnoException): string {
  const trouble = tlsTrouble(err);
  const hint =
    trouble === 'trust'
      ? ": the hub's certificate is not signed by the remote's tls.ca (or, without one, a CA of the system)"
      : trouble === 'name'
        ? ": the hub's certificate is not for this address (the remote's tls.servername names the one it carries)"
        : trouble === 'client-cert'
          ? ": the hub wants a client certificate it trusts (the remote's tls.cert and tls.key)"
          : '';
  return `TLS handshake with ${url} failed: ${tlsReason(err)}${hint}`;
}
