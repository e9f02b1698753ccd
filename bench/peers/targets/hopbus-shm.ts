/**
 * hopbus shm: the broker on a worker thread of the bench process, the bench's clients
 * on its main thread, connected through SharedArrayBuffer rings (broker.endpoint('shm')).
 * They connect with { direct: false }, so every message crosses to the broker thread
 * and back, as every other system here goes through its broker: publisher and
 * subscriber share the bench's thread, and direct delivery between them would cross
 * no thread at all. Worker-to-worker direct delivery has its own figures in
 * bench/results/shm.md (npm run bench). The ping-pong's far side is a worker thread.
 */
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { connectBroker } from '../../../client/index.js';
import type { ServerAddress } from '../../../transports/dial.js';
import { distRoot, stopWorker, workerReady } from '../../procs.js';
import type { Endpoint, Server, Target } from '../target.js';
import { HOPBUS_SETTINGS, HopbusClient, hopbusVersion } from './hopbus.js';

const OPTIONS = { wait: 'hybrid', direct: false } as const;

let brokerThread: Worker | null = null;
let seq = 0;

/** A fresh endpoint from the broker thread. */
function endpoint(): Promise<unknown> {
  const w = brokerThread;
  if (w === null) return Promise.reject(new Error('the shm broker thread is not running'));
  const id = ++seq;
  return new Promise((resolve) => {
    const on = (m: { id?: number; ep?: unknown }) => {
      if (m.id !== id) return;
      w.off('message', on);
      resolve(m.ep);
    };
    w.on('message', on);
    w.postMessage({ id });
  });
}

export const shmBrokerThread: Server = {
  name: 'hopbus-broker-thread',
  packages: [],
  async start() {
    const w = new Worker(path.join(distRoot, 'bench/peers/shm-broker.js'));
    await workerReady(w);
    brokerThread = w;
    return {
      endpoints: { shm: 'worker thread' },
      version: hopbusVersion(),
      command: 'startBroker() on a worker thread of the bench process (dist/bench/peers/shm-broker.js)',
      stop: () => {
        brokerThread = null;
        return stopWorker(w);
      },
    };
  },
};

export const hopbusShm: Target = {
  name: 'hopbus-shm',
  kind: 'hopbus',
  server: shmBrokerThread.name,
  client: hopbusVersion(),
  settings: [
    'transport: shm (bench clients on the main thread, the broker on a worker thread)',
    ...HOPBUS_SETTINGS,
    "wait: 'hybrid' (the default); direct: false, so every message goes through the broker thread",
    'ping-pong far side: a worker thread of the bench process',
  ],
  wildcards: true,
  duplex: true,
  echoWhere: 'a worker thread',
  endpoint: () => ({ transport: 'shm' }),
  async connect(_ep: Endpoint, name: string) {
    return new HopbusClient(await connectBroker((await endpoint()) as ServerAddress, { ...OPTIONS, name, reconnect: false }));
  },
  async echo() {
    const w = new Worker(path.join(distRoot, 'bench/peers/shm-echo.js'), { workerData: { ep: await endpoint(), options: OPTIONS } });
    await workerReady(w);
    return { stop: () => stopWorker(w) };
  },
};
