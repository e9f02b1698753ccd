/**
 * The contract every transport implements. A Link is one connected, ordered,
 * reliable frame pipe between a client and the broker; a Listener accepts Links.
 * transports/ knows frames, never subjects or sessions: the broker and the client
 * give a Link a handler and write frames into it.
 *
 * Threading: a Link is used only from the thread that created it.
 *
 * The Link classes (stream.ts, inproc.ts, shm/link.ts, ws/server.ts, ws/client.ts)
 * share their bookkeeping through BufferedLink (buffered.ts).
 */

import type { ProtocolError } from './protocol/index.js';

export type TransportName = 'tcp' | 'tls' | 'unix' | 'shm' | 'inproc' | 'ws' | 'udp';

/**
 * The client certificate a TLS peer presented and the listener verified against its CA
 * (transports/tls.ts): what the broker maps to a user (broker/auth/).
 */
export interface PeerCertificate {
  /** Subject attributes, e.g. { CN: 'alice', O: 'Desk' }. */
  readonly subject: Readonly<Record<string, string>>;
  /** subjectAltName entries as openssl prints them: "email:alice@desk.example", "DNS:alice.desk", "IP Address:10.0.0.1", "URI:...". */
  readonly altNames: readonly string[];
}

export interface LinkHandler {
  /** One whole frame; buf[off, off+len) is the handler's to keep (see FrameReader). */
  onFrame(buf: Buffer, off: number, len: number): void;
  /**
   * The link is closed, once, for good. `err` is null after a clean close by either
   * side, else why it broke (peer vanished, protocol error, ...).
   */
  onClose(err: Error | null): void;
  /** Everything queued has been handed to the operating system (pending fell to 0). */
  onDrain?(): void;
  /**
   * The peer sent bytes that are not a valid frame. The handler should report it to
   * the peer (an ERR) and close the link; without this method the link is destroyed.
   */
  onProtocolError?(err: ProtocolError): void;
  /**
   * The link is closing for good with committed bytes it never handed to the transport:
   * buf[off, off+len), whole frames, valid during the call only. Called once, just before
   * onClose; a client carries what it may resend to its next connection.
   */
  onUnsent?(buf: Buffer, off: number, len: number): void;
}

export interface Link {
  readonly transport: TransportName;
  /** Human-readable peer address, for logs. */
  readonly remote: string;
  readonly closed: boolean;
  /** Bytes queued or in flight towards the peer: the slow-consumer measure. */
  readonly pendingBytes: number;
  /** performance.now() when the write now in flight began; 0 when none is. A write deadline compares against it. */
  readonly writeBlockedSince: number;

  /** Raises or lowers the largest inbound frame accepted (e.g. after the handshake). */
  setMaxFrame?(n: number): void;
  /** Which inbound frame is being assembled across chunks (changes with each), 0 when none: a read deadline watches it. */
  readonly partialFrame?: number;
  /** Memory the link holds for writing now: its write buffers' capacity, in flight included (not just the bytes queued). */
  readonly bufferBytes?: number;
  /** Memory the link holds for reading now: a partial frame's buffer, chunks held while paused. */
  readonly inboundBytes?: number;
  /** A TLS link's verified client certificate; null or absent when none was presented or verified. */
  readonly certificate?: PeerCertificate | null;

  /** Starts delivery of inbound frames to `handler` (frames are not read before). */
  start(handler: LinkHandler): void;

  /**
   * Zero-copy encoding: reserve(n) makes room for n bytes and returns the buffer to
   * write them into, at offset `writeOffset`; commit(n) queues them. Nothing else may
   * touch the link between the two calls.
   */
  reserve(n: number): Buffer;
  readonly writeOffset: number;
  commit(n: number): void;

  /** Copies bytes[off, off+len) into the outbound queue. */
  send(bytes: Uint8Array, off: number, len: number): void;

  /** Stops reading from the peer until resume() (back-pressure on a greedy publisher). */
  pause(): void;
  resume(): void;

  /**
   * Drops the committed bytes not handed to the transport yet (what is in flight stays)
   * and returns how many: a connection cut off as a slow consumer gets its ERR next.
   */
  discard?(): number;

  /** Sends what is queued, then closes. onClose follows. */
  close(): void;
  /** Closes now, dropping what is queued. onClose follows with `err`. */
  destroy(err?: Error): void;

  /** Direct delivery between clients of one broker (shm only; docs/SHM.md). */
  readonly direct?: DirectPort;
  /** The connection's shared memory, for links that have one (shm): the broker's direct plane hands out channels through it. */
  readonly shared?: SharedArrayBuffer;
}

/**
 * A client's access to direct channels: one-way rings from this client to another
 * client of the same broker (or back), whose memory the broker hands out. The
 * client's routing (client/direct.ts) says which to open; this says how.
 */
export interface DirectPort {
  /** Starts listening for channel memory addressed to client `clientId` of broker `serverId`. */
  begin(clientId: number, serverId: string): void;
  /** Called when the memory of channel `chan` has arrived. */
  onMemory: ((chan: number) => void) | null;
  /** True once the memory of channel `chan` is here. */
  has(chan: number): boolean;
  /**
   * The writing end of channel `chan` (its memory must be here), served by this link's
   * poll loop, and the channel's counters: [messages, bytes] written, for the broker.
   */
  writer(chan: number): { link: Link; counts: Float64Array };
  /** The reading end of channel `chan` (its memory must be here), served by this link's poll loop. */
  reader(chan: number): Link;
  /** Forgets channel memory that will not be used. */
  forget(chan: number): void;
  /** Hands out, now, what a reader's channel holds (up to a fence that stops it). */
  drain(reader: Link): void;
  /** Stops listening. */
  end(): void;
}

export interface Listener {
  /** The address clients dial, e.g. tcp://127.0.0.1:7400 or unix:///run/hopbus.sock */
  readonly url: string;
  readonly transport: TransportName;
  /** Stops accepting; established links are left to their owner. */
  close(): Promise<void>;
}

export type AcceptFn = (link: Link) => void;
