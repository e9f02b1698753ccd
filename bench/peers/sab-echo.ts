/**
 * The far side of the shared-memory floor's ping-pong, on a worker thread: the client
 * end of a connection the relay thread has adopted (workerData: { conn, hub }); every
 * frame it reads it writes back unchanged (the relay forwards it to the pinging side).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { ShmLink } from '../../transports/shm/link.js';
import { Poller } from '../../transports/shm/poller.js';
import { HybridWait } from '../../transports/shm/wait.js';

const { conn, hub } = workerData as { conn: SharedArrayBuffer; hub: SharedArrayBuffer };
const link = new ShmLink({ conn, hub, side: 'client', remote: 'sab relay', maxFrame: 1 << 26, heartbeatMs: 1000, heartbeatTimeoutMs: Infinity });
link.attach(new Poller(link.ownSignal, new HybridWait({ blocking: false }), false));
link.start({
  onFrame: (buf, off, len) => link.send(buf, off, len),
  onClose() {},
});
parentPort!.on('message', (m) => {
  if (m === 'close') {
    link.destroy();
    setImmediate(() => process.exit(0));
  }
});
parentPort!.postMessage('ready');
