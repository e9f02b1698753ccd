/**
 * The ping-pong's far side for hopbus-shm, on a worker thread of the bench process
 * (shm connects threads, not processes). workerData: { ep, options }. Posts 'ready'
 * once it answers bench.ping with bench.pong.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { connect } from '../../client/index.js';

const { ep, options } = workerData as { ep: never; options: Record<string, unknown> };
const bus = await connect(ep, { ...options, name: 'bench-echo', reconnect: false });
bus.subscribe('bench.ping', (m) => bus.publish('bench.pong', m.data));
await bus.flush();
parentPort!.on('message', (m) => {
  if (m === 'close') void bus.close().then(() => process.exit(0));
});
parentPort!.postMessage('ready');
