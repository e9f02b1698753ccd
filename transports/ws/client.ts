/**
 * The client's side of the WebSocket transport, over any object with the browser
 * WebSocket interface: the `ws` package in Node (node.ts), the global WebSocket in a
 * browser (browser.ts). No Node-only module is imported here.
 *
 * Writes: frames are encoded into one buffer and sent as one binary message at the
 * end of the current synchronous run (a microtask), or at the end of the inbound
 * chunk being processed (batch.ts): a burst of publishes leaves as one message, a
 * lone publish leaves at once, and no timer is involved. Both WebSocket
 * implementations copy what send() is given, so the buffer is reused.
 * Sends over MAX_MESSAGE are cut into several messages (frames may span messages).
 */
import type { Clock } from '../../runtime/clock.js';
import { ProtocolError } from '../protocol/index.js';
import { batching, deferFlush } from '../batch.js';
import { BufferedLink } from '../buffered.js';
import type { TransportName } from '../link.js';
import type { Endpoint } from '../url.js';
import { ConnectionError } from '../../runtime/errors.js';

const MAX_MESSAGE = 1024 * 1024;

/** The part of the WebSocket interface used here (browser and `ws` alike). */
export interface WebSocketLike {
  binaryType: string;
  readonly bufferedAmount: number;
  readonly readyState: number;
  send(data: Uint8Array): void;
  close(code?: number, reason?: string): void;
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: { code: number; reason: string }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
}

export type WebSocketFactory = (url: string) => WebSocketLike;

function toBuffer(data: unknown): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (data instanceof ArrayBuffer) return Buffer.from(data);
  if (ArrayBuffer.isView(data)) return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  throw new ProtocolError('PROTOCOL', 'text WebSocket message: hopbus frames travel in binary messages');
}

export class WsClientLink extends BufferedLink {
  readonly transport: TransportName = 'ws';
  private scheduled = false;

  constructor(
    private readonly ws: WebSocketLike,
    remote: string,
    maxFrame: number,
    clock?: Clock,
  ) {
    super(remote, maxFrame, clock);
    ws.onmessage = (ev) => this.onMessage(ev.data);
    ws.onclose = (ev) => this.onClosed(ev.code);
    ws.onerror = () => {
      this.closeErr ??= new ConnectionError(`WebSocket error on ${remote}`);
    };
  }

  get pendingBytes(): number {
    return this.used - this.from + this.ws.bufferedAmount;
  }

  private onMessage(data: unknown): void {
    if (this.closed) return;
    let chunk: Buffer;
    try {
      chunk = toBuffer(data);
    } catch (err) {
      this.destroy(err as Error);
      return;
    }
    this.receive(chunk);
  }

  commit(n: number): void {
    if (this.closed) return;
    this.used += n;
    if (batching()) deferFlush(this);
    else if (!this.scheduled) {
      this.scheduled = true;
      queueMicrotask(this.flushTask);
    }
  }

  private readonly flushTask = (): void => {
    this.scheduled = false;
    this.flush();
  };

  flush(): void {
    if (this.used === this.from || this.closed || this.ws.readyState !== 1) return;
    for (let at = this.from; at < this.used; at += MAX_MESSAGE) this.ws.send(this.fill.subarray(at, Math.min(this.used, at + MAX_MESSAGE)));
    this.emptied();
  }

  close(): void {
    if (this.closed) return;
    this.flush();
    this.closed = true;
    this.ws.close(1000, 'closed');
  }

  destroy(err?: Error): void {
    if (err) this.closeErr ??= err;
    if (this.finished) return;
    this.closed = true;
    this.ws.close(1000, err ? err.message.slice(0, 120) : 'closed');
  }

  private onClosed(code: number): void {
    if (this.finished) return;
    if (this.closeErr === null && code !== 1000 && code !== 1001 && code !== 1005) this.closeErr = new ConnectionError(`WebSocket closed with code ${code}`);
    this.finish();
  }
}

/** The URL dialed for an endpoint: ws://host:port/bus unless the address names a path. */
export function wsUrl(ep: Endpoint): string {
  const u = new URL(ep.url);
  if (u.pathname === '/' || u.pathname === '') u.pathname = '/bus';
  return u.toString();
}

/** Opens a WebSocket and resolves with its link once open (rejects after timeoutMs). */
export function dialWebSocket(make: WebSocketFactory, ep: Endpoint, maxFrame: number, timeoutMs: number): Promise<WsClientLink> {
  return new Promise((resolve, reject) => {
    const url = wsUrl(ep);
    let ws: WebSocketLike;
    try {
      ws = make(url);
    } catch (err) {
      reject(err);
      return;
    }
    ws.binaryType = 'arraybuffer';
    const timer = setTimeout(() => {
      ws.onopen = ws.onclose = null;
      // Not null: the `ws` package emits 'error' for a close before the handshake ended,
      // and an 'error' nobody listens to would throw.
      ws.onerror = () => {};
      ws.close();
      reject(new ConnectionError(`connect to ${url} timed out after ${timeoutMs} ms`));
    }, timeoutMs);
    ws.onerror = () => {
      clearTimeout(timer);
      reject(new ConnectionError(`cannot open a WebSocket to ${url}`));
    };
    ws.onclose = (ev) => {
      clearTimeout(timer);
      reject(new ConnectionError(`WebSocket to ${url} closed before opening (code ${ev.code})`));
    };
    ws.onopen = () => {
      clearTimeout(timer);
      ws.onopen = null;
      resolve(new WsClientLink(ws, url, maxFrame));
    };
  });
}
