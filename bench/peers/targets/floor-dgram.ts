/**
 * The UDP floor: a relay process (bench/dgram-relay.ts) forwarding every datagram to
 * every other registered client, over loopback. One message per datagram, of the size
 * a hopbus PUB frame has for its subject and payload, sent at once (one send call per
 * message). No subjects, no ordering or repair: the cases where every connection wants
 * every message and one is in flight (one hop, ping-pong). It is what hopbus-udp
 * (brokerless multicast) and a datagram broker would stand on.
 *
 * Datagram layout: 0 u32 payload length (big-endian) | filler | payload (last bytes).
 */
import dgram from 'node:dgram';
import { startNode } from '../../procs.js';
import type { BusClient, OnMessage, Server, Target } from '../target.js';

/** A hopbus PUB frame carries 20 bytes besides its subject and payload. */
const FRAME_OVERHEAD = 20;

export const dgramRelayServer: Server = {
  name: 'node-dgram-relay',
  packages: [],
  async start() {
    const proc = await startNode('bench/dgram-relay.js', [], /^READY \d+/);
    return {
      endpoints: { port: Number(proc.ready.split(' ')[1]) },
      version: `node ${process.version}`,
      command: 'node dist/bench/dgram-relay.js',
      stop: proc.stop,
    };
  },
};

class DgramClient implements BusClient {
  private readonly handlers: OnMessage[] = [];

  constructor(
    private readonly sock: dgram.Socket,
    private readonly port: number,
  ) {
    sock.on('message', (msg) => {
      if (msg.length < 4) return;
      const len = msg.readUInt32BE(0);
      const payload = msg.subarray(msg.length - len);
      for (const h of this.handlers) h(payload);
    });
  }

  publish(subject: string, payload: Uint8Array): void {
    const d = Buffer.alloc(FRAME_OVERHEAD + subject.length + payload.length);
    d.writeUInt32BE(payload.length, 0);
    d.set(payload, d.length - payload.length);
    this.sock.send(d, this.port, '127.0.0.1');
  }

  async subscribe(_pattern: string, onMessage: OnMessage): Promise<void> {
    this.handlers.push(onMessage);
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.sock.close(() => resolve()));
  }
}

export const floorDgram: Target = {
  name: 'node-dgram-relay',
  kind: 'floor',
  server: dgramRelayServer.name,
  client: `node:dgram (${process.version})`,
  settings: ['udp4 on 127.0.0.1, one datagram per message, sent at once', 'datagrams the size of hopbus PUB frames, forwarded unparsed by a relay process'],
  wildcards: false,
  duplex: true,
  cases: ['hop', 'pingpong'],
  endpoint: (s) => ({ port: s.endpoints.port! }),
  connect: (ep) =>
    new Promise((resolve, reject) => {
      const sock = dgram.createSocket('udp4');
      sock.once('error', reject);
      sock.bind(0, '127.0.0.1', () => {
        const port = Number(ep.port);
        // Hello until the relay echoes it: then it forwards to us.
        const timer = setInterval(() => sock.send(Buffer.alloc(0), port, '127.0.0.1'), 20);
        sock.once('message', () => {
          clearInterval(timer);
          resolve(new DgramClient(sock, port));
        });
        sock.send(Buffer.alloc(0), port, '127.0.0.1');
      });
    }),
};
