/**
 * The NATS listener: a TCP server whose connections are StreamLinks that hand their
 * handler raw chunks instead of hopbus frames. Everything else of a StreamLink stays
 * as it is (smart batching of writes, pause/resume for back-pressure, the pending-byte
 * count that slow-consumer policies and the write deadline read, the bounded graceful
 * close), so a NATS connection is flow-controlled exactly like a hopbus one.
 *
 * The handler's onFrame(buf, off, len) gets each chunk as it arrived: the NATS session
 * feeds it to its NatsParser, which resumes wherever a chunk ended.
 */
import net from 'node:net';
import { StreamLink } from '../../transports/stream.js';
import type { AcceptFn, Listener } from '../../transports/link.js';

/** A StreamLink over a NATS client's socket: chunks, not frames, go to the handler. */
export class NatsLink extends StreamLink {
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

/** Listens for NATS clients on host:port (0 picks a free port); each connection is handed to `accept`. */
export async function listenNats(host: string, port: number, accept: AcceptFn): Promise<Listener & { readonly port: number }> {
  const server = net.createServer({ noDelay: true });
  server.on('connection', (socket) => {
    // maxFrame is unused: NatsLink never runs the frame reader.
    accept(new NatsLink(socket, 'tcp', `${socket.remoteAddress}:${socket.remotePort}`, 0));
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
