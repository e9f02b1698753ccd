/**
 * The SDK against a fake server that does the handshake and then goes silent, or
 * never finishes it: failures a real broker does not produce on demand.
 */
import net from 'node:net';
import { Packr } from 'msgpackr';
import { afterEach, describe, expect, it } from 'vitest';
import { ConnectionError, connect } from '../../client/index.js';
import { OP, until, useWorld } from '../broker/harness.js';

const w = useWorld();
const packr = new Packr({ useRecords: false });

interface Fake {
  url: string;
  /** Frames received, by op. */
  ops: number[];
  sockets: net.Socket[];
}
const fakes: { server: net.Server; fake: Fake }[] = [];
afterEach(async () => {
  for (const { server, fake } of fakes.splice(0)) {
    for (const s of fake.sockets) s.destroy();
    await new Promise((r) => server.close(r));
  }
});

/** A server that answers CONNECT with INFO (when `handshake`), and nothing else ever. */
async function fakeServer(handshake: boolean): Promise<Fake> {
  const fake: Fake = { url: '', ops: [], sockets: [] };
  const server = net.createServer((socket) => {
    fake.sockets.push(socket);
    socket.on('error', () => {});
    let pending = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      while (pending.length >= 4 && pending.length >= pending.readUInt32LE(0)) {
        const len = pending.readUInt32LE(0);
        const op = pending[4]!;
        fake.ops.push(op);
        if (op === OP.CONNECT && handshake) {
          const body = packr.pack({
            serverId: 'fake', serverName: 'fake', version: '0', proto: 1, clientId: 1,
            maxPayload: 1024, maxHeaders: 1024, maxSubscriptions: 10, maxPending: 1 << 20, pingIntervalMs: 0,
          });
          const info = Buffer.alloc(8 + body.length);
          info.writeUInt32LE(info.length, 0);
          info[4] = OP.INFO;
          info.writeUInt16LE(1, 6);
          body.copy(info, 8);
          socket.write(info);
        }
        pending = pending.subarray(len);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  fakes.push({ server, fake });
  fake.url = `tcp://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
  return fake;
}

describe('client keepalive', () => {
  it('a client whose server stops answering PINGs drops the connection after maxPingsOut and reports a disconnect', async () => {
    const fake = await fakeServer(true);
    const bus = await w.connect(fake.url, { pingIntervalMs: 50, maxPingsOut: 2, reconnect: false });
    const reasons: unknown[] = [];
    bus.on('disconnect', (err) => reasons.push(err));
    await until(() => bus.isClosed, 'the client to give up on the silent server');
    expect(fake.ops.filter((op) => op === OP.PING)).toHaveLength(2);
    expect(reasons).toHaveLength(1);
    expect(reasons[0]).toBeInstanceOf(ConnectionError);
    expect(String(reasons[0])).toMatch(/stale/);
  });

  it('with pingIntervalMs 0 the client sends no keepalive PINGs and keeps a silent server', async () => {
    const quiet = await fakeServer(true);
    const bus = await w.connect(quiet.url, { pingIntervalMs: 0, reconnect: false });
    // The clock: a client with 50 ms keepalive on another silent server gives up
    // after three intervals.
    const clockServer = await fakeServer(true);
    const clock = await w.connect(clockServer.url, { pingIntervalMs: 50, maxPingsOut: 2, reconnect: false });
    await until(() => clock.isClosed, 'the 50 ms client to give up');
    expect(quiet.ops).toEqual([OP.CONNECT]);
    expect(bus.connected).toBe(true);
  });
});

describe('client handshake', () => {
  it('a server that accepts but never sends INFO makes connect reject with ConnectionError after timeoutMs', async () => {
    const fake = await fakeServer(false);
    const err = await connect(fake.url, { timeoutMs: 200 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConnectionError);
    expect(String(err)).toMatch(/handshake timed out/);
    expect(fake.ops).toEqual([OP.CONNECT]);
  });

  it('the CONNECT a client sends carries its name', async () => {
    const b = await w.broker();
    await w.connect(b.url, { name: 'pricer-7' });
    expect([...b.broker.sessions].map((s) => [s.name, s.lang])).toEqual([['pricer-7', 'typescript']]);
  });
});
