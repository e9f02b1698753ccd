/**
 * The far side of the ping-pong benchmark, in its own process.
 *   node dist/bench/echo.js hopbus <url>   subscribes to bench.ping, answers on bench.pong
 *   node dist/bench/echo.js raw <port>     connects to the relay and echoes every byte back
 * Prints "READY" once it is ready to answer.
 */
import net from 'node:net';
import { connect } from '../client/index.js';

const [mode, where] = process.argv.slice(2);
if (mode === 'hopbus') {
  const bus = await connect(where!, { name: 'bench-echo' });
  bus.subscribe('bench.ping', (msg) => bus.publish('bench.pong', msg.data));
  await bus.flush();
  console.log('READY');
} else if (mode === 'raw') {
  const s = net.connect({ host: '127.0.0.1', port: Number(where), noDelay: true }, () => console.log('READY'));
  s.on('data', (chunk) => s.write(chunk));
} else {
  console.error('usage: echo.js hopbus <url> | raw <port>');
  process.exit(2);
}
process.on('SIGTERM', () => process.exit(0));
