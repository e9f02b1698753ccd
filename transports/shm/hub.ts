import type { AcceptFn } from '../link.js';
import {
  CLOSED_ABORT,
  DEFAULT_RING,
  H_BROKER_CLOSED,
  H_CLIENT_PARKED,
  H_CLIENT_SEQ,
  H_CLIENT_THREAD,
  H_CLIENT_WAIT,
  H_STATE,
  HUB_BYTES,
  HUB_CLAIMS,
  HUB_PARKED,
  HUB_SEQ,
  LINE,
  OPEN,
  STATE_CLAIMED,
  WAIT_KIND_HYBRID,
  WAIT_KIND_SPIN,
  createConnection,
  ringCapacity,
} from './layout.js';
import { ShmLink } from './link.js';
import { Poller, type Pollable } from './poller.js';
import { HybridWait, ParkWait, Signal, SpinWait, type WaitStrategy } from './wait.js';
import { ConnectionError, OptionsError } from '../../runtime/errors.js';

/** What broker.endpoint('shm') hands out: structured-cloneable (SharedArrayBuffers and numbers). */
export interface ShmEndpoint {
  transport: 'shm';
  url: string;
  /** The connection: header and both rings (layout.ts). */
  conn: SharedArrayBuffer;
  /** The broker's hub block: its doorbell, shared by all its connections. */
  hub: SharedArrayBuffer;
  heartbeatMs: number;
  heartbeatTimeoutMs: number;
  /** An endpoint serves one connection: a client cannot re-dial it. */
  reusable: false;
  [key: string]: unknown;
}

export interface ShmEndpointOptions {
  /** Bytes of each of the two rings, rounded up to a power of two (default 1 MiB). */
  ringBytes?: number;
  /** Interval of heartbeats in both directions, ms (default 100). */
  heartbeatMs?: number;
  /** A side that shows no heartbeat for this long is treated as gone, ms (default 3000). */
  heartbeatTimeoutMs?: number;
  /**
   * The Worker that will use this endpoint, if this thread created it: its 'exit' ends
   * the connection at once instead of after the heartbeat timeout.
   */
  worker?: { once(event: 'exit', listener: (code: number) => void): unknown };
}

export const SHM_DEFAULTS = { ringBytes: DEFAULT_RING, heartbeatMs: 100, heartbeatTimeoutMs: 3000 };

/** An endpoint handed out and not claimed by a client yet. */
interface Offer {
  conn: SharedArrayBuffer;
  header: Int32Array;
  url: string;
  heartbeatMs: number;
  heartbeatTimeoutMs: number;
  link: ShmLink | null;
  /** Set when the Worker bound to it has exited. */
  gone: boolean;
}

const spin = new SpinWait({ blocking: false });
const hybrid = new HybridWait({ blocking: false });
const park = new ParkWait({ blocking: false });

/**
 * The broker side of the shm transport: hands out endpoints, adopts the connections
 * clients open on them (broker.accept, as for a TCP socket), and runs the broker
 * thread's one poll loop over all of them.
 *
 * Waiting on N rings: every client rings the same hub doorbell (one word in the hub
 * block) when it publishes into a parked broker, so the broker parks on one word with
 * Atomics.waitAsync and never blocks its event loop (TCP is served meanwhile). The
 * loop polls as eagerly as the most eager connected client asked (spin > hybrid >
 * park). Liveness: each side bumps a heartbeat word; a client that stops (terminated
 * worker) is closed after heartbeatTimeoutMs, one that exits through process.exit or
 * an uncaught exception at once (its exit hook marks the connection), one whose Worker
 * was bound with `worker` on its 'exit' event.
 *
 * Threading: the broker's thread.
 */
export class ShmHub implements Pollable {
  readonly hub = new SharedArrayBuffer(HUB_BYTES);
  private readonly words = new Int32Array(this.hub);
  private readonly poller: Poller;
  private readonly offers = new Set<Offer>();
  private readonly links = new Set<ShmLink>();
  private claimsSeen = 0;
  private n = 0;
  private closed = false;
  readonly tickMs = 1000;
  readonly keepsAlive = false;

  constructor(
    private readonly id: string,
    private readonly accept: AcceptFn,
    private readonly maxFrame: number,
  ) {
    this.poller = new Poller(new Signal(this.words, HUB_SEQ, HUB_PARKED), park, false);
  }

