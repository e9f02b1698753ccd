/**
 * A greedy publisher process: publishes 256-byte messages on `subject` as fast as it
 * can until killed, waiting only when its own queue towards the broker is full.
 *   node dist/bench/flood.js <url> <subject>
 */
import { connect } from '../client/index.js';

const [url, subject] = process.argv.slice(2);
const bus = await connect(url!, { name: 'flood', reconnect: false });
bus.on('error', () => {});
const payload = Buffer.alloc(256, 1);
console.log('READY');
for (;;) {
  for (let i = 0; i < 1000; i++) bus.publish(subject!, payload);
  while (bus.pendingBytes > 4 << 20) await new Promise((r) => setTimeout(r, 1));
  await new Promise((r) => setImmediate(r));
}
