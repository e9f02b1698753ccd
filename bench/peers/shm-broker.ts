/**
 * A hopbus broker on a worker thread of the peer bench (targets/hopbus-shm.ts). It
 * answers { id } with { id, ep }: a fresh shm endpoint for one connection (an
 * endpoint serves one); 'close' closes the broker and ends the thread.
 */
import { parentPort } from 'node:worker_threads';
import { startBroker } from '../../broker/index.js';

const broker = await startBroker({ host: '127.0.0.1', port: 0, logLevel: 'silent' });
parentPort!.on('message', (m: { id?: number } | 'close') => {
  if (m === 'close') {
    void broker.close().then(() => process.exit(0));
    return;
  }
  parentPort!.postMessage({ id: m.id, ep: broker.endpoint('shm') });
});
parentPort!.postMessage('ready');
