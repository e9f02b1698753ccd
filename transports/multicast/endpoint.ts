/**
 * One process's presence on a set of multicast channels: a source (one session id,
 * a ChannelSender per channel it publishes on) and a receiver (a socket per joined
 * channel, a RecvStream per source heard on it). The client's MulticastBus and the
 * broker's bridge both sit on one of these; it knows frames and channels, never
 * subjects (topics/channels.ts maps subjects to channel indexes).
 *
 * Sockets:
 *  - one unicast socket bound to iface:ephemeral. Every datagram this source sends
 *    (DATA, repairs, heartbeats) leaves from it, so its address is what receivers
 *    see as the source and NAK to; NAKs arrive on it, and this endpoint's own NAKs
 *    to other sources leave from it.
 *  - one socket per joined channel, bound to group:port (SO_REUSEADDR, so several
 *    processes of a host can join the same channel; bound to the group address so
 *    the kernel hands it only that group's datagrams), member of the group on iface.
 *
 * When datagrams leave (smart batching without timers, as transports/batch.ts):
 *  - inside a runBatched window (the broker handling one inbound chunk) they leave
 *    when the window closes;
 *  - otherwise the first frame committed in a synchronous run of code leaves at
 *    once, alone: an idle publisher pays no batching delay. Frames committed after
 *    it in the same run are packed into datagrams up to the budget; a full datagram
 *    leaves at once and the last partial one leaves at the end of the run (a
 *    microtask), before any I/O or timer.
 *
 * Flow control (flow.ts): STATUS messages from receivers arrive on the unicast socket
 * and go to the sender of their channel; this endpoint's receivers send theirs from it,
 * on progress and every statusIntervalMs (one timer per endpoint, not per stream), and
 * take SLOW there. Repairs are bounded per channel and per NAKing receiver address.
 *
 * Socket buffers: SO_RCVBUF of each channel socket is recvBufferBytes (the kernel caps
 * it at net.core.rmem_max and reports twice what it granted); a third of what it reports
 * is the window this receiver advertises, shared by the flow-controlled sources it hears
 * on that channel, so that a full window of datagrams fits in the socket's buffer with
 * the kernel's per-datagram overhead (about 1.8x for 1,400-byte datagrams). SO_SNDBUF of
 * the unicast socket is sendBufferBytes, so that a window released at once by one STATUS
 * is taken by the kernel without EAGAIN.
 *
 * Time: every timer here and below (heartbeats, source timeouts, NAK back-off, the
 * status reports, flow control's slow and silent receivers, the close linger) runs on
 * the Clock the endpoint is given, realClock unless a test passes
 * a FakeClock; datagrams still cross real sockets.
 *
 * Threading: the thread that created it.
 */
import dgram from 'node:dgram';
import fs from 'node:fs';
import os from 'node:os';
import { randomBytes } from 'node:crypto';
import { realClock, type Clock, type Timer } from '../../runtime/clock.js';
import { HopbusError } from '../../runtime/errors.js';
import { batching, deferFlush, runBatched, type Flushable } from '../batch.js';
import { ChannelSender, RepairBudget, emptySenderStats, type ChannelAddr, type SenderHost, type SenderStats } from './source.js';
import { RecvStream, type ReceiveCounters, type ReceiverOptions, type StreamHost } from './receiver.js';
import { FLOW_MODES, type FlowMode, type FlowReceiver } from './flow.js';
import {
  DType,
  F_BYE,
  F_LEAVE,
  FRAG_HEADER,
  HEADER,
  NAK_SIZE,
  SLOW_SIZE,
  STATUS_SIZE,
  STATUS_VERSION,
  datagramType,
  isIpv4,
  isIpv4Multicast,
  readIpv4,
  seqDiff,
  writeHeader,
  writeIpv4,
} from './wire.js';

export type { FlowMode } from './flow.js';

/** Flow control of every channel ('min'), or per channel: { default, 'group:port' or index: mode }. */
export type FlowControlSpec = FlowMode | { [channel: string]: FlowMode };

export type { ChannelAddr } from './source.js';

