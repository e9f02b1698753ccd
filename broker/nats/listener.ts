/**
 * The NATS listener: a TCP server whose connections are StreamLinks that hand their
 * handler raw chunks instead of hopbus frames. Everything else of a StreamLink stays
 * as it is (smart batching of writes, pause/resume for back-pressure, the pending-byte
 * count that slow-consumer policies and the write deadline read, the bounded graceful
 * close), so a NATS connection is flow-controlled exactly like a hopbus one.
 *
 * The handler's onFrame(buf, off, len) gets each chunk as it arrived: the NATS session
 * feeds it to its NatsParser, which resumes wherever a chunk ended.
 *
 * TLS (broker option `tls`) as nats-server does it: INFO goes out in plain text (saying
 * tls_required, or tls_available where plain text is allowed too), then the client
 * starts the handshake on the same socket and everything after is encrypted. The link
 * reads nothing and holds what the session writes until the first bytes have said
 * which it is (transports/tls.ts, TlsGate.sniff); a plain-text client on a TLS-only
 * port gets nats-server's -ERR 'Secure Connection - TLS Required'.
 */
import net from 'node:net';
import type tls from 'node:tls';
import { StreamLink } from '../../transports/stream.js';
import { TlsGate, clientHandshake, peerCertificate, type TlsServerSettings } from '../../transports/tls.js';
import type { AcceptFn, Listener, TransportName } from '../../transports/link.js';

/** A StreamLink over a NATS client's socket: chunks, not frames, go to the handler. */
export class NatsLink extends StreamLink {
  /** Between INFO and the end of the TLS handshake (or the first plain bytes): read nothing, write nothing more. */
  private upgrading = false;

  constructor(
    socket: net.Socket,
    transport: TransportName,
    remote: string,
    // Unused: NatsLink never runs the frame reader.
    maxFrame: number,
    /** The listener's TLS gate: TLS follows INFO (startTls). Null: plain text. */
    private readonly gate: TlsGate | null = null,
  ) {
    super(socket, transport, remote, maxFrame);
  }

  protected override started(): void {
    // With TLS, reading starts once the gate has said whether the client speaks TLS.
    if (this.gate === null) super.started();
  }

  override flush(): void {
    if (!this.upgrading) super.flush();
  }

  /** After INFO: hands the socket to the TLS gate, and moves onto what it gives back. */
  startTls(raw: net.Socket): void {
    const gate = this.gate;
    if (gate === null || this.closed || this.closing) return;
    this.flush(); // INFO, if a batch window held it
    this.upgrading = true;
    gate.sniff(
      raw,
      (secure) => {
        this.upgrading = false;
        this.certificate = peerCertificate(secure);
        this.moveTo(secure, 'tls');
      },
      (plain) => {
        this.upgrading = false;
        this.moveTo(plain, 'tcp');
        plain.resume();
      },
      (err) => this.destroy(err),
    );
  }

  /**
   * The dialling side (a leafnode uplink, after the hub's INFO): runs the client's TLS
   * handshake over this link's socket and moves onto the TLS socket; writes are held
   * meanwhile. `failed` is told before the link closes (transports/tls.ts clientHandshake).
   */
  secureClient(o: tls.ConnectionOptions, timeoutMs: number, then: () => void, failed: (err: Error) => void): void {
    if (this.closed || this.closing) return;
    this.flush();
    this.upgrading = true;
    clientHandshake(
      this.socket,
      o,
      timeoutMs,
      (secure) => {
        this.upgrading = false;
        if (this.closed) {
          secure.destroy();
          return;
        }
        this.moveTo(secure, 'tls');
        then();
      },
      (err) => {
        this.upgrading = false;
        failed(err);
      },
    );
  }

  protected override readonly readChunk = (chunk: Buffer): void => {
    const h = this.handler;
    if (this.closed || this.failed || h === null) return;
    try {
      h.onFrame(chunk, 0, chunk.length);
    } catch (err) {
      this.readFailed(err);
    }
  };
}

/**
 * Listens for NATS clients on host:port (0 picks a free port); each connection is handed
 * to `accept`, which greets it (INFO) at once; with `tls`, the TLS handshake follows.
 */
export async function listenNats(
  host: string,
  port: number,
  accept: AcceptFn,
  tls: TlsServerSettings | null = null,
): Promise<Listener & { readonly port: number }> {
  const server = net.createServer({ noDelay: true });
  const gate = tls === null ? null : new TlsGate(tls);
  server.on('connection', (socket) => {
    // maxFrame is unused: NatsLink never runs the frame reader.
    const link = new NatsLink(socket, 'tcp', `${socket.remoteAddress}:${socket.remotePort}`, 0, gate);
    accept(link);
    link.startTls(socket);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const bound = (server.address() as net.AddressInfo).port;
  return {
    url: `nats://${host.includes(':') ? `[${host}]` : host}:${bound}`,
    transport: 'tcp',
    port: bound,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
