import type { HopbusError } from '../runtime/errors.js';
import { SubjectTree } from '../topics/index.js';
import { DIRECT_HEADER, DirectKind, Op, directSize, writeDirect } from '../transports/protocol/index.js';
import type { DirectPort, Link, LinkHandler } from '../transports/link.js';
import { ConnectionError } from './errors.js';

/**
 * The client's half of direct delivery (docs/SHM.md, "Direct delivery"): a worker
 * that publishes to another worker of the same broker writes the MSG straight into a
 * channel ring read by that worker, and the broker thread never touches the message.
 *
 * The broker keeps this client's view of everybody's interest up to date with DIRECT
 * control frames, each carrying the interest sequence number it brings the view to:
 *  - REMOTE_ADD/DEL: a subscription only the broker can serve (another transport, a
 *    queue group, this client's peer outside the direct plane): publish through it;
 *  - PEER_ADD/DEL: a subscription of direct peer b, which this client serves itself.
 * This client's own subscriptions are added locally, at once: a thread that subscribes
 * and then publishes to itself must not wait for a round trip.
 *
 * Per subject the view gives the peers to write to and whether the broker gets a PUB
 * too. The PUB carries the view's sequence number in its sid field, so the broker
 * skips exactly the peers this client already served (the ones whose matching
 * subscriptions it knew, over a channel it has acknowledged).
 *
 * Ordering per publisher: the broker path and a channel are two roads; a subscriber
 * must not read a channel message before the broker-path messages the publisher sent
 * earlier. So a channel is read only after the broker's MARK, which it sends once it
 * has routed everything the publisher sent before its ACK; and when this client
 * learns a new subscription of a peer it already writes to, it puts a FENCE(seq) in
 * the channel, which the reader passes only after a MARK of at least seq (sent by the
 * broker after this client's IACK of seq, i.e. after its earlier PUBs were routed).
 *
 * Threading: the client's thread.
 */

const enum PeerState {
  /** Known interest, no channel asked for yet. */
  NONE,
  /** Asked the broker for a channel (WANT), or waiting for its memory: the broker path serves it. */
  PENDING,
  /** Writing into the channel; the broker skips this peer for our PUBs. */
  OPEN,
  /** The broker will not open a channel: the broker path serves it. */
  REFUSED,
  /** The channel overflowed (the peer is being disconnected as a slow consumer), or closed. */
  CUT,
}

/** FENCE: a DIRECT frame only ever found inside a channel. a = the interest seq it waits for. */
export const FENCE = 9;

class Peer {
  state = PeerState.NONE;
  chan = 0;
  link: Link | null = null;
  /** Bytes allowed to wait in the channel's overflow before the peer counts as a slow consumer. */
  limit = 0;
  /** The channel's [messages, bytes] written, in its shared memory (the broker reads them). */
  counts: Float64Array | null = null;
  readonly patterns = new Map<string, Interest>();
  constructor(readonly id: number) {}
}

/** One pattern of interest (refcounted: several subscriptions may share it). */
interface Interest {
  n: number;
  readonly peer: Peer | null; // null: served through the broker
}

/** What one publish subject needs: the peers to write to, and whether the broker gets a PUB. */
export interface Decision {
  readonly peers: Peer[];
  readonly broker: boolean;
}

interface Reader {
  chan: number;
  writer: number;
  /** FENCEs up to this seq may be passed. */
  allowed: number;
  /** The fence the reader waits at, or -1. */
  fence: number;
  link: Link | null;
  closeTimer: NodeJS.Timeout | null;
}

export interface DirectHost {
  /** The connection to the broker: control frames go there. */
  readonly link: Link;
  /** Delivers a MSG frame read from a channel, as if the broker had sent it. */
  onMsg(buf: Buffer, off: number, len: number): void;
  reportError(err: HopbusError): void;
}

const CACHE_MAX = 4096;
/** How long a channel whose writer is gone is still read, for what it published before going. */
const DRAIN_MS = 200;