export interface EndpointOptions extends ReceiverOptions {
  /** Address of the local interface to send and join on (IPv4). */
  iface: string;
  /** Multicast TTL: 1 keeps datagrams on the local network. */
  ttl: number;
  /**
   * UDP payload bytes per datagram, our 20-byte header included; 'auto' (the default)
   * derives it from the MTU of `iface` (autoDatagramBytes).
   */
  datagramBytes: number | 'auto';
  /** Bytes of sent datagrams kept per channel for retransmission. */
  retransmitBufferBytes: number;
  heartbeatMinMs: number;
  heartbeatMaxMs: number;
  /** A source heard from for this long (and 3 of its announced heartbeat intervals) is gone. */
  sourceTimeoutMs: number;
  repairHoldoffMs: number;
  /** Repair bandwidth per channel at most, bytes/s (0 = no limit). */
  repairBytesPerSec: number;
  /** Deliver this endpoint's own datagrams to its own receivers (the bridge says no). */
  receiveOwn: boolean;
  /** SO_RCVBUF asked for each channel socket (the kernel caps it at net.core.rmem_max). */
  recvBufferBytes: number;
  /** SO_SNDBUF asked for the unicast socket every datagram leaves from (capped at net.core.wmem_max). */
  sendBufferBytes: number;
  /** Flow control of the channels this endpoint sends on: 'min', 'max' or 'none'. */
  flowControl: FlowControlSpec;
  /** A receiver that does not consume its full window within this long is dropped from it (slow). */
  slowReceiverMs: number;
  /** A receiver silent (no STATUS) for this long is forgotten by the sources. */
  receiverTimeoutMs: number;
  /** Receivers send a STATUS at least this often while they make progress (and every 10 intervals regardless). */
  statusIntervalMs: number;
  /**
   * Bytes of datagrams a flow-controlled channel may hold while its window is closed (at
   * least the largest message, maxMessageBytes); a publish beyond it is refused.
   */
  maxHeldBytes: number;
  /** Repair bandwidth per NAKing receiver and channel at most, bytes/s (0 = no limit). */
  receiverRepairBytesPerSec: number;
  /** Test hook: return true to drop a datagram at the source (still kept for repair). */
  testDrop: ((seq: number, channel: number, retransmit: boolean) => boolean) | null;
}

export const ENDPOINT_DEFAULTS: EndpointOptions = {
  iface: '127.0.0.1',
  ttl: 1,
  // 'auto': 1,400 under a 1,500-byte Ethernet MTU, 16 KiB on loopback (autoDatagramBytes).
  datagramBytes: 'auto',
  // 4 MiB: about 3,000 full datagrams, a few ms of a saturated gigabit link and
  // several seconds of a typical feed; enough to repair a 1 MiB fragmented message.
  retransmitBufferBytes: 4 * 1024 * 1024,
  heartbeatMinMs: 5,
  heartbeatMaxMs: 1000,
  sourceTimeoutMs: 5000,
  // 2 ms: a NAK does not go out before other receivers' repairs had a chance to arrive.
  nakBackoffMs: 2,
  nakRetryMs: 10,
  nakMaxRetries: 6,
  repairHoldoffMs: 5,
  // 32 MiB/s: a quarter of a gigabit link; more than a healthy receiver ever needs,
  // little enough that one broken receiver cannot drown the channel in repairs.
  repairBytesPerSec: 32 * 1024 * 1024,
  maxReorder: 8192,
  maxMessageBytes: 1024 * 1024 + 64 * 1024 + 2 * 65_535 + 36,
  receiveOwn: true,
  recvBufferBytes: 8 * 1024 * 1024,
  // 4 MiB: a whole window of the default ring handed over at once when a STATUS opens it.
  sendBufferBytes: 4 * 1024 * 1024,
  // min: the slowest live receiver paces the source, so nothing a live receiver misses
  // leaves the ring before it is repaired; a stalled receiver is dropped after slowReceiverMs.
  flowControl: 'min',
  // 1 s: far beyond a healthy receiver's pauses (a GC, a busy callback: milliseconds), and
  // the longest a frozen receiver can hold a feed up.
  slowReceiverMs: 1000,
  receiverTimeoutMs: 5000,
  statusIntervalMs: 100,
  // 4 MiB: what may wait while the window is closed; as much as the repair ring, so a
  // burst twice the window's size is taken without a refusal.
  maxHeldBytes: 4 * 1024 * 1024,
  // 8 MiB/s: a quarter of the channel's repair budget for any one receiver address.
  receiverRepairBytesPerSec: 8 * 1024 * 1024,
  testDrop: null,
};

/** The endpoint's options with the datagram size resolved. */
export type ResolvedEndpointOptions = Omit<EndpointOptions, 'datagramBytes'> & { datagramBytes: number };

/** Datagrams where the interface's MTU is unknown: under a 1,500-byte Ethernet MTU. */
export const FALLBACK_DATAGRAM_BYTES = 1400;
/**
 * The largest datagram 'auto' picks, on interfaces with a larger MTU (loopback: 65,536).
 * Measured on loopback, 256-byte messages 1 -> 1: 1,400-byte datagrams carry about 0.3x of
 * TCP's rate, 8 KiB about 1.1x, 16 KiB about 1.6x, and larger sizes gain no more; each
 * slot of the retransmission ring is a datagram, and a lost one costs its whole size again.
 */
export const AUTO_DATAGRAM_MAX = 16 * 1024;

/** The MTU of the interface that has IPv4 `address`, from /sys/class/net (Linux); null when unknown. */
export function interfaceMtu(address: string): number | null {
  for (const [name, addrs] of Object.entries(os.networkInterfaces())) {
    if (addrs === undefined || !addrs.some((a) => a.family === 'IPv4' && a.address === address)) continue;
    try {
      const mtu = Number(fs.readFileSync(`/sys/class/net/${name}/mtu`, 'utf8').trim());
      return Number.isInteger(mtu) && mtu > 0 ? mtu : null;
    } catch {
      return null; // not Linux, or an alias name such as eth0:1
    }
  }
  return null;
}

