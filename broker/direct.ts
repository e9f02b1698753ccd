import { DIRECT_HEADER, DirectKind, ErrCode, Op, Policy, directSize, writeDirect } from '../transports/protocol/index.js';
import { ChannelMaker } from '../transports/shm/direct.js';
import type { Link } from '../transports/link.js';
import type { ResolvedOptions } from './config.js';
import type { Subscriber, Subscription } from './subscription.js';

/**
 * The broker's half of direct delivery between shm clients (docs/SHM.md, "Direct
 * delivery"; the client's half is client/direct.ts). The broker stays the one place
 * that knows every subscription, and tells each direct client, in order, the interest
 * it needs to route its own publishes; the messages themselves go from the
 * publishing thread to the subscribing thread through channel rings it hands out.
 *
 * Interest is versioned: every subscription added or removed while direct clients
 * exist bumps `seq`, and each direct client acknowledges the seq it has applied
 * (IACK) and stamps it on its PUBs. A subscription remembers the seq it came with, so
 * for a PUB from a direct publisher the broker knows which subscribers the publisher
 * already served itself (see Router.fanout), and a client's flush (PING) is answered
 * only once every direct client has applied the interest changes made before it: after
 * `await bus.flush()` a new subscription is known to every publisher.
 *
 * Threading: the broker's thread.
 *
 * Must not import sessions or the broker: it sees them as `DirectPeer` and `DirectHost`.
 */

/** What the plane needs of a session (broker/session.ts implements it). */
export interface DirectPeer extends Subscriber {
  readonly link: Link;
  readonly subs: ReadonlyMap<number, Subscription>;
  direct: Member | null;
  fatal(code: number, text: string): void;
  slowConsumer(reason: string): void;
  sendBare(op: Op.PING | Op.PONG): void;
}

/** What the plane needs of the broker. */
export interface DirectHost {
  readonly serverId: string;
  readonly options: ResolvedOptions;
  readonly defaultPolicy: Policy;
  readonly sessions: Iterable<DirectPeer>;
  /** The multicast bridge, when there is one. */
  readonly bridge: object | null;
  /**
   * Subject patterns the broker must see every message of, whoever subscribes: the
   * last-value cache's and the journal's. Direct clients learn them as REMOTE interest,
   * so a publisher also sends the broker a PUB for these subjects when only direct peers
   * subscribe (which it serves itself; the broker skips them).
   */
  mustSee(): readonly string[];
}

/** A session in the direct plane. */
export class Member {
  /** Peers this member writes to itself (it has ACKed their channel): skipped for its PUBs. */
  readonly acked = new Set<Subscriber>();
  /** Channels this member writes, by reader. */
  readonly out = new Map<Subscriber, Channel>();
  /** Channels this member reads, by number. */
  readonly in = new Map<number, Channel>();
  /** Interest seq last sent to it, and last applied by it. */
  sent = 0;
  applied = 0;
  constructor(
    readonly session: DirectPeer,
    readonly conn: SharedArrayBuffer,
  ) {}
}

interface Channel {
  readonly id: number;
  readonly writer: Member;
  readonly reader: Member;
  /** Seq of the last PEER_ADD about the reader sent to the writer, and the seq the reader may read up to. */
  lastAdd: number;
  marked: number;
  /** [messages, bytes] the writer has put in it (shared memory, written by the writer). */
  readonly counts: Float64Array;
}

interface PongWait {
  session: DirectPeer;
  seq: number;
}

export class DirectPlane {
  /** The interest sequence (see the class comment). */
  seq = 0;
  private readonly members = new Map<number, Member>();
  private readonly waits: PongWait[] = [];
  private maker: ChannelMaker | null = null;
  /** Messages and bytes of channels closed since start. */
  private closedMsgs = 0;
  private closedBytes = 0;

  constructor(private readonly broker: DirectHost) {}

  /** Why a client asking for direct delivery does not get it, or null. */
  refusal(session: DirectPeer): string | null {
    const o = this.broker.options;
    if (session.link.shared === undefined) return 'direct delivery is for shm connections';
    if (o.publishRate || o.subjectRates.length > 0 || o.deliverRate) return 'the broker has rate limits, which only it can apply';
    if (this.broker.defaultPolicy !== Policy.DISCONNECT) return 'the broker\'s default slow-consumer policy is not "disconnect"';
    if (this.broker.bridge !== null) return 'the broker bridges to multicast, which must see every message';
    return null;
  }