export class DirectRouter {
  /** Interest changes applied so far (the broker's sequence). */
  seq = 0;
  private readonly tree = new SubjectTree<Interest>({ cacheSize: 1024 });
  private readonly brokerBound = new Map<string, Interest>();
  private readonly peers = new Map<number, Peer>();
  /** Peers with a channel open, for pendingBytes (an array: read on every publish). */
  private writing: Peer[] = [];
  private readonly readers = new Map<number, Reader>();
  private readonly cache = new Map<string, Decision>();
  /** Called once every channel's overflow has gone into its ring (flush). */
  private drainWaiters: (() => void)[] = [];
  private closed = false;

  constructor(
    private readonly host: DirectHost,
    private readonly port: DirectPort,
    clientId: number,
    serverId: string,
  ) {
    port.onMemory = this.onMemory;
    port.begin(clientId, serverId);
  }

  /** Bytes waiting in the overflow of this client's channels. */
  get pendingBytes(): number {
    const w = this.writing;
    let n = 0;
    for (let i = 0; i < w.length; i++) n += w[i]!.link!.pendingBytes;
    return n;
  }

  /**
   * flush(), publisher side: calls `done` once what waits in the channels' overflow
   * has gone into their rings (at once if nothing waits).
   */
  whenWritten(done: () => void): void {
    if (this.pendingBytes === 0) done();
    else this.drainWaiters.push(done);
  }

  private readonly onWriterDrain = (): void => {
    if (this.drainWaiters.length === 0 || this.pendingBytes > 0) return;
    for (const w of this.drainWaiters.splice(0)) w();
  };

  /** flush(), subscriber side: delivers what the channels hold now, before the flush resolves. */
  readAll(): void {
    for (const r of this.readers.values()) if (r.link !== null && r.fence < 0) this.port.drain(r.link);
  }

  // --- this client's own subscriptions -------------------------------------------------

  addOwn(pattern: string): void {
    this.ref(this.brokerBound, pattern, null);
  }

  delOwn(pattern: string): void {
    this.unref(this.brokerBound, pattern);
  }

  // --- publishing ----------------------------------------------------------------------

  /** Where a message on `subject` goes. Cached per subject until the view changes. */
  route(subject: string): Decision {
    const hit = this.cache.get(subject);
    if (hit !== undefined) return hit;
    const list = this.tree.match(subject);
    const peers: Peer[] = [];
    // '$' subjects are the broker's own business (latency reports).
    let broker = subject.charCodeAt(0) === 36;
    for (let i = 0; i < list.length; i++) {
      const p = list[i]!.peer;
      if (p === null) {
        broker = true;
        continue;
      }
      if (p.state === PeerState.OPEN) {
        if (!peers.includes(p)) peers.push(p);
        continue;
      }
      if (p.state === PeerState.NONE) this.want(p);
      if (p.state !== PeerState.CUT) broker = true;
    }
    // No known interest: the broker decides (someone may have subscribed since the view was made).
    if (peers.length === 0) broker = true;
    const d: Decision = { peers, broker };
    if (this.cache.size >= CACHE_MAX) this.cache.clear();
    this.cache.set(subject, d);
    return d;
  }

  /** After writing a frame of `bytes` to `peer`: counted; a channel over its limit makes the peer a slow consumer. */
  wrote(peer: Peer, bytes: number): void {
    const c = peer.counts!;
    c[0]!++;
    c[1]! += bytes;
    const link = peer.link!;
    if (link.pendingBytes <= peer.limit) return;
    this.control(DirectKind.SLOW, peer.chan, peer.id, link.pendingBytes);
    this.cut(peer);
    link.destroy(new Error(`direct channel ${peer.chan}: client ${peer.id} is not keeping up`));
  }

  // --- control frames from the broker -----------------------------------------------------

