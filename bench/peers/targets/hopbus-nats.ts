/**
 * hopbus's NATS listener, driven by the same nats.js client and settings as the `nats`
 * target (nats-server): the one difference between the two rows is the server. And the
 * two protocols on one broker: `nats-to-hopbus` publishes with nats.js to hopbus SDK
 * subscribers, `hopbus-to-nats` the other way round (the ping-pong's driver is on the
 * publishing side, its far side on the subscribing side).
 *
 * The broker runs as `node dist/bin/hopbus.js broker --port Q --nats-port P --log-level warn`
 * and prints "NATS clients: nats://127.0.0.1:P" after its ready line.
 */
import { connect } from '@nats-io/transport-node';
import { startNode } from '../../procs.js';
import { freePort, libVersion } from '../host.js';
import { connectBroker } from '../../../client/index.js';
import type { BusClient, Endpoint, Server, Target } from '../target.js';
import { HOPBUS_SETTINGS, HopbusClient, hopbusVersion } from './hopbus.js';
import { NATS_CLIENT_SETTINGS, NatsClient } from './nats.js';

export const hopbusNatsBroker: Server = {
  name: 'hopbus-broker-nats',
  packages: [],
  async start() {
    const port = await freePort();
    const hopbusPort = await freePort();
    const args = ['broker', '--port', String(hopbusPort), '--nats-port', String(port), '--log-level', 'warn'];
    const proc = await startNode('bin/hopbus.js', args, /NATS clients: nats:\/\/\S+/);
    return {
      endpoints: { port, nats: /nats:\/\/\S+/.exec(proc.ready)![0], url: `tcp://127.0.0.1:${hopbusPort}` },
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

function natsClient(ep: Endpoint, name: string): Promise<BusClient> {
  return connect({ servers: `127.0.0.1:${ep.port}`, name, reconnect: false }).then((nc) => new NatsClient(nc));
}

function hopbusClient(ep: Endpoint, name: string): Promise<BusClient> {
  return connectBroker(String(ep.url), { name }).then((bus) => new HopbusClient(bus));
}

/**
 * The publishing side of a case, by the connection's name (cases.ts, and the targets'
 * smoke test): its publisher (`...-pub`) and the ping-pong's driver (`...-ping`); the
 * subscribers and the ping-pong's far side (`bench-echo...`) are the other side.
 */
const publishes = (name: string): boolean => !name.includes('echo') && /-(pub|ping)$/.test(name);

function mixed(name: string, pub: 'nats' | 'hopbus'): Target {
  const open = (side: 'nats' | 'hopbus') => (side === 'nats' ? natsClient : hopbusClient);
  const other = pub === 'nats' ? 'hopbus' : 'nats';
  return {
    name,
    kind: 'hopbus',
    server: hopbusNatsBroker.name,
    client: `${libVersion('@nats-io/transport-node')} and ${hopbusVersion()}`,
    settings: [
      `publishers (and the ping-pong's driver): ${pub === 'nats' ? 'nats.js through the NATS listener' : 'the hopbus SDK over TCP'}`,
      `subscribers (and the ping-pong's far side): ${other === 'nats' ? 'nats.js through the NATS listener' : 'the hopbus SDK over TCP'}`,
      ...NATS_CLIENT_SETTINGS.map((x) => `nats.js: ${x}`),
      ...HOPBUS_SETTINGS.map((x) => `hopbus: ${x}`),
    ],
    wildcards: true,
    duplex: true,
    endpoint: (s) => ({ port: s.endpoints.port!, url: s.endpoints.url! }),
    connect: (ep, n) => open(publishes(n) ? pub : other)(ep, n),
  };
}

export const natsToHopbus = mixed('nats-to-hopbus', 'nats');
export const hopbusToNats = mixed('hopbus-to-nats', 'hopbus');