/**
 * datagramBytes 'auto': 100 bytes under the MTU of `iface` (IP and UDP headers, with room
 * to spare for tunnels and IP options), at most AUTO_DATAGRAM_MAX, at least 128; 1,400
 * when the MTU cannot be read. Never above the MTU: a fragmented datagram is lost whole
 * when any fragment is.
 */
export function autoDatagramBytes(iface: string): number {
  const mtu = interfaceMtu(iface);
  if (mtu === null) return FALLBACK_DATAGRAM_BYTES;
  return Math.max(128, Math.min(AUTO_DATAGRAM_MAX, mtu - 100));
}

/** A source as receivers see it. */
export interface SourceRef {
  /** 'address:port/session' (session in hex). */
  readonly sourceId: string;
  readonly session: number;
  readonly channel: number;
  readonly addr: ChannelAddr;
}

export interface GapEvent {
  source: SourceRef;
  channel: number;
  datagrams: number;
  messages: number;
  reason: string;
}

export interface SourceEvent {
  source: SourceRef;
  channel: number;
  /** 'bye' (closed cleanly) or 'timeout' (stopped heartbeating). */
  reason: 'bye' | 'timeout';
}

export interface EndpointHandler {
  /** One MSG frame, in order per source and channel. buf[off, off+len) may be kept. */
  onFrame(buf: Buffer, off: number, len: number, source: SourceRef): void;
  onLoss(e: GapEvent): void;
  onSourceNew?(source: SourceRef): void;
  onSourceGone(e: SourceEvent): void;
  /** A gap was repaired `ms` after it was seen (for repair-time measurements). */
  onRepair?(source: SourceRef, ms: number): void;
  /** A source dropped this receiver from its flow-control window (it was too slow). */
  onSlow?(source: SourceRef, position: number): void;
  /** This source dropped a receiver ('address:port/id') of channel `channel` from its window. */
  onReceiverSlow?(receiver: string, channel: number): void;
}

export interface EndpointStats extends ReceiveCounters {
  datagramsOut: number;
  msgsOut: number;
  fragmentsOut: number;
  heartbeatsOut: number;
  naksReceived: number;
  retransmits: number;
  repairsSuppressed: number;
  repairsThrottled: number;
  repairsThrottledReceiver: number;
  unavailable: number;
  testDropped: number;
  sendErrors: number;
  sourcesGone: number;
  /** Flow control, source side: times a window filled, datagrams and bytes held now, receivers tracked and dropped. */
  windowFull: number;
  heldDatagrams: number;
  heldBytes: number;
  receivers: number;
  slowReceivers: number;
  receiverTimeouts: number;
  receiverLeaves: number;
  statusIn: number;
  /** The socket buffers the kernel granted (as it reports them: twice what was set), 0 before open/join. */
  sendBufferBytesGranted: number;
  recvBufferBytesGranted: number;
  /** The UDP payload of a full datagram, in use ('auto' resolved). */
  datagramBytes: number;
}

/** Thrown for a bad multicast address or option. */
export class MulticastConfigError extends HopbusError {
  declare readonly code: 'BAD_MULTICAST';
  constructor(message: string) {
    super('BAD_MULTICAST', message);
  }
}

/** Parses 'group:port' (an IPv4 multicast group). */
export function parseChannel(s: string): ChannelAddr {
  const m = /^([\d.]+):(\d{1,5})$/.exec(typeof s === 'string' ? s : '');
  if (m === null || !isIpv4Multicast(m[1]!) || Number(m[2]) < 1 || Number(m[2]) > 65535) {
    throw new MulticastConfigError(`channel ${JSON.stringify(s)} must be "group:port" with an IPv4 multicast group (224.0.0.0/4) and a port from 1 to 65535`);
  }
  return { group: m[1]!, port: Number(m[2]), key: `${m[1]}:${m[2]}` };
}

/** The flow mode of each channel from a FlowControlSpec. */
function resolveFlow(spec: FlowControlSpec, channels: readonly ChannelAddr[], byKey: Map<string, number>): FlowMode[] {
  const check = (m: unknown, what: string): FlowMode => {
    if (!FLOW_MODES.includes(m as FlowMode)) throw new MulticastConfigError(`${what} must be one of ${FLOW_MODES.join(', ')}, got ${JSON.stringify(m)}`);
    return m as FlowMode;
  };
  if (typeof spec === 'string') return channels.map(() => check(spec, 'flowControl'));
  if (spec === null || typeof spec !== 'object')
    throw new MulticastConfigError(
      `flowControl must be 'min', 'max', 'none' or { default?, "group:port" or channel index: mode }, got ${JSON.stringify(spec)}`,
    );
  const def = spec.default === undefined ? ENDPOINT_DEFAULTS.flowControl : check(spec.default, 'flowControl.default');
  const out = channels.map(() => def as FlowMode);
  for (const [k, v] of Object.entries(spec)) {
    if (k === 'default') continue;
    const i = /^\d+$/.test(k) ? Number(k) : byKey.get(k);
    if (i === undefined || i >= channels.length)
      throw new MulticastConfigError(
        `flowControl names channel ${JSON.stringify(k)}, which is not in the channel list (${channels.map((c) => c.key).join(', ')})`,
      );
    out[i] = check(v, `flowControl[${JSON.stringify(k)}]`);
  }
  return out;
}

