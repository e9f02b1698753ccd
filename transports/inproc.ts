import { runBatched } from './batch.js';
import { registerDialer } from './dial.js';

import { FrameReader } from './reader.js';
import { readFailed, type AcceptFn, type Link, type LinkHandler } from './link.js';

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
 * Back-pressure: a paused receiver (the broker pausing a publisher) keeps what it was
 * handed in its inbox; the sender's pendingBytes counts it, exactly as a socket's
 * unsent bytes would be counted.
 *
 * Threading: one thread; an inproc endpoint cannot be used from another thread.
 */

const CHUNK = 64 * 1024;
const EMPTY = Buffer.alloc(0);

// --- delivery scheduling ----------------------------------------------------------------
// A microtask per batch, but never more than MAX_BURST in a row without the event loop
// getting a turn: two inproc clients that answer each other forever would otherwise
// starve every timer and socket of the thread.
const MAX_BURST = 1024;
let burst = 0;
let resetQueued = false;
const resetBurst = (): void => {
  burst = 0;
  resetQueued = false;
};
function enqueue(task: () => void): void {
  if (burst < MAX_BURST) {
    burst++;
    if (!resetQueued) {
      resetQueued = true;
      setImmediate(resetBurst);
    }
    queueMicrotask(task);
  } else {
    setImmediate(task);
  }
}

export class InprocLink implements Link {
  readonly transport = 'inproc' as const;
  readonly remote: string;
  closed = false;
  writeBlockedSince = 0;
  peer!: InprocLink;

  private fill: Buffer = EMPTY;
  /** Committed and not handed over yet: fill[from, used). */
  private from = 0;
  private used = 0;
  private wOff = 0;
  private queued = false;
  private closing = false;
  private readonly inbox: Buffer[] = [];
  private inboxBytes = 0;
  private readonly reader: FrameReader;
  private handler: LinkHandler | null = null;
  private paused = false;
  private failed = false;
  private peerClosed = false;
  private ended = false;
  private closeErr: Error | null = null;

  constructor(remote: string, maxFrame: number) {
    this.remote = remote;
    this.reader = new FrameReader(maxFrame);
  }

  get pendingBytes(): number {
    return this.used - this.from + this.peer.inboxBytes;
  }

  get writeOffset(): number {
    return this.wOff;
  }

  setMaxFrame(n: number): void {
    this.reader.maxFrame = n;
  }

  start(handler: LinkHandler): void {
    this.handler = handler;
    if (this.ended) {
      this.handler = null;
      handler.onClose(this.closeErr);
      return;
    }
    if (this.inbox.length > 0 || this.peerClosed) enqueue(this.drainTask);
  }

  reserve(n: number): Buffer {
    if (this.used + n > this.fill.length) {
      const keep = this.used - this.from;
      // At least doubled: a batch larger than CHUNK (a fan-out of a whole inbound chunk)
      // would otherwise be copied over again for every frame added to it.
      const next = Buffer.allocUnsafe(Math.max(CHUNK, 2 * (keep + n)));
      this.fill.copy(next, 0, this.from, this.used);
      this.fill = next;
      this.from = 0;
      this.used = keep;
    }
    this.wOff = this.used;
    return this.fill;
  }

  commit(n: number): void {
    if (this.closed) return;
    this.used += n;
    if (!this.queued) {
      this.queued = true;
      enqueue(this.deliverTask);
    }
  }

  send(bytes: Uint8Array, off: number, len: number): void {
    const buf = this.reserve(len);
    buf.set(off === 0 && len === bytes.length ? bytes : bytes.subarray(off, off + len), this.wOff);
    this.commit(len);
  }

  /** Hands what was committed to the peer as one chunk. */
  private readonly deliverTask = (): void => {
    this.queued = false;
    if (this.used > this.from && !this.closed) {
      const chunk = this.fill.subarray(this.from, this.used);
      this.from = this.used;
      this.peer.receive(chunk);
      if (this.pendingBytes === 0) this.handler?.onDrain?.();
    }
    if (this.closing && !this.closed) this.finish(null, false);
  };

  private receive(chunk: Buffer): void {
    if (this.closed) return;
    this.inbox.push(chunk);
    this.inboxBytes += chunk.length;
    this.drain();
  }

  private readonly drainTask = (): void => this.drain();

  private drain(): void {
    while (this.inbox.length > 0 && this.handler !== null && !this.paused && !this.failed && !this.closed) {
      const chunk = this.inbox.shift()!;
      this.inboxBytes -= chunk.length;
      runBatched(this.read, chunk);
    }
    const blocked = this.inbox.length > 0;
    if (blocked && this.peer.writeBlockedSince === 0) this.peer.writeBlockedSince = performance.now();
    else if (!blocked && this.peer.writeBlockedSince !== 0) {
      this.peer.writeBlockedSince = 0;
      if (this.peer.pendingBytes === 0) this.peer.handler?.onDrain?.();
    }
    if (this.peerClosed && !blocked && !this.closed) this.finish(null, false);
  }

  private readonly read = (chunk: Buffer): void => {
    try {
      this.reader.push(chunk, this.handler!);
    } catch (err) {
      this.failed = true;
      readFailed(this.handler, err, (e) => this.destroy(e));
    }
  };

  pause(): void {
    this.paused = true;
  }

  resume(): void {
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
    this.finish(err ?? null, true);
  }

  /** Ends this side; the peer ends once it has read what it was handed (at once after a reset). */
  private finish(err: Error | null, reset: boolean): void {
    this.closed = true;
    this.closeErr = err;
    this.fill = EMPTY;
    this.from = this.used = 0;
    this.inbox.length = 0;
    this.inboxBytes = 0;
    this.writeBlockedSince = 0;
    const peer = this.peer;
    if (!peer.closed) {
      peer.peerClosed = true;
      if (reset) peer.finish(new Error('inproc connection reset by the peer'), false);
      else enqueue(peer.drainTask);
    }
    queueMicrotask(() => {
      this.ended = true;
      const h = this.handler;
      this.handler = null;
      h?.onClose(err);
    });
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
    return Promise.reject(new Error(`no broker serves ${ep.url} on this thread: an inproc endpoint works only on its broker's thread, and only while that broker runs`));
  }
  const [client, broker] = inprocPair(ep.url, o.maxFrame, server.maxFrame);
  server.accept(broker);
  return Promise.resolve(client);
});
