/**
 * hopbus's NATS listener, driven by the same nats.js client and settings as the `nats`
 * target (nats-server): the one difference between the two rows is the server.
 * The broker runs as `node dist/bin/hopbus.js broker --port 0 --nats-port P --log-level warn`
 * and prints "NATS clients: nats://127.0.0.1:P" after its ready line.
 */
import { connect } from '@nats-io/transport-node';
import { startNode } from '../../procs.js';
import { freePort, libVersion } from '../host.js';
import type { Server, Target } from '../target.js';
import { hopbusVersion } from './hopbus.js';
import { NATS_CLIENT_SETTINGS, NatsClient } from './nats.js';

export const hopbusNatsBroker: Server = {
  name: 'hopbus-broker-nats',
  packages: [],
  async start() {
    const port = await freePort();
    const args = ['broker', '--port', '0', '--nats-port', String(port), '--log-level', 'warn'];
    const proc = await startNode('bin/hopbus.js', args, /NATS clients: nats:\/\/\S+/);
    return {
      endpoints: { port, tcp: /nats:\/\/\S+/.exec(proc.ready)![0] },
      version: hopbusVersion(),
      command: `node dist/bin/hopbus.js ${args.join(' ')}`,
      stop: proc.stop,
    };
  },
};

export const hopbusNats: Target = {
  name: 'hopbus-nats',
  kind: 'hopbus',
  server: hopbusNatsBroker.name,
  client: libVersion('@nats-io/transport-node'),
  settings: ["server: hopbus's NATS listener (the NATS client protocol on hopbus's router)", ...NATS_CLIENT_SETTINGS],
  wildcards: true,
  duplex: true,
  endpoint: (s) => ({ port: s.endpoints.port! }),
  connect: async (ep, name) => new NatsClient(await connect({ servers: `127.0.0.1:${ep.port}`, name, reconnect: false })),
};