/** Sources followed per channel at most. */
const MAX_SOURCES_PER_CHANNEL = 4096;

class Joined {
  streams = new Map<number, RecvStream>();
  /** Bytes this receiver advertises for the channel (before sharing among its flow-controlled sources). */
  windowBytes = 256 * 1024;
  /** Set right after construction: the bind callback may run inside bind() (the lookup is synchronous) and needs `this`. */
  ready: Promise<void> = Promise.resolve();
  constructor(readonly socket: dgram.Socket) {}
}

/** dns.lookup answers even an IP literal on the next tick; every address here is a literal. */
const literalLookup = (address: string, _opts: unknown, cb: (err: Error | null, address: string, family: number) => void): void => cb(null, address, 4);

export class MulticastEndpoint implements SenderHost, StreamHost, Flushable {
  readonly session: number;
  readonly o: ResolvedEndpointOptions;
  readonly ro: ReceiverOptions;
  readonly counters: ReceiveCounters = {
    datagramsIn: 0,
    duplicates: 0,
    outOfOrder: 0,
    naksSent: 0,
    gapsRepaired: 0,
    lostDatagrams: 0,
    lostMessages: 0,
    badDatagrams: 0,
    statusSent: 0,
    slowDrops: 0,
  };
  private readonly flowModes: FlowMode[];
  /** Repair budgets per NAKing receiver address ('address:port'), bounded. */
  private readonly repairBudgets = new Map<string, RepairBudget>();
  private statusTimer: Timer | null = null;
  private statusTicks = 0;
  private sendGranted = 0;
  private recvGranted = 0;
  private readonly flushWaiters: { marks: number[]; resolve: () => void }[] = [];
  private sendErrors = 0;
  private sourcesGone = 0;
  readonly testDrop: EndpointOptions['testDrop'];
  batched = false;
  private readonly senders: (ChannelSender | null)[];
  private readonly joined: (Joined | null)[];
  private readonly byKey = new Map<string, number>();
  private uni: dgram.Socket | null = null;
  private uniAddress = '';
  private uniPort = 0;
  /** Senders with an open datagram to send at the end of this run / batch window. */
  private readonly dirty: ChannelSender[] = [];
  /** A datagram already left in this synchronous run: further frames are packed. */
  private burst = false;
  private liveness: Timer | null = null;
  private closed = false;

  constructor(
    readonly channels: readonly ChannelAddr[],
    options: Partial<EndpointOptions>,
    private readonly handler: EndpointHandler,
    /** Heartbeats, source timeouts, NAK timers and the close linger run on it. */
    readonly clock: Clock = realClock,
  ) {
    const given = { ...ENDPOINT_DEFAULTS, ...options };
    if (!isIpv4(given.iface)) throw new MulticastConfigError(`iface must be the IPv4 address of a local interface, got ${JSON.stringify(given.iface)}`);
    const dg = given.datagramBytes;
    if (dg !== 'auto' && !(typeof dg === 'number' && Number.isInteger(dg) && dg >= 128 && dg <= 65_507)) {
      throw new MulticastConfigError(`datagramBytes must be 'auto' or an integer from 128 to 65507, got ${JSON.stringify(dg)}`);
    }
    // 'auto' never makes the other options invalid: a datagram fits the buffers they bound.
    const datagramBytes = dg === 'auto' ? Math.max(128, Math.min(autoDatagramBytes(given.iface), given.retransmitBufferBytes, given.maxHeldBytes)) : dg;
    this.o = { ...given, datagramBytes };
    const o = this.o;
    for (const [k, v] of Object.entries(o)) {
      const def = (ENDPOINT_DEFAULTS as unknown as Record<string, unknown>)[k];
      if (typeof def === 'number' && !(typeof v === 'number' && Number.isFinite(v) && v >= 0)) {
        throw new MulticastConfigError(`multicast option "${k}" must be a non-negative number, got ${JSON.stringify(v)}`);
      }
    }
    if (o.heartbeatMinMs < 1 || o.heartbeatMaxMs < o.heartbeatMinMs)
      throw new MulticastConfigError('heartbeatMinMs must be at least 1 and heartbeatMaxMs at least heartbeatMinMs');
    if (o.sourceTimeoutMs < 1 || o.maxReorder < 1 || !Number.isInteger(o.nakMaxRetries))
      throw new MulticastConfigError('sourceTimeoutMs and maxReorder must be positive and nakMaxRetries an integer');
    if (o.retransmitBufferBytes < o.datagramBytes)
      throw new MulticastConfigError(`retransmitBufferBytes (${o.retransmitBufferBytes}) must hold at least one datagram (${o.datagramBytes} bytes)`);
    if (o.testDrop !== null && typeof o.testDrop !== 'function')
      throw new MulticastConfigError('testDrop must be a function (seq, channel, retransmit) => boolean');
    if (channels.length === 0) throw new MulticastConfigError('at least one channel is needed');
    channels.forEach((c, i) => {
      if (this.byKey.has(c.key)) throw new MulticastConfigError(`channel ${c.key} is listed twice`);
      this.byKey.set(c.key, i);
    });
    if (o.slowReceiverMs < 1 || o.receiverTimeoutMs < 1 || o.statusIntervalMs < 1)
      throw new MulticastConfigError('slowReceiverMs, receiverTimeoutMs and statusIntervalMs must be at least 1');
    if (o.maxHeldBytes < o.datagramBytes)
      throw new MulticastConfigError(`maxHeldBytes (${o.maxHeldBytes}) must hold at least one datagram (${o.datagramBytes} bytes)`);
    this.flowModes = resolveFlow(o.flowControl, channels, this.byKey);
    this.ro = o;
    this.testDrop = o.testDrop;
    this.session = (randomBytes(4).readUInt32LE(0) || 1) >>> 0;
    this.senders = channels.map(() => null);
    this.joined = channels.map(() => null);
  }

