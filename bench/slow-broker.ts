/**
 * A broker process for the slow-consumer benchmark: like `hopbus broker`, plus a
 * metrics dump on SIGUSR2 (one JSON line: broker.metrics(), the process's RSS now and
 * at its peak (VmHWM, Linux), and the memory bound of one connection's outbound side
 * for these options), so the benchmark can read drops and memory from outside.
 *   node dist/bench/slow-broker.js '<BrokerOptions JSON>'
 */
import fs from 'node:fs';
import { startBroker, type BrokerOptions } from '../broker/index.js';
import { outboundMemoryBound } from '../broker/policy.js';

const opts = JSON.parse(process.argv[2] ?? '{}') as BrokerOptions;
const b = await startBroker({ host: '127.0.0.1', port: 0, logLevel: 'silent', ...opts });
const o = b.broker.options;
const bound = outboundMemoryBound(o.maxPending, o.highWaterBytes, b.broker.maxFrame);

/** Peak resident set size of this process, in bytes (VmHWM), or the RSS now where /proc is missing. */
function peakRss(): number {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync('/proc/self/status', 'utf8'));
    if (m) return Number(m[1]) * 1024;
  } catch {
    /* not Linux */
  }
  return process.memoryUsage().rss;
}

process.on('SIGUSR2', () => {
  const m = b.broker.metrics();
  console.log(
    JSON.stringify({ metrics: m, rss: process.memoryUsage().rss, hwm: peakRss(), bound, maxPending: o.maxPending, writeDeadlineMs: o.writeDeadlineMs }),
  );
});
process.on('SIGTERM', () => void b.close().then(() => process.exit(0)));
console.log(`READY ${b.url}`);
