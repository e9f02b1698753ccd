/**
 * The floor: a minimal Node TCP relay. Every byte received on one connection is
 * written unchanged to every other connection: no parsing, no routing, setNoDelay.
 * Whatever hopbus adds on top of this is the cost of being a broker.
 * Prints "READY <port>" when listening. Run: node dist/bench/relay.js
 */
import net from 'node:net';

const conns = new Set<net.Socket>();
const server = net.createServer({ noDelay: true }, (s) => {
  s.setNoDelay(true);
  conns.add(s);
  s.on('data', (chunk) => {
    for (const o of conns) if (o !== s) o.write(chunk);
  });
  s.on('close', () => conns.delete(s));
  s.on('error', () => s.destroy());
});
server.listen(0, '127.0.0.1', () => {
  console.log(`READY ${(server.address() as net.AddressInfo).port}`);
});
process.on('SIGTERM', () => process.exit(0));