  /** Connections open now. */
  get size(): number {
    return this.links.size;
  }

  /** A fresh pair of rings for one client. */
  endpoint(options: ShmEndpointOptions = {}): ShmEndpoint {
    if (this.closed) throw new ConnectionError('the broker is closed: no new endpoints');
    const o = { ...SHM_DEFAULTS, ...stripUndefined(options) };
    for (const k of ['heartbeatMs', 'heartbeatTimeoutMs'] as const) {
      if (!(Number.isFinite(o[k]) && o[k] > 0)) throw new OptionsError(`shm endpoint option "${k}" must be a positive number, got ${o[k]}`);
    }
    if (o.heartbeatTimeoutMs < 2 * o.heartbeatMs) throw new OptionsError('shm endpoint option "heartbeatTimeoutMs" must be at least twice "heartbeatMs"');
    const cap = ringCapacity(o.ringBytes);
    const conn = createConnection(cap);
    const url = `shm://${this.id}/${++this.n}`;
    const offer: Offer = {
      conn,
      header: new Int32Array(conn, 0, LINE),
      url,
      heartbeatMs: o.heartbeatMs,
      heartbeatTimeoutMs: o.heartbeatTimeoutMs,
      link: null,
      gone: false,
    };
    this.offers.add(offer);
    if (this.offers.size === 1) this.poller.add(this);
    options.worker?.once('exit', () => {
      offer.gone = true;
      if (offer.link !== null) offer.link.destroy(new ConnectionError('shm connection lost: the worker exited'));
      else this.withdraw(offer);
    });
    return { transport: 'shm', url, conn, hub: this.hub, heartbeatMs: o.heartbeatMs, heartbeatTimeoutMs: o.heartbeatTimeoutMs, reusable: false };
  }

  private drop(offer: Offer): void {
    if (this.offers.delete(offer) && this.offers.size === 0) this.poller.remove(this);
  }

  /** Withdraws an endpoint nobody will adopt: a client that claimed it, or claims it later, learns at once. */
  private withdraw(offer: Offer): void {
    this.drop(offer);
    Atomics.compareExchange(offer.header, H_BROKER_CLOSED, OPEN, CLOSED_ABORT);
    new Signal(offer.header, H_CLIENT_SEQ, H_CLIENT_PARKED).ring();
  }

  // --- Pollable: claims -------------------------------------------------------------

  poll(): number {
    const claims = Atomics.load(this.words, HUB_CLAIMS);
    if (claims === this.claimsSeen) return 0;
    this.claimsSeen = claims;
    for (const offer of [...this.offers]) {
      if (Atomics.load(offer.header, H_STATE) === STATE_CLAIMED) this.adopt(offer);
    }
    return 1;
  }

  ready(): boolean {
    return Atomics.load(this.words, HUB_CLAIMS) !== this.claimsSeen;
  }

  tick(): void {}

  private adopt(offer: Offer): void {
    this.drop(offer);
    if (offer.gone) return;
    const thread = Atomics.load(offer.header, H_CLIENT_THREAD);
    const link = new ShmLink({
      conn: offer.conn,
      hub: this.hub,
      side: 'broker',
      remote: `${offer.url} (thread ${thread})`,
      maxFrame: this.maxFrame,
      heartbeatMs: offer.heartbeatMs,
      heartbeatTimeoutMs: offer.heartbeatTimeoutMs,
    });
    offer.link = link;
    link.onEnd = this.forget;
    this.links.add(link);
    link.attach(this.poller);
    this.restrategise();
    this.accept(link);
  }

  private readonly forget = (link: ShmLink): void => {
    if (this.links.delete(link)) this.restrategise();
  };

  /** The broker polls as eagerly as its most eager client asks. */
  private restrategise(): void {
    let kind = 0;
    for (const l of this.links) kind = Math.max(kind, Atomics.load(l.header, H_CLIENT_WAIT));
    const s: WaitStrategy = kind === WAIT_KIND_SPIN ? spin : kind === WAIT_KIND_HYBRID ? hybrid : park;
    this.poller.setStrategy(s);
  }

  /** Stops handing out endpoints and withdraws unclaimed ones; open links are closed by their sessions. */
  close(): void {
    this.closed = true;
    for (const offer of [...this.offers]) this.withdraw(offer);
  }
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  const out: Partial<T> = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined && k !== 'worker') (out as Record<string, unknown>)[k] = v;
  return out;
}
