/**
 * The broker's side of the WebSocket transport, on a uWebSockets.js server:
 * `app.ws('/bus', wsBehavior(accept, ...))`. Each WebSocket becomes a UwsLink that
 * the broker adopts like a TCP link.
 *
 * On the wire: binary WebSocket messages carrying the hopbus byte stream unchanged
 * (docs/PROTOCOL.md "Transports"). A message may hold several frames, and a frame may
 * span messages: the FrameReader that serves TCP reassembles them the same way.
 *
 * Back-pressure: uWS buffers what the socket does not take at once; its buffered
 * amount is part of `pendingBytes`, so the broker's slow-consumer policies see a
 * WebSocket consumer exactly as a TCP one, and uWS's `drain` event is the link's
 * onDrain. `maxBackpressure` is set above anything the policies allow (uWS would
 * otherwise drop messages silently, breaking the byte stream); if uWS drops anyway,
 * the link is destroyed.
 *
 * uWS cannot stop reading a WebSocket, so pause() (rate limits, the block policy)
 * holds inbound messages in the link instead, up to PAUSE_BUFFER_MAX bytes; a
 * publisher that sends more while paused is disconnected.
 *
 * Threading: the thread that runs the uWS app (the broker's).
 */
import type uWS from 'uWebSockets.js';

import { FrameReader } from '../reader.js';
import { batching, deferFlush, runBatched, type Flushable } from '../batch.js';
import { readFailed, growBuffer, type AcceptFn, type Link, type LinkHandler, type TransportName } from '../link.js';

const WRITE_BUFFER = 64 * 1024;
const KEEP_BUFFER_MAX = 1024 * 1024;
/** Inbound bytes held while a link is paused before the peer is disconnected. */
export const PAUSE_BUFFER_MAX = 16 * 1024 * 1024;

export interface WsUserData {
  link: UwsLink | null;
  remote: string;
}

export class UwsLink implements Link, Flushable {
  readonly transport: TransportName = 'ws';
  closed = false;
  batched = false;
  writeBlockedSince = 0;
  private fill: Buffer = Buffer.allocUnsafe(WRITE_BUFFER);
  private used = 0;
  private handler: LinkHandler | null = null;
  private readonly reader: FrameReader;
  private paused = false;
  private held: Buffer[] = [];
  private heldBytes = 0;
  private closing = false;
  private closeErr: Error | null = null;
  private ended = false;

  constructor(
    private readonly ws: uWS.WebSocket<WsUserData>,
    readonly remote: string,
    maxFrame: number,
  ) {
    this.reader = new FrameReader(maxFrame);
  }

  get pendingBytes(): number {
    return this.used + (this.ended ? 0 : this.ws.getBufferedAmount());
  }

  get writeOffset(): number {
    return this.used;
  }

  setMaxFrame(n: number): void {
    this.reader.maxFrame = n;
  }

  start(handler: LinkHandler): void {
    this.handler = handler;
    if (this.ended) {
      this.handler = null;
      handler.onClose(this.closeErr);
    }
  }

  /** uWS message event. The ArrayBuffer is only valid during the call: its bytes are copied. */
  onMessage(data: ArrayBuffer, isBinary: boolean): void {
    if (this.closed || this.closing) return;
    if (!isBinary) {
      this.destroy(new Error('text WebSocket message: hopbus frames travel in binary messages'));
      return;
    }
    const chunk = Buffer.from(new Uint8Array(data));
    if (this.paused) {
      this.held.push(chunk);
      this.heldBytes += chunk.length;
      if (this.heldBytes > PAUSE_BUFFER_MAX) this.destroy(new Error(`more than ${PAUSE_BUFFER_MAX} bytes received while paused (WebSocket reads cannot be paused)`));
      return;
    }
    runBatched(this.readChunk, chunk);
  }

  private readonly readChunk = (chunk: Buffer): void => {
    if (this.closed || this.handler === null) return;
    try {
      this.reader.push(chunk, this.handler);
    } catch (err) {
      this.paused = true; // read nothing more
      this.held = [];
      readFailed(this.handler, err, (e) => this.destroy(e));
    }
  };

  reserve(n: number): Buffer {
    const need = this.used + n;
    if (need > this.fill.length) this.fill = growBuffer(this.fill, this.used, need);
    return this.fill;
  }

  commit(n: number): void {
    if (this.closed) return;
    this.used += n;
    if (batching()) deferFlush(this);
    else this.flush();
  }

  send(bytes: Uint8Array, off: number, len: number): void {
    const buf = this.reserve(len);
    buf.set(len === bytes.length && off === 0 ? bytes : bytes.subarray(off, off + len), this.used);
    this.commit(len);
  }

