import net from 'node:net';
import fs from 'node:fs';

import type { Clock } from '../runtime/clock.js';
import { batching, deferFlush, runBatched } from './batch.js';
import { BufferedLink, KEEP_BUFFER_MAX, WRITE_BUFFER } from './buffered.js';
import type { AcceptFn, Listener, PeerCertificate, TransportName } from './link.js';
import type { Endpoint } from './url.js';
import { ConnectionError, ListenError } from '../runtime/errors.js';

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
export class StreamLink extends BufferedLink {
  /** 'tls' once the link runs over a TLS socket (transports/tls.ts). */
  transport: TransportName;
  /** The peer's verified client certificate, on TLS links that asked for one (transports/tls.ts). */
  certificate: PeerCertificate | null = null;
  private spare: Buffer | null = Buffer.allocUnsafe(WRITE_BUFFER);
  /** The buffer the socket is writing now, and how many of its bytes. */
  private sending: Buffer | null = null;
  private sendingLen = 0;

  constructor(
    protected socket: net.Socket,
    transport: TransportName,
    remote: string,
    maxFrame: number,
    clock?: Clock,
  ) {
    super(remote, maxFrame, clock);
    this.transport = transport;
    this.fill = Buffer.allocUnsafe(WRITE_BUFFER);
    this.watch(socket);
  }

  private watch(socket: net.Socket): void {
    if (this.transport !== 'unix') socket.setNoDelay(true);
    socket.on('error', this.onSocketError);
    socket.on('close', this.onSocketClose);
  }

  private readonly onSocketError = (err: Error): void => {
    this.closeErr ??= err;
  };

  // Runs once: the socket is gone.
  private readonly onSocketClose = (): void => {
    this.sending = null;
    this.sendingLen = 0;
    this.finish();
  };

  /**
   * Moves the link onto `next`, a socket over the same connection: the TLS socket a
   * protocol that upgrades in place (the NATS listener, after INFO) wraps the plain one
   * in. Nothing may be in flight on the old socket's reading side; its writes already
   * queued leave before anything written on `next`.
   */
  protected moveTo(next: net.Socket, transport: TransportName): void {
    const old = this.socket;
    old.off('error', this.onSocketError);
    old.off('close', this.onSocketClose);
    old.off('data', this.onData);
    this.socket = next;
    this.transport = transport;
    this.watch(next);
    if (this.handler !== null) next.on('data', this.onData);
    if (this.sending === null && this.used > 0) this.flush();
  }

  get pendingBytes(): number {
    return this.used - this.from + this.sendingLen;
  }

  override get bufferBytes(): number {
    return this.fill.length + (this.spare?.length ?? 0) + (this.sending?.length ?? 0);
  }

  protected override started(): void {
    this.socket.on('data', this.onData);
  }

  private readonly onData = (chunk: Buffer): void => {
    // A reader that failed ignores the rest of the stream (readChunk checks `failed`).
    runBatched(this.readChunk, chunk);
  };

  commit(n: number): void {
    if (this.closed) return; // the link is gone: drop, do not accumulate
    this.used += n;
    if (this.sending === null) {
      if (batching()) deferFlush(this);
      else this.flush();
    }
  }

  flush(): void {
    // A destroyed socket (reset by the peer) still calls back the write in flight, without
    // an error: what is queued stays queued, for finish() to hand to onUnsent.
    if (this.sending !== null || this.used === 0 || this.closed || this.socket.destroyed) return;
    const out = this.fill;
    const n = this.used;
    this.sending = out;
    this.sendingLen = n;
    this.writeBlockedSince = this.clock.now();
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
    const done = this.sending;
    if (done === null) return; // the socket closed meanwhile
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

  override pause(): void {
    this.socket.pause();
  }

  override resume(): void {
    this.socket.resume();
  }

  close(): void {
    if (this.closed || this.closing) return;
    this.closing = true;
    this.flush();
    if (this.sending === null) this.socket.end();
    // Bound the wait for a peer that stopped reading: the close must end.
    this.closeWithin(() => this.socket.destroy());
  }

  destroy(err?: Error): void {
    if (err) this.closeErr ??= err;
    this.socket.destroy();
    // 'close' follows asynchronously and calls finish(); mark now so writers stop.
    this.closed = true;
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
  if (!st.isSocket()) throw new ListenError(`${path} exists and is not a socket; refusing to replace it`);
  const live = await new Promise<boolean>((resolve) => {
    const probe = net.connect({ path });
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => resolve(false));
  });
  if (live) throw new ListenError(`${path} is in use by a running server`);
  fs.unlinkSync(path);
}

/** Dials a TCP or Unix endpoint. Rejects if it cannot connect within timeoutMs. */
export function dialStream(ep: Endpoint, maxFrame: number, timeoutMs: number): Promise<StreamLink> {
  return new Promise((resolve, reject) => {
    const transport: TransportName = ep.transport === 'unix' ? 'unix' : 'tcp';
    const socket = transport === 'unix' ? net.connect({ path: ep.path! }) : net.connect({ host: ep.host, port: ep.port!, noDelay: true });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new ConnectionError(`connect to ${ep.url} timed out after ${timeoutMs} ms`));
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
