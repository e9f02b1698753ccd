/**
 * The SDK against a fake server that does the handshake and then goes silent, or
 * never finishes it: failures a real broker does not produce on demand. The
 * keepalive runs on a FakeClock: the test moves time, the wire is real. Then
 * client/keepalive.ts alone, against a recording host.
 */
import net from 'node:net';
import { Packr } from 'msgpackr';
import { afterEach, describe, expect, it } from 'vitest';
import { ConnectionError, MessagesLostError, TimeoutError, connect, type ConnectOptions } from '../../client/index.js';
import { Bus } from '../../client/bus.js';
import { Keepalive } from '../../client/keepalive.js';
import { FakeClock } from '../../runtime/clock.js';
import { OP, until, useWorld } from '../kit/index.js';

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
            serverId: 'fake',
            serverName: 'fake',
            version: '0',
            proto: 1,
            clientId: 1,
            maxPayload: 1024,
            maxHeaders: 1024,
            maxSubscriptions: 10,
            maxPending: 1 << 20,
            pingIntervalMs: 0,
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

/** A client of `url` whose timers run on `clock`: its keepalive moves only when the test advances it. */
async function onClock(url: string, options: ConnectOptions, clock: FakeClock): Promise<Bus> {
  const bus = w.track(new Bus(url, options, clock));
  await bus.open();
  return bus;
}

const pings = (fake: Fake): number => fake.ops.filter((op) => op === OP.PING).length;

