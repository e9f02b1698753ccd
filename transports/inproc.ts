import { BufferedLink } from './buffered.js';
import { runBatched } from './batch.js';
import { registerDialer } from './dial.js';
import type { AcceptFn } from './link.js';
import { ConnectionError } from '../runtime/errors.js';
import { microtask } from '../runtime/microtask.js';

/**
 * inproc: a client on the broker's own thread, joined to it by a pair of in-memory
 * links. What one end commits is handed to the other as a view of the same memory
 * (no copy: the encoder's bytes are the bytes the reader parses), once per batch, in
 * a microtask: a subscriber callback that publishes returns before the broker sees
 * the message, so nothing recurses into the broker, and the stack stays flat however
 * long two inproc clients ping-pong.
 *
 * A write buffer is never rewritten once handed over (the receiver may keep views
 * into it): each end fills its buffer front to back and starts a new one when full,
 * leaving the old one to the garbage collector with the views that still use it.
 *
 * Back-pressure: a paused receiver (the broker pausing a publisher) holds what it was
 * handed unread (BufferedLink's held chunks); the sender's pendingBytes counts it,
 * exactly as a socket's unsent bytes would be counted, and its writeBlockedSince runs
 * until the receiver has read it all.
 *
 * Threading: one thread; an inproc endpoint cannot be used from another thread.
 */

// --- delivery scheduling ----------------------------------------------------------------
// A microtask per batch, but never more than MAX_BURST in a row without the event loop
// getting a turn: two inproc clients that answer each other forever would otherwise
// starve every timer and socket of the thread. The count is reset in a later turn
// (setImmediate), asked for only once RESET_AT hand-offs have added up, so a hop at a
// time (one hand-off per turn) does not pay an Immediate each.
const MAX_BURST = 1024;
const RESET_AT = 64;
let burst = 0;
let resetQueued = false;
const resetBurst = (): void => {
  burst = 0;
  resetQueued = false;
};
function enqueue(task: () => void): void {
  if (burst < MAX_BURST) {
    if (++burst >= RESET_AT && !resetQueued) {
      resetQueued = true;
      setImmediate(resetBurst);
    }
    microtask(task);
  } else {
    setImmediate(task);
  }
}

export class InprocLink extends BufferedLink {
  readonly transport = 'inproc' as const;
  peer!: InprocLink;
  /** A hand-off (deliverTask) is due. */
  private queued = false;
  private peerClosed = false;

  constructor(remote: string, maxFrame: number) {
    // The peer parses views of the bytes it is handed: they are never rewritten.
    super(remote, maxFrame, undefined, false);
  }

  get pendingBytes(): number {
    return this.used - this.from + this.peer.heldBytes;
  }

  protected override started(): void {
    if (this.held.length > 0 || this.peerClosed) enqueue(this.drainTask);
  }

  commit(n: number): void {
    if (this.closed) return;
    this.used += n;
    if (!this.queued) {
      this.queued = true;
      enqueue(this.deliverTask);
    }
  }

  private readonly deliverTask = (): void => {
    this.queued = false;
    this.flush();
    if (this.closing && !this.closed) this.end(null, false);
  };

  /** Hands what was committed to the peer as one chunk. */
  flush(): void {
    if (this.used > this.from && !this.closed) {
      const from = this.from;
      this.from = this.used;
      this.peer.take(this.fill, from, this.used);
      if (this.pendingBytes === 0) this.handler?.onDrain?.();
    }
  }

  /** The peer's bytes buf[from, to): read in place when nothing holds reading up, else held as a chunk (a view: never rewritten). */
  private take(buf: Buffer, from: number, to: number): void {
    if (this.closed) return;
    if (this.handler !== null && !this.paused && !this.failed && this.held.length === 0) {
      this.rangeFrom = from;
      this.rangeTo = to;
      runBatched(this.readRange, buf);
    } else {
      this.receive(buf.subarray(from, to));
    }
    this.settle();
  }

  private rangeFrom = 0;
  private rangeTo = 0;
  /** readChunk for a range of the peer's buffer (one closure per link). */
  private readonly readRange = (buf: Buffer): void => {
    if (this.closed || this.failed || this.handler === null) return;
    try {
      this.reader.push(buf, this.handler, this.rangeFrom, this.rangeTo);
    } catch (err) {
      this.readFailed(err);
    }
  };

  private readonly drainTask = (): void => {
    this.readHeld();
    this.settle();
  };

  /** After a read: the peer's write is blocked while chunks wait here; once they are read, the peer drains (or ends). */
  private settle(): void {
    const blocked = this.held.length > 0;
    if (blocked && this.peer.writeBlockedSince === 0) this.peer.writeBlockedSince = this.clock.now();
    else if (!blocked && this.peer.writeBlockedSince !== 0) {
      this.peer.writeBlockedSince = 0;
      if (this.peer.pendingBytes === 0) this.peer.handler?.onDrain?.();
    }
    if (this.peerClosed && !blocked && !this.closed) this.end(null, false);
  }

  override resume(): void {
    if (!this.paused) return;
    this.paused = false;
    enqueue(this.drainTask);
  }

  close(): void {
    if (this.closed || this.closing) return;
    this.closing = true;
    if (!this.queued) {
      this.queued = true;
      enqueue(this.deliverTask);
    }
  }

  destroy(err?: Error): void {
    if (this.closed) return;
    this.end(err ?? null, true);
  }

  /** Ends this side; the peer ends once it has read what it was handed (at once after a reset). */
  private end(err: Error | null, reset: boolean): void {
    this.closed = true;
    this.closeErr = err;
    this.dropQueued();
    const peer = this.peer;
    if (!peer.closed) {
      peer.peerClosed = true;
      if (reset) peer.end(new ConnectionError('inproc connection reset by the peer'), false);
      else enqueue(peer.drainTask);
    }
    this.finishSoon();
  }
}

/** Two joined links: [client end, broker end]. */
export function inprocPair(url: string, clientMaxFrame: number, brokerMaxFrame: number): [InprocLink, InprocLink] {
  const c = new InprocLink(url, clientMaxFrame);
  const b = new InprocLink('inproc', brokerMaxFrame);
  c.peer = b;
  b.peer = c;
  return [c, b];
}

/** What broker.endpoint('inproc') hands out. Usable on the broker's thread only. */
export interface InprocEndpoint {
  transport: 'inproc';
  url: string;
  /** Re-dialable (reconnect works) while the broker runs. */
  reusable: true;
  [key: string]: unknown;
}

interface Server {
  accept: AcceptFn;
  maxFrame: number;
}

/** Brokers of this thread that serve inproc clients, by URL. */
const servers = new Map<string, Server>();

/** Serves inproc clients for a broker; close() stops (links already open are the broker's to close). */
export function listenInproc(id: string, accept: AcceptFn, maxFrame: number): { endpoint: InprocEndpoint; close(): void } {
  const url = `inproc://${id}`;
  const server = { accept, maxFrame };
  servers.set(url, server);
  return {
    get endpoint(): InprocEndpoint {
      return { transport: 'inproc', url, reusable: true };
    },
    close: () => {
      if (servers.get(url) === server) servers.delete(url);
    },
  };
}

registerDialer('inproc', (ep, o) => {
  const server = servers.get(ep.url);
  if (server === undefined) {
    return Promise.reject(
      new ConnectionError(`no broker serves ${ep.url} on this thread: an inproc endpoint works only on its broker's thread, and only while that broker runs`),
    );
  }
  const [client, broker] = inprocPair(ep.url, o.maxFrame, server.maxFrame);
  server.accept(broker);
  return Promise.resolve(client);
});
