import net from 'node:net';
import fs from 'node:fs';

import { FrameReader } from './reader.js';
import { batching, deferFlush, runBatched, type Flushable } from './batch.js';
import { readFailed, growBuffer, type AcceptFn, type Link, type LinkHandler, type Listener, type TransportName } from './link.js';
import type { Endpoint } from './url.js';

/** Initial size of each of a link's two write buffers; they grow on demand. */
const WRITE_BUFFER = 64 * 1024;
/** A write buffer grown past this is dropped after use rather than kept for reuse. */
const KEEP_BUFFER_MAX = 1024 * 1024;

/**
 * A Link over a byte stream: a TCP or Unix-domain socket.
 *
 * Writes use two buffers: one being filled by encoders, one handed to the socket.
 * Only one socket write is in flight at a time; whatever is committed meanwhile
 * accumulates in the fill buffer and leaves in one write when the previous one
 * completes (smart batching). When the socket is idle a commit flushes at once,
 * unless a batch window is open (see batch.ts), in which case it flushes when the
 * window closes. Steady state allocates nothing: the buffers swap roles.
 */
export class StreamLink implements Link, Flushable {
  readonly transport: TransportName;
  readonly remote: string;
  closed = false;
  batched = false;

  private fill: Buffer = Buffer.allocUnsafe(WRITE_BUFFER);
  private used = 0;
  private spare: Buffer | null = Buffer.allocUnsafe(WRITE_BUFFER);
  /** The buffer the socket is writing now, and how many of its bytes. */
  private sending: Buffer | null = null;
  private sendingLen = 0;
  writeBlockedSince = 0;
  private closing = false;
  private handler: LinkHandler | null = null;
  private readonly reader: FrameReader;
  private closeErr: Error | null = null;
  private finished = false;

  constructor(private readonly socket: net.Socket, transport: TransportName, remote: string, maxFrame: number) {
    this.transport = transport;
    this.remote = remote;
    this.reader = new FrameReader(maxFrame);
    if (transport === 'tcp') socket.setNoDelay(true);
    socket.on('error', (err) => {
      this.closeErr ??= err;
    });
    socket.on('close', () => this.finish());
  }

  get pendingBytes(): number {
    return this.used + this.sendingLen;
  }

  get writeOffset(): number {
    return this.used;
  }

  /** Raises or lowers the largest frame this link accepts (after the handshake). */
  setMaxFrame(n: number): void {
    this.reader.maxFrame = n;
  }

  start(handler: LinkHandler): void {
    this.handler = handler;
    this.socket.on('data', this.onData);
    if (this.finished) {
      this.handler = null;
      handler.onClose(this.closeErr);
    }
  }

  private readonly onData = (chunk: Buffer): void => {
    runBatched(this.readChunk, chunk);
  };

  private readonly readChunk = (chunk: Buffer): void => {
    if (this.closed || this.handler === null) return;
    try {
      this.reader.push(chunk, this.handler);
    } catch (err) {
      // The stream cannot be resynchronised: stop reading; the handler says why and closes.
      this.socket.off('data', this.onData);
      readFailed(this.handler, err, (e) => this.destroy(e));
    }
  };

  reserve(n: number): Buffer {
    const need = this.used + n;
    if (need > this.fill.length) this.fill = growBuffer(this.fill, this.used, need);
    return this.fill;
  }

  commit(n: number): void {
    if (this.closed) return; // the link is gone: drop, do not accumulate
    this.used += n;
    if (this.sending === null) {
      if (batching()) deferFlush(this);
      else this.flush();
    }
  }

  send(bytes: Uint8Array, off: number, len: number): void {
    const buf = this.reserve(len);
    buf.set(len === bytes.length && off === 0 ? bytes : bytes.subarray(off, off + len), this.used);
    this.commit(len);
  }

  flush(): void {
    if (this.sending !== null || this.used === 0 || this.closed) return;
    const out = this.fill;
    const n = this.used;
    this.sending = out;
    this.sendingLen = n;
    this.writeBlockedSince = performance.now();
    this.fill = this.spare ?? Buffer.allocUnsafe(WRITE_BUFFER);
    this.spare = null;
    this.used = 0;
    this.socket.write(n === out.length ? out : out.subarray(0, n), this.onWritten);
  }