describe('client keepalive', () => {
  it('a client whose server stops answering PINGs drops the connection after maxPingsOut and reports a disconnect', async () => {
    const fake = await fakeServer(true);
    const clock = new FakeClock();
    const bus = await onClock(fake.url, { pingIntervalMs: 50, maxPingsOut: 2, reconnect: false }, clock);
    const reasons: unknown[] = [];
    bus.on('disconnect', (err) => reasons.push(err));
    clock.advance(50);
    await until(() => pings(fake) === 1, 'the first keepalive PING');
    clock.advance(50);
    await until(() => pings(fake) === 2, 'the second keepalive PING');
    expect(bus.connected).toBe(true);
    // The third interval finds two PINGs unanswered: stale.
    clock.advance(50);
    await until(() => bus.isClosed, 'the client to give up on the silent server');
    expect(pings(fake)).toBe(2);
    expect(reasons).toHaveLength(1);
    expect(reasons[0]).toBeInstanceOf(ConnectionError);
    expect(String(reasons[0])).toMatch(/stale/);
  });

  it('with pingIntervalMs 0 the client sends no keepalive PINGs and keeps a silent server', async () => {
    const quiet = await fakeServer(true);
    const clock = new FakeClock();
    const bus = await onClock(quiet.url, { pingIntervalMs: 0, reconnect: false }, clock);
    // The control: a client with 50 ms keepalive on another silent server, on the same
    // clock, gives up within the time advanced.
    const clockServer = await fakeServer(true);
    const control = await onClock(clockServer.url, { pingIntervalMs: 50, maxPingsOut: 2, reconnect: false }, clock);
    for (let i = 0; i < 100; i++) clock.advance(50);
    await until(() => control.isClosed, 'the 50 ms client to give up');
    // A PUB after the silence: the stream is ordered, so once it is here, no PING came before it.
    bus.publish('after.silence');
    await until(() => quiet.ops.length >= 2, 'the PUB sent after the silence');
    expect(quiet.ops).toEqual([OP.CONNECT, OP.PUB]);
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

/** A keepalive host that records what the Keepalive asks of its connection. */
function pingHost() {
  return {
    connected: true,
    sent: 0,
    published: 0,
    staleWith: null as Error | null,
    sendPing() {
      this.sent++;
    },
    stale(err: Error) {
      this.staleWith = err;
    },
  };
}

describe('Keepalive (client/keepalive.ts, on a fake clock)', () => {
  it('sends a PING per interval and declares the link stale after maxOut unanswered; a PONG resets the count', () => {
    const clock = new FakeClock();
    const h = pingHost();
    const k = new Keepalive(h, clock, 100, 2);
    k.start();
    clock.advance(200);
    expect(h.sent).toBe(2);
    expect(k.pong()).toBeNull(); // a keepalive PING's PONG answers no flush
    clock.advance(200);
    expect(h.sent).toBe(4);
    expect(h.staleWith).toBeNull();
    clock.advance(100);
    expect(h.sent).toBe(4);
    expect(h.staleWith).toBeInstanceOf(ConnectionError);
    expect(String(h.staleWith)).toMatch(/stale connection: 2 PINGs unanswered/);
  });

  it('sends nothing while disconnected, and nothing at all with interval 0', () => {
    const clock = new FakeClock();
    const h = pingHost();
    h.connected = false;
    new Keepalive(h, clock, 100, 2).start();
    const off = pingHost();
    new Keepalive(off, clock, 0, 2).start();
    clock.advance(1000);
    expect(h.sent).toBe(0);
    expect(h.staleWith).toBeNull();
    expect(off.sent).toBe(0);
    expect(clock.pending).toBe(1);
  });

  it('a flush resolves on its own PONG, in order behind keepalive PINGs, and times out on the clock', async () => {
    const clock = new FakeClock();
    const h = pingHost();
    const k = new Keepalive(h, clock, 100, 5);
    k.start();
    clock.advance(100); // one keepalive PING out
    let done = false;
    const f = k.flush(1000).then(() => (done = true));
    expect(h.sent).toBe(2);
    expect(k.pong()).toBeNull();
    k.pong()!.resolve();
    await f;
    expect(done).toBe(true);
    const late = k.flush(50);
    clock.advance(50);
    await expect(late).rejects.toBeInstanceOf(TimeoutError);
  });

  it('flushes asked for while disconnected, or lost with the link, are sent after the next handshake; keepalive PINGs are not', async () => {
    const clock = new FakeClock();
    const h = pingHost();
    const k = new Keepalive(h, clock, 100, 5);
    k.start();
    const f1 = k.flush(10_000);
    clock.advance(100);
    expect(h.sent).toBe(2);
    k.linkLost({ sentEnd: 0, keptEnd: 0, total: 0, dropped: '' });
    h.connected = false;
    const f2 = k.flush(10_000);
    expect(h.sent).toBe(2);
    h.connected = true;
    k.resend();
    expect(h.sent).toBe(4);
    k.pong()!.resolve();
    k.pong()!.resolve();
    await Promise.all([f1, f2]);
    expect(k.pong()).toBeNull();
  });

  it('a flush over messages written but unconfirmed when the link is lost rejects with MessagesLostError and their count', async () => {
    const clock = new FakeClock();
    const h = pingHost();
    const k = new Keepalive(h, clock, 0, 5);
    h.published = 4;
    const confirmed = k.flush(10_000);
    k.pong()!.resolve(); // messages 1..4 confirmed
    await confirmed;
    h.published = 10;
    const f = k.flush(10_000);
    // 5..8 were written to the transport, 9..10 carried into the backlog.
    const next = k.linkLost({ sentEnd: 8, keptEnd: 10, total: 10, dropped: 'dropped' });
    const err = await f.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MessagesLostError);
    expect((err as MessagesLostError).lost).toBe(4);
    expect((err as MessagesLostError).code).toBe('CONNECTION');
    // The lost run is taken out of the numbering: the carried two follow the confirmed four.
    expect(next).toBe(6);
  });

  it('a flush whose messages were all confirmed or carried is sent again and resolves; one over a dropped run rejects with its count', async () => {
    const clock = new FakeClock();
    const h = pingHost();
    const k = new Keepalive(h, clock, 0, 5);
    h.published = 6;
    const carried = k.flush(10_000);
    h.published = 9;
    const overflow = k.flush(10_000);
    // Nothing was written yet: 1..6 carried, 7..9 did not fit the backlog.
    expect(k.linkLost({ sentEnd: 0, keptEnd: 6, total: 9, dropped: 'the reconnect buffer was full' })).toBe(6);
    const err = await overflow.catch((e: unknown) => e);
    expect((err as MessagesLostError).lost).toBe(3);
    expect(String(err)).toMatch(/up to 3 published messages may be lost: the reconnect buffer was full/);
    h.sent = 0;
    k.resend();
    expect(h.sent).toBe(1);
    k.pong()!.resolve();
    await carried;
    expect(k.acked).toBe(6);
  });

  it('losses no waiting flush covered are reported by the next flush, once', async () => {
    const clock = new FakeClock();
    const h = pingHost();
    const k = new Keepalive(h, clock, 0, 5);
    h.published = 5;
    h.published = k.linkLost({ sentEnd: 5, keptEnd: 5, total: 5, dropped: '' });
    expect(h.published).toBe(0);
    const err = await k.flush(10_000).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MessagesLostError);
    expect((err as MessagesLostError).lost).toBe(5);
    const again = k.flush(10_000);
    k.pong()!.resolve();
    await again;
  });

  it('close stops the interval and fails the waiting flushes', async () => {
    const clock = new FakeClock();
    const h = pingHost();
    const k = new Keepalive(h, clock, 100, 5);
    k.start();
    const f = k.flush(10_000);
    k.close(new ConnectionError('connection closed'));
    await expect(f).rejects.toBeInstanceOf(ConnectionError);
    expect(clock.pending).toBe(0);
    clock.advance(1000);
    expect(h.sent).toBe(1);
  });
});
