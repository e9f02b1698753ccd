/**
 * hopbus inproc: the broker embedded in the bench process, its clients on the same
 * thread (broker.endpoint('inproc')). No socket, no thread: what is left is the
 * broker's own work. The ping-pong's far side is another inproc client on this
 * thread, not another process (an inproc endpoint does not leave its thread).
 */
import { startBroker, type StartedBroker } from '../../../broker/index.js';
import { connectBroker } from '../../../client/index.js';
import type { Server, Target } from '../target.js';
import { HOPBUS_SETTINGS, HopbusClient, hopbusVersion } from './hopbus.js';

let embedded: StartedBroker | null = null;

export const embeddedBroker: Server = {
  name: 'hopbus-embedded',
  packages: [],
  async start() {
    const b = await startBroker({ host: '127.0.0.1', port: 0, logLevel: 'silent' });
    embedded = b;
    return {
      endpoints: { inproc: 'inproc' },
      version: hopbusVersion(),
      command: "startBroker({ host: '127.0.0.1', port: 0 }) in the bench process",
      stop: async () => {
        embedded = null;
        await b.close();
      },
    };
  },
};

export const hopbusInproc: Target = {
  name: 'hopbus-inproc',
  kind: 'hopbus',
  server: embeddedBroker.name,
  client: hopbusVersion(),
  settings: ["transport: inproc (broker and clients on the bench's own thread)", ...HOPBUS_SETTINGS, 'ping-pong far side: an inproc client on the same thread'],
  wildcards: true,
  duplex: true,
  echoWhere: 'the same thread',
  endpoint: () => ({ transport: 'inproc' }),
  async connect(_ep, name) {
    if (embedded === null) throw new Error('the embedded broker is not running');
    return new HopbusClient(await connectBroker(embedded.endpoint('inproc'), { name }));
  },
  async echo(ep) {
    const c = await hopbusInproc.connect(ep, 'bench-echo');
    await c.subscribe('bench.ping', (p) => c.publish('bench.pong', p));
    return { stop: () => c.close() };
  },
};