  /** Hands what is queued to uWS in one message; uWS copies it, so the buffer is reused at once. */
  flush(): void {
    if (this.used === 0 || this.closed || this.ended) return;
    this.ws.cork(this.corkedSend);
    this.used = 0;
    const status = this.sendStatus;
    if (this.fill.length > KEEP_BUFFER_MAX) this.fill = Buffer.allocUnsafe(WRITE_BUFFER);
    if (status === 2) {
      this.destroy(new Error('uWS dropped a message (maxBackpressure reached)'));
      return;
    }
    if (status === 0 && this.writeBlockedSince === 0) this.writeBlockedSince = performance.now();
    if (this.closing && this.ws.getBufferedAmount() === 0) this.endNow();
  }

  private sendStatus = 1;
  /** One closure per link, not per flush. */
  private readonly corkedSend = (): void => {
    this.sendStatus = this.ws.send(this.fill.subarray(0, this.used), true, false);
  };

  /** uWS drain event: some buffered bytes went out. */
  onDrain(): void {
    if (this.ended) return;
    if (this.ws.getBufferedAmount() === 0) {
      this.writeBlockedSince = 0;
      if (this.closing) {
        this.endNow();
        return;
      }
    }
    // Policies move held messages along while the link has room (policy.ts pump).
    this.handler?.onDrain?.();
  }

  pause(): void {
    this.paused = true;
  }

  resume(): void {
    if (!this.paused || this.closed) return;
    this.paused = false;
    while (this.held.length > 0 && !this.paused && !this.closed) {
      const chunk = this.held.shift()!;
      this.heldBytes -= chunk.length;
      runBatched(this.readChunk, chunk);
    }
  }

  close(): void {
    if (this.closed || this.closing) return;
    this.closing = true;
    this.flush();
    if (!this.ended && this.ws.getBufferedAmount() === 0) this.endNow();
    // Bound the wait for a peer that stopped reading.
    setTimeout(() => this.destroy(), 2000).unref();
  }

  /**
   * uWS runs the close handler inside end()/close(); deferring them keeps onClose from
   * re-entering whoever called close() or destroy(), as a socket's 'close' event would.
   */
  private endNow(): void {
    setImmediate(() => {
      if (!this.ended) this.ws.end(1000, 'closed');
    });
  }

  destroy(err?: Error): void {
    if (err) this.closeErr ??= err;
    this.closed = true;
    setImmediate(() => {
      if (!this.ended) this.ws.close();
    });
  }

  /** uWS close event: the socket is gone. */
  onClosed(code: number): void {
    if (this.ended) return;
    this.ended = true;
    this.closed = true;
    this.used = 0;
    this.held = [];
    if (this.closeErr === null && code !== 1000 && code !== 1001 && code !== 1005 && !this.closing) {
      this.closeErr = new Error(`WebSocket closed with code ${code}`);
    }
    const h = this.handler;
    this.handler = null;
    h?.onClose(this.closeErr);
  }
}

export interface WsBehaviorOptions {
  maxFrame: number;
  /** uWS's own per-socket buffer bound; set above the broker's slow-consumer bounds. */
  maxBackpressure: number;
}

/** The uWS route behaviour that turns each WebSocket into a UwsLink given to `accept`. */
export function wsBehavior(accept: AcceptFn, o: WsBehaviorOptions): uWS.WebSocketBehavior<WsUserData> {
  return {
    // A WebSocket message is a chunk of the frame stream; 1 MiB chunks are what the SDK sends.
    maxPayloadLength: Math.max(4 * 1024 * 1024, o.maxFrame),
    maxBackpressure: o.maxBackpressure,
    closeOnBackpressureLimit: 0,
    // Liveness is the protocol's keepalive (PING/PONG frames), as on TCP.
    idleTimeout: 0,
    sendPingsAutomatically: false,
    upgrade: (res, req, context) => {
      const remote = Buffer.from(res.getRemoteAddressAsText()).toString();
      res.upgrade<WsUserData>(
        { link: null, remote },
        req.getHeader('sec-websocket-key'),
        req.getHeader('sec-websocket-protocol'),
        req.getHeader('sec-websocket-extensions'),
        context,
      );
    },
    open: (ws) => {
      const data = ws.getUserData();
      const link = new UwsLink(ws, data.remote, o.maxFrame);
      data.link = link;
      accept(link);
    },
    message: (ws, message, isBinary) => ws.getUserData().link?.onMessage(message, isBinary),
    drain: (ws) => ws.getUserData().link?.onDrain(),
    close: (ws, code) => ws.getUserData().link?.onClosed(code),
  };
}