  /** One closure per link, not per write. */
  private readonly onWritten = (err?: Error | null): void => {
    if (err) {
      this.destroy(err);
      return;
    }
    const done = this.sending!;
    this.sending = null;
    this.sendingLen = 0;
    this.writeBlockedSince = 0;
    if (done.length <= KEEP_BUFFER_MAX && this.spare === null) this.spare = done;
    if (this.used > 0) {
      this.flush();
    } else {
      if (this.closing) this.socket.end();
      else this.handler?.onDrain?.();
    }
  };

  pause(): void {
    this.socket.pause();
  }

  resume(): void {
    this.socket.resume();
  }

  close(): void {
    if (this.closed || this.closing) return;
    this.closing = true;
    this.flush();
    if (this.sending === null) this.socket.end();
    // Bound the wait for a peer that stopped reading: the close must end.
    setTimeout(() => this.socket.destroy(), 2000).unref();
  }

  destroy(err?: Error): void {
    if (err) this.closeErr ??= err;
    this.socket.destroy();
    // 'close' follows asynchronously and calls finish(); mark now so writers stop.
    this.closed = true;
  }

  /** Runs once, on the socket's 'close' event. */
  private finish(): void {
    this.closed = true;
    this.finished = true;
    this.used = 0;
    this.sending = null;
    this.sendingLen = 0;
    const h = this.handler;
    this.handler = null;
    h?.onClose(this.closeErr);
  }
}

function describe(socket: net.Socket, transport: TransportName, path?: string): string {
  return transport === 'unix' ? `unix:${path ?? ''}` : `${socket.remoteAddress}:${socket.remotePort}`;
}

/** Listens on TCP or a Unix-domain socket; every accepted connection becomes a StreamLink. */
export async function listenStream(ep: Endpoint, maxFrame: number, accept: AcceptFn): Promise<Listener> {
  const server = net.createServer({ noDelay: true });
  const transport: TransportName = ep.transport === 'unix' ? 'unix' : 'tcp';
  server.on('connection', (socket) => {
    accept(new StreamLink(socket, transport, describe(socket, transport, ep.path), maxFrame));
  });
  if (transport === 'unix') {
    await removeStaleSocket(ep.path!);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(ep.path!, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } else {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(ep.port ?? 0, ep.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
  }
  const addr = server.address();
  const url = transport === 'unix' ? `unix://${ep.path}` : `tcp://${formatHost(ep.host ?? '127.0.0.1')}:${(addr as net.AddressInfo).port}`;
  return {
    url,
    transport,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        if (transport === 'unix') {
          try {
            fs.unlinkSync(ep.path!);
          } catch {
            /* already gone */
          }
        }
      }),
  };
}

function formatHost(h: string): string {
  return h.includes(':') ? `[${h}]` : h;
}

/**
 * A socket file left by a broker that died would make listen() fail with EADDRINUSE.
 * Remove it only if nobody answers on it: never take a live broker's socket.
 */
async function removeStaleSocket(path: string): Promise<void> {
  let st: fs.Stats;
  try {
    st = fs.statSync(path);
  } catch {
    return;
  }
  if (!st.isSocket()) throw new Error(`${path} exists and is not a socket; refusing to replace it`);
  const live = await new Promise<boolean>((resolve) => {
    const probe = net.connect({ path });
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => resolve(false));
  });
  if (live) throw new Error(`${path} is in use by a running server`);
  fs.unlinkSync(path);
}

/** Dials a TCP or Unix endpoint. Rejects if it cannot connect within timeoutMs. */
export function dialStream(ep: Endpoint, maxFrame: number, timeoutMs: number): Promise<StreamLink> {
  return new Promise((resolve, reject) => {
    const transport: TransportName = ep.transport === 'unix' ? 'unix' : 'tcp';
    const socket =
      transport === 'unix' ? net.connect({ path: ep.path! }) : net.connect({ host: ep.host, port: ep.port!, noDelay: true });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`connect to ${ep.url} timed out after ${timeoutMs} ms`));
    }, timeoutMs);
    socket.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.removeAllListeners('error');
      resolve(new StreamLink(socket, transport, ep.url, maxFrame));
    });
  });
}