  onControl(buf: Buffer, off: number, len: number): void {
    const kind = buf[off + 5]!;
    const a = buf.readUInt32LE(off + 8);
    const b = buf.readUInt32LE(off + 12);
    const c = buf.readUInt32LE(off + 16);
    const pattern = len > DIRECT_HEADER ? buf.toString('utf8', off + DIRECT_HEADER, off + len) : '';
    switch (kind) {
      case DirectKind.REMOTE_ADD:
        this.ref(this.brokerBound, pattern, null);
        return this.applied(a);
      case DirectKind.REMOTE_DEL:
        this.unref(this.brokerBound, pattern);
        return this.applied(a);
      case DirectKind.PEER_ADD: {
        const p = this.peer(b);
        this.ref(p.patterns, pattern, p);
        // What we write from now on was decided knowing this subscription: the reader must
        // first see what we sent it through the broker before (see the class comment).
        if (p.state === PeerState.OPEN) this.fence(p, a);
        return this.applied(a);
      }
      case DirectKind.PEER_DEL: {
        const p = this.peers.get(b);
        if (p !== undefined) this.unref(p.patterns, pattern);
        return this.applied(a);
      }
      case DirectKind.OPEN: {
        const p = this.peer(b);
        p.chan = a;
        p.limit = c;
        p.state = PeerState.PENDING;
        if (this.port.has(a)) this.openWriter(p);
        return;
      }
      case DirectKind.REFUSED: {
        const p = this.peer(b);
        p.state = PeerState.REFUSED;
        this.cache.clear();
        return;
      }
      case DirectKind.MARK:
        return this.mark(a, b, c);
      case DirectKind.CLOSE:
        return this.closeChannel(a, b);
      default:
        this.host.link.destroy(new ConnectionError(`protocol error: the server sent DIRECT kind ${kind}, which servers never send`));
    }
  }

  private applied(seq: number): void {
    this.seq = seq;
    this.control(DirectKind.IACK, seq, 0, 0);
  }

  private peer(id: number): Peer {
    let p = this.peers.get(id);
    if (p === undefined) this.peers.set(id, (p = new Peer(id)));
    return p;
  }

  private want(p: Peer): void {
    p.state = PeerState.PENDING;
    this.control(DirectKind.WANT, 0, p.id, 0);
  }

  private readonly onMemory = (chan: number): void => {
    if (this.closed) return;
    for (const p of this.peers.values()) {
      if (p.chan === chan && p.state === PeerState.PENDING) {
        this.openWriter(p);
        return;
      }
    }
    const r = this.readers.get(chan);
    if (r !== undefined && r.link === null) this.startReader(r);
  };

  private openWriter(p: Peer): void {
    const { link, counts } = this.port.writer(p.chan);
    p.link = link;
    p.counts = counts;
    p.state = PeerState.OPEN;
    this.writing = [...this.writing, p];
    link.start(this.writerHandler(p, link));
    // Every PUB after this frame skips p at the broker; every message for p goes into the channel.
    this.control(DirectKind.ACK, p.chan, this.seq, 0);
    this.cache.clear();
  }

  private writerHandler(p: Peer, link: Link): LinkHandler {
    return {
      onFrame: () => link.destroy(new Error(`direct channel ${p.chan}: the reader wrote into it`)),
      onClose: () => {
        if (p.link === link) this.cut(p);
        this.onWriterDrain();
      },
      onDrain: this.onWriterDrain,
    };
  }

  private fence(p: Peer, seq: number): void {
    const link = p.link!;
    const buf = link.reserve(DIRECT_HEADER);
    writeDirect(buf, link.writeOffset, FENCE as DirectKind, seq, 0, 0);
    link.commit(DIRECT_HEADER);
  }

  /** Stops writing to a peer (its channel overflowed or closed); the broker is cutting it off. */
  private cut(p: Peer): void {
    p.state = PeerState.CUT;
    p.link = null;
    this.writing = this.writing.filter((x) => x !== p);
    this.cache.clear();
  }

