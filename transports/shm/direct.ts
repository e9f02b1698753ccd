import { BroadcastChannel } from 'node:worker_threads';
import type { DirectPort, Link } from '../link.js';
import { CHANNEL_COUNTS_AT, H_CLIENT_PARKED, H_CLIENT_SEQ, LINE, MIN_RING, createConnection } from './layout.js';
import { ShmLink } from './link.js';
import { Signal } from './wait.js';
import { ProtocolError } from '../protocol/index.js';

/**
 * Direct channels: one-way rings between two clients of one broker, so a worker's
 * messages to another worker skip the broker thread (docs/SHM.md, "Direct delivery").
 *
 * A channel is an ordinary connection buffer (layout.ts) of which only ring UP is
 * used: the writer is its 'client' side, the reader its 'broker' side. It rings the
 * clients' own doorbells (each client's connection header), so each thread still
 * parks on one word. The broker makes the memory and announces it on a
 * BroadcastChannel named after itself (a SharedArrayBuffer cannot travel through a
 * ring); the two clients pick it up, and the broker's control frames (ring DOWN of
 * their connections) say when to use it.
 */

/** What the broker announces for one channel. Structured-cloneable. */
export interface ChannelMemory {
  chan: number;
  sab: SharedArrayBuffer;
  writer: number;
  reader: number;
  /** The writer's and the reader's connection buffers: their doorbells. */
  writerConn: SharedArrayBuffer;
  readerConn: SharedArrayBuffer;
}

/**
 * Channel rings are this large unless the broker says otherwise. Measured: a 1 MiB
 * ring overflowed into the writer's queue under a full-speed publisher (every byte
 * then copied twice) and capped 16-byte messages at ~3.6 M/s; 4 MiB took it to ~4.5 M/s.
 * Only ring UP is used, so a channel costs 4 MiB + 4 KiB, touched as it fills.
 */
export const CHANNEL_RING = 1 << 22;

export function channelName(serverId: string): string {
  return `hopbus-direct:${serverId}`;
}

/** A channel's [messages, bytes] written (layout.ts, CHANNEL_COUNTS_AT). */
export function channelCounts(sab: SharedArrayBuffer): Float64Array {
  return new Float64Array(sab, CHANNEL_COUNTS_AT, 2);
}

function doorbell(conn: SharedArrayBuffer): Signal {
  return new Signal(new Int32Array(conn, 0, LINE), H_CLIENT_SEQ, H_CLIENT_PARKED);
}

/** The broker's side: makes channel memory and announces it. Threading: the broker's thread. */
export class ChannelMaker {
  private readonly bc: BroadcastChannel;
  private next = 0;

  constructor(
    serverId: string,
    private readonly capacity = CHANNEL_RING,
  ) {
    this.bc = new BroadcastChannel(channelName(serverId));
    (this.bc as unknown as { unref(): void }).unref();
  }

  /** A fresh channel from client `writer` to client `reader`: its number, and its counters (channelCounts). */
  open(writer: { id: number; conn: SharedArrayBuffer }, reader: { id: number; conn: SharedArrayBuffer }): { chan: number; counts: Float64Array } {
    const chan = ++this.next;
    const m: ChannelMemory = {
      chan,
      sab: createConnection(this.capacity, MIN_RING),
      writer: writer.id,
      reader: reader.id,
      writerConn: writer.conn,
      readerConn: reader.conn,
    };
    this.bc.postMessage(m);
    return { chan, counts: channelCounts(m.sab) };
  }

  close(): void {
    this.bc.close();
  }
}

/** A client's side (one per shm connection): picks up channel memory, makes the channel links. */
export class ShmDirectPort implements DirectPort {
  onMemory: ((chan: number) => void) | null = null;
  private bc: BroadcastChannel | null = null;
  private me = -1;
  private readonly memory = new Map<number, ChannelMemory>();

  constructor(
    private readonly link: ShmLink,
    private readonly hub: SharedArrayBuffer,
    private readonly maxFrame: number,
  ) {}

  begin(clientId: number, serverId: string): void {
    if (this.bc !== null) return;
    this.me = clientId;
    const bc = (this.bc = new BroadcastChannel(channelName(serverId)));
    (bc as unknown as { unref(): void }).unref();
    bc.onmessage = (ev: unknown) => {
      const m = (ev as { data: ChannelMemory }).data;
      if (m === null || typeof m !== 'object' || !(m.sab instanceof SharedArrayBuffer)) return;
      if (m.writer !== this.me && m.reader !== this.me) return;
      this.memory.set(m.chan, m);
      this.onMemory?.(m.chan);
    };
  }

  has(chan: number): boolean {
    return this.memory.has(chan);
  }

  writer(chan: number): { link: Link; counts: Float64Array } {
    const m = this.take(chan);
    return { link: this.make(m, 'client', `direct channel ${chan} to client ${m.reader}`, doorbell(m.readerConn)), counts: channelCounts(m.sab) };
  }

  reader(chan: number): Link {
    const m = this.take(chan);
    return this.make(m, 'broker', `direct channel ${chan} from client ${m.writer}`, doorbell(m.writerConn));
  }

  forget(chan: number): void {
    this.memory.delete(chan);
  }

  drain(reader: Link): void {
    const l = reader as ShmLink;
    for (let i = 0; i < 64 && l.poll() > 0; i++);
  }

  end(): void {
    this.bc?.close();
    this.bc = null;
    this.memory.clear();
    this.onMemory = null;
  }

  private take(chan: number): ChannelMemory {
    const m = this.memory.get(chan);
    if (m === undefined) throw new ProtocolError('PROTOCOL', `direct channel ${chan}: its memory has not arrived`);
    this.memory.delete(chan);
    return m;
  }

  private make(m: ChannelMemory, side: 'client' | 'broker', remote: string, peer: Signal): ShmLink {
    const l = new ShmLink({
      conn: m.sab,
      hub: this.hub,
      side,
      remote,
      maxFrame: this.maxFrame,
      // Liveness is the broker's business (it closes the channel when either client goes).
      heartbeatMs: 1000,
      heartbeatTimeoutMs: Infinity,
      signals: { own: this.link.ownSignal, peer },
      keepsAlive: false,
    });
    const loop = this.link.loop;
    if (loop !== null) l.attach(loop);
    return l;
  }
}