  /** Binds the unicast socket. */
  async open(): Promise<void> {
    const s = dgram.createSocket({ type: 'udp4', lookup: literalLookup as never });
    s.on('error', () => this.sendErrors++);
    await new Promise<void>((resolve, reject) => {
      s.once('error', reject);
      s.bind(0, this.o.iface, () => {
        s.off('error', reject);
        resolve();
      });
    });
    s.setMulticastInterface(this.o.iface);
    s.setMulticastTTL(this.o.ttl);
    s.setMulticastLoopback(true);
    try {
      s.setSendBufferSize(this.o.sendBufferBytes);
    } catch {
      /* the kernel keeps its default */
    }
    try {
      this.sendGranted = s.getSendBufferSize();
    } catch {
      this.sendGranted = 0;
    }
    s.on('message', this.onUnicast);
    const a = s.address();
    this.uniAddress = a.address;
    this.uniPort = a.port;
    this.uni = s;
    const every = Math.max(10, Math.min(1000, this.o.sourceTimeoutMs / 4));
    this.liveness = this.clock.interval(this.checkLiveness, every).unref();
    this.statusTimer = this.clock.interval(this.onStatusTimer, this.o.statusIntervalMs).unref();
  }

  /** The unicast address this source sends from (and takes NAKs on). */
  get address(): string {
    return `${this.uniAddress}:${this.uniPort}`;
  }

  // --- sending ---------------------------------------------------------------------------------

  /** The sender of a channel, created on first use. */
  sender(ch: number): ChannelSender {
    let s = this.senders[ch];
    if (s == null) {
      const o = this.o;
      const mode = this.flowModes[ch]!;
      // With flow control the ring also holds what waits for the window (maxHeldBytes), and
      // at least the largest message in fragments: a publish is refused only while something
      // waits, so any one message must fit when nothing does.
      const biggest = Math.ceil(o.maxMessageBytes / (o.datagramBytes - FRAG_HEADER)) + 1;
      const maxHeld = mode === 'none' ? 0 : Math.max(biggest, Math.floor(o.maxHeldBytes / o.datagramBytes));
      // A power of two, so slot = seq % slots stays contiguous when seq wraps at 2^32.
      const want = Math.max(16, Math.floor(o.retransmitBufferBytes / o.datagramBytes) + (maxHeld > 0 ? maxHeld + 2 : 0));
      const slots = 2 ** Math.ceil(Math.log2(want));
      // slots - 1 >= window + held + the open datagram (source.ts).
      const maxWindow = Math.max(1, slots - 2 - maxHeld);
      s = new ChannelSender(
        ch,
        this.channels[ch]!,
        this,
        {
          budget: o.datagramBytes,
          slots,
          heartbeatMinMs: o.heartbeatMinMs,
          heartbeatMaxMs: o.heartbeatMaxMs,
          repairHoldoffMs: o.repairHoldoffMs,
          repairBytesPerSec: o.repairBytesPerSec,
          maxHeld,
          flow:
            mode === 'none'
              ? null
              : {
                  mode,
                  maxWindow,
                  budget: o.datagramBytes,
                  slowReceiverMs: o.slowReceiverMs,
                  receiverTimeoutMs: o.receiverTimeoutMs,
                  maxReceivers: 1024,
                },
        },
        this.clock,
      );
      this.senders[ch] = s;
    }
    return s;
  }

  /** @internal SenderHost */
  transmit(buf: Buffer, off: number, len: number, addr: ChannelAddr): void {
    if (this.uni === null) return;
    this.uni.send(buf, off, len, addr.port, addr.group);
  }

  /** @internal SenderHost: decides when the open datagram leaves (see the file comment). */
  committed(s: ChannelSender): void {
    if (batching()) {
      this.markDirty(s);
      deferFlush(this);
      return;
    }
    if (!this.burst) {
      s.flush();
      this.burst = true;
      queueMicrotask(this.endBurst);
      return;
    }
    this.markDirty(s);
  }

