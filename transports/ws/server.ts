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

import type { Clock } from '../../runtime/clock.js';
import { batching, deferFlush } from '../batch.js';
import { BufferedLink } from '../buffered.js';
import type { AcceptFn, TransportName } from '../link.js';
import { ConnectionError } from '../../runtime/errors.js';
import { ProtocolError } from '../protocol/index.js';

/** Inbound bytes held while a link is paused before the peer is disconnected. */
export const PAUSE_BUFFER_MAX = 16 * 1024 * 1024;

export interface WsUserData {
  link: UwsLink | null;
  remote: string;
}

export class UwsLink extends BufferedLink {
  readonly transport: TransportName = 'ws';
  private sendStatus = 1;

  constructor(
    private readonly ws: uWS.WebSocket<WsUserData>,
    remote: string,
    maxFrame: number,
    clock?: Clock,
  ) {
    super(remote, maxFrame, clock);
  }

  get pendingBytes(): number {
    return this.used - this.from + (this.finished ? 0 : this.ws.getBufferedAmount());
  }

  /** uWS message event. The ArrayBuffer is only valid during the call: its bytes are copied. */
  onMessage(data: ArrayBuffer, isBinary: boolean): void {
    if (this.closed || this.closing) return;
    if (!isBinary) {
      this.destroy(new ProtocolError('PROTOCOL', 'text WebSocket message: hopbus frames travel in binary messages'));
      return;
    }
    this.receive(Buffer.from(new Uint8Array(data)));
    if (this.heldBytes > PAUSE_BUFFER_MAX)
      this.destroy(new ConnectionError(`more than ${PAUSE_BUFFER_MAX} bytes received while paused (WebSocket reads cannot be paused)`));
  }

  commit(n: number): void {
    if (this.closed) return;
    this.used += n;
    if (batching()) deferFlush(this);
    else this.flush();
  }

  /** Hands what is queued to uWS in one message; uWS copies it, so the buffer is reused at once. */
  flush(): void {
    if (this.used === this.from || this.closed || this.finished) return;
    this.ws.cork(this.corkedSend);
    this.emptied();
    const status = this.sendStatus;
    if (status === 2) {
      this.destroy(new ConnectionError('uWS dropped a message (maxBackpressure reached)'));
      return;
    }
    if (status === 0 && this.writeBlockedSince === 0) this.writeBlockedSince = this.clock.now();
    if (this.closing && this.ws.getBufferedAmount() === 0) this.endNow();
    // uWS took it all without back-pressure, so no drain event will follow: messages
    // held meanwhile (policy.ts pump) are moved along now, after this call returns.
    else if (status === 1 && this.ws.getBufferedAmount() === 0 && !this.closing) queueMicrotask(this.sent);
  }

  /** One closure per link: the write buffer emptied with nothing buffered by uWS. */
  private readonly sent = (): void => {
    if (!this.closed && !this.finished) this.handler?.onDrain?.();
  };

  /** One closure per link, not per flush. */
  private readonly corkedSend = (): void => {
    this.sendStatus = this.ws.send(this.fill.subarray(this.from, this.used), true, false);
  };

  /** uWS drain event: some buffered bytes went out. */
  onDrain(): void {
    if (this.finished) return;
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

  close(): void {
    if (this.closed || this.closing) return;
    this.closing = true;
    this.flush();
    if (!this.finished && this.ws.getBufferedAmount() === 0) this.endNow();
    // Bound the wait for a peer that stopped reading.
    this.closeWithin(() => this.destroy());
  }

  /**
   * uWS runs the close handler inside end()/close(); deferring them keeps onClose from
   * re-entering whoever called close() or destroy(), as a socket's 'close' event would.
   */
  private endNow(): void {
    setImmediate(() => {
      if (!this.finished) this.ws.end(1000, 'closed');
    });
  }

  destroy(err?: Error): void {
    if (err) this.closeErr ??= err;
    this.closed = true;
    setImmediate(() => {
      if (!this.finished) this.ws.close();
    });
  }

  /** uWS close event: the socket is gone. */
  onClosed(code: number): void {
    if (this.finished) return;
    if (this.closeErr === null && code !== 1000 && code !== 1001 && code !== 1005 && !this.closing) {
      this.closeErr = new ConnectionError(`WebSocket closed with code ${code}`);
    }
    this.finish();
  }
}

export interface WsBehaviorOptions {
  maxFrame: number;
  /** uWS's own per-socket buffer bound; set above the broker's slow-consumer bounds. */
  maxBackpressure: number;
  /** Decides an upgrade from its Origin and Host headers ('' when absent): null admits it, a reason refuses it with 403. */
  admit?: (origin: string, host: string) => string | null;
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
      const refused = o.admit?.(req.getHeader('origin'), req.getHeader('host')) ?? null;
      if (refused !== null) {
        res.cork(() => void res.writeStatus('403 Forbidden').writeHeader('Content-Type', 'text/plain').end(`${refused}\n`));
        return;
      }
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
