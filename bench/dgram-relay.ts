/**
 * The UDP floor (bench/peers/targets/floor-dgram.ts): a Node process that sends every
 * datagram it receives to every other address that has said hello (an empty
 * datagram), unchanged. No parsing, no routing, no repair: the datagram analogue of
 * bench/relay.ts. Prints "READY <port>" when bound. Run: node dist/bench/dgram-relay.js
 */
import dgram from 'node:dgram';

const peers = new Map<string, { port: number; address: string }>();
const sock = dgram.createSocket('udp4');
sock.on('message', (msg, rinfo) => {
  const key = `${rinfo.address}:${rinfo.port}`;
  if (msg.length === 0) {
    peers.set(key, { port: rinfo.port, address: rinfo.address });
    sock.send(msg, rinfo.port, rinfo.address); // the hello, echoed: registered
    return;
  }
  for (const [k, p] of peers) if (k !== key) sock.send(msg, p.port, p.address);
});
sock.bind(0, '127.0.0.1', () => {
  console.log(`READY ${sock.address().port}`);
});
process.on('SIGTERM', () => process.exit(0));