  private markDirty(s: ChannelSender): void {
    if (!s.dirty) {
      s.dirty = true;
      this.dirty.push(s);
    }
  }

  private readonly endBurst = (): void => {
    this.burst = false;
    this.flush();
  };

  /** Sends every open datagram now (those the window holds leave when it opens). */
  flush(): void {
    const d = this.dirty;
    for (let i = 0; i < d.length; i++) {
      const s = d[i]!;
      s.dirty = false;
      s.flush();
    }
    d.length = 0;
  }

  /** Bytes of datagrams held for the window on every channel. */
  get heldBytes(): number {
    let n = 0;
    for (const s of this.senders) if (s != null) n += s.heldBytes;
    return n;
  }

  /**
   * Resolves once every datagram closed so far has been handed to the kernel: at once
   * without flow control or with the windows open, else when STATUS opens them (or a slow
   * receiver is dropped from them). close() sends what is held, so it resolves then too.
   */
  whenSent(): Promise<void> {
    this.flush();
    if (this.senders.every((s) => s == null || s.held === 0)) return Promise.resolve();
    const marks = this.senders.map((s) => (s == null ? 0 : s.nextSeq));
    return new Promise((resolve) => this.flushWaiters.push({ marks, resolve }));
  }

  /** @internal SenderHost: held datagrams left; wake the flush() waiters they were holding. */
  released(): void {
    const w = this.flushWaiters;
    if (w.length === 0) return;
    for (let i = 0; i < w.length; i++) {
      const f = w[i]!;
      let done = true;
      for (let ch = 0; ch < this.senders.length && done; ch++) {
        const s = this.senders[ch];
        if (s != null && f.marks[ch] !== 0 && seqDiff(s.sentTo, f.marks[ch]!) < 0) done = false;
      }
      if (done) {
        w.splice(i--, 1);
        f.resolve();
      }
    }
  }

  /** @internal SenderHost: tell a receiver it was dropped from the window of channel s. */
  tellSlow(s: ChannelSender, r: FlowReceiver): void {
    const b = Buffer.allocUnsafe(SLOW_SIZE);
    writeHeader(b, 0, DType.SLOW, this.session, r.pos, r.id, 0, 0);
    writeIpv4(b, HEADER, s.addr.group);
    b.writeUInt16LE(s.addr.port, HEADER + 4);
    b.writeUInt16LE(0, HEADER + 6);
    b.writeUInt32LE(r.drops >>> 0, HEADER + 8);
    this.uni?.send(b, 0, SLOW_SIZE, r.port, r.address);
  }

  /** @internal SenderHost */
  receiverDropped(s: ChannelSender, r: FlowReceiver): void {
    this.handler.onReceiverSlow?.(`${r.address}:${r.port}/${r.id.toString(16).padStart(8, '0')}`, s.index);
  }

  // --- receiving -------------------------------------------------------------------------------

  /** Joins a channel's group; resolves once datagrams are being received. */
  join(ch: number): Promise<void> {
    const existing = this.joined[ch];
    if (existing != null) return existing.ready;
    const addr = this.channels[ch]!;
    const sock = dgram.createSocket({ type: 'udp4', reuseAddr: true, lookup: literalLookup as never });
    const j = new Joined(sock);
    const ready = new Promise<void>((resolve, reject) => {
      sock.once('error', reject);
      sock.bind({ port: addr.port, address: addr.group, exclusive: true }, () => {
        sock.off('error', reject);
        try {
          sock.addMembership(addr.group, this.o.iface);
        } catch (err) {
          reject(new MulticastConfigError(`cannot join ${addr.key} on ${this.o.iface}: ${(err as Error).message}`));
          return;
        }
        try {
          sock.setRecvBufferSize(this.o.recvBufferBytes);
        } catch {
          /* the kernel keeps its default */
        }
        try {
          const got = sock.getRecvBufferSize();
          this.recvGranted = got;
          j.windowBytes = Math.max(this.o.datagramBytes, Math.floor(got / 3));
        } catch {
          /* the default window stands */
        }
        resolve();
      });
    });
    j.ready = ready;
    sock.on('error', () => this.sendErrors++);
    sock.on('message', (msg, rinfo) => {
      // One batch window per datagram: whatever its messages make handlers write
      // (a broker's fan-out, replies) leaves in one write per link when it is done.
      this.inCh = ch;
      this.inJoined = j;
      this.inInfo = rinfo;
      runBatched(this.onDatagram, msg);
    });
    this.joined[ch] = j;
    ready.catch(() => {
      if (this.joined[ch] === j) this.joined[ch] = null;
      sock.close();
    });
    return ready;
  }

  /** Leaves a channel: its streams are forgotten (a later join starts afresh). */
  leave(ch: number): void {
    const j = this.joined[ch];
    if (j == null) return;
    this.joined[ch] = null;
    for (const st of j.streams.values()) {
      if (st.flow) this.sendStatus(st, true);
      st.close('left the channel');
    }
    try {
      j.socket.close();
    } catch {
      /* already closed */
    }
  }

  isJoined(ch: number): boolean {
    return this.joined[ch] != null;
  }

