/**
 * nats-server, driven by nats.js v3 (@nats-io/transport-node).
 * Started as `nats-server -a 127.0.0.1 -p PORT` (no monitoring port, no JetStream).
 */
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { startProcess } from '../../procs.js';
import { findBinary, firstLine, freePort, libVersion, portOpen } from '../host.js';
import { SkipError, type BusClient, type OnMessage, type Server, type Target } from '../target.js';

export const natsServer: Server = {
  name: 'nats-server',
  packages: ['nats-server'],
  async start() {
    const bin = findBinary('nats-server');
    if (bin === null) throw new SkipError('nats-server is not installed');
    const port = await freePort();
    const args = ['-a', '127.0.0.1', '-p', String(port)];
    const proc = await startProcess(bin, args, /Server is ready/, { watch: 'both', probe: () => portOpen(port) });
    return { endpoints: { port }, version: firstLine(bin, ['--version']), command: `nats-server ${args.join(' ')}`, stop: proc.stop };
  },
};

/** nats.js as a BusClient: also the client of hopbus-nats (hopbus's NATS listener). */
export class NatsClient implements BusClient {
  constructor(private readonly nc: NatsConnection) {}

  publish(subject: string, payload: Uint8Array): void {
    this.nc.publish(subject, payload);
  }

  async subscribe(pattern: string, onMessage: OnMessage): Promise<void> {
    this.nc.subscribe(pattern, {
      callback: (err, msg) => {
        if (err === null) onMessage(msg.data);
      },
    });
    await this.nc.flush();
  }

  close(): Promise<void> {
    return this.nc.close();
  }
}

/** How nats.js is driven, the same against nats-server and against hopbus's NATS listener. */
export const NATS_CLIENT_SETTINGS: readonly string[] = [
  'TCP_NODELAY on (set by the transport)',
  "outbound buffer flushed in a microtask after the first queued command, or inline past 32 KiB (the client's defaults; no timer)",
  'callback subscriptions (no async iterator), no headers, verbose and pedantic off, no echo suppression needed (separate connections)',
];

export const nats: Target = {
  name: 'nats',
  kind: 'peer',
  server: natsServer.name,
  client: libVersion('@nats-io/transport-node'),
  settings: NATS_CLIENT_SETTINGS,
  wildcards: true,
  duplex: true,
  endpoint: (s) => ({ port: s.endpoints.port! }),
  connect: async (ep, name) => new NatsClient(await connect({ servers: `127.0.0.1:${ep.port}`, name, reconnect: false })),
};
