/**
 * Staying connected: the server list and its order, the reconnect loop (rounds over
 * the list, the delay doubling per failed round up to a cap, plus jitter so many
 * clients do not come back in lockstep), and the Backlog that keeps what is published
 * while disconnected. Timers run on a Clock (runtime/clock.ts).
 *
 * Threading: the client's thread.
 */
import type { Clock, Timer } from '../runtime/clock.js';
import { canDial, canRedial, toEndpoint, type ServerAddress } from '../transports/dial.js';
import type { Endpoint } from '../transports/url.js';
import { Op } from '../transports/protocol/index.js';
import { ConnectionError, OptionsError, PendingLimitError } from './errors.js';
import type { WriteTarget } from './writer.js';

/** The servers of one connection, in the order they are tried. */
export class ServerList {
  readonly all: Endpoint[];
  /** Index of the server connected to last. */
  current = 0;

  constructor(servers: ServerAddress | ServerAddress[]) {
    const list = Array.isArray(servers) ? servers : [servers];
    if (list.length === 0) throw new OptionsError('connect needs at least one server address');
    this.all = list.map((s) => toEndpoint(s));
    for (const ep of this.all) {
      if (!canDial(ep)) throw new OptionsError(`transport "${ep.transport}" of "${ep.url}" is not available`);
    }
  }

  /**
   * Adds servers a broker told of (INFO connectUrls) that are not in the list yet and
   * can be dialled here; returns how many were added. Tried after the ones given.
   */
  learn(urls: readonly string[]): number {
    let added = 0;
    for (const url of urls) {
      if (typeof url !== 'string' || this.all.some((ep) => ep.url === url)) continue;
      let ep: Endpoint;
      try {
        ep = toEndpoint(url);
      } catch {
        continue;
      }
      if (!canDial(ep) || this.all.some((e) => e.url === ep.url)) continue;
      this.all.push(ep);
      added++;
    }
    return added;
  }

  /** Whether any server can be dialled again (an inproc or shm endpoint of a gone broker cannot). */
  get redialable(): boolean {
    return this.all.some(canRedial);
  }
}

/**
 * Publishes made while disconnected, sent in order on reconnect, after the PUBs the lost
 * link had not written yet (carry()). Bounded: beyond `limit` bytes publish throws
 * PendingLimitError, and carry() keeps only the oldest PUBs that fit.
 */
export class Backlog implements WriteTarget {
  buf = Buffer.allocUnsafe(0);
  used = 0;
  constructor(private readonly limit: number) {}
  get writeOffset(): number {
    return this.used;
  }
  reserve(n: number): Buffer {
    if (this.used + n > this.limit) {
      throw new PendingLimitError(`not connected, and the reconnect buffer is full (${this.used} of ${this.limit} bytes): the message was not queued`);
    }
    if (this.used + n > this.buf.length) {
      const next = Buffer.allocUnsafe(Math.min(this.limit, Math.max(4096, (this.used + n) * 2)));
      this.buf.copy(next, 0, 0, this.used);
      this.buf = next;
    }
    return this.buf;
  }
  commit(n: number): void {
    this.used += n;
  }

  /**
   * The frames a lost link never wrote, buf[off, off+len): its PUBs are queued here, the
   * oldest first while they fit; the rest (SUB, UNSUB, PING, PONG) are dropped, since a
   * new connection re-subscribes and re-sends its flushes itself. Returns how many PUBs
   * there were and how many were kept (the kept ones are the oldest).
   */
  carry(buf: Buffer, off: number, len: number): { pubs: number; kept: number } {
    let pubs = 0;
    let kept = 0;
    const end = off + len;
    for (let at = off; at + 5 <= end;) {
      const n = buf.readUInt32LE(at);
      if (n < 6 || at + n > end) break; // whole frames only: never the case for committed bytes
      if (buf[at + 4] === Op.PUB) {
        pubs++;
        if (kept === pubs - 1 && this.used + n <= this.limit) {
          buf.copy(this.reserve(n), this.used, at, at + n);
          this.commit(n);
          kept++;
        }
      }
      at += n;
    }
    return { pubs, kept };
  }

  /** How many PUBs are queued (off the hot path: walks the frames). */
  count(): number {
    let pubs = 0;
    for (let at = 0; at + 5 <= this.used;) {
      const n = this.buf.readUInt32LE(at);
      if (n < 6) break;
      if (this.buf[at + 4] === Op.PUB) pubs++;
      at += n;
    }
    return pubs;
  }

  /** Forgets what is queued. */
  clear(): void {
    this.buf = Buffer.allocUnsafe(0);
    this.used = 0;
  }

  take(): Buffer {
    const out = this.buf.subarray(0, this.used);
    this.buf = Buffer.allocUnsafe(0);
    this.used = 0;
    return out;
  }
}

export interface ReconnectPolicy {
  reconnectDelayMs: number;
  maxReconnectDelayMs: number;
  reconnectJitterMs: number;
  /** -1: forever. */
  maxReconnectAttempts: number;
}

/** What the reconnect loop needs from its connection. */
export interface ReconnectHost {
  /** Still reconnecting (false once closed or connected). */
  readonly reconnecting: boolean;
  /** Dials one server and runs the handshake; rejects when that fails. */
  attach(ep: Endpoint): Promise<void>;
  /** Connected again, to server `idx`. */
  reconnected(ep: Endpoint): void;
  /** Gave up after the attempts allowed. */
  gaveUp(err: ConnectionError): void;
}

export class Reconnector {
  private sleeper: { timer: Timer; resolve(): void } | null = null;

  constructor(
    private readonly host: ReconnectHost,
    private readonly servers: ServerList,
    private readonly policy: ReconnectPolicy,
    private readonly clock: Clock,
    private readonly random: () => number = Math.random,
  ) {}

  /** Tries the servers after the current one, round after round, until one answers or the attempts run out. */
  async run(): Promise<void> {
    const host = this.host;
    const list = this.servers.all;
    let attempts = 0;
    let delay = this.policy.reconnectDelayMs;
    let lastErr: unknown;
    const max = this.policy.maxReconnectAttempts;
    while (host.reconnecting) {
      for (let i = 1; i <= list.length && host.reconnecting; i++) {
        const idx = (this.servers.current + i) % list.length;
        attempts++;
        try {
          await host.attach(list[idx]!);
          this.servers.current = idx;
          host.reconnected(list[idx]!);
          return;
        } catch (err) {
          lastErr = err;
        }
        if (max >= 0 && attempts >= max) {
          if (host.reconnecting) host.gaveUp(new ConnectionError(`gave up reconnecting after ${attempts} attempts`, { cause: lastErr }));
          return;
        }
      }
      await this.sleep(delay + this.random() * this.policy.reconnectJitterMs);
      delay = Math.min(delay * 2, this.policy.maxReconnectDelayMs);
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      this.sleeper = {
        timer: this.clock.timeout(() => {
          this.sleeper = null;
          resolve();
        }, ms),
        resolve,
      };
    });
  }

  /** Ends a wait between rounds at once (the connection closes). */
  cancel(): void {
    if (this.sleeper === null) return;
    this.clock.clear(this.sleeper.timer);
    this.sleeper.resolve();
  }
}