  private inCh = 0;
  private inJoined: Joined | null = null;
  private inInfo: dgram.RemoteInfo | null = null;
  private readonly onDatagram = (d: Buffer): void => {
    const ch = this.inCh;
    const j = this.inJoined!;
    const rinfo = this.inInfo!;
    if (this.joined[ch] !== j) return;
    const type = datagramType(d);
    if (type === 0) {
      this.counters.badDatagrams++;
      return;
    }
    const session = d.readUInt32LE(4);
    if (session === this.session && !this.o.receiveOwn) return;
    this.counters.datagramsIn++;
    let st = j.streams.get(session);
    if (st === undefined) {
      if (type === DType.UNAVAILABLE || (type === DType.HEARTBEAT && d[16]! & F_BYE)) return;
      if (j.streams.size >= MAX_SOURCES_PER_CHANNEL) {
        // Bounded memory whatever arrives: a flood of made-up session ids is not followed.
        this.counters.badDatagrams++;
        return;
      }
      st = new RecvStream(this, ch, this.channels[ch]!, session, rinfo.address, rinfo.port);
      j.streams.set(session, st);
      this.handler.onSourceNew?.(st);
    }
    st.lastHeard = this.clock.now();
    switch (type) {
      case DType.DATA:
        st.onData(d);
        return;
      case DType.HEARTBEAT:
        st.onHeartbeat(d);
        if (d[16]! & F_BYE) this.gone(j, st, 'bye');
        return;
      case DType.UNAVAILABLE:
        st.onUnavailable(d.readUInt32LE(8), d.readUInt32LE(12));
        return;
      default:
        this.counters.badDatagrams++;
    }
  };

  /** NAKs and STATUS for this source's channels, SLOW for this receiver's streams. */
  private readonly onUnicast = (d: Buffer, rinfo: dgram.RemoteInfo): void => {
    const type = datagramType(d);
    if (type !== DType.NAK && type !== DType.STATUS && type !== DType.SLOW) return;
    const ch = this.byKey.get(`${readIpv4(d, HEADER)}:${d.readUInt16LE(HEADER + 4)}`);
    if (ch === undefined) return;
    if (type === DType.SLOW) {
      // To this receiver (aux = our id), from source `session`.
      if (d.readUInt32LE(12) !== this.session) return;
      const st = this.joined[ch]?.streams.get(d.readUInt32LE(4));
      st?.onSlow(d.readUInt32LE(HEADER + 8), d.readUInt32LE(8));
      return;
    }
    if (d.readUInt32LE(4) !== this.session) return;
    const s = this.senders[ch];
    if (s == null) return;
    if (type === DType.NAK) {
      const now = this.clock.now();
      const who = this.repairBudget(rinfo);
      s.onNak(d.readUInt32LE(8), d.readUInt32LE(12), now, who);
      // Further ranges of a coalesced NAK (wire.ts), as many as the datagram really holds.
      const more = Math.min(d.readUInt16LE(HEADER + 6), Math.floor((d.length - NAK_SIZE) / 8), 63);
      for (let i = 0; i < more; i++) s.onNak(d.readUInt32LE(NAK_SIZE + i * 8), d.readUInt32LE(NAK_SIZE + i * 8 + 4), now, who, false);
      return;
    }
    if (s.flow === null) return;
    s.stats.statusIn++;
    s.flow.onStatus(d.readUInt32LE(12), rinfo.address, rinfo.port, d.readUInt32LE(8), d.readUInt32LE(HEADER + 8), (d[16]! & F_LEAVE) !== 0);
  };

  /** The repair budget of a NAKing receiver address (kept for 4,096 addresses at most). */
  private repairBudget(rinfo: dgram.RemoteInfo): RepairBudget | null {
    const rate = this.o.receiverRepairBytesPerSec;
    if (rate <= 0) return null;
    const key = `${rinfo.address}:${rinfo.port}`;
    let b = this.repairBudgets.get(key);
    if (b === undefined) {
      if (this.repairBudgets.size >= 4096) this.repairBudgets.clear();
      b = new RepairBudget(rate);
      this.repairBudgets.set(key, b);
    }
    return b;
  }

  /** @internal StreamHost: this receiver's position on `st`, to its source. */
  sendStatus(st: RecvStream, leave: boolean): void {
    const u = this.uni;
    if (u === null) return;
    const j = this.joined[st.channel];
    let sharing = 0;
    if (j != null) for (const x of j.streams.values()) if (x.flow) sharing++;
    const window = Math.floor((j?.windowBytes ?? 256 * 1024) / Math.max(1, sharing));
    const b = Buffer.allocUnsafe(STATUS_SIZE);
    writeHeader(b, 0, DType.STATUS, st.session, st.next, this.session, leave ? F_LEAVE : 0, 0);
    writeIpv4(b, HEADER, st.addr.group);
    b.writeUInt16LE(st.addr.port, HEADER + 4);
    b[HEADER + 6] = STATUS_VERSION;
    b[HEADER + 7] = 0;
    b.writeUInt32LE(window >>> 0, HEADER + 8);
    st.reported = st.next;
    st.reportedAt = this.clock.now();
    // The next progress report after a quarter of the window advertised (in datagrams of
    // this endpoint's size), at most 256: the source never waits for the periodic one.
    st.statusEvery = Math.max(1, Math.min(256, Math.floor(window / this.o.datagramBytes / 4)));
    this.counters.statusSent++;
    u.send(b, 0, STATUS_SIZE, st.port, st.address);
  }