  /** A session joins after its handshake: it learns everybody's interest as of now. */
  join(session: DirectPeer): Member {
    const m = new Member(session, session.link.shared!);
    this.members.set(session.id, m);
    let told = false;
    for (const s of this.broker.sessions) {
      if (s === session) continue;
      for (const sub of s.subs.values()) {
        this.tell(m, sub, true, this.seq);
        told = true;
      }
    }
    for (const pattern of this.broker.mustSee()) {
      send(session, DirectKind.REMOTE_ADD, this.seq, 0, 0, pattern);
      told = true;
    }
    // Applied once it says so (IACK), if there was anything to apply.
    m.sent = this.seq;
    m.applied = told ? -1 : this.seq;
    return m;
  }

  get size(): number {
    return this.members.size;
  }

  // --- interest ------------------------------------------------------------------------

  /** A subscription was added (and inserted into the tree; routes are built later, on a match). */
  added(sub: Subscription): void {
    if (this.members.size === 0) {
      if (served(sub)) sub.servedSeq = this.seq;
      return;
    }
    const seq = ++this.seq;
    if (served(sub)) sub.servedSeq = seq;
    for (const m of this.members.values()) if (m.session !== sub.session) this.tell(m, sub, true, seq);
  }

  /** A subscription was removed. */
  removed(sub: Subscription): void {
    if (this.members.size === 0) return;
    const seq = ++this.seq;
    for (const m of this.members.values()) if (m.session !== sub.session) this.tell(m, sub, false, seq);
  }

  private tell(m: Member, sub: Subscription, add: boolean, seq: number): void {
    const peer = served(sub);
    const kind = peer ? (add ? DirectKind.PEER_ADD : DirectKind.PEER_DEL) : add ? DirectKind.REMOTE_ADD : DirectKind.REMOTE_DEL;
    send(m.session, kind, seq, peer ? sub.session.id : 0, 0, sub.pattern);
    m.sent = seq;
    if (peer && add) {
      const ch = m.out.get(sub.session);
      if (ch !== undefined) ch.lastAdd = seq;
    }
  }

  // --- control frames from a member ------------------------------------------------------

  onFrame(m: Member, buf: Buffer, off: number, len: number): void {
    const s = m.session;
    if (len !== DIRECT_HEADER) {
      s.fatal(ErrCode.PROTOCOL, 'DIRECT frames from clients carry no pattern');
      return;
    }
    const kind = buf[off + 5]!;
    const a = buf.readUInt32LE(off + 8);
    const b = buf.readUInt32LE(off + 12);
    const c = buf.readUInt32LE(off + 16);
    switch (kind) {
      case DirectKind.WANT:
        return this.want(m, b);
      case DirectKind.ACK:
        return this.ack(m, a, b);
      case DirectKind.IACK:
        return this.iack(m, a);
      case DirectKind.SLOW: {
        const peer = this.members.get(b);
        const ch = peer === undefined ? undefined : m.out.get(peer.session);
        if (ch !== undefined && ch.id === a && ch.reader.session.open) {
          ch.reader.session.slowConsumer(`${c} bytes waiting in the direct channel from client ${s.id}`);
        }
        return;
      }
      default:
        s.fatal(ErrCode.PROTOCOL, `DIRECT kind ${kind} is not sent by clients`);
    }
  }

  private want(m: Member, peerId: number): void {
    const peer = this.members.get(peerId);
    if (peer === undefined || peer === m || !peer.session.open) {
      send(m.session, DirectKind.REFUSED, 0, peerId, 0);
      return;
    }
    if (m.out.has(peer.session)) return; // already open (a repeated WANT)
    const maker = (this.maker ??= new ChannelMaker(this.broker.serverId));
    const { chan: id, counts } = maker.open({ id: m.session.id, conn: m.conn }, { id: peer.session.id, conn: peer.conn });
    const ch: Channel = { id, writer: m, reader: peer, lastAdd: 0, marked: 0, counts };
    m.out.set(peer.session, ch);
    peer.in.set(id, ch);
    send(m.session, DirectKind.OPEN, id, peerId, this.broker.options.maxPending);
  }

  /** The writer serves the reader itself from now on: everything it sent before has been routed. */
  private ack(m: Member, chan: number, seq: number): void {
    for (const ch of m.out.values()) {
      if (ch.id !== chan) continue;
      m.acked.add(ch.reader.session);
      ch.marked = seq;
      send(ch.reader.session, DirectKind.MARK, chan, m.session.id, seq);
      return;
    }
  }