  // --- reading channels ------------------------------------------------------------------

  private mark(chan: number, writer: number, allowed: number): void {
    let r = this.readers.get(chan);
    if (r === undefined) {
      r = { chan, writer, allowed, fence: -1, link: null, closeTimer: null };
      this.readers.set(chan, r);
      if (this.port.has(chan)) this.startReader(r);
      return;
    }
    if (allowed > r.allowed) r.allowed = allowed;
    if (r.fence >= 0 && r.allowed >= r.fence) {
      r.fence = -1;
      r.link?.resume();
    }
  }

  private startReader(r: Reader): void {
    const link = this.port.reader(r.chan);
    r.link = link;
    link.start({
      onFrame: (buf, off, len) => {
        const op = buf[off + 4]!;
        if (op === Op.MSG) {
          this.host.onMsg(buf, off, len);
          return;
        }
        if (op === Op.DIRECT && buf[off + 5] === FENCE) {
          const seq = buf.readUInt32LE(off + 8);
          if (seq > r.allowed) {
            r.fence = seq;
            link.pause();
          }
          return;
        }
        link.destroy(new Error(`direct channel ${r.chan}: unexpected frame op ${op}`));
      },
      onClose: (err) => {
        if (this.readers.get(r.chan) === r) this.readers.delete(r.chan);
        if (r.closeTimer !== null) clearTimeout(r.closeTimer);
        if (err !== null && !this.closed) this.host.reportError(new ConnectionError(`direct channel from client ${r.writer} failed: ${err.message}`));
      },
    });
  }

  /** The client at the other end is gone. */
  private closeChannel(chan: number, peerId: number): void {
    const p = this.peers.get(peerId);
    if (p !== undefined && p.chan === chan) {
      const link = p.link;
      this.cut(p);
      this.peers.delete(peerId);
      for (const pattern of p.patterns.keys()) this.tree.remove(pattern, p.patterns.get(pattern)!);
      link?.destroy();
    }
    const r = this.readers.get(chan);
    if (r === undefined) {
      this.port.forget(chan);
      return;
    }
    // Everything the writer published is in the ring: read it (no later MARK will come), then close.
    r.allowed = Infinity;
    if (r.link === null) {
      this.readers.delete(chan);
      this.port.forget(chan);
      return;
    }
    r.fence = -1;
    r.link.resume();
    const link = r.link;
    r.closeTimer = setTimeout(() => link.destroy(), DRAIN_MS);
    r.closeTimer.unref();
  }

  // --- plumbing ------------------------------------------------------------------------

  private ref(map: Map<string, Interest>, pattern: string, peer: Peer | null): void {
    const it = map.get(pattern);
    if (it !== undefined) {
      it.n++;
      return;
    }
    const fresh: Interest = { n: 1, peer };
    map.set(pattern, fresh);
    this.tree.insert(pattern, fresh);
    this.cache.clear();
  }

  private unref(map: Map<string, Interest>, pattern: string): void {
    const it = map.get(pattern);
    if (it === undefined || --it.n > 0) return;
    map.delete(pattern);
    this.tree.remove(pattern, it);
    this.cache.clear();
  }

  private control(kind: DirectKind, a: number, b: number, c: number): void {
    const link = this.host.link;
    if (link.closed) return;
    const n = directSize(0);
    const buf = link.reserve(n);
    writeDirect(buf, link.writeOffset, kind, a, b, c);
    link.commit(n);
  }

  /** Closes every channel (what waits in a writer's overflow is still written out); the connection is ending. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const p of this.writing) p.link!.close();
    this.writing = [];
    for (const w of this.drainWaiters.splice(0)) w();
    for (const r of this.readers.values()) {
      if (r.closeTimer !== null) clearTimeout(r.closeTimer);
      r.link?.destroy();
    }
    this.readers.clear();
    this.port.end();
  }
}

export type { Peer as DirectPeer };
