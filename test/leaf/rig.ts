/**
 * What the leafnode suites that run real nats-server hubs share: a clean-up list run after
 * each test (newest first), and the hubs, brokers and nats.js clients they start, each
 * put on it.
 */
import { connect as natsConnect, type NatsConnection } from '@nats-io/transport-node';
import { afterEach } from 'vitest';
import { startBroker, type StartedBroker } from '../../broker/index.js';
import { startHub, type Hub, type HubOptions } from './hub.js';

export interface LeafRig {
  /** Run after the test, newest first; a failure in one does not stop the others. */
  readonly cleanup: Array<() => Promise<unknown>>;
  /** A hub cluster (3 nodes unless said), formed. */
  hub(o?: HubOptions): Promise<Hub>;
  broker(o: Parameters<typeof startBroker>[0]): Promise<StartedBroker>;
  /** A nats.js client of the node on `port`, without reconnects. */
  nats(port: number): Promise<NatsConnection>;
}

export function useLeafRig(): LeafRig {
  const cleanup: Array<() => Promise<unknown>> = [];
  afterEach(async () => {
    for (const f of cleanup.splice(0).reverse()) await f().catch(() => undefined);
  });
  return {
    cleanup,
    async hub(o = {}) {
      const h = await startHub({ nodes: 3, ...o });
      cleanup.push(() => h.stop());
      await h.formed();
      return h;
    },
    async broker(o) {
      const b = await startBroker({ port: 0, logLevel: 'silent', ...o });
      cleanup.push(() => b.close());
      return b;
    },
    async nats(port) {
      const c = await natsConnect({ servers: `127.0.0.1:${port}`, reconnect: false });
      cleanup.push(() => c.close());
      return c;
    },
  };
}