  private iack(m: Member, seq: number): void {
    m.applied = seq;
    // Fences the writer put in its channels for subscriptions up to seq may be passed now.
    for (const ch of m.out.values()) {
      if (ch.lastAdd > ch.marked && m.acked.has(ch.reader.session)) {
        ch.marked = seq;
        send(ch.reader.session, DirectKind.MARK, ch.id, m.session.id, seq);
      }
    }
    if (this.waits.length > 0) this.releasePongs();
  }

  // --- flush barrier -----------------------------------------------------------------------

  /** Answers a PING now, or once every other member has applied the interest changes made so far. */
  ping(session: DirectPeer): void {
    if (this.waits.length === 0 && this.settled(session, this.seq)) {
      session.sendBare(Op.PONG);
      return;
    }
    this.waits.push({ session, seq: this.seq });
  }

  private settled(session: DirectPeer, seq: number): boolean {
    for (const m of this.members.values()) {
      if (m.session !== session && m.applied < Math.min(seq, m.sent)) return false;
    }
    return true;
  }

  private releasePongs(): void {
    // In order: a later PING of a session is never answered before an earlier one.
    let i = 0;
    while (i < this.waits.length) {
      const w = this.waits[i]!;
      if (!w.session.open) {
        this.waits.splice(i, 1);
        continue;
      }
      if (!this.settled(w.session, w.seq)) break;
      this.waits.splice(i, 1);
      w.session.sendBare(Op.PONG);
    }
  }

  // --- leaving ---------------------------------------------------------------------------

  /** A member's session ends (before its subscriptions are removed): close its channels. */
  leave(session: DirectPeer): void {
    const m = session.direct;
    if (m === null) return;
    this.members.delete(session.id);
    for (const ch of m.out.values()) {
      this.retire(ch);
      ch.reader.in.delete(ch.id);
      if (ch.reader.session.open) send(ch.reader.session, DirectKind.CLOSE, ch.id, session.id, 0);
    }
    for (const ch of m.in.values()) {
      this.retire(ch);
      ch.writer.out.delete(session);
      ch.writer.acked.delete(session);
      if (ch.writer.session.open) send(ch.writer.session, DirectKind.CLOSE, ch.id, session.id, 0);
    }
    m.out.clear();
    m.in.clear();
    if (this.waits.length > 0) this.releasePongs();
  }

  /** A channel is closing: keep what it carried in the totals. */
  private retire(ch: Channel): void {
    this.closedMsgs += ch.counts[0]!;
    this.closedBytes += ch.counts[1]!;
  }

  /**
   * For monitoring: direct clients, open channels, the interest seq, and the messages
   * and bytes written into channels since start (read from their shared counters).
   */
  stats(): { members: number; channels: number; seq: number; msgs: number; bytes: number } {
    let channels = 0;
    let msgs = this.closedMsgs;
    let bytes = this.closedBytes;
    for (const m of this.members.values()) {
      channels += m.out.size;
      for (const ch of m.out.values()) {
        msgs += ch.counts[0]!;
        bytes += ch.counts[1]!;
      }
    }
    return { members: this.members.size, channels, seq: this.seq, msgs, bytes };
  }

  close(): void {
    this.maker?.close();
    this.maker = null;
  }
}

/**
 * Do direct publishers serve this subscription themselves? Those of direct clients,
 * except queue-group members (the broker picks one member per message) and those with
 * a slow-consumer policy other than "disconnect" (the broker applies it), and snapshot
 * and replay subscriptions (their image and their live messages come one way, in one
 * order): the broker serves those, so publishers learn them as REMOTE interest.
 */
function served(sub: Subscription): boolean {
  return sub.session.direct !== null && sub.queue === '' && sub.policy === Policy.DISCONNECT && !sub.brokerOnly;
}

function send(s: DirectPeer, kind: DirectKind, a: number, b: number, c: number, pattern = ''): void {
  const link = s.link;
  if (link.closed) return;
  const n = directSize(pattern === '' ? 0 : Buffer.byteLength(pattern, 'utf8'));
  const buf = link.reserve(n);
  writeDirect(buf, link.writeOffset, kind, a, b, c, pattern);
  link.commit(n);
}
