/**
 * The far side of the peer ping-pong, in its own process:
 *   node dist/bench/peers/echo.js <target> '<endpoint json>'
 * Subscribes to bench.ping and publishes each payload back on bench.pong, through the
 * same client adapter the bench uses (one connection if the target is duplex, else
 * one to subscribe and one to publish). Prints "READY" once it answers.
 */
import { targetNamed } from './targets/index.js';
import type { Endpoint } from './target.js';

const [name, ep] = process.argv.slice(2);
if (name === undefined || ep === undefined) {
  console.error("usage: echo.js <target> '<endpoint json>'");
  process.exit(2);
}
const target = targetNamed(name);
const endpoint = JSON.parse(ep) as Endpoint;
const sub = await target.connect(endpoint, 'bench-echo');
const pub = target.duplex ? sub : await target.connect(endpoint, 'bench-echo-pub');
await sub.subscribe('bench.ping', (payload) => pub.publish('bench.pong', payload));
console.log('READY');
process.on('SIGTERM', () => process.exit(0));
