/**
 * A broker process for the slow-consumer benchmark: like `hopbus broker`, plus a
 * metrics dump on SIGUSR2 (one JSON line: broker.metrics() and the process's RSS),
 * so the benchmark can read drops and memory from outside.
 *   node dist/bench/slow-broker.js '<BrokerOptions JSON>'
 */
import { startBroker, type BrokerOptions } from '../broker/index.js';

const opts = JSON.parse(process.argv[2] ?? '{}') as BrokerOptions;
const b = await startBroker({ host: '127.0.0.1', port: 0, logLevel: 'silent', ...opts });
process.on('SIGUSR2', () => {
  const m = b.broker.metrics();
  console.log(JSON.stringify({ metrics: m, rss: process.memoryUsage().rss }));
});
process.on('SIGTERM', () => void b.close().then(() => process.exit(0)));
console.log(`READY ${b.url}`);
