/**
 * The late joiner of the last-value cache benchmark (bench/lvc.ts), in its own process so
 * that receiving the image does not share the measuring process's CPU: connects, makes a
 * snapshot subscription on PATTERN when it reads "go" on standard input, and prints
 * "DONE <cached values> <ms from subscribe to snapshotDone>".
 *   node dist/bench/lvc-snap.js URL PATTERN
 */
import { connectBroker } from '../client/index.js';

const [url, pattern] = process.argv.slice(2) as [string, string];
const bus = await connectBroker(url, { name: 'late-joiner' });
let n = 0;
process.stdin.setEncoding('utf8').once('data', () => {
  const t0 = performance.now();
  const sub = bus.subscribe(pattern, () => void n++, { snapshot: true });
  void sub.snapshotDone.then((count) => {
    console.log(`DONE ${count} ${(performance.now() - t0).toFixed(1)} ${n}`);
  });
});
process.on('SIGTERM', () => void bus.close().then(() => process.exit(0)));
console.log('READY');