  /** @internal StreamHost */
  slow(st: RecvStream, position: number): void {
    this.counters.slowDrops++;
    this.handler.onSlow?.(st, position);
  }

  /** Every statusIntervalMs: a STATUS per flow-controlled stream that moved, and every 10th tick from all of them. */
  private readonly onStatusTimer = (): void => {
    const all = ++this.statusTicks % 10 === 0;
    for (const j of this.joined) {
      if (j == null) continue;
      for (const st of j.streams.values()) {
        if (st.flow && !st.gone && (all || st.next !== st.reported)) this.sendStatus(st, false);
      }
    }
  };

  private gone(j: Joined, st: RecvStream, reason: 'bye' | 'timeout'): void {
    st.close(reason === 'bye' ? 'the source closed' : 'the source stopped heartbeating');
    j.streams.delete(st.session);
    this.sourcesGone++;
    this.handler.onSourceGone({ source: st, channel: st.channel, reason });
  }

  private readonly checkLiveness = (): void => {
    const now = this.clock.now();
    for (const j of this.joined) {
      if (j == null) continue;
      for (const st of j.streams.values()) {
        const limit = Math.max(this.o.sourceTimeoutMs, 3 * st.announcedMs);
        if (now - st.lastHeard > limit) this.gone(j, st, 'timeout');
      }
    }
  };

  /** @internal StreamHost */
  deliverFrame(stream: RecvStream, buf: Buffer, off: number, len: number): void {
    this.handler.onFrame(buf, off, len, stream);
  }

  /** @internal StreamHost */
  lost(stream: RecvStream, datagrams: number, messages: number, reason: string): void {
    this.counters.lostDatagrams += datagrams;
    this.counters.lostMessages += messages;
    this.handler.onLoss({ source: stream, channel: stream.channel, datagrams, messages, reason });
  }

  /** @internal StreamHost */
  repaired(stream: RecvStream, ms: number): void {
    this.handler.onRepair?.(stream, ms);
  }

  /** @internal StreamHost */
  sendNak(buf: Buffer, address: string, port: number): void {
    this.uni?.send(buf, 0, buf.length, port, address);
  }

  // --- lifecycle -------------------------------------------------------------------------------

  stats(): EndpointStats {
    const t: SenderStats = emptySenderStats();
    for (const s of this.senders) {
      if (s == null) continue;
      for (const k of Object.keys(t) as (keyof SenderStats)[]) t[k] += s.stats[k];
    }
    return {
      ...this.counters,
      datagramsOut: t.datagrams,
      msgsOut: t.msgs,
      fragmentsOut: t.fragments,
      heartbeatsOut: t.heartbeats,
      naksReceived: t.naksReceived,
      retransmits: t.retransmits,
      repairsSuppressed: t.repairsSuppressed,
      repairsThrottled: t.repairsThrottled,
      repairsThrottledReceiver: t.repairsThrottledReceiver,
      unavailable: t.unavailable,
      testDropped: t.testDropped,
      sendErrors: this.sendErrors,
      sourcesGone: this.sourcesGone,
      windowFull: t.windowFull,
      heldDatagrams: this.senders.reduce((n, s) => n + (s?.held ?? 0), 0),
      heldBytes: this.heldBytes,
      receivers: this.senders.reduce((n, s) => n + (s?.flow?.snapshot().receivers ?? 0), 0),
      slowReceivers: t.slowReceivers,
      receiverTimeouts: this.senders.reduce((n, s) => n + (s?.flow?.stats.receiverTimeouts ?? 0), 0),
      receiverLeaves: this.senders.reduce((n, s) => n + (s?.flow?.stats.receiverLeaves ?? 0), 0),
      statusIn: t.statusIn,
      sendBufferBytesGranted: this.sendGranted,
      recvBufferBytesGranted: this.recvGranted,
      datagramBytes: this.o.datagramBytes,
    };
  }

  /**
   * Sends what is open, keeps answering NAKs for `lingerMs` so receivers can repair
   * the tail, then says BYE on every channel it sent on and closes every socket.
   */
  async close(lingerMs = 0): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.flush();
    if (lingerMs > 0 && this.senders.some((s) => s != null)) await new Promise<void>((r) => this.clock.timeout(r, lingerMs));
    for (const s of this.senders) s?.close();
    this.released();
    this.clock.clear(this.liveness);
    this.clock.clear(this.statusTimer);
    for (let ch = 0; ch < this.joined.length; ch++) this.leave(ch);
    const u = this.uni;
    this.uni = null;
    if (u !== null) await new Promise<void>((r) => u.close(() => r()));
  }
}
