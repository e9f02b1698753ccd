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
import { ProtocolError } from '../protocol/index.js';
import { FrameReader } from '../reader.js';
import { batching, deferFlush, runBatched, type Flushable } from '../batch.js';
import { readFailed, growBuffer, type Link, type LinkHandler, type TransportName } from '../link.js';
import type { Endpoint } from '../url.js';

const WRITE_BUFFER = 64 * 1024;
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

export class WsClientLink implements Link, Flushable {
  readonly transport: TransportName = 'ws';
  closed = false;
  batched = false;
  writeBlockedSince = 0;
  private fill: Buffer = Buffer.allocUnsafe(WRITE_BUFFER);
  private used = 0;
  private scheduled = false;
  private handler: LinkHandler | null = null;
  private readonly reader: FrameReader;
  private closeErr: Error | null = null;
  private finished = false;
  private paused = false;
  private held: Buffer[] = [];

  constructor(
    private readonly ws: WebSocketLike,
    readonly remote: string,
    maxFrame: number,
  ) {
    this.reader = new FrameReader(maxFrame);
    ws.onmessage = (ev) => this.onMessage(ev.data);
    ws.onclose = (ev) => this.finish(ev.code);
    ws.onerror = () => {
      this.closeErr ??= new Error(`WebSocket error on ${remote}`);
    };
  }

  get pendingBytes(): number {
    return this.used + this.ws.bufferedAmount;
  }

  get writeOffset(): number {
    return this.used;
  }

  setMaxFrame(n: number): void {
    this.reader.maxFrame = n;
  }

  start(handler: LinkHandler): void {
    this.handler = handler;
    if (this.finished) {
      this.handler = null;
      handler.onClose(this.closeErr);
    }
  }

  private onMessage(data: unknown): void {
    if (this.closed || this.handler === null) return;
    let chunk: Buffer;
    try {
      chunk = toBuffer(data);
    } catch (err) {
      this.destroy(err as Error);
      return;
    }
    if (this.paused) this.held.push(chunk);
    else runBatched(this.readChunk, chunk);
  }

  private readonly readChunk = (chunk: Buffer): void => {
    if (this.closed || this.handler === null) return;
    try {
      this.reader.push(chunk, this.handler);
    } catch (err) {
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
    else if (!this.scheduled) {
      this.scheduled = true;
      queueMicrotask(this.flushTask);
    }
  }

  private readonly flushTask = (): void => {
    this.scheduled = false;
    this.flush();
  };

  send(bytes: Uint8Array, off: number, len: number): void {
    const buf = this.reserve(len);
    buf.set(len === bytes.length && off === 0 ? bytes : bytes.subarray(off, off + len), this.used);
    this.commit(len);
  }

  flush(): void {
    if (this.used === 0 || this.closed || this.ws.readyState !== 1) return;
    for (let at = 0; at < this.used; at += MAX_MESSAGE) this.ws.send(this.fill.subarray(at, Math.min(this.used, at + MAX_MESSAGE)));
    this.used = 0;
    if (this.fill.length > MAX_MESSAGE) this.fill = Buffer.allocUnsafe(WRITE_BUFFER);
  }

  pause(): void {
    this.paused = true;
  }

  resume(): void {
    this.paused = false;
    while (this.held.length > 0 && !this.paused && !this.closed) runBatched(this.readChunk, this.held.shift()!);
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

  private finish(code: number): void {
    if (this.finished) return;
    this.finished = true;
    this.closed = true;
    this.used = 0;
    if (this.closeErr === null && code !== 1000 && code !== 1001 && code !== 1005) this.closeErr = new Error(`WebSocket closed with code ${code}`);
    const h = this.handler;
    this.handler = null;
    h?.onClose(this.closeErr);
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
      reject(new Error(`connect to ${url} timed out after ${timeoutMs} ms`));
    }, timeoutMs);
    ws.onerror = () => {
      clearTimeout(timer);
      reject(new Error(`cannot open a WebSocket to ${url}`));
    };
    ws.onclose = (ev) => {
      clearTimeout(timer);
      reject(new Error(`WebSocket to ${url} closed before opening (code ${ev.code})`));
    };
    ws.onopen = () => {
      clearTimeout(timer);
      ws.onopen = null;
      resolve(new WsClientLink(ws, url, maxFrame));
    };
  });
}
