/**
 * The floor: bench/relay.ts, a Node process that writes every byte it receives on
 * one connection to every other connection (no parsing, no routing, TCP_NODELAY).
 * Its clients frame each message as a record of the same size as a hopbus PUB frame
 * for that subject and payload, and write like a hopbus link does: at once when the
 * socket is idle, else gathered behind the write in flight. What hopbus adds over
 * this is the cost of being a broker.
 *
 * There are no subjects: every connection receives what every other one sends. So
 * the floor runs the cases where that is what the subscribers want (one hop, ping-pong
 * with one connection per side, 1->N throughput) and not fan-out.
 *
 * Record layout (big-endian):
 *   0  u32 record length (header + filler + payload)
 *   4  u32 payload length
 *   8  filler up to record length - payload length (the subject and frame header in hopbus)
 *   .. payload
 */
import net from 'node:net';
import { startNode } from '../../procs.js';
import type { BusClient, OnMessage, Server, Target } from '../target.js';

/** A hopbus PUB frame carries 20 bytes besides its subject and payload (see bench/hop.ts). */
const FRAME_OVERHEAD = 20;

export const relayServer: Server = {
  name: 'node-tcp-relay',
  packages: [],
  async start() {
    const proc = await startNode('bench/relay.js', [], /^READY \d+/);
    return { endpoints: { port: Number(proc.ready.split(' ')[1]) }, version: `node ${process.version}`, command: 'node dist/bench/relay.js', stop: proc.stop };
  },
};

class RelayClient implements BusClient {
  private handlers: OnMessage[] = [];
  private pend = Buffer.allocUnsafe(64 * 1024);
  private pendLen = 0;
  private writing = false;
  private rest: Buffer | null = null;

  constructor(private readonly socket: net.Socket) {
    socket.on('data', this.onData);
    socket.on('error', () => socket.destroy());
  }

  publish(subject: string, payload: Uint8Array): void {
    const total = FRAME_OVERHEAD + subject.length + payload.length;
    if (this.pendLen + total > this.pend.length) {
      const grown = Buffer.allocUnsafe(Math.max(this.pend.length * 2, this.pendLen + total));
      this.pend.copy(grown, 0, 0, this.pendLen);
      this.pend = grown;
    }
    const b = this.pend;
    const o = this.pendLen;
    b.writeUInt32BE(total, o);
    b.writeUInt32BE(payload.length, o + 4);
    b.fill(0, o + 8, o + total - payload.length);
    b.set(payload, o + total - payload.length);
    this.pendLen += total;
    if (!this.writing) this.flush();
  }

  private flush(): void {
    // The socket keeps the buffer until the write completes, so hand it over and start a new one.
    const out = this.pend.subarray(0, this.pendLen);
    this.pend = Buffer.allocUnsafe(Math.max(64 * 1024, this.pend.length));
    this.pendLen = 0;
    this.writing = true;
    this.socket.write(out, this.onWritten);
  }

  private readonly onWritten = (): void => {
    this.writing = false;
    if (this.pendLen > 0) this.flush();
  };

  private readonly onData = (chunk: Buffer): void => {
    const buf = this.rest === null ? chunk : Buffer.concat([this.rest, chunk]);
    let off = 0;
    while (buf.length - off >= 8) {
      const total = buf.readUInt32BE(off);
      if (buf.length - off < total) break;
      const len = buf.readUInt32BE(off + 4);
      const payload = buf.subarray(off + total - len, off + total);
      for (const h of this.handlers) h(payload);
      off += total;
    }
    this.rest = off === buf.length ? null : buf.subarray(off);
  };

  async subscribe(_pattern: string, onMessage: OnMessage): Promise<void> {
    // No subjects: every record the relay forwards reaches every handler.
    this.handlers.push(onMessage);
  }

  async close(): Promise<void> {
    this.socket.destroy();
  }
}

export const floorTcpRelay: Target = {
  name: 'node-tcp-relay',
  kind: 'floor',
  server: relayServer.name,
  client: `node:net (${process.version})`,
  settings: ['TCP_NODELAY on', 'records the size of hopbus frames, written at once when idle, else gathered behind the write in flight'],
  wildcards: false,
  duplex: true,
  endpoint: (s) => ({ port: s.endpoints.port! }),
  connect: (ep) =>
    new Promise((resolve, reject) => {
      const s = net.connect({ host: '127.0.0.1', port: Number(ep.port), noDelay: true }, () => {
        // The relay registers the connection in its accept callback, which may run after
        // ours; a short wait keeps the first records from missing it.
        setTimeout(() => resolve(new RelayClient(s)), 20);
      });
      s.once('error', reject);
    }),
};
