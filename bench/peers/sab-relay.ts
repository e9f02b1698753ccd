/**
 * The shared-memory floor's relay (targets/floor-sab.ts), on a worker thread: every
 * frame read from one connection's ring is written unchanged into every other
 * connection's ring. No parsing beyond the frame length, no routing: the shm analogue
 * of bench/relay.ts. It parks on one doorbell (its hub block) like a hopbus broker.
 * Messages: { conn } adopts a connection (answered 'adopted'); 'close' ends the thread.
 */
import { parentPort } from 'node:worker_threads';
import { HUB_BYTES, HUB_PARKED, HUB_SEQ } from '../../transports/shm/layout.js';
import { ShmLink } from '../../transports/shm/link.js';
import { Poller } from '../../transports/shm/poller.js';
import { HybridWait, Signal } from '../../transports/shm/wait.js';

const hub = new SharedArrayBuffer(HUB_BYTES);
const poller = new Poller(new Signal(new Int32Array(hub), HUB_SEQ, HUB_PARKED), new HybridWait({ blocking: false }), false);
const links = new Set<ShmLink>();

parentPort!.on('message', (m: { conn?: SharedArrayBuffer } | 'close') => {
  if (m === 'close') {
    for (const l of links) l.destroy();
    setImmediate(() => process.exit(0));
    return;
  }
  const link = new ShmLink({ conn: m.conn!, hub, side: 'broker', remote: 'bench client', maxFrame: 1 << 26, heartbeatMs: 1000, heartbeatTimeoutMs: Infinity });
  link.attach(poller);
  links.add(link);
  link.start({
    onFrame(buf, off, len) {
      for (const o of links) if (o !== link) o.send(buf, off, len);
    },
    onClose() {
      links.delete(link);
    },
  });
  parentPort!.postMessage('adopted');
});
parentPort!.postMessage({ hub });
